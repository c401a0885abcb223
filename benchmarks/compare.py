"""saddlescope against PyHessian, hessian-eigenthings and curvlinops, in one process.

    python -m benchmarks.compare [--quick] [--json PATH] [--repeats N] [--threads 1]

Needs the anchors: ``pip install -c constraints.txt -e ".[bench]"``; one that is missing or fails
to import is skipped and named in the output. Three problems, CPU, float32, fixed seeds,
cross-entropy on random inputs with 10 classes, all data in one batch, θ = the initial weights:

    (a) MLP 64-32-32-10 tanh (3,466 parameters), 1,024 samples;
    (b) CNN conv 1→8 3×3, conv 8→16 3×3, avg-pool 2, linear 256→22→10, tanh (7,132 parameters),
        1×12×12 images, 512 samples;
    (c) MLP 784-256-256-10 tanh (269,322 parameters), 2,048 samples (top-1 only, no dense work).

Printed for each (numbered as below), and written as JSON (``--json``, default
results/compare.json):

1. the median cost of one gradient and of one HVP: saddlescope's cached-graph product and each
   anchor's own, with the set-up each needs and each product's agreement with ours;
2. the top-1, top-5 (largest) and most negative eigenvalue at EQUAL ACHIEVED ACCURACY: every
   method climbs a ladder of budgets (saddlescope: ``lanczos_tol`` from loose to tight; anchors:
   iterations or eigsh ``tol``; see ``benchmarks.compare_anchors``) to the first rung whose
   eigenvalues are all within 1e-3 relative (|λ̂ − λ|/|λ|) of a tight reference; the budget is
   then refined between that rung and the one before (iterations bisected to within 10 %,
   tolerances to within a factor 1.2), and the method is reported at the smallest budget found,
   with its HVPs and median seconds (set-up included), and the ratio of saddlescope's Lanczos to
   the fastest anchor there, with the floor under that ratio: the seconds saddlescope's HVPs
   alone take (count × the cached HVP of section 1) over the anchor's. Also PyHessian at its
   defaults (its ``tol`` is a change between iterations, not an accuracy). Reference: dense
   ``eigvalsh`` in float64 for (a) and (b) (minutes for (b): cached in results/compare_refs/,
   keyed by model, data and torch version, and checked against the eigsh reference each run),
   saddlescope's SciPy eigsh at tol 1e-12 in float64 for (c) and for everything under
   ``--quick``;
3. for (a): the dense Hessian by ``Objective.hessian``, ``torch.autograd.functional.hessian``
   (vectorize=False) and ``torch.func.hessian``: seconds and peak extra memory (torch.profiler,
   ``profile_memory=True``: peak of the running sum of its allocation and free records), and
   ``torch.linalg.eigvalsh`` against ``eigh``;
4. ``saddlescope.density.estimate_inertia`` at its defaults when that module exists: n₋, n₀, n₊
   with error bars, HVPs and seconds, against the exact dense counts at its tolerance.

``--quick`` (≈1.5 min): (a) on 256 samples, (b) on 128, no (c), section 3 on 128 samples,
ladders stopped after a 4 s rung (30 s otherwise). One thread by default: with two on a shared
2-core machine single runs were 10-100× slower at random (OpenMP and OpenBLAS spin-waits).
Timings are noisy there anyway: the load average is printed with the results.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import inspect
import json
import math
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.func import functional_call

from benchmarks.compare_anchors import (
    TARGETS,
    Estimate,
    Problem,
    Solver,
    all_solvers,
    anchor_status,
    hvp_functions,
)
from saddlescope import hessian_spectrum

ACCURACY = 1e-3
REF_DIR = Path("results/compare_refs")


# --------------------------------------------------------------------------------- problems
def mlp(widths: list[int]) -> nn.Module:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(nn.Tanh())
    return nn.Sequential(*layers)


def cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 8, 3),
        nn.Tanh(),
        nn.Conv2d(8, 16, 3),
        nn.Tanh(),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(256, 22),
        nn.Tanh(),
        nn.Linear(22, 10),
    )


def make_problem(key: str, samples: int, device: str = "cpu") -> Problem:
    torch.manual_seed({"a": 1, "b": 2, "c": 3}[key])
    if key == "a":
        model, shape, title = mlp([64, 32, 32, 10]), (64,), "MLP 64-32-32-10 tanh"
    elif key == "b":
        model, shape, title = cnn(), (1, 12, 12), "CNN 1→8→16 conv, 256→22→10"
    else:
        model, shape, title = mlp([784, 256, 256, 10]), (784,), "MLP 784-256-256-10 tanh"
    gen = torch.Generator().manual_seed(100 + ord(key))
    x = torch.randn(samples, *shape, generator=gen)
    y = torch.randint(0, 10, (samples,), generator=gen)
    return Problem(key, f"({key}) {title}", model.to(device), x.to(device), y.to(device))


# --------------------------------------------------------------------------------- timing
def load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    sync()
    start = time.perf_counter()
    out = fn()
    sync()
    return time.perf_counter() - start, out


def median_seconds(fn: Callable[[], Any], repeats: int, budget_s: float) -> tuple[float, int]:
    """Median of up to ``repeats`` timed calls (after one warm-up), stopping once over budget."""
    fn()
    times: list[float] = []
    while len(times) < repeats and (not times or sum(times) < budget_s):
        times.append(timed(fn)[0])
    return statistics.median(times), len(times)


# --------------------------------------------------------------------------------- reference
def _fingerprint(problem: Problem) -> str:
    h = hashlib.sha1()
    for t in [*problem.model.state_dict().values(), problem.x, problem.y]:
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    h.update(torch.__version__.encode())
    return h.hexdigest()[:16]


def dense_reference(problem: Problem, compute: bool) -> tuple[np.ndarray | None, dict[str, Any]]:
    """All eigenvalues of H in float64 (dense), from the cache or computed when ``compute``."""
    path = REF_DIR / f"{problem.key}-{problem.num_params}-{problem.num_samples}-"
    path = path.with_name(path.name + _fingerprint(problem) + ".npy")
    if path.exists():
        return np.load(path), {"source": "dense eigvalsh float64 (cached)", "path": str(path)}
    if not compute:
        return None, {}
    print(f"  computing the dense float64 reference once (cached as {path}) ...", flush=True)
    obj = problem.objective(torch.float64)
    t_h, H = timed(lambda: obj.hessian(obj.theta0))
    t_e, w = timed(partial(torch.linalg.eigvalsh, H))
    values = w.cpu().numpy()
    del H
    REF_DIR.mkdir(parents=True, exist_ok=True)
    np.save(path, values)
    info = {
        "source": "dense eigvalsh float64",
        "seconds_hessian": t_h,
        "seconds_eigvalsh": t_e,
        "path": str(path),
    }
    return values, info


def eigsh_reference(problem: Problem, targets: tuple[str, ...]) -> tuple[dict, dict[str, Any]]:
    """Tight extremes by saddlescope's SciPy eigsh at tol 1e-12 in float64."""
    obj = problem.objective(torch.float64)
    out: dict[str, np.ndarray] = {}
    hvps, start = 0, time.perf_counter()
    need_top = 5 if "top5" in targets else 1
    s = hessian_spectrum(
        obj, obj.theta0, k=need_top, which="largest", method="arpack", lanczos_tol=1e-12
    )
    hvps += s.hvps
    top = np.sort(s.eigenvalues.numpy())
    out["top1"] = top[-1:]
    if "top5" in targets:
        out["top5"] = top[-5:]
    if "smallest" in targets:
        s = hessian_spectrum(
            obj, obj.theta0, k=1, which="smallest", method="arpack", lanczos_tol=1e-12
        )
        hvps += s.hvps
        out["smallest"] = s.eigenvalues.numpy()[:1]
    info = {
        "source": "saddlescope eigsh tol 1e-12 float64",
        "hvps": hvps,
        "seconds": time.perf_counter() - start,
    }
    return out, info


