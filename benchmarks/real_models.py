"""saddlescope against PyHessian, hessian-eigenthings and curvlinops on real models.

    python -m benchmarks.real_models [--quick] [--repeats N] [--json PATH]

Three models, random init (seeded), float32, CPU, one torch thread, one process (section 3 starts
one fresh subprocess per configuration), each fed the way its users hold it:

    BERT   HF BertForSequenceClassification (25,795 parameters), dict batches with padding, its
           own loss (``Objective(model, None, batches)``);
    GPT-2  HF GPT2LMHeadModel (24,576 parameters, tied embeddings), dict batches, its own causal
           LM loss, batches weighted by predicted tokens (no padding, so every anchor's batch
           averaging gives the same objective);
    CNN    a ResNet-20 (269,722 parameters, BatchNorm in eval mode) on CIFAR-shaped (3×32×32)
           random images, 10 classes, ``(x, y)`` batches and ``nn.CrossEntropyLoss``.

Printed, and written as JSON (``--json``, default results/real_models.json):

1. one gradient (plain autograd, ``loss.backward()`` over the batches: the unit) and one HVP,
   median of repeats after a warm-up: ours (``obj.hessian_operator(θ) @ v``, cached graphs),
   PyHessian's batch mode (all data as its one batch: its cached-graph product) and its
   dataloader mode (a fresh double backward per batch), hessian-eigenthings' ``HessianOperator``
   and curvlinops' ``HessianLinearOperator``, with each product's agreement with ours;
2. λ_max and λ_min to 1e-3 relative accuracy against saddlescope's ARPACK at tol 1e-10 in
   float64 (``--quick``: 1e-7 in float32): the smallest budget that reaches it, its HVPs and
   seconds (set-up included).
   Ours: ``hessian_spectrum(method="lanczos")`` on a ``lanczos_tol`` ladder. PyHessian: power
   iteration (``eigenvalues(maxIter=m, tol=0)``, batch mode): one long run records the Rayleigh
   quotient of every iteration (what ``maxIter=m`` returns), then ``m`` is timed; also its
   defaults (``maxIter=100, tol=1e-3``), and which end of the spectrum its "top" eigenvalue is —
   it ranks by |λ|; it has no smallest-eigenvalue method. hessian-eigenthings: one
   ``lanczos_tridiagonal`` run with full re-orthogonalisation gives the Ritz values of every
   prefix (what ``lanczos(max_iter=m, reorthogonalize=True)`` returns), then ``m`` is timed.
   curvlinops: SciPy ``eigsh`` on ``to_scipy()`` on a ``tol`` ladder;
3. peak memory (VmHWM of a fresh process after one gradient and two HVPs; ``ru_maxrss`` would
   start from this process's peak, inherited across fork+exec on Linux) on the CNN
   for 1×, 4× and 16× the data, from a loader that generates its batches on the fly (the data
   is never all in memory): ours streamed (``hold_data=False``) at the default memory budget and
   at 256 MiB, ours held, and PyHessian's dataloader mode.

The HF models run their default (SDPA) attention. Ours needs nothing more; the anchors fail on it
(no double backward / forward AD of the fused kernel: the message is recorded) and are run inside
``torch.nn.attention.sdpa_kernel(SDPBackend.MATH)``. How each anchor is given the HF models:
hessian-eigenthings through its HF helper ``hf_lm_loss()`` (``model(**batch).loss``), unchanged;
PyHessian and curvlinops, which take ``(inputs, targets)`` and a criterion, through a wrapper
whose ``forward(inputs)`` returns ``model(**inputs).logits`` with the labels as targets (for
PyHessian's loader mode the inputs are a dict with ``size()`` and ``to()``), with
``nn.CrossEntropyLoss`` (BERT) or a shifted causal-LM cross-entropy (GPT-2). ``--quick``: less
data, lower caps (≈3 min). Timings on a shared 2-core machine are noisy: the load is printed.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh
from torch import Tensor, nn

from benchmarks.compare import load
from benchmarks.compare_anchors import anchor_status
from saddlescope import Objective, hessian_spectrum

ACCURACY = 1e-3
TOL_LADDER = [1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 1e-5]
EIGSH_LADDER = [1e-1, 1e-2, 1e-3, 1e-4, 1e-6]
WHICH = {"largest": "LA", "smallest": "SA"}


# ------------------------------------------------------------------------------------ models
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


# ------------------------------------------------------------------------------------ anchors
@contextlib.contextmanager
def anchor_context(case: Case) -> Iterator[None]:
    """The anchors on HF models: inside the math attention kernel (they fail without it)."""
    if not case.hf:
        yield
        return
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with sdpa_kernel(SDPBackend.MATH):
        yield


def concat_pairs(case: Case) -> tuple[Any, Tensor]:
    """All the data as one ``(inputs, targets)`` batch: PyHessian's batch mode."""
    pairs = case.pairs()
    if case.hf:
        keys = pairs[0][0].keys()
        inputs: Any = Inputs({k: torch.cat([p[0][k] for p in pairs]) for k in keys})
    else:
        inputs = torch.cat([p[0] for p in pairs])
    return inputs, torch.cat([p[1] for p in pairs])


