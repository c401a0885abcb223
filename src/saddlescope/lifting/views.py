"""Widening on flat parameter vectors: narrow θ ↦ wide θ, and the split theorem's coordinates.

:func:`split_neuron` acts on modules; these functions act on the flat θ of an
:class:`~saddlescope.Objective` over an MLP, so that narrow and wide points can be compared in one
parameter layout (:func:`split_objective`'s).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.func import vmap

from saddlescope.errors import InvalidInputError
from saddlescope.lifting.layout import check_index, check_layer, check_ratio, mlp_layout
from saddlescope.lifting.widen import split_neuron, split_tensors
from saddlescope.objective import Objective
from saddlescope.twins import module_at, objective_like

__all__ = [
    "check_split",
    "mlp_param_names",
    "module_at",
    "objective_like",
    "split_coordinates",
    "split_objective",
    "split_params",
    "split_theta",
]


def mlp_param_names(obj: Objective, layer: int) -> tuple[str, str | None, str]:
    """(incoming weight, incoming bias or None, outgoing weight) parameter names of a layer.

    Args:
        obj: an objective over an MLP.
        layer: the hidden layer, counted from 0.

    Raises:
        InvalidInputError: the module is not an MLP, ``layer`` is out of range, or one of the
            two Linear layers around it is frozen.
    """
    layout = mlp_layout(obj.module)
    layer = check_layer(layout, layer)
    i, o = layout.linears[layer], layout.linears[layer + 1]
    has_bias = obj.module.get_submodule(str(i)).bias is not None
    names = (f"{i}.weight", f"{i}.bias" if has_bias else None, f"{o}.weight")
    missing = [n for n in names if n is not None and n not in obj.param_names]
    if missing:
        raise InvalidInputError(
            f"parameters {missing} are frozen (requires_grad=False) in this objective; splitting "
            "needs the two Linear layers around the hidden layer to be trainable"
        )
    return names


def check_split(obj: Objective, layer: Any, neuron: Any, ratio: Any) -> tuple[int, float]:
    """Check a split's arguments against the objective's MLP: (unit, λ), or raise.

    Args:
        obj: an objective over an MLP.
        layer: the hidden layer, counted from 0.
        neuron: the unit of that layer.
        ratio: the split ratio λ.
    """
    w_name, _, _ = mlp_param_names(obj, layer)
    width = obj.param_shapes[obj.param_names.index(w_name)][0]
    neuron = check_index("neuron", neuron, width, f"hidden layer {layer}'s units")
    return neuron, check_ratio(ratio)


def split_params(
    obj: Objective, theta: Tensor, layer: int, neuron: int, ratio: float
) -> dict[str, Tensor]:
    """The wide network's parameters, by name, at the split of the narrow θ (arguments checked).

    Args:
        obj: the narrow objective (an MLP).
        theta: the narrow flat parameters.
        layer: the hidden layer, counted from 0.
        neuron: the unit to split (already checked, see :func:`check_split`).
        ratio: λ (already checked).
    """
    w_name, b_name, o_name = mlp_param_names(obj, layer)
    params = obj.unflatten(theta)
    w_in, b_in, w_out = split_tensors(
        params[w_name], None if b_name is None else params[b_name], params[o_name], neuron, ratio
    )
    params[w_name], params[o_name] = w_in, w_out
    if b_name is not None and b_in is not None:
        params[b_name] = b_in
    return params


def _flatten(params: dict[str, Tensor], names: tuple[str, ...]) -> Tensor:
    return torch.cat([params[n].reshape(-1) for n in names])


def split_theta(obj: Objective, theta: Tensor, layer: int, neuron: int, ratio: float) -> Tensor:
    """θ of the narrow MLP ↦ θ of the wide one (:func:`split_neuron`'s map, on flat vectors).

    Linear in θ for a fixed λ. The result is laid out as :func:`split_objective`'s parameters.

    Args:
        obj: the narrow objective (an MLP).
        theta: the narrow flat parameters.
        layer: the hidden layer, counted from 0.
        neuron: the unit to split.
        ratio: λ, the share of the outgoing weights the unit keeps.
    """
    theta = obj.check_theta(theta)
    neuron, lam = check_split(obj, layer, neuron, ratio)
    return _flatten(split_params(obj, theta, layer, neuron, lam), obj.param_names)


def split_objective(
    obj: Objective,
    layer: int,
    neuron: int = 0,
    ratio: float = 0.5,
    theta: Tensor | None = None,
) -> Objective:
    """The wide network's objective, starting (``theta0``) at the split of θ.

    Any other split point of the same layer (another neuron or λ) lives in the same parameter
    layout: ``split_theta(obj, θ, layer, neuron', λ')``.

    Args:
        obj: the narrow objective (an MLP).
        layer: the hidden layer, counted from 0.
        neuron: the unit to split.
        ratio: λ, the share of the outgoing weights the unit keeps.
        theta: the narrow point to split (default ``obj.theta0``).
    """
    theta = obj.theta0 if theta is None else obj.check_theta(theta)
    neuron, lam = check_split(obj, layer, neuron, ratio)
    return objective_like(obj, split_neuron(module_at(obj, theta), layer, neuron, lam))


def split_coordinates(obj: Objective, layer: int, neuron: int, ratio: float) -> Tensor:
    """T (n_wide × n_wide): θ_wide = T·(θ_narrow, ζ, u), the coordinates of the split theorem.

    w′ = w + (1−λ)ζ, w″ = w − λζ (incoming [weights; bias] of the unit and its copy), v′ = λv + u,
    v″ = (1−λ)v − u (their outgoing columns); every other parameter is copied. det T = ±1 for
    every λ, and at any θ, Tᵀ·H_wide·T = diag(H_narrow, K) with K from
    :class:`~saddlescope.lifting.split.SplitBlocks`.

    Args:
        obj: the narrow objective (an MLP).
        layer: the hidden layer, counted from 0.
        neuron: the unit to split.
        ratio: λ, the share of the outgoing weights the unit keeps.
    """
    neuron, lam = check_split(obj, layer, neuron, ratio)
    eye = torch.eye(obj.num_params, dtype=obj.dtype, device=obj.device)
    narrow = vmap(
        lambda e: _flatten(split_params(obj, e, layer, neuron, lam), obj.param_names),
        in_dims=1,
        out_dims=1,
    )(eye)
    wide_shapes = split_params(obj, eye[0], layer, neuron, lam)
    zero = {n: torch.zeros_like(t) for n, t in wide_shapes.items()}
    return torch.cat([narrow, _extra_columns(obj, zero, layer, neuron, lam)], dim=1)


def _extra_columns(
    obj: Objective, zero: dict[str, Tensor], layer: int, neuron: int, lam: float
) -> Tensor:
    """T's last p + m columns: ζ (the incoming difference) then u (the outgoing transfer)."""
    w_name, b_name, o_name = mlp_param_names(obj, layer)
    fan_in = zero[w_name].shape[1]
    p = fan_in + int(b_name is not None)
    m = zero[o_name].shape[0]
    new = zero[w_name].shape[0] - 1  # the copy is the layer's last unit
    cols = []
    for k in range(p):  # ζ: the difference of the incoming [weights; bias]
        d = {n: t.clone() for n, t in zero.items()}
        if k < fan_in:
            d[w_name][neuron, k], d[w_name][new, k] = 1 - lam, -lam
        elif b_name is not None:
            d[b_name][neuron], d[b_name][new] = 1 - lam, -lam
        cols.append(_flatten(d, obj.param_names))
    for k in range(m):  # u: the outgoing weights moved from the copy to the unit
        d = {n: t.clone() for n, t in zero.items()}
        d[o_name][k, neuron], d[o_name][k, new] = 1.0, -1.0
        cols.append(_flatten(d, obj.param_names))
    return torch.stack(cols, dim=1)