def extremes(values: np.ndarray) -> dict[str, np.ndarray]:
    w = np.sort(values)
    return {"top1": w[-1:], "top5": w[-5:], "smallest": w[:1]}


def rel_error(est: np.ndarray, ref: np.ndarray) -> float:
    if est.size != ref.size or not np.all(np.isfinite(est)):
        return math.inf
    return float(np.max(np.abs(np.sort(est) - ref) / np.abs(ref)))


# --------------------------------------------------------------------------------- section 1
def section_costs(problem: Problem, status: dict, repeats: int, budget_s: float) -> dict:
    obj = problem.objective()
    theta = obj.theta0
    model = problem.fresh_model()

    def plain_grad() -> None:
        model.zero_grad(set_to_none=True)
        problem.loss_fn(model(problem.x), problem.y).backward()

    rows: dict[str, Any] = {}
    ms, n = median_seconds(lambda: obj.grad(theta), repeats, budget_s)
    rows["gradient saddlescope (obj.grad)"] = {"ms": 1e3 * ms, "n": n}
    ms, n = median_seconds(plain_grad, repeats, budget_s)
    rows["gradient plain autograd (.backward)"] = {"ms": 1e3 * ms, "n": n}
    grad_ms = rows["gradient saddlescope (obj.grad)"]["ms"]
    ms, n = median_seconds(problem.objective, repeats, budget_s)
    rows["set-up saddlescope Objective(...)"] = {"ms": 1e3 * ms, "n": n}
    ms, n = median_seconds(lambda: obj.hessian_operator(theta), repeats, budget_s)
    rows["set-up saddlescope hessian_operator(θ)"] = {"ms": 1e3 * ms, "n": n}

    v = torch.randn(obj.num_params, generator=torch.Generator().manual_seed(7)).to(problem.x.device)
    ours_hv = None
    for label, (setup, how) in hvp_functions(problem, status).items():
        try:
            setup_s, _ = median_seconds(setup, repeats, budget_s)
            hvp = setup()
            hv = hvp(v).detach()
            ms, n = median_seconds(lambda hvp=hvp: hvp(v), repeats, budget_s)
        except Exception as err:  # an anchor that fails here is reported, not fatal
            rows[f"HVP {label}"] = {"error": f"{err!r}"[:160], "how": how}
            continue
        if ours_hv is None:
            ours_hv = hv
        agree = float(torch.linalg.vector_norm(hv - ours_hv) / torch.linalg.vector_norm(ours_hv))
        rows[f"HVP {label}"] = {
            "ms": 1e3 * ms,
            "n": n,
            "setup_ms": 1e3 * setup_s,
            "vs_ours": agree,
            "how": how,
        }
    for row in rows.values():
        if "ms" in row:
            row["x_grad"] = row["ms"] / grad_ms
    return rows


