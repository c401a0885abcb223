"""The loss on lines and planes through θ: data for pictures, computed as pure functions of θ.

    line:   a ↦ L(θ + a·d)              plane:   (a, b) ↦ L(θ + a·d1 + b·d2)

All points of a slice are evaluated in one ``vmap``'d pass (:meth:`Objective.losses`).

Directions to slice along (each a flat vector like θ; nothing here touches the model):

* :func:`eigen_directions` — unit Hessian eigenvectors at θ, of the most negative and/or the most
  positive eigenvalue (from a given :class:`~saddlescope.Spectrum`, or by ``hessian_spectrum``
  with k = 1 at the needed end); :func:`eigen_pairs` keeps the eigenvalues beside them;
* :func:`random_direction` — a seeded Gaussian direction, filter-normalised as in Li et al.
  (2018), "Visualizing the Loss Landscape of Neural Nets": every filter (row along dim 0 of a
  weight matrix or conv kernel) scaled to the norm of θ's filter, biases and other 1-D
  parameters zeroed;
* :func:`orthogonalize` — Gram–Schmidt for a pair, so that plane coordinates are exact.

:func:`slice_1d` and :func:`slice_2d` evaluate symmetric grids t ∈ [−span, span] along them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor

from saddlescope.checks import check_choice, check_positive
from saddlescope.errors import InvalidInputError
from saddlescope.objective import Objective
from saddlescope.spectrum import Spectrum, Which, hessian_spectrum

__all__ = [
    "EigenDirection",
    "Line",
    "Plane",
    "eigen_directions",
    "eigen_pairs",
    "line",
    "orthogonalize",
    "plane",
    "random_direction",
    "slice_1d",
    "slice_2d",
]

EigenEnd = Literal["most-negative", "most-positive"]
EIGEN_ENDS: tuple[str, ...] = ("most-negative", "most-positive")


def _span(values: Tensor) -> str:
    if values.numel() == 0:
        return "[]"
    return f"[{float(values.min()):.4g}, {float(values.max()):.4g}]"


def _loss_range(losses: Tensor) -> str:
    """The least and greatest finite loss, and how many losses were not finite."""
    finite = losses[torch.isfinite(losses)]
    if finite.numel() == 0:
        return "loss: no finite value"
    text = f"loss min {float(finite.min()):.6g}, max {float(finite.max()):.6g}"
    bad = losses.numel() - finite.numel()
    return text + (f" ({bad} not finite)" if bad else "")


@dataclass(frozen=True, eq=False)
class Line:
    """L(origin + a·direction) for each a in ``alphas``; ``origin_loss`` = L(origin).

    Attributes:
        origin: θ, the point the line passes through (flat, on the CPU).
        direction: d, the line's direction (flat, as given: not normalised).
        alphas: the coordinates a along d, float64.
        losses: L(origin + a·direction) for each a, float64, same length as ``alphas``.
        origin_loss: L(origin), or None when not evaluated.
    """

    origin: Tensor
    direction: Tensor
    alphas: Tensor
    losses: Tensor
    origin_loss: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Every field, tensors as lists."""
        keys = ("origin", "direction", "alphas", "losses")
        return {**{k: getattr(self, k).tolist() for k in keys}, "origin_loss": self.origin_loss}

    def __str__(self) -> str:
        at = "" if self.origin_loss is None else f", L(origin) {self.origin_loss:.6g}"
        return (
            f"Line: {self.alphas.numel()} points in {self.origin.numel()} params, "
            f"a ∈ {_span(self.alphas)}, {_loss_range(self.losses)}{at}"
        )


@dataclass(frozen=True, eq=False)
class Plane:
    """``losses[j, i]`` = L(origin + alphas[i]·d1 + betas[j]·d2).

    Attributes:
        origin: θ, the plane's origin (flat, on the CPU).
        d1: the first direction (as given: not normalised), along the a axis.
        d2: the second direction, along the b axis.
        alphas: the coordinates a along ``d1``, float64.
        betas: the coordinates b along ``d2``, float64.
        losses: the (len(betas), len(alphas)) float64 grid of losses: rows follow b, columns a
            (the layout ``matplotlib.contour(alphas, betas, losses)`` expects).
    """

    origin: Tensor
    d1: Tensor
    d2: Tensor
    alphas: Tensor
    betas: Tensor
    losses: Tensor

    def to_dict(self) -> dict[str, Any]:
        """Every field, tensors as (nested) lists."""
        keys = ("origin", "d1", "d2", "alphas", "betas", "losses")
        return {k: getattr(self, k).tolist() for k in keys}

    def __str__(self) -> str:
        return (
            f"Plane: {self.alphas.numel()}×{self.betas.numel()} grid in {self.origin.numel()} "
            f"params, a ∈ {_span(self.alphas)}, b ∈ {_span(self.betas)}, "
            f"{_loss_range(self.losses)}"
        )


