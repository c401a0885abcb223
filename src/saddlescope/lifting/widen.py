"""Widening an MLP by one hidden unit without changing its function: split a unit, or add one.

Both return a NEW network (the user's model is not changed) and never draw from the global
random stream.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import cast

import torch
from torch import Tensor, nn

from saddlescope.errors import InvalidInputError
from saddlescope.lifting.layout import check_index, check_layer, check_ratio, mlp_layout

__all__ = ["add_neuron", "split_neuron", "split_tensors"]


def split_tensors(
    w_in: Tensor, b_in: Tensor | None, w_out: Tensor, neuron: int, ratio: float
) -> tuple[Tensor, Tensor | None, Tensor]:
    """(W_in, b_in, W_out) with unit ``neuron`` copied to a new last unit, outgoing λ : 1 − λ.

    Args:
        w_in: incoming weights of the hidden layer (width × fan_in).
        b_in: its bias, or None.
        w_out: outgoing weights, the next Linear layer's (next width × width).
        neuron: the unit to split.
        ratio: λ, the share of the outgoing column the unit keeps (the copy gets 1 − λ).

    Returns:
        The three tensors of the wide layer pair (the bias None when ``b_in`` is).
    """
    w_in2 = torch.cat([w_in, w_in[neuron : neuron + 1]], dim=0)
    b_in2 = None if b_in is None else torch.cat([b_in, b_in[neuron : neuron + 1]])
    v = w_out[:, neuron : neuron + 1]
    w_out2 = torch.cat([w_out[:, :neuron], ratio * v, w_out[:, neuron + 1 :], (1 - ratio) * v], 1)
    return w_in2, b_in2, w_out2


def _new_linear(old: nn.Linear, weight: Tensor, bias: Tensor | None) -> nn.Linear:
    """A fresh nn.Linear holding ``weight``/``bias``, with ``old``'s flags, dtype and device."""
    out_f, in_f = weight.shape
    # skip_init: no draw from the global RNG (the user's random stream stays as it was)
    layer = nn.utils.skip_init(
        nn.Linear, in_f, out_f, bias=bias is not None, dtype=weight.dtype, device=weight.device
    )
    with torch.no_grad():
        layer.weight.copy_(weight)
        if bias is not None and layer.bias is not None:
            layer.bias.copy_(bias)
    layer.weight.requires_grad_(old.weight.requires_grad)
    if layer.bias is not None and old.bias is not None:
        layer.bias.requires_grad_(old.bias.requires_grad)
    layer.train(old.training)
    return layer


def _widened(
    model: nn.Module, layer: int, w_in: Tensor, b_in: Tensor | None, w_out: Tensor
) -> nn.Sequential:
    """A deep copy of the MLP ``model`` with hidden layer ``layer``'s two Linears replaced."""
    layout = mlp_layout(model)
    i, o = layout.linears[layer], layout.linears[layer + 1]
    first, second = _linear(model, i), _linear(model, o)
    new = cast(nn.Sequential, copy.deepcopy(model))
    out_bias = None if second.bias is None else second.bias.detach()
    new[i] = _new_linear(first, w_in, b_in)
    new[o] = _new_linear(second, w_out, out_bias)
    return new


def _linear(model: nn.Module, i: int) -> nn.Linear:
    """Child ``i`` of an MLP (checked by :func:`mlp_layout`), a Linear layer."""
    return cast(nn.Linear, cast(nn.Sequential, model)[i])


def _linears(model: nn.Module, layer: int) -> tuple[int, nn.Linear, nn.Linear]:
    """(checked layer, its incoming Linear, its outgoing Linear) of the MLP ``model``."""
    layout = mlp_layout(model)
    layer = check_layer(layout, layer)
    return layer, _linear(model, layout.linears[layer]), _linear(model, layout.linears[layer + 1])