def print_costs(rows: dict) -> None:
    print("  1. one gradient / one HVP (median ms; ×grad = over saddlescope's gradient)")
    print(f"     {'':<40} {'ms':>8} {'×grad':>6} {'n':>3} {'set-up ms':>10} {'‖ΔHv‖/‖Hv‖':>11}")
    for label, r in rows.items():
        if "error" in r:
            print(f"     {label:<40} failed: {r['error']}")
            continue
        setup = f"{r['setup_ms']:10.1f}" if "setup_ms" in r else " " * 10
        agree = f"{r['vs_ours']:11.1e}" if "vs_ours" in r else " " * 11
        how = f"  {r['how']}" if "how" in r else ""
        print(
            f"     {label:<40} {r['ms']:8.2f} {r['x_grad']:6.2f} {r['n']:3d} {setup} {agree}{how}"
        )


# --------------------------------------------------------------------------------- section 2
def probe(
    solver: Solver, problem: Problem, target: str, ref: np.ndarray, budget: Any, seeds: int
) -> dict[str, Any]:
    """One budget run once per start-vector seed (0 … seeds−1): the worst error over the seeds,
    the HVPs of each and the median seconds; ``error`` instead when the solver raised."""
    runs = []
    try:
        for seed in range(seeds):
            problem.seed = seed
            seconds, est = timed(lambda: solver.run(problem, target, budget))
            assert isinstance(est, Estimate)
            runs.append((seconds, est, rel_error(est.eigenvalues, ref)))
    except Exception as err:  # recorded, and read as "not reached"
        return {"budget": budget, "error": f"{err!r}"[:160]}
    finally:
        problem.seed = 0
    return {
        "budget": budget,
        "err": max(r[2] for r in runs),
        "hvps": [r[1].hvps for r in runs],
        "seconds": statistics.median(r[0] for r in runs),
        "estimate": runs[0][1],
    }