def concat_batches(case: Case) -> Any:
    """All the data as one batch in the user's own structure (dict or pair)."""
    if case.hf:
        return {k: torch.cat([b[k] for b in case.batches]) for k in case.batches[0]}
    return tuple(torch.cat([b[i] for b in case.batches]) for i in range(2))


def pyhessian_batch(case: Case) -> Any:
    from pyhessian import hessian

    return hessian(case.logit_model(), case.criterion, data=concat_pairs(case), cuda=False)


def pyhessian_loader(case: Case) -> Any:
    from pyhessian import hessian

    return hessian(case.logit_model(), case.criterion, dataloader=case.pairs(), cuda=False)


def eigenthings_op(case: Case) -> Any:
    import hessian_eigenthings as he

    model = copy.deepcopy(case.model).eval()
    loss = he.hf_lm_loss() if case.hf else he.supervised_loss(case.criterion)
    return he.HessianOperator(model, case.batches, loss)


def curvlinops_op(case: Case) -> Any:
    from curvlinops import HessianLinearOperator

    model = case.logit_model()
    pairs = case.pairs()
    size_fn = (lambda X: int(X["input_ids"].shape[0])) if case.hf else None
    return HessianLinearOperator(
        model,
        case.criterion,
        [p for p in model.parameters() if p.requires_grad],
        pairs,
        check_deterministic=False,
        num_data=sum(int(y.shape[0]) for _, y in pairs),
        batch_size_fn=size_fn,
    )


def split_like(params: list[Tensor], v: Tensor) -> list[Tensor]:
    chunks = torch.split(v, [p.numel() for p in params])
    return [c.view_as(p) for c, p in zip(chunks, params)]


def flat(vs: Any) -> Tensor:
    return torch.cat([t.reshape(-1) for t in vs])


def hvp_setups(case: Case, ok: dict[str, bool]) -> dict[str, Callable[[], Callable]]:
    """label → set-up returning ``v ↦ H·v`` on flat float32 vectors (anchors under the
    math attention for HF models)."""

    def ours() -> Callable:
        obj = case.objective()
        op = obj.hessian_operator(obj.theta0)
        return lambda v: op @ v

    def ours_one() -> Callable:
        obj = case.objective(data=[concat_batches(case)])
        op = obj.hessian_operator(obj.theta0)
        return lambda v: op @ v

    def pyh_batch() -> Callable:
        from pyhessian.utils import hessian_vector_product

        h = pyhessian_batch(case)
        return lambda v: flat(hessian_vector_product(h.gradsH, h.params, split_like(h.params, v)))

    def pyh_loader() -> Callable:
        h = pyhessian_loader(case)
        return lambda v: flat(h.dataloader_hv_product(split_like(h.params, v))[1])

    def eig() -> Callable:
        return eigenthings_op(case).matvec

    def curv() -> Callable:
        op = curvlinops_op(case)
        return lambda v: op @ v

    out: dict[str, Callable[[], Callable]] = {
        "ours (cached graphs)": ours,
        "ours, all data as 1 batch": ours_one,
    }
    if ok.get("pyhessian"):
        out["PyHessian batch (1 batch)"] = pyh_batch
        out["PyHessian dataloader"] = pyh_loader
    if ok.get("hessian-eigenthings"):
        out["hessian-eigenthings"] = eig
    if ok.get("curvlinops-for-pytorch"):
        out["curvlinops"] = curv
    return out


