"""Loading factories and checkpoints (saddlescope.loading): weights only, clear errors."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
from torch import nn

from saddlescope import InvalidInputError
from saddlescope.loading import build, load_checkpoint, load_object, param_prefixes

pytestmark = pytest.mark.bad_input


def _model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))


def _same(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("spec", ["torch.nn", "torch.nn:", ":Linear", "torch nn:Linear", 3])
def test_malformed_specs_are_refused(spec):
    with pytest.raises(InvalidInputError, match=r"package\.module:attribute"):
        load_object(spec, "model")


def test_objects_and_factories_are_found_and_built():
    assert load_object("torch.nn:Linear", "model") is nn.Linear
    assert isinstance(build("examples.factories:small_cnn", "model"), nn.Module)
    assert isinstance(build("torch.nn:CrossEntropyLoss", "loss"), nn.CrossEntropyLoss)
    with pytest.raises(InvalidInputError, match=r"cannot import 'no_such_pkg\.mod'"):
        load_object("no_such_pkg.mod:f", "data")
    with pytest.raises(InvalidInputError, match="has no attribute 'Nope'"):
        load_object("torch.nn:Nope", "model")
    with pytest.raises(InvalidInputError, match="without arguments"):
        build("torch.nn:Linear", "model")  # needs in_features, out_features


@pytest.mark.parametrize("wrap", [None, "state_dict", "model_state_dict", "model"])
def test_state_dict_checkpoints_load_strictly(tmp_path: Path, wrap):
    trained, fresh = _model(1), _model(2)
    state = trained.state_dict()
    torch.save(state if wrap is None else {wrap: state, "epoch": 3}, tmp_path / "ckpt.pt")
    load_checkpoint(fresh, tmp_path / "ckpt.pt")
    assert _same(fresh, trained)


def test_safetensors_files_and_hf_folders_load(tmp_path: Path):
    from safetensors.torch import save_file

    trained, fresh = _model(1), _model(2)
    save_file(trained.state_dict(), str(tmp_path / "w.safetensors"))
    load_checkpoint(fresh, tmp_path / "w.safetensors")
    assert _same(fresh, trained)
    from examples.factories import tiny_bert

    bert = tiny_bert()
    with torch.no_grad():
        bert.classifier.bias.add_(1.0)
    bert.save_pretrained(tmp_path / "hf")
    again = tiny_bert()
    load_checkpoint(again, tmp_path / "hf")
    assert torch.equal(again.classifier.bias, bert.classifier.bias)


class _Payload:
    """An object whose unpickling runs code: it creates a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_pickle_that_is_not_weights_only_is_refused_and_never_run(tmp_path: Path):
    marker = tmp_path / "ran"
    with open(tmp_path / "evil.pt", "wb") as f:
        pickle.dump({"0.weight": _Payload(marker)}, f, protocol=2)
    with pytest.raises(InvalidInputError, match="not a weights-only checkpoint"):
        load_checkpoint(_model(), tmp_path / "evil.pt")
    assert not marker.exists()


def test_wrong_or_mismatched_checkpoints_say_what_is_wrong(tmp_path: Path):
    with pytest.raises(InvalidInputError, match="does not exist"):
        load_checkpoint(_model(), tmp_path / "missing.pt")
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(InvalidInputError, match="not a state dict"):
        load_checkpoint(_model(), tmp_path / "list.pt")
    other = nn.Sequential(nn.Linear(3, 4))
    torch.save(other.state_dict(), tmp_path / "other.pt")
    with pytest.raises(InvalidInputError, match=r"does not match.*missing"):
        load_checkpoint(_model(), tmp_path / "other.pt")


def test_param_prefixes_select_modules_and_names():
    keep = param_prefixes(("0", "2.bias"))
    assert keep is not None and param_prefixes(()) is None
    names = [n for n, p in _model().named_parameters() if keep(n, p)]
    assert names == ["0.weight", "0.bias", "2.bias"]
