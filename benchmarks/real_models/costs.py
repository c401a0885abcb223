"""Section 1: one gradient and one Hessian-vector product, in units of one gradient."""

from __future__ import annotations

import contextlib
import statistics
from collections.abc import Callable
from typing import Any

import torch

from benchmarks.real_models.anchors import anchor_context, hvp_setups
from benchmarks.real_models.cases import Case
from benchmarks.real_models.timing import timed


def section_costs(case: Case, ok: dict[str, bool], repeats: int) -> dict[str, Any]:
    """Median ms of the unit gradient, our gradient and every HVP, timed in interleaved rounds.

    Every method is set up first; then each round times each method once, so that drifts of
    this shared machine's speed fall on all of them alike.
    """
    model = case.logit_model()
    obj = case.objective()
    theta = obj.theta0
    v = torch.randn(obj.num_params, generator=torch.Generator().manual_seed(7))
    calls: dict[str, tuple[Callable[[], Any], bool]] = {
        "gradient, plain autograd (the unit)": (lambda: case.plain_gradient(model), True),
        "gradient, ours (obj.grad)": (lambda: obj.grad(theta), False),
    }
    rows: dict[str, Any] = {}
    ours_hv = None
    for label, setup in hvp_setups(case, ok).items():
        anchor = not label.startswith("ours")
        try:
            with anchor_context(case) if anchor else contextlib.nullcontext():
                hvp = setup()
                hv = hvp(v).detach()  # also the warm-up
        except Exception as err:  # an anchor that fails is reported, not fatal
            rows[f"HVP {label}"] = {"error": f"{err!r}"[:200]}
            continue
        ours_hv = hv if ours_hv is None else ours_hv
        agree = float(torch.linalg.vector_norm(hv - ours_hv) / torch.linalg.vector_norm(ours_hv))
        rows[f"HVP {label}"] = {"vs_ours": agree}
        calls[f"HVP {label}"] = (lambda hvp=hvp: hvp(v), anchor)
    times = interleaved(calls, case, repeats)
    unit = statistics.median(times["gradient, plain autograd (the unit)"])
    for label, ts in times.items():
        row = rows.setdefault(label, {})
        row |= {"ms": 1e3 * statistics.median(ts), "x_grad": statistics.median(ts) / unit}
    return {label: rows[label] for label in [*calls, *rows] if label in rows}


def interleaved(
    calls: dict[str, tuple[Callable[[], Any], bool]], case: Case, repeats: int
) -> dict[str, list[float]]:
    """Seconds of each call over ``repeats`` rounds (one warm-up round first)."""
    times: dict[str, list[float]] = {label: [] for label in calls}
    for round_ in range(repeats + 1):
        for label, (call, anchor) in calls.items():
            with anchor_context(case) if anchor else contextlib.nullcontext():
                seconds = timed(call)[0]
            if round_:
                times[label].append(seconds)
    return times


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