# ------------------------------------------------------------------------------------ timing
def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def median_seconds(
    fn: Callable[[], Any], repeats: int, budget_s: float, warm: bool = True
) -> float:
    """Median of up to ``repeats`` timed calls (after one warm-up), stopping once over budget."""
    if warm:
        fn()
    times: list[float] = []
    while len(times) < repeats and sum(times) < budget_s:
        times.append(timed(fn)[0])
    return statistics.median(times)


def rel_err(value: float, ref: float) -> float:
    return abs(value - ref) / abs(ref) if math.isfinite(value) else math.inf


def first_reaching(values: list[float], ref: float, accuracy: float = ACCURACY) -> int | None:
    """The smallest m (1-based) whose m-th estimate is within ``accuracy`` of ``ref``."""
    for m, value in enumerate(values, start=1):
        if rel_err(value, ref) <= accuracy:
            return m
    return None


def ritz_extremes(alphas: Tensor, betas: Tensor, which: str) -> list[float]:
    """The extreme Ritz value of every leading m×m block of the Lanczos tridiagonal matrix."""
    T = torch.diag(alphas.double())
    if betas.numel():
        off = betas.double()[: alphas.numel() - 1]
        T += torch.diag(off, 1) + torch.diag(off, -1)
    pick = max if which == "largest" else min
    return [pick(torch.linalg.eigvalsh(T[:m, :m]).tolist()) for m in range(1, alphas.numel() + 1)]


# ------------------------------------------------------------------------------- section 1
def section_costs(case: Case, ok: dict[str, bool], repeats: int) -> dict[str, Any]:
    model = case.logit_model()
    obj = case.objective()
    theta = obj.theta0
    rows: dict[str, Any] = {}
    with anchor_context(case):
        unit = median_seconds(lambda: case.plain_gradient(model), repeats, 10.0)
    rows["gradient, plain autograd (the unit)"] = {"ms": 1e3 * unit}
    rows["gradient, ours (obj.grad)"] = {
        "ms": 1e3 * median_seconds(lambda: obj.grad(theta), repeats, 10.0)
    }
    v = torch.randn(obj.num_params, generator=torch.Generator().manual_seed(7))
    ours_hv = None
    for label, setup in hvp_setups(case, ok).items():
        ctx = contextlib.nullcontext() if label.startswith("ours") else anchor_context(case)
        try:
            with ctx:
                hvp = setup()
                hv = hvp(v).detach()
                ms = 1e3 * median_seconds(lambda hvp=hvp: hvp(v), repeats, 15.0, warm=False)
        except Exception as err:  # an anchor that fails is reported, not fatal
            rows[f"HVP {label}"] = {"error": f"{err!r}"[:200]}
            continue
        ours_hv = hv if ours_hv is None else ours_hv
        agree = float(torch.linalg.vector_norm(hv - ours_hv) / torch.linalg.vector_norm(ours_hv))
        rows[f"HVP {label}"] = {"ms": ms, "vs_ours": agree}
    for row in rows.values():
        if "ms" in row:
            row["x_grad"] = row["ms"] / (1e3 * unit)
    return rows


def default_attention_errors(case: Case, ok: dict[str, bool]) -> dict[str, str]:
    """What each anchor's product says on the HF model's default (SDPA) attention."""
    if not case.hf:
        return {}
    out = {}
    v = torch.randn(case.num_params)
    for label, setup in hvp_setups(case, ok).items():
        if label.startswith("ours") or "dataloader" in label:
            continue
        try:
            setup()(v)
            out[label] = "works"
        except Exception as err:
            out[label] = f"{type(err).__name__}: {str(err).splitlines()[0]}"[:160]
    return out


# ------------------------------------------------------------------------------- section 2
def references(case: Case, quick: bool) -> dict[str, Any]:
    """λ_max and λ_min by saddlescope's ARPACK: tol 1e-10 in float64 (``quick``: 1e-7 in
    float32, a few times cheaper, still far below the 1e-3 asked of the methods)."""
    dtype, tol = (torch.float32, 1e-7) if quick else (torch.float64, 1e-10)
    obj = case.objective(dtype)
    out: dict[str, Any] = {}
    for which in WHICH:
        t, s = timed(
            lambda which=which: hessian_spectrum(
                obj, obj.theta0, k=1, which=which, method="arpack", lanczos_tol=tol
            )
        )
        out[which] = {"value": float(s.eigenvalues[0]), "hvps": s.hvps, "seconds": t}
        out[which]["source"] = f"ARPACK tol {tol:g} {str(dtype).removeprefix('torch.')}"
    return out


