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
    eigen_pairs,
    orthogonalize,
    random_direction,
    slice_1d,
    slice_2d,
)
from saddlescope.objective import Objective

__all__ = ["model_pictures", "worked_example_pictures"]


def _random(obj: Objective, theta: Tensor, seed: int) -> tuple[Tensor, str]:
    """Li et al.'s filter-normalised direction, or a unit one where θ has no filters."""
    try:
        return random_direction(obj, theta, seed), "random, filter-normalised"
    except InvalidInputError:  # only scalars / 1-D parameters (e.g. the worked example)
        return random_direction(obj, theta, seed, filter_normalized=False), "random, unit"


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
    curves: Sequence[tuple[np.ndarray, np.ndarray, str]] = (),
    classify_kwargs: dict[str, Any] | None = None,
) -> list[Path]:
    """Write the landscape pictures of ``obj`` at θ into ``out_dir``; return the paths written.

    Slices run over t ∈ [−span, span] with ``num`` points per axis (eigenvectors are unit
    vectors; random directions are filter-normalised, so t = 1 is a step the size of θ's own
    filters). ``seed`` picks the random directions (and the Lanczos start on large models).
    ``html``: None writes the HTML surface when plotly is installed, True requires it (a clear
    error without it), False never. ``zmax`` clips the 3-D surface; ``curves`` (a, b, label) in
    eigenvector-plane coordinates are drawn on its contour map; ``classify_kwargs`` go to
    :func:`~saddlescope.classify` (e.g. ``loss_lower_bound=0.0``).
    """
    check_positive("span", span)
    if obj.num_params < 2:
        raise InvalidInputError("landscape pictures need at least 2 parameters to span a plane")
    if html and not plots.plotly_available():
        plots._plotly_go()  # raises the error naming the extra to install
    theta = obj.check_theta(theta)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cp: CriticalPoint = classify(obj, theta, seed=seed, **(classify_kwargs or {}))
    neg, pos = eigen_pairs(obj, theta, spectrum=cp.spectrum)
    head = title or f"{cp.kind} at loss {cp.loss:.4g}"
    xlabel = f"u₋ (λ = {neg.eigenvalue:.3g})"
    ylabel = f"u₊ (λ = {pos.eigenvalue:.3g})"
    arrows = [(cp, 0.5 * span)] if cp.escape_direction is not None else []
    written: list[Path] = []

    eigen_plane = slice_2d(obj, theta, neg.vector, pos.vector, span, num)
    written.append(
        plots.save(
            plots.plot_surface(
                eigen_plane, [cp], title=head, zmax=zmax, xlabel=xlabel, ylabel=ylabel
            ),
            out / f"{prefix}surface.png",
        )
    )
    written.append(
        plots.save(
            plots.plot_contour(
                eigen_plane,
                [cp],
                curves=curves,
                arrows=arrows,
                title=f"{head}\nplane of the extreme eigenvectors u₋, u₊",
                xlabel=xlabel,
                ylabel=ylabel,
            ),
            out / f"{prefix}contour.png",
        )
    )

    g = obj.grad(theta)  # for the quadratic models' linear term (≈ 0 at a critical point)
    r1, r_label = _random(obj, theta, seed)
    r2, _ = _random(obj, theta, seed + 1)
    r1, r2 = orthogonalize(r1, r2)
    lines = [slice_1d(obj, theta, d, span, num) for d in (neg.vector, pos.vector, r1)]
    written.append(
        plots.save(
            plots.plot_line(
                lines,
                labels=[
                    f"most negative λ = {neg.eigenvalue:.4g}",
                    f"most positive λ = {pos.eigenvalue:.4g}",
                    r_label,
                ],
                eigenvalues=[neg.eigenvalue, pos.eigenvalue, None],
                slopes=[float(g @ neg.vector), float(g @ pos.vector), None],
                title=f"{head}: 1-D slices L(θ + t·d)",
            ),
            out / f"{prefix}lines.png",
        )
    )
    written.append(
        plots.save(plots.plot_eigenvalues(cp.spectrum), out / f"{prefix}eigenvalues.png")
    )
    random_plane = slice_2d(obj, theta, r1, r2, span, num)
    written.append(
        plots.save(
            plots.plot_contour(
                random_plane,
                [cp],
                title=f"{head}\nplane of two {r_label} directions (seed {seed})",
                xlabel="random direction 1",
                ylabel="random direction 2",
            ),
            out / f"{prefix}random_contour.png",
        )
    )
    if html is not False and plots.plotly_available():
        written.append(
            plots.surface_html(
                eigen_plane,
                [cp],
                out / f"{prefix}surface.html",
                arrows=arrows,
                title=head,
                zmax=zmax,
                xlabel="u₋ (most negative λ)",
                ylabel="u₊ (most positive λ)",
            )
        )
    return written


def worked_example_pictures(
    out_dir: str | Path, *, num: int = 81, html: bool | None = None, seed: int = 0
) -> list[Path]:
    """:func:`model_pictures` of L(w1, w2) = (1 − w1·w2)² at its saddle θ = 0.

    There u₋ = (1, 1)/√2 (λ = −2) and u₊ = (1, −1)/√2 (λ = 2), so the eigenvector plane is the
    (w1, w2) plane turned by 45°: L = (1 − (a² − b²)/2)², and the minima w1·w2 = 1 are the
    hyperbola a² − b² = 2, drawn dashed.
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
