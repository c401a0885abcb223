"""``saddlescope analyze``: the verdict on a user's own model, as text, JSON and an HTML page."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import torch
from rich.table import Table

from saddlescope.analysis import Analysis, analyze
from saddlescope.cli.common import console, fmt, safe
from saddlescope.cost import DEFAULT_MAX_DENSE_SECONDS
from saddlescope.files import write_text
from saddlescope.loading import build, load_checkpoint, load_object, param_prefixes
from saddlescope.objective import Objective

__all__ = ["analyze_command"]

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


@click.command("analyze")
@click.option(
    "--model", "model_spec", required=True, help="pkg.module:factory returning the model."
)
@click.option(
    "--checkpoint",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="Weights-only checkpoint (torch.save'd state dict, .safetensors, or an HF folder).",
)
@click.option("--data", "data_spec", required=True, help="pkg.module:factory returning batches.")
@click.option("--loss", "loss_spec", default=None, help="pkg.module:loss (default: model's own).")
@click.option(
    "--param-filter",
    multiple=True,
    help="Restrict θ to parameters named by, or inside, this prefix (repeatable).",
)
@click.option("--k", type=click.IntRange(min=1), default=None, help="Extreme pairs per end.")
@click.option("--dtype", type=click.Choice(sorted(_DTYPES)), default=None, help="Default: model's.")
@click.option("--norm-stats", type=click.Choice(["running", "batch"]), default="running")
@click.option(
    "--max-dense-seconds",
    type=click.FloatRange(min=0),
    default=DEFAULT_MAX_DENSE_SECONDS,
    show_default=True,
    help="Take the dense (exact) path when estimated within this many seconds.",
)
@click.option("--density/--no-density", default=True, show_default=True)
@click.option("--landscape/--no-landscape", default=True, show_default=True)
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0))
def analyze_command(
    model_spec: str,
    checkpoint: Path | None,
    data_spec: str,
    loss_spec: str | None,
    param_filter: tuple[str, ...],
    k: int | None,
    dtype: str | None,
    norm_stats: str,
    max_dense_seconds: float,
    density: bool,
    landscape: bool,
    json_path: Path | None,
    html_path: Path | None,
    seed: int,
) -> None:
    """Minimum or saddle? The verdict on your model at its current (or checkpointed) weights.

    Imports your factories (like uvicorn's pkg:app), loads the checkpoint weights-only, and
    prints the gradient norm, the extreme eigenvalues with residuals, index and minimum ratio
    (with error bars when estimated), the kind, and the escape direction's predicted decrease.
    """
    model = build(model_spec, "model")
    if not isinstance(model, torch.nn.Module):
        raise click.UsageError(f"--model {model_spec} gave {type(model).__name__}, not a Module")
    if checkpoint is not None:
        load_checkpoint(model, checkpoint)
    data = build(data_spec, "data")
    loss_fn = _loss(loss_spec)
    obj = Objective(
        model,
        loss_fn,
        data,
        dtype=None if dtype is None else _DTYPES[dtype],
        norm_stats=norm_stats,  # type: ignore[arg-type]
        param_filter=param_prefixes(param_filter),
    )
    source = _source(model_spec, checkpoint, data_spec, loss_spec, param_filter, obj)
    console.print(
        f"{obj.num_params:,} parameters, {obj.num_samples:,} samples in {obj.num_batches} "
        f"batches ({'streamed' if not obj.data.held else 'held'}), {obj.dtype}",
        markup=False,
    )
    result = analyze(
        obj,
        k=k,
        density=density,
        landscape=landscape,
        max_dense_seconds=max_dense_seconds,
        seed=seed,
        source=source,
    )
    _print(result)
    record = result.to_dict()
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        write_text(json_path, json.dumps(record, indent=1))
        console.print(f"wrote {safe(json_path)}")
    if html_path is not None:
        from saddlescope.report import write_report

        console.print(f"wrote {safe(write_report(record, html_path))}")


def _loss(spec: str | None) -> Any:
    if spec is None:
        return None
    loss = load_object(spec, "loss")
    return loss() if isinstance(loss, type) else loss


def _source(
    model_spec: str,
    checkpoint: Path | None,
    data_spec: str,
    loss_spec: str | None,
    param_filter: tuple[str, ...],
    obj: Objective,
) -> dict[str, Any]:
    return {
        "model": {
            "factory": model_spec,
            "checkpoint": None if checkpoint is None else str(checkpoint),
            "num_params": obj.num_params,
            "param_filter": list(param_filter) or None,
            "loss": loss_spec or "the model's own (outputs.loss)",
        },
        "data": {
            "factory": data_spec,
            "num_batches": obj.num_batches,
            "num_samples": obj.num_samples,
            "streamed": not obj.data.held,
        },
    }


def _print(result: Analysis) -> None:
    record = result.to_dict()
    v = record["verdict"]
    table = Table(title=f"verdict: {v['kind']}", show_header=False)
    table.add_row("how", safe(v["resolution"]))
    table.add_row("loss", fmt(v["loss"], ".6g"))
    table.add_row("‖∇L‖", f"{fmt(v['grad_norm'], '.3g')} (grad_tol {v['tolerance']['grad_tol']:g})")
    for e in record["extremes"]:
        res = "" if e["residual"] is None else f"  (‖Hu − λu‖ {e['residual']:.2g})"
        table.add_row(f"λ {e['end']}", f"{e['value']:.6g}{res}")
    table.add_row("index", _with_err(v["index"], v["index_err"]))
    table.add_row("minimum ratio", _with_err(v["minimum_ratio"], v["minimum_ratio_err"]))
    table.add_row("zero band", f"|λ| ≤ {v['threshold']:.3g}")
    esc = record["escape"]
    if esc is not None and esc["curvature"] is not None:
        table.add_row(
            "way down",
            f"λ = {esc['curvature']:.6g}: ΔL ≈ "
            f"{esc['predicted_decrease_at_unit_step']:.4g} at a unit step",
        )
    table.add_row("path", safe(f"{record['path']['method']}: {record['path']['why']}"))
    table.add_row(
        "stages", ", ".join(f"{s['name']} {s['seconds']:.1f} s" for s in record["stages"])
    )
    console.print(table)


def _with_err(value: float | None, err: float | None) -> str:
    if value is None:
        return "— (a partial spectrum without an estimate)"
    return f"{value:.4g}" + ("" if err is None else f" ± {err:.2g} (SLQ estimate)")
