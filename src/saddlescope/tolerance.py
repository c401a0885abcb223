"""One vocabulary for "small": the tolerances, their defaults, and the inertia they decide.

* ``grad_tol`` — θ is **critical** when ‖∇L(θ)‖ ≤ grad_tol.
* ``rtol``, ``atol`` — an eigenvalue is **zero** when |λ| ≤ max(atol, rtol·max|λ|) (the *zero
  band*; its half-width is the *threshold*); above it positive, below it negative.
* ``lanczos_tol`` — the relative accuracy Lanczos runs to; ``minres_rtol`` — MINRES's relative
  residual; ``flat_tol`` — the flatness ‖Hp + g‖/‖g‖ from which a stalled search is
  gradient-flat; ``stall_grad_norm`` — the gradient norm at or below which an escape method
  (or :class:`~saddlescope.saddle_escape.SaddleEscape`) looks for a way out. Different things,
  different names.

Every default is defined here, once, and the library, the CLI and the survey all take it from
here. The defaults follow the dtype: rtol float64 1e-6, float32 3e-5 (just above the rounding
of float32's small eigenvalues, measured against float64 on real models) and grad_tol float64
1e-8, float32 1e-5 — gradients and eigenvalues computed in a dtype cannot be trusted much below
those levels.

:class:`Inertia` is (n₋, n₀, n₊): exact counts of a complete spectrum, or estimates with
confidence intervals (SLQ); the index is n₋/n and the minimum ratio n₊/n.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from saddlescope.checks import check_positive
from saddlescope.errors import InvalidInputError

__all__ = [
    "FLAT_TOL",
    "LANCZOS_TOL",
    "MINRES_RTOL",
    "STALL_GRAD_NORM",
    "Inertia",
    "Tolerance",
    "default_grad_tol",
    "default_rtol",
]

LANCZOS_TOL = 1e-8  # relative accuracy of Lanczos eigenvalues
MINRES_RTOL = 1e-8  # relative residual of MINRES solves (Newton-MR, gradient flatness)
FLAT_TOL = 0.5  # ‖Hp + g‖/‖g‖ from which a stalled search is gradient-flat
STALL_GRAD_NORM = 1e-3  # ‖g‖ at or below which an escape method (or SaddleEscape) acts

_RTOL = {torch.float64: 1e-6, torch.float32: 3e-5}
_RTOL_OTHER = 1e-2  # half precision
_GRAD_TOL = {torch.float64: 1e-8, torch.float32: 1e-5}
_GRAD_TOL_OTHER = 1e-3


def default_rtol(dtype: torch.dtype) -> float:
    """The eigenvalue zero band's relative width by dtype.

    float64: 1e-6. float32: 3e-5, just above float32's own rounding. Against float64 on real
    models (tiny HF BERT and GPT-2, an MLP, a CNN, an LSTM; at init and trained), rounding gave
    eigenvalues that float64 counts zero a sign at rtol 1e-6, and at 3e-6 deeper into training,
    never at 1e-5 or above down to a cross-entropy loss of 3e-6 (at a loss below ε the float32
    Hessian is noise at any band). That noise grows as the loss falls, so the default keeps a
    factor 3 over 1e-5: a band too narrow invents signs, one too wide only leaves a verdict to
    probing. The former √ε-sized 1e-3 counted 92 % of a tiny
    BERT's eigenvalues zero (float64: 61 %) and left 5 of 14 saddles "degenerate"; see
    docs/benchmarks.md ("float32 zero band").

    Args:
        dtype: the dtype the eigenvalues are computed in (float64 1e-6, float32 3e-5, half
            precision 1e-2).
    """
    return _RTOL.get(dtype, _RTOL_OTHER)


def default_grad_tol(dtype: torch.dtype) -> float:
    """The gradient norm at or below which θ is critical, by dtype (float64 1e-8, float32 1e-5).

    Args:
        dtype: the dtype the gradient is computed in (half precision: 1e-3).
    """
    return _GRAD_TOL.get(dtype, _GRAD_TOL_OTHER)


@dataclass(frozen=True)
class Tolerance:
    """What counts as critical (``grad_tol``) and what counts as a zero eigenvalue.

    Attributes:
        grad_tol: θ is critical when ‖∇L(θ)‖ ≤ grad_tol.
        rtol: relative half-width of the zero band, a fraction of max|λ| (in [0, 1)).
        atol: absolute floor of the zero band's half-width.

    >>> tol = Tolerance.resolve(torch.float64)
    >>> tol.grad_tol, tol.rtol, tol.threshold(2.0)
    (1e-08, 1e-06, 2e-06)
    """

    grad_tol: float
    rtol: float
    atol: float = 0.0

    def __post_init__(self) -> None:
        check_positive("grad_tol", self.grad_tol)
        check_positive("rtol", self.rtol, allow_zero=True)
        check_positive("atol", self.atol, allow_zero=True)
        if self.rtol >= 1:
            raise InvalidInputError(f"rtol must be < 1 (a fraction of max|λ|), got {self.rtol}")

    @classmethod
    def resolve(
        cls,
        dtype: torch.dtype,
        *,
        grad_tol: float | None = None,
        rtol: float | None = None,
        atol: float | None = None,
    ) -> Tolerance:
        """The tolerance for work in ``dtype``: each None takes its default for that dtype.

        Args:
            dtype: the dtype the gradients and eigenvalues are computed in.
            grad_tol: ‖∇L‖ at or below which θ is critical (default :func:`default_grad_tol`).
            rtol: the zero band relative to max|λ| (default :func:`default_rtol`).
            atol: the zero band's absolute floor (default 0).
        """
        return cls(
            grad_tol=default_grad_tol(dtype) if grad_tol is None else _number("grad_tol", grad_tol),
            rtol=default_rtol(dtype) if rtol is None else _number("rtol", rtol),
            atol=0.0 if atol is None else _number("atol", atol),
        )

    def threshold(self, scale: float) -> float:
        """The zero band's half-width max(atol, rtol·scale), scale being max|λ|.

        Args:
            scale: max|λ| of the whole spectrum (or an estimate of it).
        """
        return max(self.atol, self.rtol * float(scale))

    def inertia(self, eigenvalues: Tensor, scale: float | None = None) -> Inertia:
        """Exact (n₋, n₀, n₊) of a complete set of eigenvalues.

        Args:
            eigenvalues: every eigenvalue of the matrix.
            scale: the max|λ| the zero band is relative to; None (default) takes it from
                ``eigenvalues``.
        """
        if scale is None:
            scale = float(eigenvalues.abs().max()) if eigenvalues.numel() else 0.0
        return Inertia.of_values(eigenvalues, self.threshold(scale))

    def to_dict(self) -> dict[str, float]:
        """The three numbers, by name."""
        return {"grad_tol": self.grad_tol, "rtol": self.rtol, "atol": self.atol}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Tolerance:
        """Inverse of :meth:`to_dict` (validated: the dict may come from a file).

        Args:
            d: a dict with ``grad_tol``, ``rtol`` and ``atol``.
        """
        return cls(float(d["grad_tol"]), float(d["rtol"]), float(d["atol"]))

    def __str__(self) -> str:
        return f"‖g‖ ≤ {self.grad_tol:g}; |λ| ≤ max({self.atol:g}, {self.rtol:g}·max|λ|) is zero"


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool):
        raise InvalidInputError(f"{name} must be a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{name} must be a number, got {value!r}") from None


Bars = tuple[tuple[float, float], tuple[float, float], tuple[float, float]]


def _bars(pairs: Any) -> Bars:
    """Three (low, high) pairs, as floats, from any sequence of three pairs (a decoded file)."""
    neg, zero, pos = ((float(lo), float(hi)) for lo, hi in pairs)
    return neg, zero, pos


@dataclass(frozen=True)
class Inertia:
    """(n₋, n₀, n₊): how many eigenvalues are negative, zero and positive at a tolerance.

    Exact counts (integers) come from a complete spectrum; estimated ones (floats) carry
    ``bars``, a confidence interval (low, high) for each count at ``confidence``.

    Attributes:
        n_neg: eigenvalues below −threshold.
        n_zero: eigenvalues within the zero band.
        n_pos: eigenvalues above +threshold.
        bars: ((low, high) of n₋, of n₀, of n₊) when estimated; None when exact.
        confidence: the bars' confidence level (None when exact).

    >>> Inertia(1, 0, 1).index, Inertia(1, 0, 1).minimum_ratio
    (0.5, 0.5)
    """

    n_neg: float
    n_zero: float
    n_pos: float
    bars: Bars | None = None
    confidence: float | None = None

    @classmethod
    def of_values(cls, eigenvalues: Tensor, threshold: float) -> Inertia:
        """Exact counts of ``eigenvalues`` against the zero band |λ| ≤ ``threshold``.

        Args:
            eigenvalues: the eigenvalues to count (all of them, for a true inertia).
            threshold: the zero band's half-width max(atol, rtol·max|λ|).
        """
        neg = int((eigenvalues < -threshold).sum())
        pos = int((eigenvalues > threshold).sum())
        return cls(neg, eigenvalues.numel() - neg - pos, pos)

    @property
    def estimated(self) -> bool:
        """True when the counts are estimates with error bars."""
        return self.bars is not None

    @property
    def n(self) -> float:
        """The number of eigenvalues counted (the dimension)."""
        return self.n_neg + self.n_zero + self.n_pos

    @property
    def index(self) -> float:
        """n₋/n, the fraction of negative eigenvalues (Dauphin et al.'s α)."""
        return self.n_neg / self.n

    @property
    def minimum_ratio(self) -> float:
        """n₊/n, the fraction of positive eigenvalues: 1 at a strict local minimum."""
        return self.n_pos / self.n

    def error(self, which: str) -> float:
        """Half-width that covers the bar of ``which``; 0 when exact.

        Args:
            which: the count: "neg", "zero" or "pos".
        """
        if self.bars is None:
            return 0.0
        value = {"neg": self.n_neg, "zero": self.n_zero, "pos": self.n_pos}[which]
        low, high = self.bars[("neg", "zero", "pos").index(which)]
        return max(high - value, value - low)

    @property
    def index_err(self) -> float:
        """The index's error bar (0 when exact)."""
        return self.error("neg") / self.n

    @property
    def minimum_ratio_err(self) -> float:
        """The minimum ratio's error bar (0 when exact)."""
        return self.error("pos") / self.n

    def covers(self, n_neg: float, n_zero: float, n_pos: float) -> bool:
        """True when the given counts lie inside the bars (equal the counts, when exact).

        Args:
            n_neg: a count of negative eigenvalues to check (e.g. an exact one).
            n_zero: a count of zero eigenvalues.
            n_pos: a count of positive eigenvalues.
        """
        if self.bars is None:
            return (self.n_neg, self.n_zero, self.n_pos) == (n_neg, n_zero, n_pos)
        return all(lo <= c <= hi for (lo, hi), c in zip(self.bars, (n_neg, n_zero, n_pos)))

    def __add__(self, other: Inertia) -> Inertia:
        """The inertia of a block-diagonal matrix: counts add (exact counts only)."""
        if self.estimated or other.estimated:
            raise InvalidInputError("only exact inertias add; these carry error bars")
        return Inertia(
            self.n_neg + other.n_neg, self.n_zero + other.n_zero, self.n_pos + other.n_pos
        )

    def to_dict(self) -> dict[str, Any]:
        """Counts, index and minimum ratio, and the bars when estimated."""
        d: dict[str, Any] = {
            "n_neg": self.n_neg,
            "n_zero": self.n_zero,
            "n_pos": self.n_pos,
            "index": self.index,
            "minimum_ratio": self.minimum_ratio,
        }
        if self.bars is not None:
            d["bars"] = [list(b) for b in self.bars]
            d["confidence"] = self.confidence
            d["index_err"] = self.index_err
            d["minimum_ratio_err"] = self.minimum_ratio_err
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Inertia:
        """Inverse of :meth:`to_dict`.

        Args:
            d: a dict with ``n_neg``, ``n_zero``, ``n_pos`` and, when estimated, ``bars``
                (three [low, high] pairs) and ``confidence``.
        """
        bars = d.get("bars")
        return cls(
            d["n_neg"],
            d["n_zero"],
            d["n_pos"],
            bars=None if bars is None else _bars(bars),
            confidence=d.get("confidence"),
        )

    def __str__(self) -> str:
        if self.bars is None:
            return f"(n-={self.n_neg}, n0={self.n_zero}, n+={self.n_pos})"
        e = self.error
        return (
            f"(n-={self.n_neg:.1f} ± {e('neg'):.1f}, n0={self.n_zero:.1f} ± {e('zero'):.1f}, "
            f"n+={self.n_pos:.1f} ± {e('pos'):.1f}; {100 * (self.confidence or 0):g} %)"
        )
