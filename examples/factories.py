r"""Factories for ``saddlescope analyze``: a tiny HuggingFace BERT and a small CNN, with data.

Run from the repository root, e.g.::

    saddlescope analyze --model examples.factories:tiny_bert --data examples.factories:bert_batches
    saddlescope analyze --model examples.factories:small_cnn \
        --data examples.factories:cnn_batches \
        --loss torch.nn:CrossEntropyLoss --html results/cnn.html

Each factory takes no arguments and is seeded: the same model and data every time. The models
are built from configs with random weights (nothing is downloaded); the data is generated.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["bert_batches", "cnn_batches", "small_cnn", "tiny_bert"]


def tiny_bert() -> nn.Module:
    """A 2-layer BertForSequenceClassification (3 labels) with random weights, in eval mode."""
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(
        vocab_size=64,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=16,
        num_labels=3,
        problem_type="single_label_classification",
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        pad_token_id=0,
    )
    torch.manual_seed(0)
    return BertForSequenceClassification(config).eval()


def bert_batches() -> list[dict[str, Tensor]]:
    """Four dict batches of 8 right-padded sequences (≤ 12 tokens) with labels, HF style."""
    g = torch.Generator().manual_seed(1)
    batches = []
    for _ in range(4):
        ids = torch.randint(1, 64, (8, 12), generator=g)
        lengths = torch.randint(6, 13, (8,), generator=g)
        mask = (torch.arange(12)[None, :] < lengths[:, None]).long()
        labels = torch.randint(0, 3, (8,), generator=g)
        batches.append({"input_ids": ids * mask, "attention_mask": mask, "labels": labels})
    return batches


class SmallCNN(nn.Module):
    """Two convolutions with BatchNorm and a linear head, for 3×16×16 images and 4 classes."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 8, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(2),
        )
        self.head = nn.Linear(32, 4)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x).flatten(1))


def small_cnn() -> nn.Module:
    """A :class:`SmallCNN` with seeded random weights, in eval mode."""
    torch.manual_seed(0)
    return SmallCNN().eval()


def cnn_batches() -> list[tuple[Tensor, Tensor]]:
    """Four (images, labels) batches of 16 random 3×16×16 images and 4 classes."""
    g = torch.Generator().manual_seed(2)
    return [
        (torch.randn(16, 3, 16, 16, generator=g), torch.randint(0, 4, (16,), generator=g))
        for _ in range(4)
    ]
