"""Kinks: how near θ sits to an activation boundary of a piecewise-linear network.

A ReLU-type network (the ops of :mod:`saddlescope.nonsmooth.ops`: ReLU, LeakyReLU, PReLU, ReLU6,
Hardtanh, Hardswish, clamp, max, max pooling, …) is smooth inside each *linear region* — the
set of θ where every unit, on every sample, stays on one piece — and only piecewise smooth
across. Inside a region the Hessian is the local picture; on a boundary it is not: ∇L jumps
there, and the Hessian autograd returns is that of one side (ReLU′(0) = 0 by torch's
convention). A "critical point" on a boundary is no minimum or saddle in the second-order
sense, and a search that lands on one stalls: every step crosses it and ‖g‖ jumps.

Each kinked unit (an element of a kinked op's input, on one sample) has a signed distance to
its nearest breakpoint, z (its pre-activation for ReLU, z = x − 6 near ReLU6's top, a window's
top-two gap for max pooling). :func:`kink_check` runs the objective's forward pass over all its
batches (held or streamed; one batch's graph at a time) and reports

* the **margin** min |z| over every unit and sample whose z depends on θ (a max-pooling tie
  of two switched-off units does not: θ cannot move it), and the **relative
  margin** min |z|/s, s the root mean square of that op call's input (scale-free in z);
* the **first-order distance** to the nearest boundary in θ, d = min |z|/‖∂z/∂θ‖: the length
  of the shortest move that flips a unit, to first order (exact for a unit that is linear in θ,
  as a first layer's). ‖∂z/∂θ‖ costs a backward pass per unit, so every unit's is first
  estimated from ``probes`` random products (√mean((∂z/∂θ·v)²), v normal: unbiased in square,
  and exactly 0 only for a unit θ cannot move), and computed exactly for the ``candidates``
  units of each batch nearest by that estimate; d is exact among those and otherwise an upper
  bound (a unit the estimate ranked too far could be nearer);
* **on a kink** when d ≤ radius: a move of at most the radius flips a unit. The default radius
  is the dtype's ``grad_tol`` (:func:`~saddlescope.tolerance.default_grad_tol`: float64 1e-8,
  float32 1e-5), read as a length: the resolution at which a search certifies a critical
  point — with curvature of order one, ‖g‖ ≤ grad_tol places the exact critical point within
  about grad_tol of θ, and a boundary nearer than that may lie between them. A caller that
  knows better passes its own (a search its Newton step ‖H⁺g‖, classify the same from its
  spectrum). The searches that stall on a kink end within rounding of the boundary, many
  orders of magnitude inside it;
* the **activation pattern**, a hash of which piece every unit is on over all the data: two
  points with one pattern lie in one linear region (:mod:`saddlescope.nonsmooth.regions`:
  :func:`~saddlescope.nonsmooth.regions.activation_pattern`,
  :class:`~saddlescope.nonsmooth.regions.RegionTrace`),
  so a search can tell when a step crossed a boundary.

A model without kinked ops is answered "smooth" after one forward pass of its first batch. The
user's model is never touched: the ops are seen by a ``TorchFunctionMode`` and the module each
ran in by forward hooks on the objective's own copy, removed afterwards (its hook dicts are
left as they were; :mod:`saddlescope.nonsmooth.watch`).

Exact zeros of piecewise-linear networks
----------------------------------------
In a ReLU network many Hessian eigenvalues are *exactly* zero, not merely small. A unit that is
off on every sample (z < 0 throughout: a "dead" unit) passes nothing forward and nothing back,
so the loss does not depend on its incoming weights, its bias or its outgoing weights anywhere
in the region: those rows and columns of H are exact zeros, and each is an eigenvector with
eigenvalue 0. (Other exact zeros come from parameters the loss does not use, and, at a critical
point, from the positive-rescaling symmetry of ReLU units — those are zero in exact arithmetic
but computed as rounding.) An eigensolver returns such eigenvalues as rounding noise of size
~ε·max|λ| with either sign. The tolerance's zero band, |λ| ≤ max(atol, rtol·max|λ|) with rtol
far above ε (float64 1e-6, float32 3e-5; :mod:`saddlescope.tolerance`), counts them as zero:
they are flat directions, neither ascent nor descent. Counting by the sign of the computed
value (eig > 0) instead turns each into a coin flip, which is why a naive "minimum ratio" of a
ReLU net at a minimum is ≈ 0.3–0.6 and changes with the dtype. The minimum ratio n₊/n keeps
them in n: a ReLU minimum with k exact zeros of n has ratio at most (n − k)/n, and is not
strict. :func:`~saddlescope.nonsmooth.exact_zeros.exact_zero_directions` counts the structural
ones, so a figure can say "k of n eigenvalues are exact zeros".
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor

from saddlescope.checks import check_int, check_positive
from saddlescope.nonsmooth.watch import KinkCall, hash_calls, joined_pattern, watched_passes
from saddlescope.objective import Objective
from saddlescope.tolerance import default_grad_tol

__all__ = ["KinkCheck", "NearestKink", "kink_check"]

F64 = torch.float64
DEFAULT_CANDIDATES = 16  # units per batch whose ‖∂z/∂θ‖ is computed exactly
DEFAULT_PROBES = 2  # random products per batch behind the estimate of every unit's ‖∂z/∂θ‖


@dataclass(frozen=True)
class NearestKink:
    """The unit nearest to its boundary, in θ (to first order).

    Attributes:
        op: the kinked op (``relu``, ``hardtanh``, ``max_pool2d``…).
        module: the module it ran in, as "path (class)" ("(model) (class)" for the top level,
            "(loss)" for the loss function outside the model).
        batch: the batch's position in the data.
        call: which kinked call of that batch's forward pass it was (0 first).
        element: the unit's index in the op's input (e.g. (sample, feature); for max pooling
            (image plane, window)).
        z: its signed distance to the breakpoint, in the input's units.
        grad_norm: ‖∂z/∂θ‖.
    """

    op: str
    module: str
    batch: int
    call: int
    element: tuple[int, ...]
    z: float
    grad_norm: float

    @property
    def distance(self) -> float:
        """|z|/‖∂z/∂θ‖, the first-order length of a move that puts it on the boundary."""
        return abs(self.z) / self.grad_norm if self.grad_norm > 0 else math.inf

    def to_dict(self) -> dict[str, Any]:
        """The fields and the distance, by name."""
        return {**self.__dict__, "element": list(self.element), "distance": self.distance}

    def __str__(self) -> str:
        return (
            f"{self.op} in {self.module}, batch {self.batch}, element {self.element}: "
            f"z = {self.z:.3g}, ‖∂z/∂θ‖ = {self.grad_norm:.3g}, distance {self.distance:.3g}"
        )


@dataclass(frozen=True)
class KinkCheck:
    """How near θ lies to an activation boundary (see the module docstring for the terms).

    Attributes:
        smooth: no unit of a kinked op depends on θ, measured or not (nothing to check).
        radius: the radius a boundary counts as under θ within.
        distance: the first-order distance in θ to the nearest boundary found (inf if none).
        margin: min |z| over all units and samples (inf if none).
        relative_margin: min |z|/s, s the RMS of that op call's input (inf if none).
        units: the units (elements × samples) seen whose z depends on θ.
        within: of the ``evaluated`` units, those with |z| ≤ ‖∂z/∂θ‖·radius.
        evaluated: the units whose ‖∂z/∂θ‖ was computed (the nearest few of each batch).
        nearest: the unit at ``distance`` (None when smooth).
        pattern: the :func:`activation_pattern` hash ("" when smooth).
        ops: each kinked op seen, as "op in module", in order.
        unmeasured: kinked ops seen whose boundaries are not measured (their kinks are not in
            the figures above; see :mod:`saddlescope.nonsmooth.ops`).
    """

    smooth: bool
    radius: float
    distance: float = math.inf
    margin: float = math.inf
    relative_margin: float = math.inf
    units: int = 0
    within: int = 0
    evaluated: int = 0
    nearest: NearestKink | None = None
    pattern: str = ""
    ops: tuple[str, ...] = ()
    unmeasured: tuple[str, ...] = field(default=())

    @property
    def on_kink(self) -> bool:
        """True when a move of at most ``radius`` (to first order) puts a unit on its boundary."""
        return self.distance <= self.radius

    def to_dict(self) -> dict[str, Any]:
        """Every field, ``on_kink``, and the nearest unit as a dict."""
        d = {k: v for k, v in self.__dict__.items() if k != "nearest"}
        d.update(ops=list(self.ops), unmeasured=list(self.unmeasured), on_kink=self.on_kink)
        d["nearest"] = None if self.nearest is None else self.nearest.to_dict()
        return d

    def __str__(self) -> str:
        skipped = f"; not measured: {', '.join(self.unmeasured)}" if self.unmeasured else ""
        if self.smooth:
            return "smooth: no piecewise-linear unit depends on θ"
        if not self.units:
            return f"no measured piecewise-linear unit{skipped}"
        verdict = "on a kink" if self.on_kink else "off kinks"
        return (
            f"{verdict}: nearest boundary at distance {self.distance:.3g} "
            f"({'≤' if self.on_kink else '>'} radius {self.radius:.3g}; {self.within} of "
            f"{self.evaluated} nearest units within) — {self.nearest}\n"
            f"  {self.units} units; margin |z| {self.margin:.3g}, relative "
            f"{self.relative_margin:.3g}; pattern {self.pattern[:12]}; ops: "
            f"{', '.join(self.ops)}{skipped}"
        )


def _speeds(calls: list[KinkCall], leaf: Tensor, probes: int, gen: torch.Generator) -> Tensor:
    """Per unit, sqrt(mean_k ((∂z/∂θ)·v_k)²) for random normal v_k: an estimate of ‖∂z/∂θ‖.

    Its expected square is ‖∂z/∂θ‖², and it is exactly 0 only where ∂z/∂θ is (a tie of two
    switched-off units in a max-pooling window). The products J·v come from the double-backward
    trick: J·v = ∂/∂u [(Jᵀu)·v], one backward with a graph and one more per probe.
    """
    z = torch.cat([c.breaks.z.flatten() for c in calls])
    with torch.inference_mode(False), torch.enable_grad():
        u = torch.zeros_like(z, requires_grad=True)
        (jt,) = torch.autograd.grad(
            z, leaf, u, retain_graph=True, create_graph=True, allow_unused=True
        )
        if jt is None or not jt.requires_grad:  # no double backward: rank by |z| alone
            return torch.ones_like(z).detach()
        total = torch.zeros_like(z, requires_grad=False)
        for _ in range(probes):
            v = torch.randn(leaf.shape, generator=gen, dtype=torch.float64).to(leaf)
            (jv,) = torch.autograd.grad(jt, u, v, retain_graph=True, allow_unused=True)
            if jv is not None:
                total += jv.detach() ** 2
    return (total / probes).sqrt()


class _Tally:
    """The running figures of a :func:`kink_check` pass, batch by batch."""

    def __init__(self, candidates: int, radius: float, probes: int, seed: int) -> None:
        self.candidates, self.radius, self.probes = candidates, radius, probes
        self.gen = torch.Generator().manual_seed(seed)
        self.hasher = hashlib.blake2b(digest_size=16)
        self.units = self.within = self.evaluated = 0
        self.margin = self.relative = math.inf
        self.nearest: NearestKink | None = None
        self.ops: dict[str, None] = {}

    def add(self, batch: int, calls: list[KinkCall], leaf: Tensor) -> None:
        """Take one batch's calls (their graphs to ``leaf`` still held)."""
        hash_calls(self.hasher, calls)
        self.ops.update((f"{c.op} in {c.module}", None) for c in calls)
        if not calls:
            return
        z = torch.cat([c.breaks.z.detach().flatten().abs() for c in calls])
        sizes = [c.breaks.z.numel() for c in calls]
        scale = torch.cat(
            [torch.full((n,), c.breaks.scale, dtype=F64) for n, c in zip(sizes, calls)]
        )
        speed = _speeds(calls, leaf, self.probes, self.gen)
        moving = speed > 0
        count = int(moving.sum())
        if not count:
            return
        self.units += count
        self.margin = min(self.margin, float(z[moving].min()))
        relative = z.to(F64).cpu()[moving.cpu()] / scale[moving.cpu()]
        self.relative = min(self.relative, float(relative.min()))
        estimate = torch.where(moving, z / speed, torch.full_like(z, math.inf))
        picked = estimate.topk(min(self.candidates, count), largest=False).indices
        starts = np.cumsum([0, *sizes])
        for k in picked.tolist():
            j = int(np.searchsorted(starts, k, side="right")) - 1
            self._evaluate(batch, j, calls[j], k - int(starts[j]), leaf)

    def _evaluate(self, batch: int, j: int, call: KinkCall, i: int, leaf: Tensor) -> None:
        """‖∂z/∂θ‖ of element ``i`` of call ``j``: one backward pass."""
        z = call.breaks.z
        with torch.inference_mode(False), torch.enable_grad():
            (g,) = torch.autograd.grad(z.flatten()[i], leaf, retain_graph=True, allow_unused=True)
        unit = NearestKink(
            op=call.op,
            module=call.module,
            batch=batch,
            call=j,
            element=tuple(int(e) for e in np.unravel_index(i, tuple(z.shape))),
            z=float(z.detach().flatten()[i]),
            grad_norm=0.0 if g is None else float(torch.linalg.vector_norm(g)),
        )
        self.evaluated += 1
        self.within += unit.distance <= self.radius
        if self.nearest is None or unit.distance < self.nearest.distance:
            self.nearest = unit

    def result(self, unmeasured: tuple[str, ...]) -> KinkCheck:
        """The check, from everything taken."""
        if not self.units:
            return KinkCheck(smooth=not unmeasured, radius=self.radius, unmeasured=unmeasured)
        return KinkCheck(
            smooth=False,
            radius=self.radius,
            distance=math.inf if self.nearest is None else self.nearest.distance,
            margin=self.margin,
            relative_margin=self.relative,
            units=self.units,
            within=self.within,
            evaluated=self.evaluated,
            nearest=self.nearest,
            pattern=self.hasher.hexdigest(),
            ops=tuple(self.ops),
            unmeasured=unmeasured,
        )


