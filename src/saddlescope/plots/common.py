"""What every figure shares: the colour and marker of each kind of point, and writing a figure."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from saddlescope.files import atomic_path

__all__ = ["KIND_STYLE", "save"]

KIND_STYLE: dict[str, tuple[str, str]] = {  # kind → (colour, marker)
    "minimum": ("tab:green", "o"),
    "saddle": ("tab:red", "X"),
    "maximum": ("tab:purple", "^"),
    "degenerate": ("tab:orange", "s"),
    "on-kink": ("tab:brown", "x"),
    "not-critical": ("tab:gray", "."),
}


def save(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` to ``path`` and close it, so that many figures do not pile up in memory.

    Args:
        fig: the matplotlib figure to write.
        path: the file to write; its suffix picks the format (PNG at 150 dpi for ``.png``).
            Missing folders are created.

    Returns:
        The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=150)
    plt.close(fig)
    return path
