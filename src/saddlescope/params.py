"""The flat parameter vector θ: which parameters it holds, in what order, and our model copy.

θ holds a model's trainable parameters end to end, in ``model.named_parameters()`` order — or,
with ``param_filter``, only a block of them (a layer, the attention weights), the others held
fixed: the verdict of one block. A parameter shared by several modules (tied weights, as GPT-2's
embedding and LM head) appears once, under its first name. :class:`ParamLayout` is that order
(names, shapes, sizes) with the two maps between θ and named tensors, and the checks that name a
parameter when something is wrong with θ.
:func:`own_copy` is the model copy every analysis runs on, so the user's module is never touched.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _NormBase

from saddlescope.errors import InvalidInputError

__all__ = ["NORM_STATS", "NormStats", "ParamFilter", "ParamLayout", "own_copy"]

ParamFilter = (
    None | Collection[str] | Callable[[str, nn.Parameter], bool] | nn.Module | Sequence[nn.Module]
)
NormStats = Literal["running", "batch"]
NORM_STATS: tuple[NormStats, ...] = ("running", "batch")


@dataclass(frozen=True)
class ParamLayout:
    """Which parameters θ holds, in order.

    Attributes:
        names: the parameters' names, in θ's order.
        shapes: their shapes.
    """

    names: tuple[str, ...]
    shapes: tuple[torch.Size, ...]

    @classmethod
    def of_trainable(cls, model: nn.Module, param_filter: ParamFilter = None) -> ParamLayout:
        """The layout of a model's parameters with ``requires_grad=True`` (or a block of them).

        Args:
            model: the user's module.
            param_filter: None (every trainable parameter), a collection of parameter names,
                a predicate ``f(name, parameter) -> bool``, or a submodule (or a list of them)
                whose parameters to take.
        """
        trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        if not trainable:
            raise InvalidInputError(
                "the model has no trainable parameters (every parameter has requires_grad=False); "
                "set requires_grad=True on the parameters to analyse"
            )
        chosen = trainable if param_filter is None else _select(model, trainable, param_filter)
        return cls(tuple(n for n, _ in chosen), tuple(p.shape for _, p in chosen))

    @property
    def numels(self) -> tuple[int, ...]:
        """Each parameter's number of entries."""
        return tuple(int(torch.Size(s).numel()) for s in self.shapes)

    @property
    def num_params(self) -> int:
        """n, the length of θ."""
        return sum(self.numels)

    def flatten(self, named: dict[str, Tensor]) -> Tensor:
        """θ from ``{name: tensor}`` (a new tensor).

        Args:
            named: a tensor for every name of the layout.
        """
        return torch.cat([named[n].detach().reshape(-1) for n in self.names]).clone()

    def unflatten(self, theta: Tensor) -> dict[str, Tensor]:
        """Split θ into ``{parameter name: tensor}`` views with the model's shapes.

        Args:
            theta: a flat vector of length ``num_params`` (views share its storage).
        """
        chunks = torch.split(theta, list(self.numels))
        return {n: c.view(s) for n, c, s in zip(self.names, chunks, self.shapes)}

    def check(
        self,
        theta: Tensor | np.ndarray | Sequence[float],
        dtype: torch.dtype,
        device: torch.device,
        name: str = "θ",
    ) -> Tensor:
        """θ as a 1-D tensor in ``dtype`` on ``device``, or a clear error.

        Args:
            theta: a flat vector of ``num_params`` real numbers (tensor, array or sequence).
            dtype: the dtype to return it in.
            device: the device to return it on.
            name: what to call it in the error message.
        """
        t = torch.as_tensor(theta)
        if t.ndim != 1 or t.numel() != self.num_params:
            raise InvalidInputError(
                f"{name} must be a 1-D vector of length {self.num_params} (this objective's "
                f"trainable parameters), got shape {tuple(t.shape)}; use obj.theta0 as a template"
            )
        if not (t.is_floating_point() or t.is_complex()):
            t = t.to(torch.float64)
        if t.is_complex():
            raise InvalidInputError(f"{name} must be real, got {t.dtype}")
        return t.detach().to(device=device, dtype=dtype)

    def first_non_finite(self, vec: Tensor) -> str | None:
        """The name of the first parameter where ``vec`` is NaN or infinite (None if none).

        Args:
            vec: a vector like θ.
        """
        if bool(torch.isfinite(vec).all()):  # the common case: one pass, one sync
            return None
        for name, chunk in zip(self.names, torch.split(vec, list(self.numels))):
            if not torch.isfinite(chunk).all():
                return name
        return None


