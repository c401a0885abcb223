"""The source's protocol (saddlescope.survey.source_protocol) and its preset and figure."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from saddlescope import InvalidInputError, toy
from saddlescope.plots import plot_source_views
from saddlescope.survey import (
    DataConfig,
    ModelConfig,
    SearchConfig,
    StudyConfig,
    TrainConfig,
    load_config,
    run_one,
)
from saddlescope.survey.identity import plain, short_hash
from saddlescope.survey.source_protocol import gradnorm_phase, naive_ratios

F64 = torch.float64
PRESET = Path(__file__).resolve().parents[1] / "presets" / "source.toml"


def source_like(seeds: int = 1) -> StudyConfig:
    return StudyConfig(
        name="source-like",
        seeds=seeds,
        data=DataConfig(name="sinc", n_samples=24),
        model=ModelConfig(hidden=((4,),), activation=("relu", "tanh")),
        train=TrainConfig(steps=(30,), lr=0.01),
        search=SearchConfig(gradnorm_phase=20, max_steps=30),
    )


def test_the_gradnorm_phase_lowers_the_gradient_norm():
    A = torch.diag(torch.tensor([3.0, 1.0, -2.0], dtype=F64))
    b = torch.tensor([1.0, -1.0, 0.5], dtype=F64)
    obj = toy.scalar_objective(lambda w: 0.5 * w @ A @ w - b @ w, [0.0, 0.0, 0.0])
    end = gradnorm_phase(obj, obj.theta0, 300, 0.05)
    assert float(obj.grad(end).norm()) < 0.05 * float(obj.grad(obj.theta0).norm())
    naive = naive_ratios(obj, obj, end)
    assert naive["ratio_float64"] == pytest.approx(2 / 3)  # eig > 0: 3 and 1, not −2


def test_a_study_with_two_activations_and_the_phase_keeps_the_naive_view():
    cfg = source_like()
    runs = cfg.runs()
    assert [r.activation for r in runs] == ["relu", "tanh"]
    for spec in runs:
        record = run_one(spec)
        naive = record.search["naive"]
        assert set(naive) == {"loss", "grad_norm", "ratio_float32", "ratio_float64"}
        assert 0 <= naive["ratio_float32"] <= 1 and 0 <= naive["ratio_float64"] <= 1
        n = record.num_params
        assert naive["ratio_float64"] * n == pytest.approx(round(naive["ratio_float64"] * n))
        assert record.search["phases"] and naive["loss"] > 0
        assert (record.search["crossings"] is None) == (spec.activation == "tanh")
    fig = plot_source_views([run_one(s) for s in runs])
    assert len(fig.axes) == 3 and "certified" in fig.axes[2].get_title()


def test_ids_of_studies_without_the_new_keys_are_unchanged():
    spec = StudyConfig().runs()[0]
    later = ("study", "config_hash", "device")  # device: where it ran, never part of an id
    settings = {k: v for k, v in plain(spec).items() if k not in later}
    for key in ("max_hvps", "gradnorm_phase"):
        del settings["search"][key]
    assert spec.run_id == short_hash(settings)  # the id a schema-2 store knows the run by
    other = dataclasses.replace(spec, search=dataclasses.replace(spec.search, gradnorm_phase=5))
    assert other.run_id != spec.run_id


def test_the_preset_parses_and_bad_activation_lists_are_refused(tmp_path):
    cfg = load_config(PRESET)
    assert cfg.model.activations == ("relu", "tanh") and cfg.search.gradnorm_phase > 0
    assert len(cfg.runs()) == 100 and cfg.num_params((10, 10)) == 141
    bad = PRESET.read_text().replace('["relu", "tanh"]', '["relu", "swish!"]')
    (tmp_path / "bad.toml").write_text(bad)
    with pytest.raises(InvalidInputError, match=r"model\.activation"):
        load_config(tmp_path / "bad.toml")
    (tmp_path / "empty.toml").write_text(PRESET.read_text().replace('["relu", "tanh"]', "[]"))
    with pytest.raises(InvalidInputError, match=r"model\.activation"):
        load_config(tmp_path / "empty.toml")
    assert np.isfinite(cfg.search.grad_tol)
