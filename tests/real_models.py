"""Tiny real models for the real-model tests: third-party (HuggingFace) and stock torch layers.

Every factory returns a :class:`Case` ``(model, loss_fn, batches, weight_fn)``, the four things a
user hands to ``Objective(model, loss_fn, batches, batch_weight=weight_fn)``:

- ``model``: randomly initialised (seeded), float32, in train mode as a user holds it;
  dropout probabilities are 0 and BatchNorm running statistics non-trivial.
- ``loss_fn``: ``loss_fn(outputs, targets)`` for ``(inputs, targets)`` pair batches,
  ``loss_fn(outputs, batch)`` for tuple/dict batches, or ``None``: the model's own
  ``outputs.loss`` (HuggingFace style).
- ``batches``: a list of batches of uneven sizes (so the weighting matters): pairs, tuples
  ``(*inputs, targets)`` (``model(*batch[:-1])``) or dicts (``model(**batch)``).
- ``weight_fn``: ``weight_fn(batch) -> float``, or ``None`` for the default weight (the leading
  dimension of the batch's first tensor).

:func:`reference_loss` computes Σ_b w_b·ℓ_b / Σ_b w_b in plain torch, on an eval-mode copy of the
model in the given dtype: the value an Objective must reproduce. The HuggingFace factories need
``transformers`` (the ``dev`` extra); callers guard them with ``pytest.importorskip``.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

__all__ = [
    "Case",
    "cast_batch",
    "causal_lm_loss",
    "copy_model",
    "default_weight",
    "gpt2_token_weight",
    "model_loss",
    "reference_loss",
    "tiny_bert",
    "tiny_gpt2",
    "tiny_groupnorm_cnn",
    "tiny_gru",
    "tiny_hf_resnet",
    "tiny_lstm",
    "tiny_mha",
    "tiny_transformer_encoder",
    "tiny_weight_norm",
    "unique_param_count",
]

PAD = 0  # the padding token id of the tiny language models


class Case(NamedTuple):
    """A model with its loss, its batches and its batch-weight function (module docstring)."""

    model: nn.Module
    loss_fn: Callable[..., Tensor] | None
    batches: list[Any]
    weight_fn: Callable[[Any], float] | None


# ------------------------------------------------------------------------ plain-torch reference
def default_weight(batch: Any) -> float:
    """The default batch weight: the leading dimension of the batch's first tensor."""
    first = next(iter(batch.values())) if isinstance(batch, dict) else batch[0]
    return float(first.shape[0])


def cast_batch(batch: Any, dtype: torch.dtype) -> Any:
    """The batch with its floating tensors in ``dtype`` (integer tensors, masks kept)."""

    def cast(t: Tensor) -> Tensor:
        return t.to(dtype) if t.is_floating_point() else t

    if isinstance(batch, dict):
        return {k: cast(v) for k, v in batch.items()}
    return type(batch)(cast(t) for t in batch)


def model_loss(model: nn.Module, loss_fn: Callable[..., Tensor] | None, batch: Any) -> Tensor:
    """One batch's loss, the way the Objective's contract defines it, in plain torch."""
    if isinstance(batch, dict):
        outputs = model(**batch)
        return outputs.loss if loss_fn is None else loss_fn(outputs, batch)
    if len(batch) == 2:
        outputs = model(batch[0])
        return outputs.loss if loss_fn is None else loss_fn(outputs, batch[1])
    outputs = model(*batch[:-1])
    return outputs.loss if loss_fn is None else loss_fn(outputs, batch)


def reference_loss(
    case: Case, dtype: torch.dtype = torch.float64, params: dict[str, Tensor] | None = None
) -> Tensor:
    """Σ_b w_b·ℓ_b / Σ_b w_b on an eval-mode copy of the model in ``dtype`` (no saddlescope).

    Args:
        case: the model, loss, batches and weight function.
        dtype: the dtype of the model copy and of the batches' floating tensors.
        params: optional ``{name: tensor}`` replacing those parameters (``functional_call``, tied
            weights follow their name); differentiable, for a reference gradient.
    """
    model = copy_model(case.model).to(dtype).eval()
    weight = case.weight_fn or default_weight
    if params is not None:
        model = _Swapped(model, params)
    total = torch.zeros((), dtype=dtype)
    weights = 0.0
    with torch.set_grad_enabled(params is not None and torch.is_grad_enabled()):
        for batch in case.batches:
            w = float(weight(batch))
            total = total + w * model_loss(model, case.loss_fn, cast_batch(batch, dtype))
            weights += w
    return total / weights


