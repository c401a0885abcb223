"""float32's eigenvalue zero band against float64 on real models: which default rtol.

    python -m benchmarks.float32_tolerance [--steps 200 2000] [--models ...] [--json PATH]

On five small real models (a tiny HF BERT and HF GPT-2 with random init, an MLP, a GroupNorm CNN,
an LSTM), at θ0 and after ``--steps`` seeded full-batch Adam steps, the dense Hessian's
eigenvalues in float64 (the reference) and in float32, twice: ``obj.hessian(θ)`` then
``torch.linalg.eigvalsh``, and ``hessian_spectrum(obj, θ)`` (the library's dense path). Both
dtypes are evaluated at the same θ: the float32 one, as a float32 model holds it.

It prints, per model and point:

* the float32 eigenvalue error |λ32 − λ64| / max|λ64| (eigenvalues matched by rank), its maximum
  and 99th percentile over the spectrum, worst of the two float32 computations, and how many
  float64 eigenvalues are genuinely tiny (|λ64| ≤ 1e-6·max|λ64|, float64's own zero band);
* for each candidate rtol: the fraction float32 counts as zero; the eigenvalues whose class
  (−, 0, +) differs from float64's at its default 1e-6, split into *noise* (float64 says 0,
  float32 gives a sign: the band is narrower than float32's rounding) and *lost* (float64 gives
  a sign, float32 says 0: the band is wider than needed); and the second-order verdict
  (saddle / minimum / maximum / degenerate) where it differs from float64's.

The misclassification counts are the worst of the two float32 computations. Everything is seeded;
one torch thread.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from benchmarks.compare import load
from saddlescope import Objective, Tolerance, hessian_spectrum

F32, F64 = torch.float32, torch.float64
CANDIDATES = (1e-3, 1e-4, 3e-5, 1e-5, 3e-6, 1e-6)
RTOL64 = 1e-6  # float64's default, the reference classification
PAD = 0


@dataclass
class Case:
    """What an Objective is built from."""

    model: nn.Module
    loss_fn: Callable[..., Tensor] | None
    batches: list[Any]
    weight_fn: Callable[[Any], float] | None = None

    def objective(self, dtype: torch.dtype) -> Objective:
        return Objective(
            self.model, self.loss_fn, self.batches, batch_weight=self.weight_fn, dtype=dtype
        )


# ----------------------------------------------------------------------------- models
def _tokens(sizes: list[int], length: int, vocab: int, seed: int) -> list[dict[str, Tensor]]:
    """Right-padded random token batches (as tests/real_models.py builds them)."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for n in sizes:
        ids = torch.randint(1, vocab, (n, length), generator=g)
        lengths = torch.randint(length // 2, length + 1, (n,), generator=g)
        lengths[0] = length
        mask = (torch.arange(length)[None, :] < lengths[:, None]).long()
        out.append({"input_ids": ids.masked_fill(mask == 0, PAD), "attention_mask": mask})
    return out


def bert() -> Case:
    """tests/real_models.py's tiny BertForSequenceClassification (3,251 parameters)."""
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(
        vocab_size=32,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=8,
        num_labels=3,
        problem_type="single_label_classification",
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        pad_token_id=PAD,
    )
    torch.manual_seed(0)
    model = BertForSequenceClassification(config)
    batches = _tokens([4, 3], 6, 32, 1)
    g = torch.Generator().manual_seed(2)
    for b in batches:
        b["token_type_ids"] = (torch.arange(6)[None, :] >= 3).long().expand_as(b["input_ids"])
        b["token_type_ids"] = b["token_type_ids"] * b["attention_mask"]
        b["labels"] = torch.randint(0, 3, (b["input_ids"].shape[0],), generator=g)
    return Case(model, None, batches)


def _causal_lm_loss(outputs: Any, batch: dict[str, Tensor]) -> Tensor:
    logits, labels = outputs.logits[:, :-1], batch["labels"][:, 1:]
    return nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100
    )


def _tokens_predicted(batch: dict[str, Tensor]) -> float:
    return float((batch["labels"][:, 1:] != -100).sum())


def gpt2() -> Case:
    """tests/real_models.py's tiny GPT2LMHeadModel, tied embeddings (2,896 parameters)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=32,
        n_positions=8,
        n_embd=16,
        n_layer=1,
        n_head=2,
        n_inner=32,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        tie_word_embeddings=True,
        pad_token_id=PAD,
        bos_token_id=PAD,
        eos_token_id=PAD,
    )
    torch.manual_seed(0)
    model = GPT2LMHeadModel(config)
    batches = _tokens([3, 2], 8, 32, 1)
    for b in batches:
        b["labels"] = b["input_ids"].masked_fill(b["attention_mask"] == 0, -100)
    return Case(model, _causal_lm_loss, batches, _tokens_predicted)


def _pairs(sizes: list[int], shape: tuple[int, ...], seed: int, classes: int) -> list[Any]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for n in sizes:
        x = torch.randn(n, *shape, generator=g)
        y = (
            torch.randint(0, classes, (n,), generator=g)
            if classes
            else torch.randn(n, 1, generator=g)
        )
        out.append((x, y))
    return out


def mlp() -> Case:
    """10 → 24 → 24 → 3, tanh, cross-entropy (939 parameters)."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(10, 24), nn.Tanh(), nn.Linear(24, 24), nn.Tanh(), nn.Linear(24, 3)
    )
    return Case(model, nn.CrossEntropyLoss(), _pairs([16, 16, 12], (10,), 1, 3))


