"""Which torch ops are piecewise (kinked), and where their pieces meet.

An op is *kinked* when its derivative jumps somewhere: the network built from it is smooth
inside each region where every such op stays on one piece, and only piecewise smooth across.
For each op seen during a forward pass, :data:`KINKED_OPS` gives a rule that turns the call's
arguments into :class:`Breaks`: per element, the signed distance z to the nearest breakpoint
(as a differentiable tensor, so ∂z/∂θ can be taken), which piece the element is on, and the
input's typical size.

The ops, identified by the function torch dispatches (``nn`` modules call these, so
``nn.ReLU`` and ``F.relu`` and ``x.relu()`` are all seen):

* breakpoint 0: ``relu`` (and ``relu_``, ``torch.relu``, ``Tensor.relu``), ``leaky_relu``
  (slope ≠ 1), ``prelu``, ``rrelu`` (in eval its mean slope), ``elu`` (α ≠ 1: the slope jumps
  from α to 1), ``selu`` (from λα to λ), ``abs``;
* two breakpoints: ``hardtanh`` (min_val, max_val; also ``nn.ReLU6`` = (0, 6)), ``relu6``,
  ``hardsigmoid`` and ``hardswish`` (−3, 3), ``softshrink`` and ``hardshrink`` (±λ),
  ``clamp``/``clip`` and ``clamp_min``/``clamp_max`` (each bound given, scalar or tensor),
  ``threshold`` (its threshold). ``hardshrink`` and ``threshold`` jump in value there, worse
  than a kink;
* two inputs: ``maximum``/``minimum``, ``fmax``/``fmin`` and the two-tensor ``max``/``min``
  (z = a − b);
* max pooling, ``max_pool1d`` and ``max_pool2d`` (not ``ceil_mode``): z = the gap between a
  window's largest and second-largest entry, the piece = which entry is largest;
* the loss ``l1_loss``: each residual input − target (kink at 0).

Recognised but not measured (:data:`UNMEASURED_OPS`, and the pooling cases above): 3-D,
adaptive and fractional max pooling, the reductions ``max``/``min``/``amax``/``amin``
over a dimension, ``sort``, ``topk``, ``kthvalue``, ``median``, and the margin (hinge) losses.
Not seen at all: kinks written without a torch function call (``torch.where(x > 0, x, 0)``,
masks, indexing), custom autograd functions, compiled or scripted code, and what a loss does
inside its C++ kernel (``cross_entropy``'s log-sum-exp is smooth). Not counted: GELU, SiLU,
Mish and Softplus are smooth; ELU with α = 1, CELU and the Huber/smooth-L1 losses are C¹ —
∇L is continuous across their breakpoints, so searches do not stall there, though the
Hessian jumps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["KINKED_OPS", "UNMEASURED_OPS", "Breaks", "KinkRule", "Unmeasured"]


class Unmeasured(Exception):
    """A kinked op called in a way whose breakpoints are not measured (e.g. ``ceil_mode``)."""


@dataclass(frozen=True)
class Breaks:
    """One kinked op call's breakpoints, per element of its (broadcast) input.

    Attributes:
        z: the signed distance to the nearest breakpoint (0 on it), in the input's units; a
            function of the input, so of θ when the input is.
        piece: which linear piece each element is on (an integer code; an element exactly on
            a breakpoint has a code of its own).
        scale: the input's typical size (its root mean square; 1 when it is all zeros), for a
            scale-free margin |z|/scale.
    """

    z: Tensor
    piece: Tensor
    scale: float


KinkRule = Callable[[tuple[Any, ...], dict[str, Any]], "Breaks | None"]


def _arg(args: tuple[Any, ...], kwargs: dict[str, Any], i: int, name: str, default: Any) -> Any:
    """The argument at position ``i`` or named ``name``."""
    return args[i] if len(args) > i else kwargs.get(name, default)


def _rms(x: Tensor) -> float:
    value = float(x.detach().double().pow(2).mean().sqrt()) if x.numel() else 0.0
    return value if value > 0 else 1.0


def breakpoints(x: Tensor, points: Sequence[float | Tensor]) -> Breaks:
    """The :class:`Breaks` of an elementwise op with the given breakpoints (ascending).

    Args:
        x: the op's input.
        points: its breakpoints, numbers or tensors broadcastable to ``x``, in ascending order.
    """
    if len(points) == 1:
        z = x - points[0]
        return Breaks(z, z.detach().sign().to(torch.int8), _rms(x))
    diffs = torch.stack(torch.broadcast_tensors(*[x - p for p in points]))
    nearest = diffs.detach().abs().argmin(dim=0, keepdim=True)
    z = diffs.gather(0, nearest).squeeze(0)
    piece = diffs.detach().sign().sum(dim=0).to(torch.int8)
    return Breaks(z, piece, _rms(x))


def _at(*points: float) -> KinkRule:
    """A rule for an op with fixed breakpoints, its input first."""
    return lambda args, kwargs: breakpoints(_arg(args, kwargs, 0, "input", None), points)


def _sloped(name: str, default: float, position: int = 1) -> KinkRule:
    """A rule for an op with a kink at 0 unless its parameter ``name`` is 1 (no kink)."""

    def rule(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Breaks | None:
        if _arg(args, kwargs, position, name, default) == 1:
            return None
        return breakpoints(_arg(args, kwargs, 0, "input", None), (0.0,))

    return rule


def _hardtanh(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Breaks:
    lo, hi = _arg(args, kwargs, 1, "min_val", -1.0), _arg(args, kwargs, 2, "max_val", 1.0)
    return breakpoints(_arg(args, kwargs, 0, "input", None), (lo, hi))


def _shrink(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Breaks:
    lam = float(_arg(args, kwargs, 1, "lambd", 0.5))
    return breakpoints(_arg(args, kwargs, 0, "input", None), (-lam, lam))


def _threshold(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Breaks:
    return breakpoints(args[0], (_arg(args, kwargs, 1, "threshold", 0.0),))


def _clamp(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Breaks | None:
    lo, hi = _arg(args, kwargs, 1, "min", None), _arg(args, kwargs, 2, "max", None)
    points = [p for p in (lo, hi) if p is not None]
    return breakpoints(args[0], points) if points else None


def _clamp_one(name: str) -> KinkRule:
    return lambda args, kwargs: breakpoints(args[0], (_arg(args, kwargs, 1, name, None),))


def _pair(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Breaks:
    a, b = args[0], _arg(args, kwargs, 1, "other", None)
    return breakpoints(a - b, (0.0,))


def _l1(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Breaks:
    """``l1_loss``: each residual input − target is a unit with its kink at 0."""
    x, target = _arg(args, kwargs, 0, "input", None), _arg(args, kwargs, 1, "target", None)
    return breakpoints(x - target, (0.0,))


def _max_min(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Breaks | None:
    """``max``/``min``: two tensors are measured; a reduction is not."""
    other = _arg(args, kwargs, 1, "other", None)
    if isinstance(other, Tensor):
        return _pair(args, kwargs)
    raise Unmeasured


def _tuple(value: Any, dims: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (int(value),) * dims


def _pool(dims: int) -> KinkRule:
    """A rule for ``max_pool{dims}d``: a window's top-two gap, computed by ``unfold``."""

    def rule(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Breaks | None:
        x = _arg(args, kwargs, 0, "input", None)
        kernel = _tuple(_arg(args, kwargs, 1, "kernel_size", None), dims)
        stride = _arg(args, kwargs, 2, "stride", None)
        stride = kernel if stride is None or stride == [] else _tuple(stride, dims)
        padding = _tuple(_arg(args, kwargs, 3, "padding", 0), dims)
        dilation = _tuple(_arg(args, kwargs, 4, "dilation", 1), dims)
        if _arg(args, kwargs, 5, "ceil_mode", False):
            raise Unmeasured
        if torch.Size(kernel).numel() < 2:
            return None
        if dims == 1:  # a row of a 2-D image
            kernel, stride, padding, dilation = (
                (1, *kernel),
                (1, *stride),
                (0, *padding),
                (1, *dilation),
            )
        planes = x.reshape(-1, 1, *x.shape[x.ndim - 2 :] if dims == 2 else (1, x.shape[-1]))
        pad = (padding[1], padding[1], padding[0], padding[0])
        padded = F.pad(planes, pad, value=float("-inf"))
        windows = F.unfold(padded, kernel, dilation=dilation, stride=stride)
        top = windows.topk(2, dim=1)
        gap = top.values[:, 0] - top.values[:, 1]
        return Breaks(gap, top.indices[:, 0].to(torch.int16), _rms(x))

    return rule


def _table() -> dict[Any, tuple[str, KinkRule]]:
    zero = _at(0.0)
    rules: list[tuple[str, list[Any], KinkRule]] = [
        ("relu", [F.relu, torch.relu, torch.relu_, torch.Tensor.relu, torch.Tensor.relu_], zero),
        ("leaky_relu", [F.leaky_relu, F.leaky_relu_], _sloped("negative_slope", 0.01)),
        ("prelu", [F.prelu, torch.prelu], zero),
        ("rrelu", [F.rrelu, F.rrelu_], zero),
        ("elu", [F.elu, F.elu_], _sloped("alpha", 1.0)),
        ("selu", [F.selu, torch.selu, torch.selu_], zero),
        ("abs", [torch.abs, torch.absolute, torch.Tensor.abs, torch.Tensor.absolute], zero),
        ("hardtanh", [F.hardtanh, F.hardtanh_], _hardtanh),
        ("relu6", [F.relu6], _at(0.0, 6.0)),
        ("hardsigmoid", [F.hardsigmoid], _at(-3.0, 3.0)),
        ("hardswish", [F.hardswish], _at(-3.0, 3.0)),
        ("softshrink", [F.softshrink], _shrink),
        ("hardshrink", [F.hardshrink, torch.Tensor.hardshrink], _shrink),
        ("threshold", [F.threshold, torch.threshold, torch.threshold_], _threshold),
        ("clamp", [torch.clamp, torch.clip, torch.Tensor.clamp, torch.Tensor.clip], _clamp),
        ("clamp", [torch.clamp_, torch.Tensor.clamp_, torch.Tensor.clip_], _clamp),
        ("clamp_min", [torch.clamp_min, torch.Tensor.clamp_min], _clamp_one("min")),
        ("clamp_max", [torch.clamp_max, torch.Tensor.clamp_max], _clamp_one("max")),
        ("maximum", [torch.maximum, torch.Tensor.maximum, torch.fmax], _pair),
        ("minimum", [torch.minimum, torch.Tensor.minimum, torch.fmin], _pair),
        ("max", [torch.max, torch.Tensor.max], _max_min),
        ("min", [torch.min, torch.Tensor.min], _max_min),
        ("max_pool1d", [F.max_pool1d, F.max_pool1d_with_indices], _pool(1)),
        ("max_pool2d", [F.max_pool2d, F.max_pool2d_with_indices], _pool(2)),
        ("l1_loss", [F.l1_loss], _l1),
    ]
    return {f: (name, rule) for name, funcs, rule in rules for f in funcs}


KINKED_OPS: dict[Any, tuple[str, KinkRule]] = _table()
"""function torch dispatches → (op name, the rule giving its :class:`Breaks`)."""

_UNMEASURED: list[tuple[str, list[Any]]] = [
    ("max_pool3d", [F.max_pool3d, F.max_pool3d_with_indices]),
    ("adaptive_max_pool", [F.adaptive_max_pool1d, F.adaptive_max_pool2d]),
    ("adaptive_max_pool", [F.adaptive_max_pool3d]),
    ("fractional_max_pool", [F.fractional_max_pool2d, F.fractional_max_pool3d]),
    ("amax", [torch.amax, torch.Tensor.amax]),
    ("amin", [torch.amin, torch.Tensor.amin]),
    ("sort", [torch.sort, torch.Tensor.sort]),
    ("topk", [torch.topk, torch.Tensor.topk]),
    ("kthvalue", [torch.kthvalue, torch.Tensor.kthvalue]),
    ("median", [torch.median, torch.Tensor.median]),
]
UNMEASURED_OPS: dict[Any, str] = {f: name for name, funcs in _UNMEASURED for f in funcs}
"""Kinked ops that are recognised but whose breakpoints are not measured: function → name."""
