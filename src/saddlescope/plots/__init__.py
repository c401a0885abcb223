"""Figures drawn from result objects (they compute nothing the results do not hold).

* :mod:`~saddlescope.plots.surface` — the loss over a plane: :func:`plot_surface` (3-D) and
  :func:`plot_contour` (contour map with critical points by kind, extra curves and escape arrows);
* :mod:`~saddlescope.plots.curves` — :func:`plot_line` (the loss along lines through θ with
  their quadratic models), :func:`plot_eigenvalues` (the spectrum by rank, zero band shaded),
  :func:`plot_escape_paths` (loss against step for each escape method);
* :mod:`~saddlescope.plots.study` — the survey's figures: :func:`plot_loss_vs_ratio`,
  :func:`plot_index_histogram`, :func:`plot_spectra`;
* :mod:`~saddlescope.plots.source_views` — the source's figure three ways
  (:func:`plot_source_views`);
* :mod:`~saddlescope.plots.interactive` — interactive HTML surfaces (plotly, the ``html``
  extra): :func:`to_html`, :func:`surface_html`, :func:`plotly_available`,
  :func:`require_plotly`;
* :mod:`~saddlescope.plots.common` — :data:`KIND_STYLE` (colour and marker per kind) and
  :func:`save` (write a figure and close it).

Every ``plot_*`` returns a matplotlib figure; ``save(fig, path)`` writes it.
"""

from saddlescope.plots.common import KIND_STYLE, save
from saddlescope.plots.curves import plot_eigenvalues, plot_escape_paths, plot_line
from saddlescope.plots.interactive import (
    plotly_available,
    require_plotly,
    surface_figure,
    surface_html,
    to_html,
)
from saddlescope.plots.source_views import plot_source_views
from saddlescope.plots.study import plot_index_histogram, plot_loss_vs_ratio, plot_spectra
from saddlescope.plots.surface import plot_contour, plot_surface

__all__ = [
    "KIND_STYLE",
    "plot_contour",
    "plot_eigenvalues",
    "plot_escape_paths",
    "plot_index_histogram",
    "plot_line",
    "plot_loss_vs_ratio",
    "plot_source_views",
    "plot_spectra",
    "plot_surface",
    "plotly_available",
    "require_plotly",
    "save",
    "surface_figure",
    "surface_html",
    "to_html",
]
