"""Do the critical-point searches find the true critical points of a linear network?

    python -m benchmarks.ground_truth [--starts 50] [--scale 1.0] [--threads 1]
    python -m benchmarks.ground_truth --net 16-4-16 [--starts 10]

The two-layer linear network of Baldi & Hornik (1989), ``toy.linear_network()`` (4 → 1 → 3,
Σ's eigenvalues 4, 2, 1, float64), whose critical points, losses and Hessian indices are known
in closed form (``toy.linear_network_critical_points``). From seeded Gaussian starts θ0 ~
N(0, scale²·I), each method runs; a start succeeds when the search converges (‖g‖ ≤ 1e-10) to
a point whose W2·W1 and loss are a closed-form critical point's, ``classify`` gives that
point's kind there, and that point's n₋ and n₀ at the balanced point of its GL(1) orbit
(W1 → a·W1, W2 → W2/a: same inertia, best-conditioned Hessian). Prints per method the
successes, how many of them had the right n₋ and n₀ at the found θ itself too ("raw"; far from
balanced the small eigenvalues fall under the relative zero tolerance), the median steps, HVPs
and seconds of the converged runs, and what the starts ended at.

``--net 16-4-16`` is a deep linear network of Frye et al.'s size (16 → 4 → 16, no biases, Σ's
eigenvalues 16, 15, …, 1): per finder, how many starts converged to a closed-form critical point
(loss and W2·W1 matched; the inertia check needs p = 1), ended gradient-flat or at a budget,
with Newton-MR both with tight MINRES solves and with a forcing term capped at 0.01.
"""

from __future__ import annotations

import argparse
import collections
import statistics

import torch

from saddlescope import Objective, classify, find_critical_point, toy

METHODS = ("newton-mr", "newton-tr", "lm", "gradnorm", "auto")
MAX_STEPS = {"newton-mr": 200, "newton-tr": 200, "lm": 200, "gradnorm": 1000, "auto": 500}
# Tighter than the float64 default (1e-8): the counts are read at the balanced point of the
# GL(1) orbit, whose gradient is the found one rescaled, and must stay critical there.
GRAD_TOL = 1e-10


def start(seed: int, n: int, scale: float) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return scale * torch.randn(n, generator=gen, dtype=torch.float64)


def med(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


WIDE = {  # (label, method, max_steps, extra options) for --net 16-4-16
    "auto": ("auto", 500, {}),
    "newton-mr": ("newton-mr", 200, {}),
    "newton-mr, forcing 0.01": ("newton-mr", 200, {"minres_forcing": 0.01}),
    "newton-tr": ("newton-tr", 200, {}),
    "gradnorm": ("gradnorm", 2000, {}),
}


def wide(starts: int, scale: float) -> None:
    """The 16 → 4 → 16 linear network: per finder, what the starts ended at."""
    eigenvalues = tuple(float(x) for x in range(16, 0, -1))
    model, loss_fn, data = toy.linear_network(eigenvalues, n_in=16, hidden=4)
    obj = Objective(model, loss_fn, data, dtype=torch.float64)
    points = toy.linear_network_critical_points(data, 4)
    print(
        f"linear network 16 → 4 → 16, n = {obj.num_params}; {starts} starts; {len(points)} points"
    )
    for label, (method, steps, extra) in WIDE.items():
        ends: collections.Counter[str] = collections.Counter()
        hvps = []
        for seed in range(starts):
            res = find_critical_point(
                obj, start(seed, obj.num_params, scale), method=method, max_steps=steps,
                grad_tol=GRAD_TOL, **extra,
            )  # fmt: skip
            hvps.append(res.hvps)
            matched = res.converged and toy.match_linear_critical_point(res.theta, points)
            ends["matched" if matched else res.status] += 1
        print(f"{label:<24} {dict(sorted(ends.items()))}  median HVPs {med(hvps):.0f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=50)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (7 parameters)")
    parser.add_argument("--net", choices=("4-1-3", "16-4-16"), default="4-1-3")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.net == "16-4-16":
        wide(args.starts, args.scale)
        return
    model, loss_fn, data = toy.linear_network()
    obj = Objective(model, loss_fn, data, dtype=torch.float64)
    points = toy.linear_network_critical_points(data)
    bound = min(p.loss for p in points)  # the global minimum: a true lower bound of L
    n_in, n_out = data[0].shape[1], data[1].shape[1]
    print(
        f"linear network {n_in} → 1 → {n_out}, n = {obj.num_params}; {args.starts} starts "
        f"θ0 ~ N(0, {args.scale:g}²·I); max steps {MAX_STEPS}"
    )
    print(
        "critical points: "
        + ", ".join(f"S={p.subset} {p.kind} n-={p.inertia.n_neg}" for p in points)
    )
    header = (
        f"{'method':<10} {'success':>9} {'raw':>4} {'steps':>6} {'HVPs':>6} {'seconds':>8}  found"
    )
    print(header)
    for method in METHODS:
        ok, raw, steps, hvps, secs = 0, 0, [], [], []
        found: collections.Counter[str] = collections.Counter()
        for seed in range(args.starts):
            theta0 = start(seed, obj.num_params, args.scale)
            res = find_critical_point(
                obj, theta0, method=method, max_steps=MAX_STEPS[method], grad_tol=GRAD_TOL
            )
            if not res.converged:
                found[res.status] += 1
                continue
            steps.append(res.steps)
            hvps.append(res.hvps)
            secs.append(res.seconds)
            p = toy.match_linear_critical_point(res.theta, points)
            if p is None or abs(res.loss - p.loss) > 1e-9:
                found["unmatched"] += 1
                continue
            cp = classify(obj, res.theta, loss_lower_bound=bound)
            kind_ok = cp.kind == p.kind
            raw_ok = (cp.kind, cp.inertia.n_neg, cp.inertia.n_zero) == (
                p.kind,
                p.inertia.n_neg,
                p.inertia.n_zero,
            )
            if p.subset:  # count at the balanced point of the GL(1) orbit (same inertia)
                cp = classify(obj, toy.balance_linear_network(res.theta, n_in, n_out))
            if not kind_ok or (cp.kind, cp.inertia.n_neg, cp.inertia.n_zero) != (
                p.kind,
                p.inertia.n_neg,
                p.inertia.n_zero,
            ):
                found["misclassified"] += 1
            else:
                ok += 1
                raw += raw_ok
                found["S=" + ",".join(map(str, p.subset)) if p.subset else "origin"] += 1
        print(
            f"{method:<10} {ok:>4}/{args.starts:<4} {raw:>4} {med(steps):>6.0f} {med(hvps):>6.0f} "
            f"{med(secs):>8.4f}  {dict(sorted(found.items()))}"
        )


if __name__ == "__main__":
    main()
