"""classify's path by estimated time, before and after, on a 4.9k GRU and a 22k HF ResNet.

    python -m benchmarks.classify_path [--dense-gru] [--json PATH]

"Before" is the old rule, dense whenever the Hessian fits the memory budget
(``max_dense_seconds=math.inf``); "after" is the default choice by estimated time. Both at the
model's initial weights, float32, one torch thread. The GRU's dense run takes minutes, so it runs
only with ``--dense-gru``; otherwise, like the ResNet's (over an hour), its time is the estimate
the choice itself printed: n products at the measured cost plus ``eigh``.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from benchmarks.compare import load
from saddlescope import Objective, classify


class GRUClassifier(nn.Module):
    """A GRU over 20-step sequences of 6 features, its last state into 3 classes (4,863 params)."""

    def __init__(self) -> None:
        super().__init__()
        self.gru = nn.GRU(6, 36, batch_first=True)
        self.head = nn.Linear(36, 3)

    def forward(self, x: Tensor) -> Tensor:
        out, _ = self.gru(x)
        return self.head(out[:, -1])


def gru_model_and_batches() -> tuple[GRUClassifier, list[tuple[Tensor, Tensor]]]:
    """The seeded GRU and its 4 batches of 16 sequences (20 steps, 6 features, 3 classes)."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    batches = [
        (torch.randn(16, 20, 6, generator=g), torch.randint(0, 3, (16,), generator=g))
        for _ in range(4)
    ]
    return GRUClassifier(), batches


def gru_case() -> Objective:
    model, batches = gru_model_and_batches()
    return Objective(model, nn.CrossEntropyLoss(), batches)


def resnet_case() -> Objective:
    from transformers import ResNetConfig, ResNetForImageClassification

    config = ResNetConfig(
        num_channels=3,
        embedding_size=16,
        hidden_sizes=[16, 32],
        depths=[1, 1],
        layer_type="basic",
        num_labels=10,
    )
    torch.manual_seed(0)
    model = ResNetForImageClassification(config).eval()
    g = torch.Generator().manual_seed(2)
    batches = [
        {
            "pixel_values": torch.randn(8, 3, 32, 32, generator=g),
            "labels": torch.randint(0, 10, (8,), generator=g),
        }
        for _ in range(2)
    ]
    return Objective(model, None, batches)


def run(obj: Objective, **kw: Any) -> dict[str, Any]:
    start = time.perf_counter()
    cp = classify(obj, obj.theta0, progress=False, **kw)
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "method": cp.spectrum.method,
        "kind": cp.kind,
        "hvps": cp.spectrum.hvps,
        "estimate": cp.inertia_estimate is not None,
        "why": None if cp.path is None else cp.path.reason,
        "dense_estimate_s": None if cp.path is None else cp.path.dense_seconds,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dense-gru", action="store_true", help="really run the GRU's dense path")
    parser.add_argument("--json", default="results/classify_path.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print(f"classify's path — torch {torch.__version__}, 1 thread, float32, load {load()}")
    out: dict[str, Any] = {}
    for name, make, dense in (("GRU", gru_case, args.dense_gru), ("HF ResNet", resnet_case, False)):
        obj = make()
        after = run(obj)
        before = run(obj, max_dense_seconds=math.inf) if dense else None
        out[name] = {"num_params": obj.num_params, "after": after, "before": before}
        print(f"\n{name} ({obj.num_params:,} parameters), initial weights")
        print(
            f"  after  (default):  {after['seconds']:8.1f} s  {after['method']:<8} "
            f"{after['hvps']:6d} HVPs  {after['kind']}"
        )
        print(f"    why: {after['why']}")
        if before is not None:
            print(
                f"  before (dense):    {before['seconds']:8.1f} s  {before['method']:<8} "
                f"{before['hvps']:6d} HVPs  {before['kind']}"
            )
        else:
            est = after["dense_estimate_s"]
            shown = "—" if est is None else f"≈ {est:.0f} s (estimated, not run)"
            print(f"  before (dense):    {shown}")
    print(f"\nload {load()}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
