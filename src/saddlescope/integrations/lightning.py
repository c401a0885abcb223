"""The curvature monitor as a Lightning ``Callback``: its checks in the module's logger.

    trainer = lightning.Trainer(callbacks=[CurvatureCallback(monitor)])

After every training batch the callback gives the step's loss (``training_step``'s return value,
or its ``"loss"``) to :meth:`~saddlescope.CurvatureMonitor.step`; a check's numbers go through
``pl_module.log`` (``curvature/lambda_min``, …), so whichever logger the trainer has
(TensorBoard, CSV, W&B) records them. Under DDP only global rank 0 checks and logs: the model is
the same on every rank. The monitor's state is saved in Lightning checkpoints and restored on
resume (``state_dict`` / ``load_state_dict``).
"""

from __future__ import annotations

from typing import Any

from saddlescope.monitor import CurvatureMonitor

try:
    from lightning.pytorch.callbacks import Callback
except ImportError as err:  # pragma: no cover - the extra is missing
    raise ImportError(
        "saddlescope.integrations.lightning needs Lightning: pip install 'saddlescope[lightning]'"
    ) from err

__all__ = ["CurvatureCallback"]


class CurvatureCallback(Callback):
    """Feeds a :class:`~saddlescope.CurvatureMonitor` each training step; logs its checks.

    Args:
        monitor: the monitor, built on the LightningModule (or the network inside it) and the
            data to check curvature on.
    """

    def __init__(self, monitor: CurvatureMonitor) -> None:
        self.monitor = monitor

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        """Give the step's loss to the monitor; log a check when one ran (rank 0 only).

        Args:
            trainer: the Lightning trainer.
            pl_module: the LightningModule (its ``log_dict`` takes the check's numbers).
            outputs: what ``training_step`` returned (the loss, or a dict with ``"loss"``).
            batch: the batch (unused: the monitor checks on its own data).
            batch_idx: the batch's index (unused).
        """
        if not trainer.is_global_zero:
            return
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        check = self.monitor.step(loss, trainer.global_step)
        if check is not None:
            pl_module.log_dict(check.metrics(), on_step=True, on_epoch=False, rank_zero_only=True)

    def state_dict(self) -> dict[str, Any]:
        """The monitor's state, saved in the checkpoint."""
        return self.monitor.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the monitor from a checkpoint.

        Args:
            state_dict: what :meth:`state_dict` saved.
        """
        self.monitor.load_state_dict(state_dict)
