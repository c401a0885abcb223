"""Run every section: ``python -m benchmarks.real_models``."""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks.compare import load
from benchmarks.compare_anchors import anchor_status
from benchmarks.real_models.cases import Case, bert_case, cnn_case, gpt2_case
from benchmarks.real_models.costs import default_attention_errors, print_costs, section_costs
from benchmarks.real_models.eigs import print_eigs, section_eigs
from benchmarks.real_models.memory import memory_child, print_memory_header, section_memory
from benchmarks.real_models.timing import steady_allocator


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
    parser.add_argument("--repeats", type=int, default=None, help="default 7 (--quick: 3)")
    parser.add_argument("--json", default="results/real_models.json")
    parser.add_argument("--memory-child", nargs=2, metavar=("CONFIG", "MULTIPLE"))
    parser.add_argument("--only", choices=["bert", "gpt2", "cnn", "memory"], action="append")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args.repeats = args.repeats or (3 if args.quick else 7)
    if args.memory_child:
        print(json.dumps(memory_child(args.memory_child[0], int(args.memory_child[1]), args.quick)))
        return
    allocator = steady_allocator()
    status = anchor_status()
    ok = {dist: s.ok for dist, s in status.items()}
    start = time.perf_counter()
    print(
        f"saddlescope on real models — torch {torch.__version__}, {platform.machine()}, "
        f"1 thread, float32, {allocator}, load {load()}{' (quick)' if args.quick else ''}"
    )
    for s in status.values():
        print(f"  {s.label}: {s.version if s.ok else s.error}")
    out: dict[str, Any] = {
        "torch": torch.__version__,
        "quick": args.quick,
        "allocator": allocator,
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