class _Swapped(nn.Module):
    """``model`` called with some parameters replaced (``torch.func.functional_call``)."""

    def __init__(self, model: nn.Module, params: dict[str, Tensor]) -> None:
        super().__init__()
        self.model = model
        self.params = params

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return torch.func.functional_call(self.model, self.params, args, kwargs, strict=False)


def copy_model(model: nn.Module) -> nn.Module:
    """A deep copy that also copies legacy ``weight_norm`` modules (whose ``weight`` attribute is a
    computed, non-leaf tensor that ``deepcopy`` refuses; the hook recomputes it every forward)."""
    memo: dict[int, Any] = {}
    for m in model.modules():
        for v in vars(m).values():
            if isinstance(v, Tensor) and not v.is_leaf:
                memo[id(v)] = v.detach().clone()
    return copy.deepcopy(model, memo)


def unique_param_count(model: nn.Module) -> int:
    """Trainable parameters counted once each (a tied/shared tensor once)."""
    seen: dict[int, int] = {}
    for p in model.parameters():  # parameters() yields a shared tensor once
        if p.requires_grad:
            seen[id(p)] = p.numel()
    return sum(seen.values())


# ----------------------------------------------------------------------------- token data
def _token_batches(
    sizes: list[int], length: int, vocab: int, seed: int, *, segments: bool
) -> list[dict[str, Tensor]]:
    """Right-padded random token batches: input_ids (PAD after each row's length), attention_mask,
    and (``segments``) token_type_ids 0 then 1."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for n in sizes:
        ids = torch.randint(1, vocab, (n, length), generator=g)
        lengths = torch.randint(length // 2, length + 1, (n,), generator=g)
        lengths[0] = length  # at least one full row: the padding never covers a whole column
        mask = (torch.arange(length)[None, :] < lengths[:, None]).long()
        ids = ids.masked_fill(mask == 0, PAD)
        batch = {"input_ids": ids, "attention_mask": mask}
        if segments:
            batch["token_type_ids"] = (torch.arange(length)[None, :] >= length // 2).long().expand(
                n, length
            ).clone() * mask
        out.append(batch)
    return out


# ----------------------------------------------------------------------------- HuggingFace models
def tiny_bert(
    *,
    vocab: int = 32,
    hidden: int = 16,
    layers: int = 1,
    heads: int = 2,
    intermediate: int = 32,
    positions: int = 8,
    length: int = 6,
    sizes: tuple[int, ...] = (4, 3),
    seed: int = 0,
) -> Case:
    """BertForSequenceClassification (3 labels), dict batches, its own loss (``loss_fn=None``).

    Batches: ``{"input_ids", "attention_mask", "token_type_ids", "labels"}``, right-padded;
    weight: the default (sequences per batch).
    """
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=intermediate,
        max_position_embeddings=positions,
        type_vocab_size=2,
        num_labels=3,
        problem_type="single_label_classification",  # else the first forward writes it
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        pad_token_id=PAD,
    )
    torch.manual_seed(seed)
    model = BertForSequenceClassification(config)
    batches = _token_batches(list(sizes), length, vocab, seed + 1, segments=True)
    g = torch.Generator().manual_seed(seed + 2)
    for b in batches:
        b["labels"] = torch.randint(0, 3, (b["input_ids"].shape[0],), generator=g)
    return Case(model, None, batches, None)


def gpt2_token_weight(batch: dict[str, Tensor]) -> float:
    """The number of predicted tokens: labels ≠ -100 after the causal shift by one."""
    return float((batch["labels"][:, 1:] != -100).sum())


def causal_lm_loss(outputs: Any, batch: dict[str, Tensor]) -> Tensor:
    """Next-token cross-entropy, the mean over predicted tokens (labels ≠ -100), in the logits'
    dtype. GPT-2's own ``outputs.loss`` is the same quantity but casts the logits to float32
    (transformers' ``ForCausalLMLoss``), so it is only float32-precise in a float64 analysis."""
    logits = outputs.logits[:, :-1]
    labels = batch["labels"][:, 1:]
    return nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100
    )