def kink_check(
    obj: Objective,
    theta: Tensor,
    *,
    radius: float | None = None,
    candidates: int = DEFAULT_CANDIDATES,
    probes: int = DEFAULT_PROBES,
    seed: int = 0,
) -> KinkCheck:
    """How near θ lies to an activation boundary: margins, distance, pattern, on a kink or not.

    One forward pass over the data with a graph (one batch at a time) and ``candidates``
    backward passes per batch; a smooth model costs one forward pass of its first batch.

    Args:
        obj: the objective (held or streamed data alike).
        theta: the parameters.
        radius: a boundary within this first-order distance of θ puts θ on a kink (default
            the dtype's grad_tol, :func:`~saddlescope.tolerance.default_grad_tol`); a search
            passes its resolution, e.g. its Newton step's length.
        candidates: per batch, how many units (those nearest by the estimate) get their
            ‖∂z/∂θ‖ computed exactly (default 16); more makes the distance exact more often.
        probes: random products per batch behind the estimate of every unit's ‖∂z/∂θ‖
            (default 2).
        seed: seeds those products' random vectors.

    >>> import torch
    >>> from saddlescope import Objective, kink_check
    >>> net = torch.nn.Sequential(torch.nn.Linear(1, 1), torch.nn.ReLU())
    >>> x = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
    >>> y = torch.tensor([[-1.0], [1.0]], dtype=torch.float64)
    >>> obj = Objective(net, torch.nn.MSELoss(), (x, y), dtype=torch.float64)
    >>> check = kink_check(obj, torch.tensor([1.0, 0.0]))  # w = 1, b = 0: z = 0 at x = 0
    >>> check.on_kink, check.margin, check.nearest.element
    (True, 0.0, (0, 0))
    """
    theta = obj.check_theta(theta)
    if radius is None:
        radius = default_grad_tol(obj.dtype)
    tally = _Tally(
        check_int("candidates", candidates, 1),
        check_positive("radius", radius, allow_zero=True),
        check_int("probes", probes, 1),
        seed,
    )
    unmeasured: dict[str, None] = {}
    for i, (batch, live, leaf, skipped) in enumerate(watched_passes(obj, theta)):
        tally.add(batch, live, leaf)
        unmeasured.update(dict.fromkeys(skipped))
        if i == 0 and not live and not unmeasured:
            break
    return _merged(obj.reducer.gather(tally.result(tuple(unmeasured))))


def _merged(checks: list[KinkCheck]) -> KinkCheck:
    """One check from the ranks' checks of their shards (the nearest unit of all of them)."""
    if len(checks) == 1:
        return checks[0]
    near = min(checks, key=lambda c: c.distance)
    return replace(
        near,
        smooth=all(c.smooth for c in checks),
        margin=min(c.margin for c in checks),
        relative_margin=min(c.relative_margin for c in checks),
        units=sum(c.units for c in checks),
        within=sum(c.within for c in checks),
        evaluated=sum(c.evaluated for c in checks),
        pattern=joined_pattern([c.pattern for c in checks]),
        ops=tuple(dict.fromkeys(op for c in checks for op in c.ops)),
        unmeasured=tuple(dict.fromkeys(op for c in checks for op in c.unmeasured)),
    )
