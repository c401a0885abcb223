"""Landscape pictures of a model at θ, end to end: classify, slice, draw, write.

:func:`model_pictures` classifies θ (:func:`~saddlescope.classify`), then draws

* the plane θ + a·u₋ + b·u₊ spanned by the unit eigenvectors of the most negative and the most
  positive Hessian eigenvalue, as a 3-D surface and as a contour map with θ marked by its kind
  and the escape direction ±u drawn as arrows;
* 1-D curves L(θ + t·d) along u₋, u₊ (each with its quadratic model L(θ) + ½λt²) and along a
  seeded filter-normalised random direction (Li et al., 2018);
* the contour map of a plane of two such random directions (Li et al.'s picture);
* the sorted eigenvalue spectrum with its zero band;
* and, when plotly is installed, an interactive HTML surface of the eigenvector plane.

It computes only from θ (the model is never changed) and returns the paths it wrote.
:func:`worked_example_pictures` does the same for L(w1, w2) = (1 − w1·w2)² at its saddle, the
origin, with the valley of minima w1·w2 = 1 drawn on the contour map.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from saddlescope import plots, toy
from saddlescope.checks import check_positive
from saddlescope.classify import CriticalPoint, classify
from saddlescope.errors import InvalidInputError
from saddlescope.landscape import (
    EigenDirection,
    Plane,
    eigen_pairs,
    orthogonalize,
    random_direction,
    slice_1d,
    slice_2d,
)
from saddlescope.objective import Objective

__all__ = ["model_pictures", "worked_example_pictures"]

Curve = tuple[np.ndarray, np.ndarray, str]  # (a, b, label) in a plane's coordinates


def _random(obj: Objective, theta: Tensor, seed: int) -> tuple[Tensor, str]:
    """Li et al.'s filter-normalised direction, or a unit one where θ has no filters."""
    try:
        return random_direction(obj, theta, seed), "random, filter-normalised"
    except InvalidInputError:  # only scalars / 1-D parameters (e.g. the worked example)
        return random_direction(obj, theta, seed, filter_normalized=False), "random, unit"


@dataclass(frozen=True)
class _Scene:
    """What every picture of one θ shares: the verdict, its extreme eigenpairs, names, folder."""

    cp: CriticalPoint
    neg: EigenDirection
    pos: EigenDirection
    head: str
    out: Path
    prefix: str
    span: float
    num: int

    def path(self, name: str) -> Path:
        """The file ``name`` in the output folder, with the prefix."""
        return self.out / f"{self.prefix}{name}"

    @property
    def xlabel(self) -> str:
        """The eigenvector plane's first axis: u₋ with its eigenvalue."""
        return f"u₋ (λ = {self.neg.eigenvalue:.3g})"

    @property
    def ylabel(self) -> str:
        """The eigenvector plane's second axis: u₊ with its eigenvalue."""
        return f"u₊ (λ = {self.pos.eigenvalue:.3g})"

    @property
    def arrows(self) -> list[tuple[CriticalPoint, float]]:
        """The escape arrow (half the span) when θ has an escape direction."""
        return [(self.cp, 0.5 * self.span)] if self.cp.escape_direction is not None else []


def _check_request(obj: Objective, span: float, html: bool | None) -> None:
    """Refuse a bad request before anything is computed or written."""
    check_positive("span", span)
    if obj.num_params < 2:
        raise InvalidInputError("landscape pictures need at least 2 parameters to span a plane")
    if html and not plots.plotly_available():
        plots.require_plotly()  # raises the error naming the extra to install


def _scene(
    obj: Objective,
    theta: Tensor,
    out: Path,
    seed: int,
    *,
    span: float,
    num: int,
    prefix: str,
    title: str,
    classify_kwargs: dict[str, Any] | None,
) -> _Scene:
    """Classify θ and find its extreme eigenpairs (from the verdict's spectrum)."""
    cp: CriticalPoint = classify(obj, theta, seed=seed, **(classify_kwargs or {}))
    neg, pos = eigen_pairs(obj, theta, spectrum=cp.spectrum)
    head = title or f"{cp.kind} at loss {cp.loss:.4g}"
    return _Scene(cp, neg, pos, head, out, prefix, span, num)


def _eigen_plane_pictures(
    scene: _Scene, plane: Plane, zmax: float | None, curves: Sequence[Curve]
) -> list[Path]:
    """The eigenvector plane as a 3-D surface and as a contour map with the escape arrows."""
    surface = plots.plot_surface(
        plane, [scene.cp], title=scene.head, zmax=zmax, xlabel=scene.xlabel, ylabel=scene.ylabel
    )
    contour = plots.plot_contour(
        plane,
        [scene.cp],
        curves=curves,
        arrows=scene.arrows,
        title=f"{scene.head}\nplane of the extreme eigenvectors u₋, u₊",
        xlabel=scene.xlabel,
        ylabel=scene.ylabel,
    )
    return [
        plots.save(surface, scene.path("surface.png")),
        plots.save(contour, scene.path("contour.png")),
    ]


def _lines_picture(
    obj: Objective, theta: Tensor, scene: _Scene, random: Tensor, random_label: str
) -> Path:
    """1-D slices along u₋, u₊ (with their quadratic models) and a random direction."""
    neg, pos = scene.neg, scene.pos
    g = obj.grad(theta)  # for the quadratic models' linear term (≈ 0 at a critical point)
    lines = [
        slice_1d(obj, theta, d, scene.span, scene.num) for d in (neg.vector, pos.vector, random)
    ]
    fig = plots.plot_line(
        lines,
        labels=[
            f"most negative λ = {neg.eigenvalue:.4g}",
            f"most positive λ = {pos.eigenvalue:.4g}",
            random_label,
        ],
        eigenvalues=[neg.eigenvalue, pos.eigenvalue, None],
        slopes=[float(g @ neg.vector), float(g @ pos.vector), None],
        title=f"{scene.head}: 1-D slices L(θ + t·d)",
    )
    return plots.save(fig, scene.path("lines.png"))