def ours_run(case: Case, which: str, tol: float) -> tuple[float, int]:
    obj = case.objective()
    s = hessian_spectrum(
        obj, obj.theta0, k=1, which=which, method="lanczos", lanczos_tol=tol, eigenvectors=False
    )
    return float(s.eigenvalues[0]), int(s.hvps)


def eigsh_run(case: Case, which: str, tol: float) -> tuple[float, int]:
    scipy_op = curvlinops_op(case).to_scipy()
    count = [0]

    def matvec(v: np.ndarray) -> np.ndarray:
        count[0] += 1
        return scipy_op.matvec(v)

    op = LinearOperator(scipy_op.shape, matvec=matvec, dtype=scipy_op.dtype)
    v0 = np.random.default_rng(0).standard_normal(scipy_op.shape[0])
    try:
        values = eigsh(op, k=1, which=WHICH[which], tol=tol, v0=v0, return_eigenvectors=False)
    except ArpackNoConvergence as err:
        values = err.eigenvalues if len(err.eigenvalues) else [math.nan]
    return float(values[0]), count[0]


def ladder(
    run: Callable[[Any], tuple[float, int]], rungs: list[Any], ref: float, cap_s: float
) -> dict[str, Any]:
    """Run the rungs loosest first; the first within ACCURACY wins (stop past ``cap_s``)."""
    spent, tried = 0.0, []
    for rung in rungs:
        t, (value, hvps) = timed(lambda rung=rung: run(rung))
        spent += t
        tried.append({"budget": rung, "value": value, "hvps": hvps, "seconds": t})
        if rel_err(value, ref) <= ACCURACY:
            return {"reached": True, **tried[-1], "err": rel_err(value, ref), "ladder": tried}
        if spent > cap_s:
            break
    last = tried[-1]
    return {"reached": False, **last, "err": rel_err(last["value"], ref), "ladder": tried}


class Reached(Exception):
    """Raised inside PyHessian's loop once an iterate is within the accuracy (ends a probe)."""


@contextlib.contextmanager
def pyhessian_trace(ref: float | None = None) -> Iterator[list[float]]:
    """Record the Rayleigh quotient ⟨Hv, v⟩ of every PyHessian product (its iterates); with
    ``ref``, stop its loop (:class:`Reached`) at the first iterate within the accuracy."""
    mod = importlib.import_module("pyhessian.hessian")
    from pyhessian.utils import group_product

    original, trace = mod.hessian_vector_product, []

    def recorded(gradsH: Any, params: Any, v: Any) -> Any:
        hv = original(gradsH, params, v)
        trace.append(float(group_product(hv, v)))
        if ref is not None and rel_err(trace[-1], ref) <= ACCURACY:
            raise Reached
        return hv

    mod.hessian_vector_product = recorded
    try:
        yield trace
    except Reached:
        pass
    finally:
        mod.hessian_vector_product = original


def pyhessian_top(
    case: Case, max_iter: int, tol: float, ref: float | None = None
) -> tuple[float, list[float]]:
    torch.manual_seed(0)  # PyHessian draws its start vector from the global generator
    values = [math.nan]
    with pyhessian_trace(ref) as trace:
        values, _ = pyhessian_batch(case).eigenvalues(maxIter=max_iter, tol=tol, top_n=1)
    return float(values[0]), trace


def pyhessian_rows(case: Case, ref: dict[str, Any], cap_iter: int) -> dict[str, Any]:
    """Power iteration to 1e-3 of λ_max (if it gets there) and PyHessian's defaults."""
    lam_max, lam_min = ref["largest"]["value"], ref["smallest"]["value"]
    _, trace = pyhessian_top(case, cap_iter, 0.0, lam_max)
    m = first_reaching(trace, lam_max)
    out: dict[str, Any] = {}
    if m is None:
        last = trace[-1]
        out["largest"] = {"reached": False, "budget": cap_iter, "hvps": len(trace)}
        out["largest"] |= {"value": last, "err": rel_err(last, lam_max), "seconds": None}
    else:
        t, (value, tr) = timed(lambda: pyhessian_top(case, m, 0.0))
        out["largest"] = {"reached": True, "budget": m, "hvps": len(tr), "value": value}
        out["largest"] |= {"err": rel_err(value, lam_max), "seconds": t}
    t, (value, tr) = timed(lambda: pyhessian_top(case, 100, 1e-3))
    nearer = "λ_min" if abs(value - lam_min) < abs(value - lam_max) else "λ_max"
    out["defaults"] = {"value": value, "hvps": len(tr), "seconds": t, "is": nearer}
    out["defaults"]["err_vs_max"] = rel_err(value, lam_max)
    return out