def split_neuron(model: nn.Module, layer: int, neuron: int, ratio: float = 0.5) -> nn.Sequential:
    """A NEW MLP with hidden unit ``neuron`` of hidden layer ``layer`` split in two; same function.

    The copy (appended as the layer's last unit) gets the unit's incoming weights and bias; the
    outgoing column v is shared as λ·v (kept by the unit) and (1 − λ)·v (the copy). Σ of the two
    contributions is v·σ(a): the output is unchanged (to rounding), and a critical point of the
    narrow net maps to one of the wide net (with the same loss). ``model`` is not changed.

    Args:
        model: an MLP (see :func:`~saddlescope.lifting.layout.mlp_layout`).
        layer: the hidden layer, counted from 0.
        neuron: the unit of that layer to split.
        ratio: λ, any real number: the unit keeps λ·v, the copy (1 − λ)·v.

    Returns:
        The wide network, one unit wider in ``layer``.

    >>> from saddlescope.models import mlp
    >>> net = mlp(2, [3], 1)
    >>> wide = split_neuron(net, 0, 1, ratio=0.3)
    >>> wide[0].weight.shape, wide[2].weight.shape
    (torch.Size([4, 2]), torch.Size([1, 4]))
    """
    layer, first, second = _linears(model, layer)
    neuron = check_index("neuron", neuron, first.out_features, f"hidden layer {layer}'s units")
    lam = check_ratio(ratio)
    with torch.no_grad():
        b = None if first.bias is None else first.bias.detach()
        w_in, b_in, w_out = split_tensors(
            first.weight.detach(), b, second.weight.detach(), neuron, lam
        )
    return _widened(model, layer, w_in, b_in, w_out)


def _incoming(first: nn.Linear, incoming: Tensor | Sequence[float] | None, seed: int) -> Tensor:
    """The new unit's [weights; bias], checked (or drawn with ``seed``), in ``first``'s dtype."""
    fan_in, has_bias = first.in_features, first.bias is not None
    size = fan_in + int(has_bias)
    if incoming is None:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise InvalidInputError(f"seed must be an integer, got {seed!r}")
        gen = torch.Generator().manual_seed(seed)
        bound = 1 / math.sqrt(fan_in)
        vec = (torch.rand(size, generator=gen, dtype=torch.float64) * 2 - 1) * bound
    else:
        vec = torch.as_tensor(incoming)
        if vec.ndim != 1 or vec.numel() != size or vec.is_complex():
            what = f"fan_in + 1 = {size} ([weights; bias])" if has_bias else f"fan_in = {size}"
            raise InvalidInputError(
                f"incoming must be a real 1-D vector of length {what}, got shape {tuple(vec.shape)}"
            )
        if not torch.isfinite(vec.to(torch.float64)).all():
            raise InvalidInputError("incoming holds NaN or Inf")
    return vec.to(device=first.weight.device, dtype=first.weight.dtype)


def add_neuron(
    model: nn.Module, layer: int, incoming: Tensor | Sequence[float] | None = None, *, seed: int = 0
) -> nn.Sequential:
    """A NEW MLP with one more unit (appended last) in hidden layer ``layer``, outgoing weights 0.

    The output is unchanged exactly (the unit's contribution is 0·σ(a)). At a critical point of
    the narrow net the new gradient is 0 except ∂L/∂v_new = Σ_n δ_n σ(a_n,new), which vanishes
    when the unit is constant (zero input weights, any bias; the next layer has a bias) or copies
    an existing unit's incoming weights (the split with λ = 1) — but not in general, so a
    random ``incoming`` usually makes the narrow critical point a non-critical point of the wide
    net. ``model`` is not changed.

    Args:
        model: an MLP (see :func:`~saddlescope.lifting.layout.mlp_layout`).
        layer: the hidden layer, counted from 0.
        incoming: the new unit's [weights; bias] (length fan_in + 1 with a bias, fan_in
            without); None draws it from nn.Linear's default U(−1/√fan_in, 1/√fan_in).
        seed: the seed of that draw (used only when ``incoming`` is None).

    Returns:
        The wide network, one unit wider in ``layer``.
    """
    layer, first, second = _linears(model, layer)
    fan_in = first.in_features
    vec = _incoming(first, incoming, seed)
    with torch.no_grad():
        w_in = torch.cat([first.weight.detach(), vec[:fan_in].reshape(1, -1)], dim=0)
        b_in = None if first.bias is None else torch.cat([first.bias.detach(), vec[fan_in:]])
        zeros = torch.zeros(second.out_features, 1, dtype=second.weight.dtype)
        w_out = torch.cat([second.weight.detach(), zeros.to(second.weight.device)], dim=1)
    return _widened(model, layer, w_in, b_in, w_out)
