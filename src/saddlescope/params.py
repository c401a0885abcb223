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
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _NormBase
from torch.nn.utils.parametrizations import _WeightNorm
from torch.nn.utils.parametrize import ParametrizationList
from torch.nn.utils.weight_norm import WeightNorm

from saddlescope.errors import InvalidInputError, NonFiniteError

__all__ = [
    "NORM_STATS",
    "NormStats",
    "ParamFilter",
    "ParamLayout",
    "batch_coupled",
    "composed_weight_norm",
    "own_copy",
    "refresh_copy",
]

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

    def check_rows(self, thetas: Any, dtype: torch.dtype, device: torch.device) -> Tensor:
        """An (m, n) block of parameter vectors in ``dtype`` on ``device``, or a clear error.

        Args:
            thetas: one parameter vector per row.
            dtype: the dtype to cast to.
            device: the device to move to.
        """
        try:
            block = torch.as_tensor(thetas)
        except (TypeError, ValueError, RuntimeError) as err:
            raise InvalidInputError(f"thetas must be an (m, n) block of numbers: {err}") from None
        if block.ndim != 2 or block.shape[1] != self.num_params:
            raise InvalidInputError(
                f"thetas must be an (m, {self.num_params}) block of parameter vectors, "
                f"got shape {tuple(block.shape)}"
            )
        return block.to(device=device, dtype=dtype)

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
        t = _as_vector(theta, name)
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

    def require_finite_vector(self, vec: Tensor, name: str = "θ") -> None:
        """Raise :class:`NonFiniteError` if ``vec`` (θ or a direction) holds NaN or Inf.

        Args:
            vec: a vector like θ.
            name: what to call it in the message.
        """
        bad = self.first_non_finite(vec)
        if bad is not None:
            raise NonFiniteError(
                f"{name} holds NaN or Inf, first in parameter {bad!r}; pass a finite {name}"
            )

    def require_finite_loss(self, value: Tensor, theta: Tensor) -> None:
        """Raise :class:`NonFiniteError` if the loss is not finite, naming the cause.

        Args:
            value: the loss.
            theta: where it was computed (a non-finite θ is named as the cause).
        """
        if torch.isfinite(value):
            return
        self.require_finite_vector(theta)
        raise NonFiniteError(
            f"the loss is {value.item()} at θ although θ is finite; check loss_fn and the data "
            "(a log of 0, an overflow in float16/float32?)"
        )

    def require_finite(self, vec: Tensor, what: str, theta: Tensor) -> None:
        """Raise :class:`NonFiniteError` naming the first parameter where ``vec`` is not finite.

        Args:
            vec: a vector like θ (a gradient, a product).
            what: what ``vec`` is, for the message.
            theta: where it was computed (a non-finite θ is named as the cause).
        """
        bad = self.first_non_finite(vec)
        if bad is None:
            return
        if self.first_non_finite(theta) is not None:
            self.require_finite_loss(torch.tensor(float("nan")), theta)
        raise NonFiniteError(
            f"the {what} holds NaN or Inf, first in parameter {bad!r}, although the loss is "
            "finite; the model is not twice differentiable there or overflows — try "
            "dtype=torch.float64"
        )


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

    Weight norms (legacy ``nn.utils.weight_norm`` hooks and the ``parametrizations`` one) are
    replaced by the same function written in elementary ops (:func:`composed_weight_norm`):
    torch's fused weight-norm kernel has a wrong second derivative with respect to ``weight_v``
    (checked against finite differences), which would make every Hessian-vector product
    silently wrong (``tests/test_params.py`` checks both). With
    ``norm_stats="batch"`` its BatchNorm layers lose their running buffers, so that in eval mode
    they normalise by each batch's own statistics and update nothing.

    Args:
        model: the user's module (not modified).
        dtype: the floating-point dtype of the copy.
        device: where the copy lives.
        norm_stats: "running" (BatchNorm uses its running statistics) or "batch".
    """
    module = copy.deepcopy(model, _computed_tensors(model)).to(device=device, dtype=dtype)
    _compose_weight_norms(module)
    module.eval()
    module.requires_grad_(False)
    if norm_stats == "batch":
        for m in module.modules():
            if isinstance(m, _NormBase) and m.track_running_stats:
                m.track_running_stats = False
                m.running_mean = m.running_var = m.num_batches_tracked = None
    return module


_INSTANCE_NORMS = (nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d)  # per sample


def batch_coupled(module: nn.Module) -> bool:
    """Whether the copy normalises by batch statistics (BatchNorm without running buffers).

    Then a batch's loss couples its samples: it is no per-sample mean, and batches of one
    shape cannot be stacked.

    Args:
        module: our copy of the model (from :func:`own_copy`).
    """
    return any(
        isinstance(m, _NormBase) and not isinstance(m, _INSTANCE_NORMS) and m.running_mean is None
        for m in module.modules()
    )


def refresh_copy(module: nn.Module, model: nn.Module) -> None:
    """Give our copy (from :func:`own_copy`) the model's current parameter and buffer values.

    Every parameter and buffer the copy holds takes the model's value of the same name, cast to
    the copy's dtype and device; the model is only read. Buffers the copy dropped (BatchNorm's
    running statistics with ``norm_stats="batch"``) stay dropped.

    Args:
        module: our copy.
        model: the module it was copied from, or one with the same names and shapes.
    """
    theirs = dict(model.named_parameters()) | dict(model.named_buffers())
    ours = dict(module.named_parameters()) | dict(module.named_buffers())
    for name, t in ours.items():
        src = theirs.get(name)
        if src is None or src.shape != t.shape:
            raise InvalidInputError(
                f"the model has no {name!r} of shape {tuple(t.shape)}; pass the model this "
                "objective was made from (or one with the same parameter names and shapes)"
            )
    with torch.no_grad():
        for name, t in ours.items():
            t.copy_(theirs[name])


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


def composed_weight_norm(v: Tensor, g: Tensor, dim: int) -> Tensor:
    """W = g · v / ‖v‖, the norm over every dimension but ``dim`` (all of them for −1).

    The same function as ``torch._weight_norm``, in elementary ops with correct second
    derivatives.

    Args:
        v: the direction (``weight_v``).
        g: the magnitude (``weight_g``).
        dim: the dimension the norm is not taken over (−1: none).
    """
    if dim == -1:
        return v * (g / v.pow(2).sum().sqrt())
    dims = [d for d in range(v.ndim) if d != dim % v.ndim]
    return v * (g / v.pow(2).sum(dim=dims, keepdim=True).sqrt())


class _ComposedWeightNorm:
    """The legacy weight-norm pre-hook, computing with :func:`composed_weight_norm`."""

    def __init__(self, name: str, dim: int) -> None:
        self.name, self.dim = name, dim

    def __call__(self, module: nn.Module, inputs: object) -> None:
        g = getattr(module, self.name + "_g")
        v = getattr(module, self.name + "_v")
        setattr(module, self.name, composed_weight_norm(v, g, self.dim))


class _ComposedWeightNormParametrization(nn.Module):
    """The weight-norm parametrization, computing with :func:`composed_weight_norm`."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, weight_g: Tensor, weight_v: Tensor) -> Tensor:
        """W from its magnitude and direction."""
        return composed_weight_norm(weight_v, weight_g, self.dim)