def eigenthings_row(case: Case, which: str, ref: float, cap_iter: int) -> dict[str, Any]:
    """Ritz values of every prefix from one re-orthogonalised run, then the smallest m timed."""
    import hessian_eigenthings as he

    op = eigenthings_op(case)
    gen = torch.Generator().manual_seed(0)  # as he.lanczos(seed=0) draws its start vector
    v0 = torch.randn(op.size, dtype=op.dtype, generator=gen)
    steps, m = min(24, cap_iter), None
    while m is None:  # doubling: the prefixes of a longer run are the shorter runs
        td = he.lanczos_tridiagonal(op, v0, steps, reorthogonalize=True)
        m = first_reaching(ritz_extremes(td.alphas, td.betas, which), ref)
        if steps >= cap_iter:
            break
        steps = min(2 * steps, cap_iter)
    if m is None:
        value = ritz_extremes(td.alphas, td.betas, which)[-1]
        row = {"reached": False, "budget": cap_iter, "hvps": td.iterations, "value": value}
        return row | {"err": rel_err(value, ref), "seconds": None}
    m = max(m, 2)  # its lanczos needs max_iter ≥ k and a tridiagonal of at least 1×1

    def run() -> Any:
        return he.lanczos(
            eigenthings_op(case), k=1, max_iter=m, which=WHICH[which], seed=0, reorthogonalize=True
        )

    t, res = timed(run)
    value = float(res.eigenvalues[0])
    row = {"reached": rel_err(value, ref) <= ACCURACY, "budget": m, "hvps": int(res.iterations)}
    return row | {"value": value, "err": rel_err(value, ref), "seconds": t, "rerun": run}


def iterations_within(cap_s: float, hvp_ms: float | None, most: int) -> int:
    """How many products fit ``cap_s`` at ``hvp_ms`` each (at least 20, at most ``most``)."""
    if not hvp_ms:
        return most
    return int(min(most, max(20, 1e3 * cap_s / hvp_ms)))


def retime(
    row: dict[str, Any], run: Callable[[], Any], repeats: int, budget_s: float = 6.0
) -> None:
    """Median seconds of the winning budget over up to ``repeats`` runs (cheap ones only)."""
    if not row.get("reached") or row["seconds"] is None or row["seconds"] > budget_s / 3:
        row["n"] = 1
        return
    times = [row["seconds"]]
    while len(times) < repeats and sum(times) < budget_s:
        times.append(timed(run)[0])
    row["seconds"], row["n"] = statistics.median(times), len(times)


def section_eigs(
    case: Case, ok: dict[str, bool], hvp_ms: dict[str, float], quick: bool, repeats: int
) -> dict[str, Any]:
    ref = references(case, quick)
    cap_s = 8.0 if quick else 45.0
    out: dict[str, Any] = {"reference": ref, "largest": {}, "smallest": {}}
    for which in WHICH:
        lam = ref[which]["value"]
        row = ladder(lambda t, w=which: ours_run(case, w, t), TOL_LADDER, lam, cap_s)
        retime(row, lambda w=which, b=row["budget"]: ours_run(case, w, b), repeats)
        out[which]["ours lanczos"] = row
    with anchor_context(case):
        if ok.get("pyhessian"):
            cap = iterations_within(cap_s, hvp_ms.get("HVP PyHessian batch (1 batch)"), 400)
            rows = pyhessian_rows(case, ref, cap)
            out["largest"]["PyHessian power"] = rows["largest"]
            out["smallest"]["PyHessian power"] = {"note": "no smallest-eigenvalue method"}
            out["pyhessian_defaults"] = rows["defaults"]
        for which in WHICH:
            lam = ref[which]["value"]
            if ok.get("hessian-eigenthings"):
                cap = iterations_within(cap_s, hvp_ms.get("HVP hessian-eigenthings"), 150)
                row = eigenthings_row(case, which, lam, cap)
                retime(row, row.pop("rerun", lambda: None), repeats)
                out[which]["eigenthings lanczos"] = row
            if ok.get("curvlinops-for-pytorch"):
                run = lambda t, w=which: eigsh_run(case, w, t)  # noqa: E731
                row = ladder(run, EIGSH_LADDER, lam, cap_s)
                retime(row, lambda b=row["budget"], r=run: r(b), repeats)
                out[which]["curvlinops eigsh"] = row
    return out


