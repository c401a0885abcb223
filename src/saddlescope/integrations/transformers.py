"""The curvature monitor as a ``transformers.TrainerCallback``: its checks in the Trainer's logs.

    callback = CurvatureTrainerCallback(monitor)
    trainer = Trainer(model=model, args=args, train_dataset=ds, callbacks=[callback])
    callback.attach(trainer)

The Trainer tells callbacks the training loss only when it logs (every ``logging_steps``), so
the monitor's plateau window holds those logged losses; ``every`` checks count optimiser steps.
A check's numbers go into the Trainer's logs through ``Trainer.log`` (so its TensorBoard, W&B or
other reporting integrations record them, and ``trainer.state.log_history`` holds them); before
:meth:`~CurvatureTrainerCallback.attach` they go to ``state.log_history`` only. Only the world
process zero checks and logs: under DDP the model is the same on every rank.

The Trainer restores only callbacks it can rebuild from plain arguments, so the monitor's state
goes into each checkpoint folder as ``curvature_monitor.pt`` (at every save), and
:meth:`~CurvatureTrainerCallback.load_checkpoint` restores it before
``trainer.train(resume_from_checkpoint=...)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from saddlescope.errors import InvalidInputError
from saddlescope.monitor import CurvatureMonitor

try:
    from transformers import TrainerCallback
    from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR
except ImportError as err:  # pragma: no cover - the extra is missing
    raise ImportError(
        "saddlescope.integrations.transformers needs transformers: "
        "pip install 'saddlescope[transformers]'"
    ) from err

__all__ = ["STATE_FILE", "CurvatureTrainerCallback"]

STATE_FILE = "curvature_monitor.pt"


class CurvatureTrainerCallback(TrainerCallback):
    """Feeds a :class:`~saddlescope.CurvatureMonitor` from the Trainer; logs its checks.

    Args:
        monitor: the monitor, built on the Trainer's model and the data to check on.
    """

    def __init__(self, monitor: CurvatureMonitor) -> None:
        self.monitor = monitor
        self.trainer: Any = None
        self._loss: float | None = None

    def attach(self, trainer: Any) -> None:
        """Log checks through ``trainer.log`` (adds this callback to it if it is not there).

        Args:
            trainer: the ``transformers.Trainer``.
        """
        self.trainer = trainer
        if self not in trainer.callback_handler.callbacks:
            trainer.add_callback(self)

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
        """Keep the logged training loss for the next step's window.

        Args:
            args: the Trainer's ``TrainingArguments``.
            state: its ``TrainerState``.
            control: its ``TrainerControl``.
            logs: the metrics just logged (the training loss among them, at logging steps).
            **kwargs: the rest of what the Trainer passes (model, optimizer, …; unused).
        """
        if logs and "loss" in logs and "curvature/lambda_min" not in logs:
            self._loss = float(logs["loss"])

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Step the monitor (rank 0); log a check when one ran.

        Args:
            args: the Trainer's ``TrainingArguments``.
            state: its ``TrainerState`` (the step, and whether this is process zero).
            control: its ``TrainerControl``.
            **kwargs: the rest of what the Trainer passes (model, optimizer, …; unused).
        """
        if not state.is_world_process_zero:
            return
        check = self.monitor.step(self._loss, state.global_step)
        self._loss = None
        if check is None:
            return
        if self.trainer is not None:
            self.trainer.log(check.metrics())
        else:
            state.log_history.append({**check.metrics(), "step": state.global_step})

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Save the monitor's state into the checkpoint just written (process zero).

        Args:
            args: the Trainer's ``TrainingArguments`` (its ``output_dir``).
            state: its ``TrainerState`` (the step the checkpoint is named by).
            control: its ``TrainerControl``.
            **kwargs: the rest of what the Trainer passes (unused).
        """
        if not state.is_world_process_zero:
            return
        folder = Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
        if folder.is_dir():
            torch.save(self.monitor.state_dict(), folder / STATE_FILE)

    def load_checkpoint(self, checkpoint: str | Path) -> None:
        """Restore the monitor from a checkpoint folder the Trainer wrote (before resuming).

        Read with ``torch.load(weights_only=True)``: tensors and plain values, no code.

        Args:
            checkpoint: the folder, e.g. ``output_dir/checkpoint-500``.
        """
        path = Path(checkpoint) / STATE_FILE
        if not path.is_file():
            raise InvalidInputError(
                f"{path} is missing: that checkpoint was not saved with a CurvatureTrainerCallback"
            )
        self.monitor.load_state_dict(torch.load(path, weights_only=True))