def tiny_gpt2(
    *,
    vocab: int = 32,
    embd: int = 16,
    layers: int = 1,
    heads: int = 2,
    inner: int = 32,
    positions: int = 8,
    length: int = 8,
    sizes: tuple[int, ...] = (3, 2),
    own_loss: bool = False,
    seed: int = 0,
) -> Case:
    """GPT2LMHeadModel with tied embeddings (``lm_head.weight`` is ``transformer.wte.weight``).

    Batches: ``{"input_ids", "attention_mask", "labels"}`` with labels = input_ids, padding set
    to -100; the causal-LM loss :func:`causal_lm_loss` (``own_loss=True``: the model's own,
    ``loss_fn=None``, float32-precise), weighted by predicted tokens (:func:`gpt2_token_weight`)
    so the objective is the mean over all tokens of the data.
    """
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=vocab,
        n_positions=positions,
        n_embd=embd,
        n_layer=layers,
        n_head=heads,
        n_inner=inner,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        tie_word_embeddings=True,
        pad_token_id=PAD,
        bos_token_id=PAD,
        eos_token_id=PAD,
    )
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(config)
    assert model.lm_head.weight is model.transformer.wte.weight, "GPT-2 embeddings not tied"
    batches = _token_batches(list(sizes), length, vocab, seed + 1, segments=False)
    for b in batches:
        b["labels"] = b["input_ids"].masked_fill(b["attention_mask"] == 0, -100)
    return Case(model, None if own_loss else causal_lm_loss, batches, gpt2_token_weight)


def _randomize_batchnorm(model: nn.Module, seed: int) -> None:
    """Non-trivial running statistics and affine parameters (running ≠ batch statistics)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                c = m.num_features
                m.running_mean.copy_(torch.rand(c, generator=g) - 0.5)
                m.running_var.copy_(0.5 + 1.5 * torch.rand(c, generator=g))
                m.weight.copy_(0.5 + torch.rand(c, generator=g))
                m.bias.copy_(0.4 * torch.rand(c, generator=g) - 0.2)
                m.num_batches_tracked.fill_(7)


def tiny_hf_resnet(
    *,
    embedding: int = 8,
    hidden: tuple[int, int] = (8, 16),
    image: int = 16,
    sizes: tuple[int, ...] = (3, 2),
    seed: int = 0,
) -> Case:
    """HF ResNetForImageClassification (basic blocks, BatchNorm, 3 labels) on 3×16×16 images.

    Batches: ``{"pixel_values", "labels"}``; its own loss; weight: the default (images).
    """
    from transformers import ResNetConfig, ResNetForImageClassification

    config = ResNetConfig(
        num_channels=3,
        embedding_size=embedding,
        hidden_sizes=list(hidden),
        depths=[1] * len(hidden),
        layer_type="basic",
        num_labels=3,
        problem_type="single_label_classification",
    )
    torch.manual_seed(seed)
    model = ResNetForImageClassification(config)
    _randomize_batchnorm(model, seed + 1)
    g = torch.Generator().manual_seed(seed + 2)
    batches = [
        {
            "pixel_values": torch.randn(n, 3, image, image, generator=g),
            "labels": torch.randint(0, 3, (n,), generator=g),
        }
        for n in sizes
    ]
    return Case(model, None, batches, None)


# ----------------------------------------------------------------------------- stock torch models
def _pairs(
    sizes: tuple[int, ...], x_shape: tuple[int, ...], seed: int, *, classes: int = 0
) -> list[tuple[Tensor, Tensor]]:
    """Seeded float32 ``(inputs, targets)`` batches: class labels, or one regression target."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for n in sizes:
        x = torch.randn(n, *x_shape, generator=g)
        y = (
            torch.randint(0, classes, (n,), generator=g)
            if classes
            else torch.randn(n, 1, generator=g)
        )
        out.append((x, y))
    return out