class CNN(nn.Module):
    """conv 3→6 → GroupNorm → tanh → conv 6→8 (stride 2) → GroupNorm → tanh → pool → 3."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.gn1 = nn.Conv2d(3, 6, 3, padding=1), nn.GroupNorm(2, 6)
        self.conv2, self.gn2 = nn.Conv2d(6, 8, 3, stride=2, padding=1), nn.GroupNorm(2, 8)
        self.head = nn.Linear(8, 3)

    def forward(self, x: Tensor) -> Tensor:
        h = torch.tanh(self.gn1(self.conv1(x)))
        h = torch.tanh(self.gn2(self.conv2(h)))
        return self.head(h.mean(dim=(2, 3)))


def cnn() -> Case:
    """A small GroupNorm CNN on 3×8×8 images, 3 classes (663 parameters)."""
    torch.manual_seed(0)
    return Case(CNN(), nn.CrossEntropyLoss(), _pairs([8, 6], (3, 8, 8), 1, 3))


class LSTMRegressor(nn.Module):
    """nn.LSTM 3 → 12 (batch_first) → the last step → linear → 1."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.LSTM(3, 12, batch_first=True)
        self.head = nn.Linear(12, 1)

    def forward(self, x: Tensor) -> Tensor:
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


def lstm() -> Case:
    """An LSTM sequence regressor on (n, 8, 3) sequences, MSE (829 parameters)."""
    torch.manual_seed(0)
    return Case(LSTMRegressor(), nn.MSELoss(), _pairs([8, 6], (8, 3), 1, 0))


MODELS: dict[str, Callable[[], Case]] = {
    "HF BERT": bert,
    "HF GPT-2": gpt2,
    "MLP": mlp,
    "CNN": cnn,
    "LSTM": lstm,
}


# ----------------------------------------------------------------------------- measuring
def train(obj: Objective, steps: list[int], lr: float = 1e-2) -> list[Tensor]:
    """θ after each of ``steps`` full-batch Adam steps from θ0 (one run; deterministic)."""
    theta = obj.theta0.clone().requires_grad_(True)
    opt = torch.optim.Adam([theta], lr=lr)
    out = []
    for step in range(1, max(steps, default=0) + 1):
        _, g = obj.loss_and_grad(theta.detach())
        theta.grad = g
        opt.step()
        if step in steps:
            out.append(theta.detach().clone())
    return out


def classes(eigenvalues: Tensor, rtol: float) -> Tensor:
    """−1, 0, +1 per eigenvalue (ascending) at the zero band rtol·max|λ|."""
    threshold = Tolerance(1.0, rtol).threshold(float(eigenvalues.abs().max()))
    return (eigenvalues > threshold).long() - (eigenvalues < -threshold).long()


def verdict(c: Tensor) -> str:
    """The second-order test's word on an inertia (no probing)."""
    neg, zero, pos = int((c < 0).sum()), int((c == 0).sum()), int((c > 0).sum())
    if neg and pos:
        return "saddle"
    if zero:
        return "degenerate"
    return "minimum" if pos else "maximum"


def compare(e64: Tensor, e32s: list[Tensor]) -> dict[str, Any]:
    """Errors and, per candidate rtol, zero fraction, misclassifications and verdicts."""
    scale = float(e64.abs().max())
    errs = [(e.double() - e64).abs() / scale for e in e32s]
    c64 = classes(e64, RTOL64)
    near = e64.abs() <= max(CANDIDATES) * scale  # what any candidate band can reach
    out: dict[str, Any] = {
        "max_abs": scale,
        "tiny64": float((c64 == 0).double().mean()),
        "err_max": max(float(e.max()) for e in errs),
        "err_q99": max(float(e.quantile(0.99)) for e in errs),
        "err_small": max(float(e[near].max()) for e in errs),
        "err_max_each": [float(e.max()) for e in errs],
        "verdict64": verdict(c64),
        "by_rtol": {},
    }
    for rtol in CANDIDATES:
        cs = [classes(e.double(), rtol) for e in e32s]
        out["by_rtol"][rtol] = {
            "zero32": max(float((c == 0).double().mean()) for c in cs),
            "noise": max(int(((c64 == 0) & (c != 0)).sum()) for c in cs),
            "lost": max(int(((c64 != 0) & (c == 0)).sum()) for c in cs),
            "flipped": max(int((c64 * c < 0).sum()) for c in cs),
            "rounding": max(int((classes(e64, rtol) != c).sum()) for c in cs),
            "verdicts32": sorted({verdict(c) for c in cs}),
        }
    return out


