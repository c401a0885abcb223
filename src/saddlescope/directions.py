"""Directions through θ to look along: Hessian eigenvectors, filter-normalised random ones.

Each direction is a flat vector like θ; nothing here touches the model.

* :func:`eigen_directions` — unit Hessian eigenvectors at θ, of the most negative and/or the most
  positive eigenvalue (from a given :class:`~saddlescope.Spectrum`, or by ``hessian_spectrum``
  with k = 1 at the needed end); :func:`eigen_pairs` keeps the eigenvalues beside them;
* :func:`random_direction` — a seeded Gaussian direction, filter-normalised as in Li et al.
  (2018), "Visualizing the Loss Landscape of Neural Nets": every filter (row along dim 0 of a
  weight matrix or conv kernel) scaled to the norm of θ's filter, biases and other 1-D
  parameters zeroed;
* :func:`orthogonalize` — Gram–Schmidt for a pair, so that plane coordinates are exact.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor

from saddlescope.checks import check_choice
from saddlescope.errors import InvalidInputError
from saddlescope.objective import Objective
from saddlescope.spectrum import Spectrum, Which, hessian_spectrum

__all__ = [
    "EIGEN_ENDS",
    "EigenDirection",
    "eigen_directions",
    "eigen_pairs",
    "orthogonalize",
    "random_direction",
]

EigenEnd = Literal["most-negative", "most-positive"]
EIGEN_ENDS: tuple[str, ...] = ("most-negative", "most-positive")


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
            f"{self.vector.numel()} params, entries ∈ [{float(self.vector.min()):.4g}, "
            f"{float(self.vector.max()):.4g}]"
        )


def _which_tuple(which: str | Sequence[str]) -> tuple[str, ...]:
    ends = (which,) if isinstance(which, str) else which
    if not isinstance(ends, (tuple, list)) or not ends:
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