class GroupNormCNN(nn.Module):
    """conv(3→4) → GroupNorm(2) → tanh → conv(4→4, stride 2) → GroupNorm(2) → tanh → pool → 3."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.gn1 = nn.GroupNorm(2, 4)
        self.conv2 = nn.Conv2d(4, 4, 3, stride=2, padding=1)
        self.gn2 = nn.GroupNorm(2, 4)
        self.head = nn.Linear(4, 3)

    def forward(self, x: Tensor) -> Tensor:
        h = torch.tanh(self.gn1(self.conv1(x)))
        h = torch.tanh(self.gn2(self.conv2(h)))
        return self.head(h.mean(dim=(2, 3)))


def tiny_groupnorm_cnn(*, sizes: tuple[int, ...] = (4, 3), seed: int = 0) -> Case:
    """A GroupNorm CNN on 3×6×6 images, cross-entropy over 3 classes, pair batches."""
    torch.manual_seed(seed)
    model = GroupNormCNN()
    with torch.no_grad():  # affine parameters away from their (1, 0) initialisation
        for gn in (model.gn1, model.gn2):
            gn.weight.uniform_(0.5, 1.5)
            gn.bias.uniform_(-0.2, 0.2)
    return Case(model, nn.CrossEntropyLoss(), _pairs(sizes, (3, 6, 6), seed + 1, classes=3), None)


def tiny_weight_norm(*, sizes: tuple[int, ...] = (5, 4), seed: int = 0) -> Case:
    """An MLP 4 → 6 → 3 whose layers use legacy ``torch.nn.utils.weight_norm`` (weight_g/_v)."""
    torch.manual_seed(seed)
    with warnings.catch_warnings():  # legacy weight_norm is deprecated: that is the point here
        warnings.simplefilter("ignore", FutureWarning)
        model = nn.Sequential(
            nn.utils.weight_norm(nn.Linear(4, 6)),
            nn.Tanh(),
            nn.utils.weight_norm(nn.Linear(6, 3)),
        )
    return Case(model, nn.CrossEntropyLoss(), _pairs(sizes, (4,), seed + 1, classes=3), None)


class EncoderRegressor(nn.Module):
    """nn.TransformerEncoder (d_model 8, 2 heads, 1 layer, batch_first) → mean pool → linear."""

    def __init__(self, d_in: int = 3, d_model: int = 8) -> None:
        super().__init__()
        self.embed = nn.Linear(d_in, d_model)
        layer = nn.TransformerEncoderLayer(
            d_model, nhead=2, dim_feedforward=16, dropout=0.0, batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, num_layers=1, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.encoder(self.embed(x)).mean(dim=1))


def tiny_transformer_encoder(*, sizes: tuple[int, ...] = (4, 3), seed: int = 0) -> Case:
    """A stock nn.TransformerEncoder regressor on (n, 5, 3) sequences, MSE, pair batches."""
    torch.manual_seed(seed)
    return Case(EncoderRegressor(), nn.MSELoss(), _pairs(sizes, (5, 3), seed + 1), None)


class MHARegressor(nn.Module):
    """Self-attention by nn.MultiheadAttention (8 wide, 2 heads) with a key padding mask."""

    def __init__(self, d_in: int = 3, d_model: int = 8) -> None:
        super().__init__()
        self.embed = nn.Linear(d_in, d_model)
        self.attn = nn.MultiheadAttention(d_model, num_heads=2, batch_first=True)
        self.head = nn.Linear(d_model, 1)

    def forward(self, x: Tensor, pad: Tensor) -> Tensor:
        h = self.embed(x)
        h, _ = self.attn(h, h, h, key_padding_mask=pad, need_weights=False)
        keep = (~pad).unsqueeze(-1).to(h.dtype)
        return self.head((h * keep).sum(dim=1) / keep.sum(dim=1))


def _mha_loss(outputs: Tensor, batch: tuple[Tensor, Tensor, Tensor]) -> Tensor:
    return nn.functional.mse_loss(outputs, batch[-1])


def tiny_mha(*, sizes: tuple[int, ...] = (4, 3), length: int = 5, seed: int = 0) -> Case:
    """nn.MultiheadAttention regressor fed ``(x, key_padding_mask, y)`` tuple batches.

    ``loss_fn(outputs, batch)`` takes the whole batch (MSE against its last element); the mask
    is a bool tensor (True = padding), at least two real positions per row.
    """
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed + 1)
    batches = []
    for n in sizes:
        x = torch.randn(n, length, 3, generator=g)
        lengths = torch.randint(2, length + 1, (n,), generator=g)
        pad = torch.arange(length)[None, :] >= lengths[:, None]
        batches.append((x, pad, torch.randn(n, 1, generator=g)))
    return Case(MHARegressor(), _mha_loss, batches, None)


class RNNRegressor(nn.Module):
    """nn.LSTM or nn.GRU (3 → 4, batch_first) → the last step's output → linear → 1."""

    def __init__(self, cell: type[nn.LSTM] | type[nn.GRU], d_in: int = 3, hidden: int = 4) -> None:
        super().__init__()
        self.rnn = cell(d_in, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: Tensor) -> Tensor:
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


def tiny_lstm(*, sizes: tuple[int, ...] = (4, 3), seed: int = 0) -> Case:
    """An nn.LSTM sequence regressor on (n, 6, 3) sequences, MSE, pair batches."""
    torch.manual_seed(seed)
    return Case(RNNRegressor(nn.LSTM), nn.MSELoss(), _pairs(sizes, (6, 3), seed + 1), None)


def tiny_gru(*, sizes: tuple[int, ...] = (4, 3), seed: int = 0) -> Case:
    """An nn.GRU sequence regressor on (n, 6, 3) sequences, MSE, pair batches."""
    torch.manual_seed(seed)
    return Case(RNNRegressor(nn.GRU), nn.MSELoss(), _pairs(sizes, (6, 3), seed + 1), None)