def _compose_weight_norms(module: nn.Module) -> None:
    """Swap every weight norm of our copy (legacy hook or parametrization) for the composed one."""
    for m in module.modules():
        # torch has no public accessor for registered hooks: read its table, change nothing in it
        for hook in list(m._forward_pre_hooks.values()):
            if isinstance(hook, WeightNorm):  # registered after torch's hook: its weight wins
                m.register_forward_pre_hook(_ComposedWeightNorm(hook.name, hook.dim))
        if isinstance(m, ParametrizationList):
            for i, p in enumerate(m):
                if isinstance(p, _WeightNorm):
                    m[i] = _ComposedWeightNormParametrization(p.dim)


def _as_vector(theta: Any, name: str) -> Tensor:
    """``theta`` as a tensor holding numbers, or a clear error (None, text, meta tensors)."""
    if isinstance(theta, Tensor) and theta.is_meta:
        raise InvalidInputError(
            f"{name} is on the 'meta' device and holds no values; pass a real vector such as "
            "obj.theta0"
        )
    try:
        return torch.as_tensor(theta)
    except (TypeError, ValueError, RuntimeError):
        raise InvalidInputError(
            f"{name} must be a vector of numbers (a tensor, array or list of floats), got "
            f"{type(theta).__name__}; use obj.theta0 as a template"
        ) from None
