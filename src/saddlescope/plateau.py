"""The plateau test: has the loss been flat over the last few steps?

:class:`SaddleEscape <saddlescope.saddle_escape.SaddleEscape>` and
:class:`CurvatureMonitor <saddlescope.monitor.CurvatureMonitor>` both act only once training
has stalled; a :class:`LossWindow` holds the recent losses and says when they varied by at most
loss_tol·max(1, |L|) over a whole window.
"""

from __future__ import annotations

from collections import deque

__all__ = ["LossWindow"]


class LossWindow:
    """The last ``window`` losses and whether they are flat.

    Args:
        window: how many losses a plateau needs (validated by the caller).
        loss_tol: flat means they vary by at most loss_tol·max(1, |L|), L the latest.
    """

    def __init__(self, window: int, loss_tol: float) -> None:
        self.window, self.loss_tol = window, loss_tol
        self._losses: deque[float] = deque(maxlen=window)

    def append(self, loss: float) -> None:
        """Add the latest loss (the oldest leaves a full window).

        Args:
            loss: the loss.
        """
        self._losses.append(loss)

    def clear(self) -> None:
        """Start again: a plateau now needs a whole window of new losses."""
        self._losses.clear()

    def values(self) -> list[float]:
        """The losses held, oldest first."""
        return list(self._losses)

    def flat(self) -> bool:
        """True when the window is full and its losses vary by at most loss_tol·max(1, |L|)."""
        losses = self._losses
        if len(losses) < self.window:
            return False
        room = self.loss_tol * max(1.0, abs(losses[-1]))
        if abs(losses[-1] - losses[0]) > room:  # the usual case while training: O(1)
            return False
        return max(losses) - min(losses) <= room
