"""The user's model, data and loss from import specs, and their weights from a checkpoint.

``saddlescope analyze --model pkg.mod:factory --data pkg.mod:loader`` names Python objects the
way ``uvicorn pkg.mod:app`` does: a module path, a colon, an attribute (dotted for nested ones).
A factory is called without arguments; an object that is already a model or a list of batches is
used as it is. Checkpoints are read with ``torch.load(weights_only=True)`` or as safetensors:
tensors and plain containers only, never arbitrary pickled objects, since a pickle can run any
code when it is loaded.
"""

from __future__ import annotations

import importlib
import pickle
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from saddlescope.errors import InvalidInputError

__all__ = ["build", "load_checkpoint", "load_object", "param_prefixes"]

_SPEC = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
_STATE_KEYS = ("state_dict", "model_state_dict", "model")


def load_object(spec: str, what: str) -> Any:
    """The object a ``"pkg.module:attribute"`` spec names (the working directory importable).

    Args:
        spec: ``module.path:attribute`` (the attribute may be dotted, ``mod:Class.factory``).
        what: what it is for ("model", "data", "loss"), for messages.
    """
    if not isinstance(spec, str) or not _SPEC.match(spec):
        raise InvalidInputError(f"--{what} must look like 'package.module:attribute', got {spec!r}")
    module_name, attr = spec.split(":")
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))  # like uvicorn: modules beside the caller import
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as err:
        raise InvalidInputError(
            f"--{what} {spec}: cannot import {module_name!r} ({err}); run from the folder that "
            "holds the package, or install it"
        ) from err
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise InvalidInputError(f"--{what} {spec}: {module_name} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj


def build(spec: str, what: str) -> Any:
    """The object a spec names, called first when it is a factory (a function or a class).

    A model instance (``nn.Module``), a list or other non-callable object is used as it is.

    Args:
        spec: ``module.path:attribute``.
        what: what it is for, for messages.
    """
    obj = load_object(spec, what)
    if isinstance(obj, nn.Module) or not callable(obj):
        return obj
    try:
        return obj()
    except TypeError as err:
        raise InvalidInputError(
            f"--{what} {spec}: calling it without arguments failed ({err}); point at a factory "
            "that takes none"
        ) from err


def load_checkpoint(model: nn.Module, path: str | Path) -> None:
    """Load weights into ``model`` from a weights-only checkpoint (strict: every key must match).

    Reads ``torch.save``'d state dicts (also under "state_dict", "model_state_dict" or "model"),
    ``.safetensors`` files, and HuggingFace ``save_pretrained`` folders (``model.safetensors``).

    Args:
        model: the model the factory built.
        path: the checkpoint file or folder.
    """
    state = _read_state(Path(path))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise InvalidInputError(
            f"checkpoint {path} does not match the model the factory built: "
            f"{str(err).splitlines()[0]} {_key_summary(model, state)}"
        ) from err


def _read_state(path: Path) -> Mapping[str, Tensor]:
    if path.is_dir():
        path = path / "model.safetensors"
    if not path.is_file():
        raise InvalidInputError(f"checkpoint {path} does not exist (a file, or an HF model folder)")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, AttributeError, EOFError) as err:
        raise InvalidInputError(
            f"checkpoint {path} is not a weights-only checkpoint ({str(err).splitlines()[0]}); "
            "saddlescope never unpickles arbitrary objects, which could run code: save "
            "model.state_dict() with torch.save, or use safetensors"
        ) from None
    return _state_dict(loaded, path)


def _state_dict(loaded: Any, path: Path) -> Mapping[str, Tensor]:
    if isinstance(loaded, Mapping):
        for key in _STATE_KEYS:
            if isinstance(loaded.get(key), Mapping):
                loaded = loaded[key]
                break
        if loaded and all(isinstance(k, str) and isinstance(v, Tensor) for k, v in loaded.items()):
            return loaded
    raise InvalidInputError(
        f"checkpoint {path} holds {type(loaded).__name__}, not a state dict of tensors (nor one "
        f"under {', '.join(_STATE_KEYS)})"
    )


def _key_summary(model: nn.Module, state: Mapping[str, Tensor]) -> str:
    want, have = set(model.state_dict()), set(state)
    missing, unexpected = sorted(want - have)[:3], sorted(have - want)[:3]
    parts = [
        f"missing {missing}" if missing else "",
        f"unexpected {unexpected}" if unexpected else "",
    ]
    return "(" + "; ".join(p for p in parts if p) + ")" if any(parts) else ""


def param_prefixes(prefixes: tuple[str, ...]) -> Callable[[str, nn.Parameter], bool] | None:
    """A ``param_filter`` keeping parameters named by, or inside, any of the prefixes.

    Args:
        prefixes: parameter names or module paths (``bert.encoder.layer.0.attention``);
            empty: every parameter (None).
    """
    if not prefixes:
        return None
    return lambda name, _: any(name == p or name.startswith(p + ".") for p in prefixes)
