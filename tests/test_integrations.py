"""The monitor inside a real Lightning Trainer.fit and a real HF Trainer.train (CPU, few steps)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from torch import nn

from saddlescope import CurvatureMonitor

pytest.importorskip("lightning")
pytest.importorskip("accelerate")


def _lightning_module():  # type: ignore[no-untyped-def]
    import lightning

    class Regression(lightning.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x)

        def training_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
            x, y = batch
            return nn.functional.mse_loss(self(x), y)

        def configure_optimizers(self):  # type: ignore[no-untyped-def]
            return torch.optim.SGD(self.parameters(), lr=0.05)

    return Regression()


def _fit(tmp_path: Path, module, callback, steps: int, ckpt: str | None = None):  # type: ignore[no-untyped-def]
    import lightning
    from lightning.pytorch.loggers import CSVLogger

    torch.manual_seed(1)
    x, y = torch.randn(32, 3), torch.randn(32, 1)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32)
    trainer = lightning.Trainer(
        max_steps=steps, logger=CSVLogger(str(tmp_path), name="run"), callbacks=[callback],
        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
        log_every_n_steps=1, default_root_dir=str(tmp_path),
    )  # fmt: skip
    trainer.fit(module, loader, ckpt_path=ckpt)
    return trainer, (x, y)


def test_the_lightning_callback_logs_checks_and_resumes_from_a_checkpoint(tmp_path: Path) -> None:
    from saddlescope.integrations.lightning import CurvatureCallback

    module = _lightning_module()
    torch.manual_seed(1)
    data = (torch.randn(32, 3), torch.randn(32, 1))
    monitor = CurvatureMonitor(module, nn.MSELoss(), data, every=2)
    trainer, _ = _fit(tmp_path, module, CurvatureCallback(monitor), 6)
    assert [c.step for c in monitor.checks] == [2, 4, 6]
    assert "curvature/lambda_min" in trainer.logged_metrics
    metrics = Path(trainer.logger.log_dir) / "metrics.csv"
    lines = metrics.read_text().splitlines()
    rows = [r for r in csv.DictReader(lines) if r.get("curvature/lambda_min")]
    assert len(rows) == 3
    assert float(rows[-1]["curvature/lambda_min"]) == pytest.approx(
        monitor.checks[-1].lambda_min, rel=1e-5
    )
    ckpt = tmp_path / "last.ckpt"
    trainer.save_checkpoint(ckpt)
    module2 = _lightning_module()
    monitor2 = CurvatureMonitor(module2, nn.MSELoss(), data, every=2)
    _fit(tmp_path / "resumed", module2, CurvatureCallback(monitor2), 10, ckpt=str(ckpt))
    assert [c.step for c in monitor2.checks] == [2, 4, 6, 8, 10]  # the restored ones, then on


def test_the_hf_trainer_callback_puts_checks_in_the_trainer_logs(tmp_path: Path) -> None:
    from examples.factories import bert_batches, tiny_bert
    from transformers import Trainer, TrainingArguments

    from saddlescope.integrations.transformers import CurvatureTrainerCallback

    model = tiny_bert().train()
    batches = bert_batches()
    rows = [{k: v[i] for k, v in b.items()} for b in batches for i in range(len(b["labels"]))]
    monitor = CurvatureMonitor(model, None, batches[:1], every=2)
    callback = CurvatureTrainerCallback(monitor)
    args = TrainingArguments(
        output_dir=str(tmp_path), max_steps=4, per_device_train_batch_size=8, logging_steps=1,
        report_to=["tensorboard"], use_cpu=True,
        save_strategy="no", disable_tqdm=True, learning_rate=1e-3,
    )  # fmt: skip
    trainer = Trainer(model=model, args=args, train_dataset=rows, callbacks=[callback])
    callback.attach(trainer)
    trainer.train()
    logged = [h for h in trainer.state.log_history if "curvature/lambda_min" in h]
    assert [h["step"] for h in logged] == [2, 4]
    assert logged[-1]["curvature/lambda_min"] == pytest.approx(monitor.checks[-1].lambda_min)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    runs = [p.parent for p in tmp_path.rglob("events.out.tfevents.*")]
    assert runs
    tags = set().union(*(EventAccumulator(str(r)).Reload().Tags()["scalars"] for r in runs))
    assert "train/curvature/lambda_min" in tags or "curvature/lambda_min" in tags


def test_the_hf_monitor_state_goes_into_checkpoints_and_resumes(tmp_path: Path) -> None:
    from examples.factories import bert_batches, tiny_bert
    from transformers import Trainer, TrainingArguments

    from saddlescope.errors import InvalidInputError
    from saddlescope.integrations.transformers import CurvatureTrainerCallback

    batches = bert_batches()
    rows = [{k: v[i] for k, v in b.items()} for b in batches for i in range(len(b["labels"]))]

    def trainer_for(steps: int) -> tuple[Trainer, CurvatureTrainerCallback]:
        model = tiny_bert().train()
        callback = CurvatureTrainerCallback(CurvatureMonitor(model, None, batches[:1], every=2))
        args = TrainingArguments(
            output_dir=str(tmp_path), max_steps=steps, per_device_train_batch_size=8,
            logging_steps=1, report_to="none", use_cpu=True, save_steps=2, disable_tqdm=True,
            learning_rate=1e-3,
        )  # fmt: skip
        trainer = Trainer(model=model, args=args, train_dataset=rows, callbacks=[callback])
        callback.attach(trainer)
        return trainer, callback

    first, cb1 = trainer_for(4)
    first.train()
    assert [c.step for c in cb1.monitor.checks] == [2, 4]
    assert (tmp_path / "checkpoint-2" / "curvature_monitor.pt").is_file()
    resumed, cb2 = trainer_for(6)
    cb2.load_checkpoint(tmp_path / "checkpoint-4")
    resumed.train(resume_from_checkpoint=str(tmp_path / "checkpoint-4"))
    assert [c.step for c in cb2.monitor.checks] == [2, 4, 6]
    assert cb2.monitor.checks[1].lambda_min == cb1.monitor.checks[1].lambda_min
    with pytest.raises(InvalidInputError, match="missing"):
        cb2.load_checkpoint(tmp_path)