# ------------------------------------------------------------------------------- section 3
MEMORY_CONFIGS = ("ours streamed", "ours streamed, 256 MiB budget", "ours held", "PyHessian loader")
MULTIPLES = (1, 4, 16)


def rss_mib() -> float:
    """This process's peak resident memory (MiB): VmHWM where /proc has it, since ru_maxrss
    starts from the parent's peak after fork+exec on Linux; else ru_maxrss."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def memory_child(config: str, multiple: int, quick: bool, hvps: int = 2) -> dict[str, Any]:
    """In a fresh process: build, one gradient, ``hvps`` products; the peak RSS."""
    torch.set_num_threads(1)
    model = resnet20()
    loader = CifarLike(2 * multiple, 4 if quick else 16, seed=9)
    base = rss_mib()
    start = time.perf_counter()
    if config == "PyHessian loader":
        from pyhessian import hessian

        h = hessian(copy.deepcopy(model), nn.CrossEntropyLoss(), dataloader=loader, cuda=False)
        h.model.zero_grad()
        for x, y in loader:
            nn.functional.cross_entropy(h.model(x), y).backward()
        v = [torch.randn_like(p) for p in h.params]
        for _ in range(hvps):
            h.dataloader_hv_product(v)
    else:
        kw: dict[str, Any] = {"hold_data": config == "ours held"}
        if "256 MiB" in config:
            kw["memory_budget"] = 256 * 1024**2
        obj = Objective(model, nn.CrossEntropyLoss(), loader, **kw)
        theta = obj.theta0
        obj.grad(theta)
        op = obj.hessian_operator(theta)
        v = torch.randn(obj.num_params)
        for _ in range(hvps):
            op @ v
    images = len(loader) * loader.batch_size
    data_mib = images * 3 * 32 * 32 * 4 / 1024**2
    return {
        "base_mib": base,
        "peak_mib": rss_mib(),
        "seconds": time.perf_counter() - start,
        "images": images,
        "data_mib": data_mib,
    }


def section_memory(quick: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for config in MEMORY_CONFIGS:
        out[config] = {}
        for mult in MULTIPLES:
            cmd = [
                sys.executable,
                "-m",
                "benchmarks.real_models",
                "--memory-child",
                config,
                str(mult),
            ]
            cmd += ["--quick"] if quick else []
            proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
            if proc.returncode or not lines:
                out[config][mult] = {"error": (proc.stderr.strip().splitlines() or ["?"])[-1][:200]}
            else:
                out[config][mult] = json.loads(lines[-1])
            print(f"     {config:<32} {mult:>3}×  {fmt_mem(out[config][mult])}", flush=True)
    return out


# ------------------------------------------------------------------------------- printing
def fmt_mem(r: dict[str, Any]) -> str:
    if "error" in r:
        return f"failed: {r['error']}"
    return (
        f"{r['images']:5d} images ({r['data_mib']:6.1f} MiB of data): peak RSS "
        f"{r['peak_mib']:7.0f} MiB (after imports and model {r['base_mib']:.0f} MiB), "
        f"{r['seconds']:.1f} s"
    )


def print_costs(rows: dict[str, Any], errors: dict[str, str]) -> None:
    print("  1. one gradient / one HVP (median ms; ×grad = over the plain-autograd gradient)")
    print(f"     {'':<40} {'ms':>9} {'×grad':>6} {'‖ΔHv‖/‖Hv‖':>11}")
    for label, r in rows.items():
        if "error" in r:
            print(f"     {label:<40} failed: {r['error']}")
            continue
        agree = f"{r['vs_ours']:11.1e}" if "vs_ours" in r else ""
        print(f"     {label:<40} {r['ms']:9.2f} {r['x_grad']:6.2f} {agree}")
    for label, msg in errors.items():
        print(f"     default (SDPA) attention, {label}: {msg}")


def fmt_row(name: str, r: dict[str, Any]) -> str:
    if "note" in r:
        return f"     {name:<22} -- {r['note']}"
    budget = r["budget"] if isinstance(r["budget"], int) else f"{r['budget']:g}"
    secs = f"{r['seconds']:8.2f}" if r.get("seconds") is not None else f"{'-':>8}"
    status = "" if r["reached"] else f"  NOT REACHED (cap; value {r['value']:.6g})"
    n, err = r.get("n", 1), r["err"]
    return f"     {name:<22} {budget:>8} {r['hvps']:6d} {secs} {n:3d} {err:9.1e}{status}"


def print_eigs(res: dict[str, Any]) -> None:
    print(
        f"  2. λ_max and λ_min to {ACCURACY:g} relative "
        f"(reference: saddlescope {res['reference']['largest']['source']})"
    )
    print(f"     {'method':<22} {'budget':>8} {'HVPs':>6} {'seconds':>8} {'n':>3} {'rel.err':>9}")
    for which, sym in (("largest", "λ_max"), ("smallest", "λ_min")):
        ref = res["reference"][which]
        print(
            f"     {sym} = {ref['value']:.8g}  "
            f"(reference: {ref['hvps']} HVPs, {ref['seconds']:.1f} s)"
        )
        for name, r in res[which].items():
            print(fmt_row(name, r))
    d = res.get("pyhessian_defaults")
    if d:
        print(
            f"     PyHessian defaults (maxIter=100, tol=1e-3): top eigenvalue {d['value']:.6g} "
            f"({d['hvps']} HVPs, {d['seconds']:.2f} s) — nearer {d['is']}; "
            f"{d['err_vs_max']:.1e} off λ_max"
        )


def print_memory_header() -> None:
    print(
        "  3. peak memory, ResNet-20, batches generated on the fly (fresh process per row; "
        "one gradient and 2 HVPs)"
    )


# ------------------------------------------------------------------------------- main
def run_case(case: Case, ok: dict[str, bool], quick: bool, repeats: int) -> dict[str, Any]:
    print(f"\n{case.title} ({case.num_params:,} parameters)", flush=True)
    costs = section_costs(case, ok, repeats)
    errors = default_attention_errors(case, ok)
    print_costs(costs, errors)
    hvp_ms = {k: r["ms"] for k, r in costs.items() if "ms" in r}
    eigs = section_eigs(case, ok, hvp_ms, quick, repeats)
    print_eigs(eigs)
    return {
        "title": case.title,
        "num_params": case.num_params,
        "costs": costs,
        "default_attention": errors,
        "eigenvalues": eigs,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=None, help="default 5 (--quick: 3)")
    parser.add_argument("--json", default="results/real_models.json")
    parser.add_argument("--memory-child", nargs=2, metavar=("CONFIG", "MULTIPLE"))
    parser.add_argument("--only", choices=["bert", "gpt2", "cnn", "memory"], action="append")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args.repeats = args.repeats or (3 if args.quick else 5)
    if args.memory_child:
        print(json.dumps(memory_child(args.memory_child[0], int(args.memory_child[1]), args.quick)))
        return
    status = anchor_status()
    ok = {dist: s.ok for dist, s in status.items()}
    start = time.perf_counter()
    print(
        f"saddlescope on real models — torch {torch.__version__}, {platform.machine()}, "
        f"1 thread, float32, load {load()}{' (quick)' if args.quick else ''}"
    )
    for s in status.values():
        print(f"  {s.label}: {s.version if s.ok else s.error}")
    out: dict[str, Any] = {
        "torch": torch.__version__,
        "quick": args.quick,
        "anchors": {d: s.version if s.ok else s.error for d, s in status.items()},
    }
    only = set(args.only or ["bert", "gpt2", "cnn", "memory"])
    for make in (bert_case, gpt2_case, cnn_case):
        case = make(args.quick)
        if case.key in only:
            out[case.key] = run_case(case, ok, args.quick, args.repeats)
    if "memory" in only:
        print()
        print_memory_header()
        out["memory"] = section_memory(args.quick)
    out["seconds"] = time.perf_counter() - start
    print(f"\ntotal {out['seconds']:.0f} s, load {load()}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
