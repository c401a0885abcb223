"""MINRES in torch: x ≈ argmin ‖(A − σI)x − b‖ for a symmetric operator, on its own device.

Paige & Saunders' MINRES (1975) from products only, written over torch vectors so that a solve on
a GPU never leaves it (SciPy's ``minres`` is the reference in the tests). Besides the solution it
returns why it stopped — a solve that ran out of iterations is never read as converged — and
detects non-positive curvature as Liu & Roosta (2022) show it can be, for free from the
recurrence: at iteration k the residual r_{k−1} of the previous iterate has
r_{k−1}ᵀ(A − σI)r_{k−1} ≤ 0 exactly when c_{k−1}·γ̄_k ≥ 0 (SciPy's sign convention, c₀ = −1).

It keeps (A − σI)x alongside x (three more vectors, no more products), so the residual
b − (A − σI)x is exact up to rounding and is the non-positive-curvature direction when one is
found. Statuses:

* ``"converged"`` — ‖r‖ ≤ rtol·‖b‖;
* ``"least-squares"`` — ‖(A − σI)r‖ ≤ rtol·‖A − σI‖·‖r‖: b is not in the range, x is a
  least-squares solution (not the minimum-norm one: x keeps a null-space part of b, as MINRES
  does; MINRES-QLP would remove it);
* ``"npc"`` — non-positive curvature found and ``stop_on_npc``: x is the iterate whose residual
  it is (a descent direction of ½‖(A − σI)x − b‖² by Liu & Roosta's monotonicity, or 0 at the
  first iteration), ``npc`` the direction;
* ``"boundary"`` — an iterate left the ball ‖x‖ ≤ ``max_norm`` (a trust region): x is that
  iterate scaled back onto the sphere. Until non-positive curvature appears, MINRES's iterates
  grow in norm (Liu & Roosta, 2022), so this is the Steihaug–Toint truncation for MINRES: a short
  radius gives an early, gradient-like Krylov iterate, not a shortened Newton step;
* ``"maxiter"`` — none of these within ``maxiter`` iterations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from saddlescope.checks import check_finite, check_int, check_positive
from saddlescope.operators import Operator

__all__ = ["MinresResult", "minres"]

_TINY = 1e-300
_EPS = 1e-15


@dataclass(frozen=True, eq=False)
class MinresResult:
    """What :func:`minres` found and why it stopped.

    Attributes:
        x: the solution (the last iterate).
        Ax: (A − σI)·x, kept by the recurrence (no extra product).
        status: "converged", "least-squares", "npc", "boundary" or "maxiter" (module
            docstring).
        iterations: iterations run (one product each).
        residual_norm: ‖b − (A − σI)x‖.
        rhs_norm: ‖b‖.
        npc: a direction d with dᵀ(A − σI)d ≤ 0 when one was detected, else None.
        npc_curvature: dᵀ(A − σI)d/‖d‖² of that direction, measured (one product more) when
            the solve stopped on it (``stop_on_npc``); else None.
        products: the products used: ``iterations``, plus one for ``npc_curvature``.
    """

    x: Tensor
    Ax: Tensor
    status: str
    iterations: int
    residual_norm: float
    rhs_norm: float
    npc: Tensor | None = None
    npc_curvature: float | None = None

    @property
    def products(self) -> int:
        """The products used: the iterations, and one for the npc curvature when measured."""
        return self.iterations + (self.npc_curvature is not None)

    @property
    def relative_residual(self) -> float:
        """‖b − (A − σI)x‖/‖b‖ (0 when b = 0)."""
        return self.residual_norm / self.rhs_norm if self.rhs_norm > 0 else 0.0

    @property
    def solved(self) -> bool:
        """True when the solve ended on its tolerance ("converged" or "least-squares")."""
        return self.status in ("converged", "least-squares")

    def to_dict(self) -> dict[str, Any]:
        """The scalars by name (the vectors left out)."""
        return {
            "status": self.status,
            "iterations": self.iterations,
            "residual_norm": self.residual_norm,
            "rhs_norm": self.rhs_norm,
            "relative_residual": self.relative_residual,
            "npc_curvature": self.npc_curvature,
        }

    def __str__(self) -> str:
        npc = "" if self.npc_curvature is None else f", npc curvature {self.npc_curvature:.3g}"
        return (
            f"MINRES {self.status} after {self.iterations} iterations: ‖r‖/‖b‖ "
            f"{self.relative_residual:.3g}{npc}"
        )


@dataclass
class _Recurrence:
    """The scalars and vectors MINRES carries from one iteration to the next."""

    v_prev: Tensor  # r1 in Paige–Saunders: β_{k−1}·v_{k−1}
    v_curr: Tensor  # r2: β_k·v_k
    w: Tensor
    w1: Tensor
    Aw: Tensor
    Aw1: Tensor
    beta: float
    oldb: float = 0.0
    dbar: float = 0.0
    epsln: float = 0.0
    phibar: float = 0.0
    cs: float = -1.0
    sn: float = 0.0
    anorm_sq: float = 0.0


def minres(
    op: Operator,
    b: Tensor,
    *,
    shift: float = 0.0,
    rtol: float = 1e-8,
    maxiter: int | None = None,
    stop_on_npc: bool = False,
    ls_rtol: float | None = None,
    max_norm: float | None = None,
) -> MinresResult:
    """Solve (A − σI)x = b in the least-squares sense by MINRES, from x₀ = 0.

    Args:
        op: the symmetric operator A (anything with ``op @ v``).
        b: the right-hand side, a vector in the operator's dtype and device.
        shift: σ, subtracted from A's diagonal.
        rtol: the relative residual of the "converged" test, ‖r‖ ≤ rtol·‖b‖.
        maxiter: the most iterations, one product each (default: 5 × the dimension, as SciPy:
            rounding can make a solve need more than n).
        stop_on_npc: stop at the first non-positive curvature direction (status "npc").
        ls_rtol: the "least-squares" test's tolerance, ‖(A − σI)r‖ ≤ ls_rtol·‖A − σI‖·‖r‖
            (default ``rtol``). An inexact Newton solve loosens ``rtol`` but should keep this
            one tight: a loose one stops at once where b is far from the range.
        max_norm: a trust region's radius: stop when an iterate leaves ‖x‖ ≤ max_norm and
            return it scaled onto the sphere (status "boundary"; default: no limit).
    """
    check_positive("rtol", rtol)
    ls_rtol = rtol if ls_rtol is None else check_positive("ls_rtol", ls_rtol)
    shift = check_finite("shift", shift)
    radius = math.inf if max_norm is None else check_positive("max_norm", max_norm)
    n = b.numel()
    maxiter = 5 * n if maxiter is None else check_int("maxiter", maxiter, 1)
    beta1 = float(torch.linalg.vector_norm(b))
    x, Ax = torch.zeros_like(b), torch.zeros_like(b)
    if beta1 == 0:
        return MinresResult(x, Ax, "converged", 0, 0.0, 0.0)
    zero = torch.zeros_like(b)
    s = _Recurrence(zero, b.clone(), zero, zero, zero, zero, beta=beta1, phibar=beta1)
    status, k, npc = "maxiter", 0, None
    while k < maxiter:
        k += 1
        v = s.v_curr / s.beta
        Av = op @ v - shift * v if shift else op @ v
        gbar, prev_cs, phi, root = _advance(s, v, Av)
        if prev_cs * gbar >= 0 and npc is None:
            npc = b - Ax  # r_{k−1}: curvature ≤ 0
            if stop_on_npc:
                status = "npc"
                break
        if _least_squares(s, root, ls_rtol):  # r_{k−1} is (nearly) orthogonal to the range
            status = "least-squares"
            break
        x = x + phi * s.w
        Ax = Ax + phi * s.Aw
        norm = float(torch.linalg.vector_norm(x)) if radius < math.inf else 0.0
        if norm > radius:
            x, Ax, status = x * (radius / norm), Ax * (radius / norm), "boundary"
            break
        if abs(s.phibar) <= rtol * beta1:
            status = "converged"
            break
        if s.beta <= _EPS * math.sqrt(s.anorm_sq):  # an invariant subspace: x is final
            status = "least-squares"
            break
    r = b - Ax
    return MinresResult(
        x, Ax, status, k, float(torch.linalg.vector_norm(r)), beta1, npc,
        _curvature(op, npc, shift) if status == "npc" and npc is not None else None,
    )  # fmt: skip


def _advance(s: _Recurrence, v: Tensor, Av: Tensor) -> tuple[float, float, float, float]:
    """One Lanczos step and Givens rotation: updates ``s``; returns (γ̄, c_{k−1}, φ_k, root).

    root = ‖(γ̄, δ̄)‖ is Paige–Saunders' ‖(A − σI)r_{k−1}‖/‖r_{k−1}‖.
    """
    y = Av - (s.beta / s.oldb) * s.v_prev if s.oldb else Av.clone()
    alfa = float(v @ y)
    y = y - (alfa / s.beta) * s.v_curr
    s.v_prev, s.v_curr = s.v_curr, y
    s.oldb, s.beta = s.beta, float(torch.linalg.vector_norm(y))
    s.anorm_sq += alfa**2 + s.oldb**2 + s.beta**2
    oldeps, prev_cs = s.epsln, s.cs
    delta = s.cs * s.dbar + s.sn * alfa
    gbar = s.sn * s.dbar - s.cs * alfa
    s.epsln = s.sn * s.beta
    s.dbar = -s.cs * s.beta
    root = math.hypot(gbar, s.dbar)
    gamma = max(math.hypot(gbar, s.beta), _TINY)
    s.cs, s.sn = gbar / gamma, s.beta / gamma
    phi = s.cs * s.phibar
    s.phibar = s.sn * s.phibar
    w_new = (v - oldeps * s.w1 - delta * s.w) / gamma
    Aw_new = (Av - oldeps * s.Aw1 - delta * s.Aw) / gamma
    s.w1, s.w, s.Aw1, s.Aw = s.w, w_new, s.Aw, Aw_new
    return gbar, prev_cs, phi, root


def _least_squares(s: _Recurrence, root: float, rtol: float) -> bool:
    """True when ‖(A − σI)r‖ ≤ rtol·‖A − σI‖·‖r‖ for the current iterate's residual r."""
    return root <= rtol * math.sqrt(s.anorm_sq)


def _curvature(op: Operator, d: Tensor, shift: float) -> float:
    """dᵀ(A − σI)d/‖d‖², from one product."""
    dd = float(d @ d)
    if dd == 0:
        return 0.0
    return (float(d @ (op @ d)) - shift * dd) / dd