def between(failed: Any, reached: Any) -> Any | None:
    """A budget between a rung that missed the accuracy and a looser-or-larger one that reached
    it, or None once they are close: iteration counts are bisected to within 10 % (±1 below
    ten), tolerances to within a factor 1.2 (geometric midpoint, two significant digits)."""
    if isinstance(reached, int):
        if reached - failed <= max(1, reached // 10):
            return None
        return (failed + reached) // 2
    if failed / reached <= 1.2:
        return None
    mid = float(f"{math.sqrt(failed * reached):.2g}")
    return None if mid in (failed, reached) else mid


def search(
    solver: Solver,
    problem: Problem,
    target: str,
    ref: np.ndarray,
    repeats: int,
    cap_s: float,
    time_budget_s: float,
    seeds: int = 1,
) -> dict[str, Any]:
    """The smallest budget within ACCURACY for every seed, timed.

    Climbs the solver's ladder to the first rung that reaches the accuracy, then refines the
    budget between it and the rung before (:func:`between`), so that every method — ours and
    the anchors alike — is timed at (nearly) the smallest budget that reaches it, not at the
    next coarse rung. The probing runs are the warm-up; the timed repeats then cycle through
    the seeds (median seconds), unless the runs already took longer than the repeat budget.
    """
    tried: list[dict[str, Any]] = []
    failed: Any = None
    best: dict[str, Any] | None = None
    for rung in solver.ladder(target):
        result = probe(solver, problem, target, ref, rung, seeds)
        tried.append(result)
        if "error" in result:
            break
        if result["err"] <= ACCURACY or solver.key == "pyhessian-default":
            best = result
            break
        if result["seconds"] > cap_s:
            break
        failed = rung
    if best is not None and best["err"] <= ACCURACY and failed is not None:
        while (mid := between(failed, best["budget"])) is not None:
            result = probe(solver, problem, target, ref, mid, seeds)
            tried.append(result)
            if "error" not in result and result["err"] <= ACCURACY:
                best = result
            else:
                failed = mid
    ladder = [{k: v for k, v in r.items() if k != "estimate"} for r in tried]
    if best is not None:
        budget = best["budget"]
        times = [] if best["seconds"] < time_budget_s else [best["seconds"]]
        while len(times) < max(repeats, seeds) and sum(times) < time_budget_s:
            problem.seed = len(times) % seeds
            times.append(timed(lambda: solver.run(problem, target, budget))[0])
        problem.seed = 0
        est = best["estimate"]
        return {
            "reached": best["err"] <= ACCURACY,
            "budget": budget,
            "err": best["err"],
            "hvps": int(statistics.median(best["hvps"])),
            "hvps_per_seed": best["hvps"],
            "seconds": statistics.median(times),
            "n": len(times),
            "eigenvalues": est.eigenvalues.tolist(),
            "note": "; ".join(x for x in (est.note, solver.notes.get(target, "")) if x),
            "ladder": ladder,
        }
    last = ladder[-1] if ladder else {}
    stop = "slower than the cap" if last.get("seconds", 0) > cap_s else "end of the ladder"
    last_hvps = last.get("hvps")
    return {
        "reached": False,
        "budget": last.get("budget"),
        "err": last.get("err", math.inf),
        "hvps": int(statistics.median(last_hvps)) if last_hvps else None,
        "seconds": last.get("seconds"),
        "n": 1,
        "note": last.get("error", f"stopped: {stop} ({cap_s:g} s)"),
        "ladder": ladder,
    }


def section_eigs(
    problem: Problem,
    solvers: list[Solver],
    refs: dict[str, np.ndarray],
    targets: tuple[str, ...],
    repeats: int,
    cap_s: float,
    time_budget_s: float,
    seeds: int = 1,
) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for target in targets:
        out[target] = {}
        for solver in solvers:
            if not solver.ladder(target):
                continue
            out[target][solver.key] = search(
                solver, problem, target, refs[target], repeats, cap_s, time_budget_s, seeds
            ) | {"label": solver.label, "budget_name": solver.budget_name}
    return out


def fmt_budget(name: str, value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{name}={value:g}"
    return f"{name}={value}" if name else str(value)


def ratio_line(
    rows: dict[str, dict[str, Any]], our_key: str, hvp_ms: float | None = None
) -> tuple[str, dict[str, Any]]:
    """Our seconds and HVPs over the fastest anchor's at 1e-3; with ``hvp_ms`` (one cached
    product) also the floor: the seconds our HVPs alone take, over the anchor's — no
    bookkeeping can bring the ratio below it, only fewer or cheaper products."""
    ours = rows.get(our_key)
    anchors = {
        k: r
        for k, r in rows.items()
        if not k.startswith("saddlescope") and k != "pyhessian-default" and r["reached"]
    }
    if not ours or not ours["reached"]:
        return f"{our_key} did not reach 1e-3: no ratio", {}
    if not anchors:
        return "no anchor reached 1e-3: no ratio", {}
    key, best = min(anchors.items(), key=lambda kv: kv[1]["seconds"])
    t, h = ours["seconds"] / best["seconds"], ours["hvps"] / best["hvps"]
    text = (
        f"{ours['label']} / fastest anchor at 1e-3 ({best['label']}): "
        f"{t:.2f}× the seconds, {h:.2f}× the HVPs"
        + ("  (saddlescope faster)" if t < 1 else "  (saddlescope SLOWER)")
    )
    out = {"fastest_anchor": key, "seconds_ratio": t, "hvps_ratio": h}
    if hvp_ms is not None:
        out["products_floor"] = ours["hvps"] * hvp_ms / 1e3 / best["seconds"]
        text += f"; its {ours['hvps']} products alone: {out['products_floor']:.2f}×"
    return text, out


def print_eigs(
    result: dict[str, dict[str, Any]],
    refs: dict[str, np.ndarray],
    skipped: list[str],
    hvp_ms: float | None = None,
) -> dict:
    names = {"top1": "top-1", "top5": "top-5", "smallest": "most negative"}
    ratios = {}
    print(
        f"  2. eigenvalues at equal achieved accuracy {ACCURACY:g} (relative, vs reference; "
        "with several seeds: worst error, median HVPs, [HVPs per seed])"
    )
    print(
        f"     {'target':<9} {'method':<28} {'budget at 1e-3':<22} {'HVPs':>6} {'seconds':>8} "
        f"{'n':>2} {'rel.err':>8}  note"
    )
    for target, rows in result.items():
        ref = ", ".join(f"{v:.6g}" for v in refs[target][::-1])
        print(f"     {names[target]} (reference: {ref})")
        for r in rows.values():
            budget = fmt_budget(r["budget_name"], r["budget"])
            if not r["reached"] and r["label"] != "PyHessian defaults":
                budget = f"NOT REACHED (last {budget})"
            secs = f"{r['seconds']:8.3f}" if r["seconds"] is not None else f"{'-':>8}"
            hv = f"{r['hvps']:6d}" if r["hvps"] is not None else f"{'-':>6}"
            per_seed = r.get("hvps_per_seed") or []
            spread = f"[{','.join(map(str, per_seed))}] " if len(per_seed) > 1 else ""
            print(
                f"     {'':<9} {r['label']:<28} {budget:<22} {hv} {secs} {r['n']:2d} "
                f"{r['err']:8.1e}  {spread}{r['note']}"
            )
        for line in skipped:
            print(f"     {'':<9} {line}")
        ratios[target] = {}
        for key in ("saddlescope-lanczos", "saddlescope-lanczos-gap"):
            text, ratios[target][key] = ratio_line(rows, key, hvp_ms)
            print(f"     → {text}")
    return ratios


# --------------------------------------------------------------------------------- section 3
def flat_loss(problem: Problem) -> tuple[Callable[[Tensor], Tensor], Tensor]:
    model = problem.fresh_model()
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    params = [p.detach() for _, p in model.named_parameters() if p.requires_grad]
    sizes = [p.numel() for p in params]
    shapes = [p.shape for p in params]

    def f(theta: Tensor) -> Tensor:
        chunks = torch.split(theta, sizes)
        values = {n: c.view(s) for n, c, s in zip(names, chunks, shapes)}
        return problem.loss_fn(functional_call(model, values, (problem.x,)), problem.y)

    return f, torch.cat([p.reshape(-1) for p in params])


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Silence file descriptor 2 (the profiler's C++ side logs its start and stop there)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def peak_extra_bytes(fn: Callable[[], Any]) -> float:
    """Peak of the running sum of the CPU allocator's allocations and frees during fn().

    From torch.profiler (``profile_memory=True``): its raw ``[memory]`` records, one per
    allocation or free (bytes, signed), read straight from the Kineto results: building the
    per-operator event tree instead takes minutes for the n backward passes of
    ``autograd.functional.hessian``.
    """
    from torch.profiler import ProfilerActivity, profile

    if torch.cuda.is_available():  # on a GPU: the CUDA allocator's own peak
        sync()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        out = fn()
        del out
        sync()
        return float(torch.cuda.max_memory_allocated() - base)
    with quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        out = fn()
        del out
    raw = getattr(prof.profiler, "kineto_results", None)
    if raw is not None:
        records = sorted((e.start_ns(), e.nbytes()) for e in raw.events() if e.name() == "[memory]")
    else:  # the public, slower route: operator-level allocations plus the free records
        records = sorted(
            (
                e.time_range.start,
                e.cpu_memory_usage if e.name == "[memory]" else e.self_cpu_memory_usage,
            )
            for e in prof.events()
        )
    running = peak = 0
    for _, delta in records:
        running += delta
        peak = max(peak, running)
    return float(peak)


def section_dense(problem: Problem, repeats: int, budget_s: float) -> tuple[dict, np.ndarray]:
    """Dense H three ways (median seconds, profiler peak memory), then eigvalsh against eigh."""
    obj = problem.objective()
    theta0 = obj.theta0
    f, theta = flat_loss(problem)
    methods: dict[str, Callable[[], Tensor]] = {
        "saddlescope Objective.hessian": lambda: obj.hessian(theta0),
        "torch.autograd.functional.hessian(vectorize=False)": lambda: (
            torch.autograd.functional.hessian(f, theta, vectorize=False)
        ),
        "torch.func.hessian": lambda: torch.func.hessian(f)(theta),
    }
    rows: dict[str, Any] = {}
    H_ours = None
    for label, fn in methods.items():
        try:
            times = []
            while len(times) < max(1, repeats) and (not times or sum(times) < budget_s):
                seconds, H = timed(fn)
                times.append(seconds)
                if H_ours is None:
                    H_ours = H
                diff = float((H - H_ours).abs().max() / H_ours.abs().max())
                del H
            peak = peak_extra_bytes(fn)
        except Exception as err:  # e.g. out of memory: reported, not fatal
            rows[label] = {"error": f"{err!r}"[:160]}
            continue
        rows[label] = {
            "seconds": statistics.median(times),
            "n": len(times),
            "peak_extra_MiB": peak / 2**20,
            "max_abs_diff_vs_ours": diff,
        }
    assert H_ours is not None
    eigenvalues = torch.linalg.eigvalsh(H_ours).double().cpu().numpy()
    for label, fn in (
        ("torch.linalg.eigvalsh (float32)", partial(torch.linalg.eigvalsh, H_ours)),
        ("torch.linalg.eigh (float32)", partial(torch.linalg.eigh, H_ours)),
    ):
        times = []
        while len(times) < max(1, repeats) and (not times or sum(times) < budget_s):
            times.append(timed(fn)[0])
        rows[label] = {"seconds": statistics.median(times), "n": len(times)}
    return rows, eigenvalues


def print_dense(rows: dict, problem: Problem) -> None:
    print(
        f"  3. dense Hessian of {problem.title} (n={problem.num_params:,}, "
        f"{problem.num_samples:,} samples, float32); peak extra memory: torch.profiler "
        "(profile_memory=True), peak of the running sum of its allocation/free records"
    )
    print(f"     {'':<52} {'seconds':>8} {'n':>2} {'peak MiB':>9} {'max|ΔH|/max|H|':>15}")
    for label, r in rows.items():
        if "error" in r:
            print(f"     {label:<52} failed: {r['error']}")
            continue
        mem = r.get("peak_extra_MiB")
        mem_s = f"{mem:9.1f}" if mem is not None else f"{'':>9}"
        diff = r.get("max_abs_diff_vs_ours")
        diff_s = f"{diff:15.1e}" if diff is not None else ""
        print(f"     {label:<52} {r['seconds']:8.2f} {r['n']:2d} {mem_s} {diff_s}")


# --------------------------------------------------------------------------------- section 4
def exact_counts(values: np.ndarray, tol: float) -> dict[str, int]:
    return {
        "n_neg": int((values < -tol).sum()),
        "n_zero": int((np.abs(values) <= tol).sum()),
        "n_pos": int((values > tol).sum()),
    }


def section_inertia(problem: Problem, exact: dict[str, np.ndarray]) -> dict[str, Any]:
    """saddlescope.estimate_inertia at its defaults against dense counts at its threshold."""
    from saddlescope import estimate_inertia

    obj = problem.objective()
    try:
        estimate_inertia(obj, obj.theta0)  # warm-up
        seconds, res = timed(lambda: estimate_inertia(obj, obj.theta0))
    except Exception as err:  # an API we could not guess, or a failure: reported
        sig = str(inspect.signature(estimate_inertia))
        return {"available": True, "error": f"{err!r}"[:200], "signature": sig}
    out: dict[str, Any] = {"available": True, "seconds": seconds, "repr": str(res)[:600]}
    if not all(hasattr(res, a) for a in ("inertia", "threshold", "hvps")):
        return out
    out["hvps"] = int(res.hvps)
    out["tolerance"] = float(res.threshold)
    counts = res.inertia
    out["estimate"] = {
        name: {"value": float(value), "error": counts.error(which), "low": lo, "high": hi}
        for name, which, value, (lo, hi) in zip(
            ("n_neg", "n_zero", "n_pos"),
            ("neg", "zero", "pos"),
            (counts.n_neg, counts.n_zero, counts.n_pos),
            counts.bars,
        )
    }
    out["exact"] = {}
    for source, values in exact.items():
        counts = exact_counts(values, res.threshold)
        counts["covered"] = all(
            out["estimate"][k]["low"] <= counts[k] <= out["estimate"][k]["high"]
            for k in ("n_neg", "n_zero", "n_pos")
        )
        out["exact"][source] = counts
    return out


def print_inertia(r: dict[str, Any], problem: Problem, dense_rows: dict[str, Any]) -> None:
    if not r["available"]:
        print("  4. inertia: not available (saddlescope.density.estimate_inertia not found)")
        return
    if "error" in r:
        print(f"  4. inertia: estimate_inertia{r['signature']} failed: {r['error']}")
        return
    if "estimate" not in r:
        print(f"  4. inertia estimate ({r['seconds']:.2f} s): {r['repr']}")
        return
    est = r["estimate"]
    print(
        f"  4. inertia of {problem.title} ({problem.num_samples} samples, float32), "
        f"estimate_inertia defaults, |λ| ≤ {r['tolerance']:.3g} is zero:"
    )
    print(
        "     estimate:  "
        + "  ".join(f"{k[2:]}={est[k]['value']:.0f} ± {est[k]['error']:.0f}" for k in est)
        + f"   ({r['hvps']} HVPs, {r['seconds']:.2f} s)"
    )
    for source, c in r["exact"].items():
        counts = "  ".join(f"{k[2:]}={c[k]}" for k in ("n_neg", "n_zero", "n_pos"))
        inside = "all inside the bars" if c["covered"] else "NOT all inside the bars"
        print(f"     exact ({source}):  {counts}   {inside}")
    hess = dense_rows.get("saddlescope Objective.hessian", {}).get("seconds")
    eig = dense_rows.get("torch.linalg.eigvalsh (float32)", {}).get("seconds")
    if hess is not None and eig is not None:
        print(
            f"     dense count cost: {problem.num_params} HVPs, {hess + eig:.2f} s "
            f"(Objective.hessian {hess:.2f} s + eigvalsh {eig:.2f} s)"
        )


# --------------------------------------------------------------------------------- driver
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="≈2 minutes: small data, no (c)")
    parser.add_argument("--json", default="results/compare.json", help="where to write JSON")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per measurement")
    parser.add_argument(
        "--seeds",
        type=int,
        default=1,
        help="start-vector seeds per rung: a rung counts when every seed is within 1e-3; "
        "HVPs are the median",
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda (anchors run there too)")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch and BLAS threads (default 1: on a shared 2-core machine 2 threads made "
        "single runs 10-100× slower at random)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    limits: Any = contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits

        limits = threadpool_limits(limits=args.threads)  # SciPy's OpenBLAS (ARPACK) too
    except ImportError:
        pass
    # PyHessian calls backward(create_graph=True), which warns about a reference cycle.
    warnings.filterwarnings("ignore", message="Using backward\\(\\) with create_graph=True")
    with limits:
        run(args)


def run(args: argparse.Namespace) -> None:
    quick = args.quick
    repeats = args.repeats or (3 if quick else 5)
    samples = {"a": 256, "b": 128} if quick else {"a": 1024, "b": 512, "c": 2048}
    cap_s = 4.0 if quick else 30.0  # a ladder stops after a rung slower than this
    budget_s = 2.0 if quick else 10.0  # time for the repeats of one timed row

    start = time.perf_counter()
    status = anchor_status()
    solvers = all_solvers(status)
    report: dict[str, Any] = {
        "mode": "quick" if quick else "full",
        "repeats": repeats,
        "seeds": args.seeds,
        "accuracy": ACCURACY,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "device": args.device
        + (f" ({torch.cuda.get_device_name()})" if args.device.startswith("cuda") else ""),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_start": load(),
        "anchors": {k: vars(s) for k, s in status.items()},
        "models": {},
    }
    print(
        f"saddlescope vs anchors, {report['mode']} run: float32 on {report['device']}, "
        f"torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, load {report['load_start']}"
    )
    for s in status.values():
        state = "ok" if s.ok else f"SKIPPED: {s.error}"
        print(f"  anchor {s.distribution} {s.version or ''}: {state}")
    sys.stdout.flush()

    for key, n_samples in samples.items():
        model_start = time.perf_counter()
        problem = make_problem(key, n_samples, args.device)
        targets = ("top1",) if key == "c" else TARGETS
        print(
            f"\n== {problem.title}: n = {problem.num_params:,}, {n_samples:,} samples "
            f"(load {load()}) =="
        )
        entry: dict[str, Any] = {
            "title": problem.title,
            "num_params": problem.num_params,
            "samples": n_samples,
        }
        dense = None
        if key in ("a", "b"):
            dense, dense_info = dense_reference(problem, compute=not quick)
            entry["dense_reference"] = dense_info
        sparse_refs, sparse_info = eigsh_reference(problem, targets)
        entry["eigsh_reference"] = sparse_info | {k: v.tolist() for k, v in sparse_refs.items()}
        if dense is not None:
            refs = extremes(dense)
            gap = max(rel_error(sparse_refs[t], refs[t]) for t in targets)
            entry["reference"] = dense_info["source"]
            note = f"; eigsh 1e-12 reference agrees to {gap:.1e}"
            if "seconds_hessian" in dense_info:
                note += (
                    f"; computed now: H {dense_info['seconds_hessian']:.0f} s + eigvalsh "
                    f"{dense_info['seconds_eigvalsh']:.0f} s"
                )
            print(f"  reference: {dense_info['source']}{note}")
        else:
            refs = sparse_refs
            entry["reference"] = sparse_info["source"]
            print(
                f"  reference: {sparse_info['source']} ({sparse_info['hvps']} HVPs, "
                f"{sparse_info['seconds']:.1f} s)"
            )
        entry["references"] = {t: refs[t].tolist() for t in targets}
        sys.stdout.flush()

        entry["costs"] = section_costs(problem, status, repeats, budget_s)
        print_costs(entry["costs"])
        sys.stdout.flush()

        entry["eigenvalues"] = section_eigs(
            problem, solvers, refs, targets, repeats, cap_s, budget_s, args.seeds
        )
        skipped = [f"{s.label}: SKIPPED ({s.error})" for s in status.values() if not s.ok]
        hvp_ms = entry["costs"].get("HVP saddlescope", {}).get("ms")
        entry["ratios"] = print_eigs(entry["eigenvalues"], refs, skipped, hvp_ms)
        sys.stdout.flush()

        if key == "a":
            dense_problem = make_problem("a", 128, args.device) if quick else problem
            rows, values32 = section_dense(dense_problem, 2 if quick else min(repeats, 3), budget_s)
            entry["dense"] = {"samples": dense_problem.num_samples, "rows": rows}
            print_dense(rows, dense_problem)
            sys.stdout.flush()
            exact = {"dense eigvalsh float32": values32}
            if dense is not None and dense_problem is problem:
                exact["dense eigvalsh float64"] = dense
            entry["inertia"] = section_inertia(dense_problem, exact)
            print_inertia(entry["inertia"], dense_problem, rows)
        entry["seconds_total"] = time.perf_counter() - model_start
        print(f"  ({problem.title}: {entry['seconds_total']:.0f} s in all, load {load()})")
        report["models"][key] = entry
        sys.stdout.flush()

    report["load_end"] = load()
    report["seconds_total"] = time.perf_counter() - start
    print(f"\ntotal {report['seconds_total']:.0f} s; load at the end {report['load_end']}")
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1, default=float))
    print(f"JSON: {path}")


if __name__ == "__main__":
    main()