def _grid_axis(name: str, values: Tensor | list[float]) -> Tensor:
    t = torch.as_tensor(values, dtype=torch.float64).flatten()
    if t.numel() == 0 or not torch.isfinite(t).all():
        raise InvalidInputError(f"{name} must be a non-empty list of finite numbers")
    return t


def line(obj: Objective, theta: Tensor, direction: Tensor, alphas: Tensor | list[float]) -> Line:
    """The loss along θ + a·d (and at θ itself, as ``origin_loss``).

    Args:
        obj: the objective L.
        theta: the point θ the slice passes through (flat, like ``obj.theta0``).
        direction: d, a flat vector like θ, used as given (a is in units of ‖d‖).
        alphas: the coordinates a, any finite numbers (a non-empty list or 1-D tensor).

    Returns:
        A :class:`Line`.
    """
    theta, d = obj.check_theta(theta), obj.check_theta(direction, "direction")
    a = _grid_axis("alphas", alphas)
    points = torch.cat([theta[None], theta + a.to(theta)[:, None] * d])
    losses = obj.losses(points).cpu().to(torch.float64)
    return Line(theta.cpu(), d.cpu(), a, losses[1:], float(losses[0]))


def plane(
    obj: Objective,
    theta: Tensor,
    d1: Tensor,
    d2: Tensor,
    alphas: Tensor | list[float],
    betas: Tensor | list[float],
) -> Plane:
    """The loss on the plane θ + a·d1 + b·d2 over the grid ``alphas`` × ``betas``.

    Args:
        obj: the objective L.
        theta: the point θ the slice passes through (flat, like ``obj.theta0``).
        d1: the first direction, a flat vector like θ, used as given.
        d2: the second direction, used as given (pass the pair through :func:`orthogonalize`
            for exact plane coordinates).
        alphas: the coordinates a along d1 (a non-empty list or 1-D tensor of finite numbers).
        betas: the coordinates b along d2.

    Returns:
        A :class:`Plane` with ``losses[j, i]`` at (alphas[i], betas[j]).
    """
    theta = obj.check_theta(theta)
    d1, d2 = obj.check_theta(d1, "d1"), obj.check_theta(d2, "d2")
    a, b = _grid_axis("alphas", alphas), _grid_axis("betas", betas)
    B, A = torch.meshgrid(b.to(theta), a.to(theta), indexing="ij")
    points = theta + A.reshape(-1, 1) * d1 + B.reshape(-1, 1) * d2
    losses = obj.losses(points).reshape(B.shape)
    return Plane(theta.cpu(), d1.cpu(), d2.cpu(), a, b, losses.cpu().to(torch.float64))


# ------------------------------------------------------------------------------- directions
def _check_direction(obj: Objective, d: Tensor, name: str = "direction") -> Tensor:
    """``d`` as a vector like θ, finite and non-zero, or a clear error."""
    d = obj.check_theta(d, name)
    if not torch.isfinite(d).all():
        raise InvalidInputError(f"{name} holds NaN or Inf; pass a finite vector")
    if not float(torch.linalg.vector_norm(d)) > 0:
        raise InvalidInputError(
            f"{name} is the zero vector, so it spans no line; pass a non-zero direction "
            "(eigen_directions or random_direction build one)"
        )
    return d


def _unit_signed(u: Tensor) -> Tensor:
    """u/‖u‖ with a deterministic sign: the entry of largest magnitude is positive."""
    u = u / torch.linalg.vector_norm(u)
    return -u if float(u[u.abs().argmax()]) < 0 else u