def measure(case: Case, steps: list[int]) -> dict[str, Any]:
    """Every figure of :func:`compare` at θ0 and after each number of Adam steps."""
    obj64, obj32 = case.objective(F64), case.objective(F32)
    out: dict[str, Any] = {"n": obj64.num_params}
    trained = train(obj64, steps)
    points = [("θ0", obj32.theta0)] + [(f"Adam {s}", t.float()) for s, t in zip(steps, trained)]
    for point, theta in points:
        start = time.perf_counter()
        t64, t32 = theta.to(F64), theta.to(F32)
        loss, g = obj64.loss_and_grad(t64)
        e64 = torch.linalg.eigvalsh(obj64.hessian(t64))
        e32 = torch.linalg.eigvalsh(obj32.hessian(t32))
        e32_lib = hessian_spectrum(obj32, t32, method="dense", eigenvectors=False).eigenvalues
        row = compare(e64, [e32, e32_lib])
        row.update(loss=float(loss), grad_norm=float(g.norm()))
        row["seconds"] = time.perf_counter() - start
        out[point] = row
    return out


# ----------------------------------------------------------------------------- printing
def _tables(results: dict[str, Any]) -> str:
    rows = [(m, p, r) for m, res in results.items() for p, r in res.items() if p != "n"]
    w = max(9, *(len(p) for _, p, _ in rows))
    head = f"{'model':<9} {'n':>5} {'point':<{w}}"
    lines = [
        "Float32 eigenvalue error |λ32 − λ64|/max|λ64| and float64's own zeros",
        f"{head} {'loss':>8} {'‖g‖':>8} {'max|λ|':>8} {'err max':>8} {'err q99':>8} "
        f"{'err ≈0':>8} {'f64 zero':>8} verdict",
    ]
    for m, p, r in rows:
        lines.append(
            f"{m:<9} {results[m]['n']:>5} {p:<{w}} {r['loss']:8.1e} {r['grad_norm']:8.1e} "
            f"{r['max_abs']:8.2e} {r['err_max']:8.1e} {r['err_q99']:8.1e} {r['err_small']:8.1e} "
            f"{100 * r['tiny64']:7.1f}% {r['verdict64']}"
        )
    cols = "".join(f"{rtol:>11g}" for rtol in CANDIDATES)
    for title, cell in (
        ("Fraction counted zero in float32", lambda d: f"{100 * d['zero32']:.1f}%"),
        (
            "Class changes against float64 at 1e-6: noise (f64 0 → f32 ±) / lost (f64 ± → f32 0)",
            lambda d: f"{d['noise']}/{d['lost']}",
        ),
        (
            "Class changes against float64 at the same rtol (rounding alone)",
            lambda d: f"{d['rounding']}",
        ),
        (
            "Verdict in float32 where it differs from float64's ('=' where the same)",
            lambda d: "=" if d["verdicts32"] == [d["verdict64"]] else "/".join(d["verdicts32"]),
        ),
    ):
        lines += ["", title, f"{'model':<9} {'point':<{w}}{cols}"]
        for m, p, r in rows:
            cells = []
            for rtol in CANDIDATES:
                d = dict(r["by_rtol"][rtol], verdict64=r["verdict64"])
                cells.append(f"{cell(d):>11}")
            lines.append(f"{m:<9} {p:<{w}}" + "".join(cells))
    return "\n".join(lines)


def _summary(results: dict[str, Any]) -> str:
    """Per candidate rtol, over every model and point: what float32 gets wrong."""
    rows = [r for res in results.values() for p, r in res.items() if p != "n"]
    lines = [
        "",
        f"Over all {len(rows)} points: points with noise class changes (total) · rounding-alone "
        "changes · sign flips · verdict changes · median excess zeros (f32 zero − f64 zero)",
        f"{'rtol':>8} {'noise':>12} {'rounding':>9} {'flips':>6} {'verdicts':>9} {'excess':>8}",
    ]
    for rtol in CANDIDATES:
        ds = [r["by_rtol"][rtol] for r in rows]
        noisy = [d["noise"] for d in ds if d["noise"]]
        verdicts = sum(d["verdicts32"] != [r["verdict64"]] for d, r in zip(ds, rows))
        excess = sorted(d["zero32"] - r["tiny64"] for d, r in zip(ds, rows))
        median = excess[len(excess) // 2]
        lines.append(
            f"{rtol:>8g} {f'{len(noisy)} ({sum(noisy)})':>12} "
            f"{sum(d['rounding'] for d in ds):>9} {sum(d['flipped'] for d in ds):>6} "
            f"{verdicts:>9} {100 * median:>7.1f}%"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--steps", type=int, nargs="*", default=[200, 2000], help="Adam steps to the later points"
    )
    parser.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--json", default="results/float32_tolerance.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print(f"float32 zero band — torch {torch.__version__}, 1 thread, load {load()}")
    start = time.perf_counter()
    results = {name: measure(MODELS[name](), args.steps) for name in args.models}
    print(_tables(results))
    print(_summary(results))
    print(f"\n{time.perf_counter() - start:.0f} s, load {load()}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