def _select(
    model: nn.Module, trainable: list[tuple[str, nn.Parameter]], param_filter: ParamFilter
) -> list[tuple[str, nn.Parameter]]:
    """The trainable parameters ``param_filter`` picks, in θ's order; a clear error if none."""
    if isinstance(param_filter, nn.Module) or (
        isinstance(param_filter, (list, tuple))
        and param_filter
        and all(isinstance(m, nn.Module) for m in param_filter)
    ):
        modules = [param_filter] if isinstance(param_filter, nn.Module) else list(param_filter)
        ids = {id(p) for m in modules for p in m.parameters()}
        chosen = [(n, p) for n, p in trainable if id(p) in ids]
        what = "the given module(s)"
    elif callable(param_filter):
        chosen = [(n, p) for n, p in trainable if param_filter(n, p)]
        what = "the param_filter predicate"
    else:
        chosen, what = _by_name(model, trainable, param_filter), "the given names"
    if not chosen:
        raise InvalidInputError(
            f"param_filter selects no trainable parameter ({what}); check that the names or "
            "modules belong to this model and have requires_grad=True"
        )
    return chosen


def _by_name(
    model: nn.Module, trainable: list[tuple[str, nn.Parameter]], names: object
) -> list[tuple[str, nn.Parameter]]:
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, (list, tuple, set, frozenset)) or not all(
        isinstance(n, str) for n in names
    ):
        raise InvalidInputError(
            "param_filter must be parameter names, a predicate f(name, parameter) -> bool, or "
            f"module(s) of the model; got {type(names).__name__}"
        )
    every = dict(model.named_parameters(remove_duplicate=False))  # tied names too
    unknown = sorted(set(names) - set(every))
    if unknown:
        close = difflib.get_close_matches(unknown[0], list(every), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise InvalidInputError(f"param_filter names no parameter {unknown[0]!r}{hint}")
    ids = {id(every[n]) for n in names}
    frozen = [n for n in names if not every[n].requires_grad]
    if frozen:
        raise InvalidInputError(f"parameter {frozen[0]!r} has requires_grad=False; it is not in θ")
    return [(n, p) for n, p in trainable if id(p) in ids]


def own_copy(
    model: nn.Module, dtype: torch.dtype, device: torch.device, norm_stats: NormStats
) -> nn.Module:
    """Our copy of the model: in ``dtype`` on ``device``, eval mode, no parameter trainable.

    With ``norm_stats="batch"`` its BatchNorm layers lose their running buffers, so that in eval
    mode they normalise by each batch's own statistics and update nothing.

    Args:
        model: the user's module (not modified).
        dtype: the floating-point dtype of the copy.
        device: where the copy lives.
        norm_stats: "running" (BatchNorm uses its running statistics) or "batch".
    """
    module = copy.deepcopy(model, _computed_tensors(model)).to(device=device, dtype=dtype)
    module.eval()
    module.requires_grad_(False)
    if norm_stats == "batch":
        for m in module.modules():
            if isinstance(m, _NormBase) and m.track_running_stats:
                m.track_running_stats = False
                m.running_mean = m.running_var = m.num_batches_tracked = None
    return module


def _computed_tensors(model: nn.Module) -> dict[int, Tensor]:
    """A deepcopy memo for tensors a module holds as plain attributes but computes in a hook.

    Legacy ``nn.utils.weight_norm`` keeps ``weight`` as a non-leaf tensor attribute, which
    ``deepcopy`` refuses; a detached copy serves (the hook recomputes it every forward).
    """
    memo: dict[int, Tensor] = {}
    for m in model.modules():
        for value in vars(m).values():
            if isinstance(value, Tensor) and not value.is_leaf:
                memo[id(value)] = value.detach().clone()
    return memo