@dataclass(frozen=True, eq=False)
class EigenDirection:
    """A unit eigenvector of H(θ) and its eigenvalue: H·vector = eigenvalue·vector.

    Attributes:
        which: the end of the spectrum it belongs to, ``"most-negative"`` or ``"most-positive"``.
        eigenvalue: λ, the smallest or largest eigenvalue of H(θ).
        vector: u, with ‖u‖ = 1 and its largest-magnitude entry positive (a deterministic sign).
    """

    which: str
    eigenvalue: float
    vector: Tensor

    def to_dict(self) -> dict[str, Any]:
        """The three fields, the vector as a list."""
        return {"which": self.which, "eigenvalue": self.eigenvalue, "vector": self.vector.tolist()}

    def __str__(self) -> str:
        return (
            f"EigenDirection({self.which}): λ = {self.eigenvalue:.6g}, unit vector in "
            f"{self.vector.numel()} params, entries ∈ {_span(self.vector)}"
        )


def _which_tuple(which: str | Sequence[str]) -> tuple[str, ...]:
    ends = (which,) if isinstance(which, str) else tuple(which)
    if not ends:
        raise InvalidInputError(f"which must name at least one of {EIGEN_ENDS}")
    return tuple(check_choice("which", w, EIGEN_ENDS) for w in ends)


def eigen_pairs(
    obj: Objective,
    theta: Tensor,
    which: str | Sequence[str] = EIGEN_ENDS,
    spectrum: Spectrum | None = None,
    *,
    seed: int = 0,
) -> tuple[EigenDirection, ...]:
    """(λ, u) at the ends of H(θ)'s spectrum: H·u = λ·u, ‖u‖ = 1, largest |uᵢ| positive.

    Args:
        obj: the objective L.
        theta: the point θ where the Hessian is taken (flat, like ``obj.theta0``).
        which: ``"most-negative"`` (the smallest, algebraic, eigenvalue), ``"most-positive"``
            (the largest), or a sequence of them; default both, in that order.
        spectrum: a :class:`~saddlescope.Spectrum` of H(θ) with eigenvectors to reuse (its
            first and last columns); None (default) computes one with ``hessian_spectrum``,
            k = 1 at the needed end(s) (Lanczos, or dense for tiny models).
        seed: seeds the Lanczos start vector when a spectrum is computed (default 0).

    Returns:
        One :class:`EigenDirection` per entry of ``which``, in order.
    """
    ends = _which_tuple(which)
    theta = obj.check_theta(theta)
    if spectrum is None:
        side: Which
        if len(set(ends)) == 2:
            side = "both"
        else:
            side = "smallest" if ends[0] == "most-negative" else "largest"
        spectrum = hessian_spectrum(obj, theta, k=1, which=side, seed=seed)
    if not isinstance(spectrum, Spectrum):
        raise InvalidInputError(f"spectrum must be a Spectrum, got {type(spectrum).__name__}")
    if spectrum.eigenvectors is None:
        raise InvalidInputError(
            "the spectrum holds no eigenvectors; compute it with hessian_spectrum(..., "
            "eigenvectors=True) or leave spectrum=None"
        )
    if spectrum.num_params != obj.num_params or spectrum.eigenvectors.shape[0] != obj.num_params:
        raise InvalidInputError(
            f"the spectrum belongs to a Hessian of {spectrum.num_params} parameters, this "
            f"objective has {obj.num_params}; compute the spectrum with this objective"
        )
    out = []
    for end in ends:
        col = 0 if end == "most-negative" else -1
        u = obj.check_theta(spectrum.eigenvectors[:, col], "eigenvector")
        out.append(EigenDirection(end, float(spectrum.eigenvalues[col]), _unit_signed(u)))
    return tuple(out)


def eigen_directions(
    obj: Objective,
    theta: Tensor,
    which: str | Sequence[str] = EIGEN_ENDS,
    spectrum: Spectrum | None = None,
    *,
    seed: int = 0,
) -> tuple[Tensor, ...]:
    """Unit eigenvectors u of H(θ) at the requested ends, H·u = λ_min·u / λ_max·u.

    The vectors of :func:`eigen_pairs`, without their eigenvalues.

    Args:
        obj: the objective L.
        theta: the point θ where the Hessian is taken (flat, like ``obj.theta0``).
        which: ``"most-negative"``, ``"most-positive"``, or a sequence of them (default both).
        spectrum: a spectrum of H(θ) with eigenvectors to reuse, or None to compute one.
        seed: seeds the Lanczos start vector when a spectrum is computed (default 0).

    >>> from saddlescope import toy
    >>> obj = toy.worked_example_objective()
    >>> [u.tolist() for u in eigen_directions(obj, torch.zeros(2))]  # doctest: +ELLIPSIS
    [[0.7071..., 0.7071...], [0.7071..., -0.7071...]]
    """
    return tuple(p.vector for p in eigen_pairs(obj, theta, which, spectrum, seed=seed))


