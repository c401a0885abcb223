"""The three models and their data, as their users hold them (HF dicts, (x, y) pairs)."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from saddlescope import Objective


class BasicBlock(nn.Module):
    """ResNet basic block; the CIFAR ResNet's parameter-free shortcut (subsample, zero-pad)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.stride, self.pad = stride, cout - cin

    def forward(self, x: Tensor) -> Tensor:
        h = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        short = x[:, :, :: self.stride, :: self.stride] if self.stride > 1 else x
        if self.pad:
            short = F.pad(short, (0, 0, 0, 0, 0, self.pad))
        return F.relu(h + short)


class ResNet20(nn.Module):
    """He et al.'s CIFAR ResNet-20: 3 stages of 3 basic blocks (16, 32, 64 channels)."""

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        blocks, cin = [], 16
        for cout, stride in [(16, 1), (32, 2), (64, 2)]:
            for i in range(3):
                blocks.append(BasicBlock(cin, cout, stride if i == 0 else 1))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.blocks(F.relu(self.bn(self.conv(x)))).mean(dim=(2, 3)))


def resnet20(seed: int = 0) -> nn.Module:
    """A ResNet-20 in eval mode with non-trivial BatchNorm running statistics."""
    torch.manual_seed(seed)
    model = ResNet20()
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(0.2 * torch.randn(m.num_features, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=g))
    return model.eval()


class CifarLike:
    """A re-iterable loader of CIFAR-shaped ``(x, y)`` batches made on the fly: batch i is drawn
    from its own seeded generator, so every pass gives the same batches and none is stored."""

    def __init__(self, num_batches: int, batch_size: int, seed: int = 0) -> None:
        self.num_batches, self.batch_size, self.seed = num_batches, batch_size, seed

    def __len__(self) -> int:
        return self.num_batches

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        for i in range(self.num_batches):
            g = torch.Generator().manual_seed(1000 * self.seed + i)
            x = torch.randn(self.batch_size, 3, 32, 32, generator=g)
            yield x, torch.randint(0, 10, (self.batch_size,), generator=g)


class Inputs(dict):
    """An HF input dict that also answers ``size(0)`` and ``to(device)`` (PyHessian's loader
    mode asks both of its inputs)."""

    def size(self, dim: int | None = None) -> Any:
        return next(iter(self.values())).size(dim)

    def to(self, device: Any) -> Inputs:
        return Inputs({k: v.to(device) for k, v in self.items()})


class Logits(nn.Module):
    """``forward(inputs) = model(**inputs).logits``: an HF model as ``(inputs, targets)`` anchors
    take it."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, inputs: dict[str, Tensor]) -> Tensor:
        return self.model(**inputs).logits


class CausalLMLoss(nn.Module):
    """Next-token cross-entropy on logits and labels (the mean over predicted tokens)."""

    reduction = "mean"

    def forward(self, logits: Tensor, labels: Tensor) -> Tensor:
        return F.cross_entropy(
            logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1)
        )


def predicted_tokens(batch: dict[str, Tensor]) -> float:
    """GPT-2's batch weight: labels ≠ -100 after the causal shift."""
    return float((batch["labels"][:, 1:] != -100).sum())


@dataclass
class Case:
    """A model and its data as a user holds them, plus what the anchors are given."""

    key: str
    title: str
    model: nn.Module  # float32, eval mode, never modified
    batches: list[Any]  # dicts (HF) or (x, y) pairs
    criterion: nn.Module  # the loss on the logits, for PyHessian and curvlinops
    loss_fn: Callable[..., Tensor] | None = None  # ours; None: the model's own loss
    batch_weight: Callable[[Any], float] | None = None
    hf: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def num_params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def objective(
        self, dtype: torch.dtype = torch.float32, data: Any = None, **kw: Any
    ) -> Objective:
        loss_fn = self.loss_fn
        if dtype == torch.float64 and self.key == "gpt2":  # its own loss casts to float32
            loss_fn = _causal_lm_loss
        data = self.batches if data is None else data
        return Objective(
            self.model, loss_fn, data, batch_weight=self.batch_weight, dtype=dtype, **kw
        )

    def pairs(self) -> list[tuple[Any, Tensor]]:
        """The batches as ``(inputs, targets)``: HF dicts split into inputs and labels."""
        if not self.hf:
            return list(self.batches)
        return [(Inputs({k: v for k, v in b.items() if k != "labels"}), b["labels"]) for b in self]

    def __iter__(self) -> Iterator[Any]:
        return iter(self.batches)

    def logit_model(self) -> nn.Module:
        model = copy.deepcopy(self.model).eval()
        return Logits(model) if self.hf else model

    def plain_gradient(self, model: nn.Module) -> None:
        model.zero_grad(set_to_none=True)
        for inputs, targets in self.pairs():
            self.criterion(model(inputs), targets).backward()


def _causal_lm_loss(outputs: Any, batch: dict[str, Tensor]) -> Tensor:
    return CausalLMLoss()(outputs.logits, batch["labels"])


def token_batches(
    n_batches: int, size: int, length: int, seed: int, *, pad: bool
) -> list[dict[str, Tensor]]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n_batches):
        ids = torch.randint(1, 200, (size, length), generator=g)
        lengths = torch.randint(length // 2, length + 1, (size,), generator=g) if pad else None
        mask = torch.ones_like(ids)
        if lengths is not None:
            lengths[0] = length
            mask = (torch.arange(length)[None, :] < lengths[:, None]).long()
        out.append({"input_ids": ids * mask, "attention_mask": mask})
    return out


def bert_case(quick: bool) -> Case:
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(
        vocab_size=200,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=32,
        num_labels=3,
        problem_type="single_label_classification",
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        pad_token_id=0,
    )
    torch.manual_seed(0)
    model = BertForSequenceClassification(config).eval()
    shape = (2, 8, 16) if quick else (4, 16, 24)
    batches = token_batches(*shape, seed=1, pad=True)
    g = torch.Generator().manual_seed(2)
    for b in batches:
        b["labels"] = torch.randint(0, 3, (shape[1],), generator=g)
    title = f"BERT {shape[0]}×{shape[1]} sequences of ≤{shape[2]} tokens (padded)"
    return Case("bert", title, model, batches, nn.CrossEntropyLoss(), hf=True)


def gpt2_case(quick: bool) -> Case:
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=200,
        n_positions=32,
        n_embd=32,
        n_layer=2,
        n_head=2,
        n_inner=64,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        pad_token_id=0,
        bos_token_id=0,
        eos_token_id=0,
    )
    torch.manual_seed(0)
    model = GPT2LMHeadModel(config).eval()
    shape = (2, 4, 16) if quick else (4, 8, 32)
    batches = token_batches(*shape, seed=3, pad=False)
    for b in batches:
        b["labels"] = b["input_ids"].clone()
    title = f"GPT-2 {shape[0]}×{shape[1]} sequences of {shape[2]} tokens"
    return Case("gpt2", title, model, batches, CausalLMLoss(), None, predicted_tokens, hf=True)


def cnn_case(quick: bool) -> Case:
    n_batches, size = (2, 2) if quick else (2, 8)
    batches = list(CifarLike(n_batches, size, seed=5))
    title = f"ResNet-20 {n_batches}×{size} images 3×32×32"
    return Case("cnn", title, resnet20(), batches, nn.CrossEntropyLoss(), nn.CrossEntropyLoss())