def _random_plane_picture(scene: _Scene, plane: Plane, random_label: str, seed: int) -> Path:
    """Li et al.'s picture: the contour map over a plane of two random directions."""
    fig = plots.plot_contour(
        plane,
        [scene.cp],
        title=f"{scene.head}\nplane of two {random_label} directions (seed {seed})",
        xlabel="random direction 1",
        ylabel="random direction 2",
    )
    return plots.save(fig, scene.path("random_contour.png"))


def _html_picture(scene: _Scene, plane: Plane, zmax: float | None) -> Path:
    """The eigenvector plane as an interactive HTML surface (needs plotly)."""
    return plots.surface_html(
        plane,
        [scene.cp],
        scene.path("surface.html"),
        arrows=scene.arrows,
        title=scene.head,
        zmax=zmax,
        xlabel="u₋ (most negative λ)",
        ylabel="u₊ (most positive λ)",
    )


def model_pictures(
    obj: Objective,
    theta: Tensor,
    out_dir: str | Path,
    seed: int = 0,
    *,
    span: float = 1.0,
    num: int = 41,
    html: bool | None = None,
    zmax: float | None = None,
    prefix: str = "",
    title: str = "",
    curves: Sequence[Curve] = (),
    classify_kwargs: dict[str, Any] | None = None,
) -> list[Path]:
    """Write the landscape pictures of ``obj`` at θ into ``out_dir``; return the paths written.

    Eigenvectors are unit vectors; random directions are filter-normalised, so t = 1 is a step
    the size of θ's own filters.

    Args:
        obj: the objective (its model is never changed).
        theta: the flat parameter vector to picture.
        out_dir: the folder to write into (created when missing).
        seed: picks the random directions (seed and seed + 1) and the Lanczos start on large
            models.
        span: slices run over t ∈ [−span, span] along each direction.
        num: points per slice axis.
        html: None writes the interactive HTML surface when plotly is installed, True requires
            it (a clear error, before anything is written, without it), False never writes it.
        zmax: clip the 3-D surfaces above this loss (None keeps all).
        prefix: put before each file name (e.g. ``"m_"`` gives ``m_surface.png``).
        title: the title the pictures share; empty gives "<kind> at loss <loss>".
        curves: extra curves (a, b, label) in eigenvector-plane coordinates, drawn on its
            contour map.
        classify_kwargs: keyword arguments for :func:`~saddlescope.classify` (e.g.
            ``loss_lower_bound=0.0``).

    Returns:
        The paths written, in the order surface, contour, lines, eigenvalues, random contour,
        then the HTML surface when written.

    Raises:
        InvalidInputError: for a span ≤ 0, a model with fewer than 2 parameters, or
            ``html=True`` without plotly.
    """
    _check_request(obj, span, html)
    theta = obj.check_theta(theta)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    scene = _scene(
        obj,
        theta,
        out,
        seed,
        span=span,
        num=num,
        prefix=prefix,
        title=title,
        classify_kwargs=classify_kwargs,
    )
    eigen_plane = slice_2d(obj, theta, scene.neg.vector, scene.pos.vector, span, num)
    written = _eigen_plane_pictures(scene, eigen_plane, zmax, curves)
    r1, r_label = _random(obj, theta, seed)
    r2, _ = _random(obj, theta, seed + 1)
    r1, r2 = orthogonalize(r1, r2)
    written.append(_lines_picture(obj, theta, scene, r1, r_label))
    written.append(
        plots.save(plots.plot_eigenvalues(scene.cp.spectrum), scene.path("eigenvalues.png"))
    )
    random_plane = slice_2d(obj, theta, r1, r2, span, num)
    written.append(_random_plane_picture(scene, random_plane, r_label, seed))
    if html is not False and plots.plotly_available():
        written.append(_html_picture(scene, eigen_plane, zmax))
    return written


def worked_example_pictures(
    out_dir: str | Path, *, num: int = 81, html: bool | None = None, seed: int = 0
) -> list[Path]:
    """:func:`model_pictures` of L(w1, w2) = (1 − w1·w2)² at its saddle θ = 0.

    There u₋ = (1, 1)/√2 (λ = −2) and u₊ = (1, −1)/√2 (λ = 2), so the eigenvector plane is the
    (w1, w2) plane turned by 45°: L = (1 − (a² − b²)/2)², and the minima w1·w2 = 1 are the
    hyperbola a² − b² = 2, drawn dashed.

    Args:
        out_dir: the folder to write into (created when missing); files start
            ``worked_example_``.
        num: points per slice axis.
        html: as in :func:`model_pictures`: None writes the HTML surface when plotly is
            installed, True requires it, False never.
        seed: picks the random directions.

    Returns:
        The paths written (see :func:`model_pictures`).
    """
    obj = toy.worked_example_objective()
    span = 2.2
    b = np.linspace(-span, span, 200)
    a = np.sqrt(2 + b**2)
    curves = [(a, b, "minima w1·w2 = 1"), (-a, b, "")]
    return model_pictures(
        obj,
        torch.zeros(2, dtype=torch.float64),
        out_dir,
        seed,
        span=span,
        num=num,
        html=html,
        zmax=4.0,
        prefix="worked_example_",
        title="L = (1 − w1·w2)², saddle at 0",
        curves=curves,
        classify_kwargs={"loss_lower_bound": 0.0},
    )