def random_direction(
    obj: Objective,
    theta: Tensor,
    seed: int = 0,
    *,
    filter_normalized: bool = True,
    ignore_biases: bool = True,
) -> Tensor:
    """A seeded Gaussian direction d; filter-normalised: dᵢ ← dᵢ·‖θᵢ‖/‖dᵢ‖ for every filter i.

    Li et al. (2018), "Visualizing the Loss Landscape of Neural Nets", §4: a *filter* is one
    slice along dim 0 of a parameter with ≥ 2 dimensions (a row of a Linear weight, one output
    kernel of a Conv weight), so the picture does not depend on the scale of each filter.
    Parameters with ≤ 1 dimension (biases, BatchNorm affine weights, scalars) are zeroed when
    ``ignore_biases`` (Li et al.'s default, ``--xignore biasbn``), and otherwise set to θ's own
    values (their code's choice: each entry is its own filter). With ``filter_normalized=False``
    the direction is a unit vector, ‖d‖ = 1. The draw is from a CPU generator in float64, so a
    seed gives the same direction on any device.

    Args:
        obj: the objective; its parameter shapes define the filters.
        theta: the point θ whose filter norms scale the direction.
        seed: seeds the Gaussian draw (a non-negative integer, default 0).
        filter_normalized: scale each filter to θ's (default True); False gives a unit vector.
        ignore_biases: with filter normalisation, zero the ≤ 1-D parameters (default True);
            False copies θ's values there.

    Returns:
        d, a flat vector like θ (its dtype and device).
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InvalidInputError(f"seed must be a non-negative integer, got {seed!r}")
    theta = obj.check_theta(theta)
    gen = torch.Generator().manual_seed(seed)
    d = torch.randn(obj.num_params, generator=gen, dtype=torch.float64)
    if not filter_normalized:
        return (d / torch.linalg.vector_norm(d)).to(theta)
    th = theta.detach().to("cpu", torch.float64)
    out = torch.zeros_like(d)
    for d_p, t_p, o_p in zip(
        obj.unflatten(d).values(), obj.unflatten(th).values(), obj.unflatten(out).values()
    ):
        if d_p.ndim <= 1:
            if not ignore_biases:
                o_p.copy_(t_p)
            continue
        rows_d, rows_t = d_p.reshape(d_p.shape[0], -1), t_p.reshape(t_p.shape[0], -1)
        scale = torch.linalg.vector_norm(rows_t, dim=1) / torch.linalg.vector_norm(
            rows_d, dim=1
        ).clamp_min(torch.finfo(torch.float64).tiny)
        o_p.copy_((rows_d * scale[:, None]).reshape(o_p.shape))
    if not float(torch.linalg.vector_norm(out)) > 0:
        raise InvalidInputError(
            "the filter-normalised direction is zero: θ has no non-zero filter (every parameter "
            "is 1-D or a scalar, or its rows are all zero) and ignore_biases=True zeroes the rest; "
            "pass ignore_biases=False or filter_normalized=False"
        )
    return out.to(theta)


def orthogonalize(d1: Tensor, d2: Tensor) -> tuple[Tensor, Tensor]:
    """(d1, d2′) with d2′ = d2 − (⟨d1, d2⟩/‖d1‖²)·d1 rescaled to ‖d2‖, so d1 ⟂ d2′ (Gram–Schmidt).

    d1 is returned as given; d2′ keeps d2's length. Raises if either is zero or they are parallel.

    Args:
        d1: the first direction (1-D, finite, non-zero), kept as is.
        d2: the second direction, same length; its component along d1 is removed.
    """
    d1, d2 = torch.as_tensor(d1), torch.as_tensor(d2)
    if d1.ndim != 1 or d1.shape != d2.shape:
        raise InvalidInputError(
            "d1 and d2 must be 1-D vectors of the same length, got shapes "
            f"{tuple(d1.shape)} and {tuple(d2.shape)}"
        )
    if not d1.is_floating_point():
        d1 = d1.to(torch.float64)
    d2 = d2.to(d1)
    n1, n2 = float(torch.linalg.vector_norm(d1)), float(torch.linalg.vector_norm(d2))
    if not (math.isfinite(n1) and math.isfinite(n2)) or n1 == 0 or n2 == 0:
        raise InvalidInputError("d1 and d2 must be finite and non-zero to orthogonalise")
    perp = d2 - (d1 @ d2) / (d1 @ d1) * d1
    norm = float(torch.linalg.vector_norm(perp))
    if norm <= math.sqrt(torch.finfo(d1.dtype).eps) * n2:
        raise InvalidInputError(
            "d2 is parallel to d1, so they span no plane; pick another second direction "
            "(e.g. a different seed of random_direction)"
        )
    return d1, perp * (n2 / norm)


# ------------------------------------------------------------------------------- slices
def _check_num(name: str, num: int) -> int:
    if isinstance(num, bool) or not isinstance(num, int) or num < 2:
        raise InvalidInputError(f"{name} must be an integer ≥ 2 (grid points), got {num!r}")
    return num


def _symmetric_axis(span: float, num: int, name: str = "span") -> Tensor:
    s = check_positive(name, span)
    return torch.linspace(-s, s, num, dtype=torch.float64)


def _pair(value: Any, name: str) -> tuple[Any, Any]:
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise InvalidInputError(f"{name} must be one value or a pair, got {value!r}")
        return value[0], value[1]
    return value, value


def slice_1d(
    obj: Objective, theta: Tensor, direction: Tensor, span: float = 1.0, num: int = 51
) -> Line:
    """L(θ + t·d) at ``num`` points t ∈ [−span, span] (t in units of d's length, not normalised).

    Args:
        obj: the objective L.
        theta: the point θ the slice passes through (flat, like ``obj.theta0``).
        direction: d, a finite non-zero flat vector like θ (e.g. from :func:`eigen_directions`
            or :func:`random_direction`).
        span: the half-width of the symmetric grid, > 0 (default 1).
        num: the number of grid points, ≥ 2 (default 51; odd puts a point at θ).

    >>> from saddlescope import toy
    >>> obj = toy.worked_example_objective()
    >>> u = torch.tensor([1.0, 1.0], dtype=torch.float64) / 2**0.5
    >>> [round(v, 12) for v in slice_1d(obj, torch.zeros(2), u, num=3).losses.tolist()]
    [0.25, 1.0, 0.25]
    """
    d = _check_direction(obj, direction)
    return line(obj, theta, d, _symmetric_axis(span, _check_num("num", num)))


def slice_2d(
    obj: Objective,
    theta: Tensor,
    d1: Tensor,
    d2: Tensor,
    span: float | tuple[float, float] = 1.0,
    num: int | tuple[int, int] = 51,
) -> Plane:
    """L(θ + a·d1 + b·d2) on a grid a ∈ [−span₁, span₁] × b ∈ [−span₂, span₂].

    ``span`` and ``num`` are one value for both axes or a pair. d1 and d2 are used as given
    (not normalised); they must not be parallel — pass them through :func:`orthogonalize` so that
    points mapped into the plane land exactly.

    Args:
        obj: the objective L.
        theta: the point θ the slice passes through (flat, like ``obj.theta0``).
        d1: the first direction, a finite non-zero flat vector like θ.
        d2: the second direction, not parallel to d1.
        span: the grid's half-width, > 0: one value for both axes or (span₁, span₂) (default 1).
        num: grid points per axis, ≥ 2: one value or a pair (default 51).

    Returns:
        A :class:`Plane` over the grid.
    """
    d1, d2 = _check_direction(obj, d1, "d1"), _check_direction(obj, d2, "d2")
    cos = float(d1 @ d2) / float(torch.linalg.vector_norm(d1) * torch.linalg.vector_norm(d2))
    if abs(cos) >= 1 - 1e-12:
        raise InvalidInputError(
            "d1 and d2 are parallel, so they span no plane; pass two independent directions "
            "(orthogonalize(d1, d2) makes the second perpendicular)"
        )
    (s1, s2), (n1, n2) = _pair(span, "span"), _pair(num, "num")
    a = _symmetric_axis(s1, _check_num("num", n1))
    b = _symmetric_axis(s2, _check_num("num", n2))
    return plane(obj, theta, d1, d2, a, b)
