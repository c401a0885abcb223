"""Small model factories for studies: fully connected networks, seeded."""

from __future__ import annotations

import torch
from torch import nn

from saddlescope.checks import check_choice
from saddlescope.errors import InvalidInputError

__all__ = ["ACTIVATIONS", "mlp"]

ACTIVATIONS = {
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "sigmoid": nn.Sigmoid,
    "softplus": nn.Softplus,
    "linear": nn.Identity,
}


def mlp(
    d_in: int,
    hidden: tuple[int, ...] | list[int],
    d_out: int,
    *,
    activation: str = "tanh",
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> nn.Sequential:
    """Linear → act → … → Linear with PyTorch's default initialisation, drawn from ``seed``.

    Every layer has a bias; weights and biases are U(−1/√fan_in, 1/√fan_in) like ``nn.Linear``,
    but drawn from a generator seeded by ``seed`` (the global RNG is left untouched).

    Args:
        d_in: the input width.
        hidden: the hidden layers' widths, in order (may be empty: a linear model).
        d_out: the output width.
        activation: the nonlinearity between layers, a key of :data:`ACTIVATIONS`
            (default ``"tanh"``: smooth, so the Hessian is defined everywhere).
        seed: seeds the initial weights (default 0).
        dtype: the parameters' dtype (default float64, for accurate Hessians).

    >>> sum(p.numel() for p in mlp(16, [8], 10).parameters())
    226
    """
    check_choice("activation", activation, tuple(ACTIVATIONS))
    widths = [d_in, *hidden, d_out]
    if any((not isinstance(w, int)) or w < 1 for w in widths):
        raise InvalidInputError(f"layer widths must be positive integers, got {widths}")
    gen = torch.Generator().manual_seed(seed)
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layer = torch.nn.utils.skip_init(nn.Linear, a, b, dtype=dtype)  # no global RNG draws
        bound = 1 / a**0.5  # nn.Linear's default: U(−1/√fan_in, 1/√fan_in), here from our generator
        with torch.no_grad():
            layer.weight.uniform_(-bound, bound, generator=gen)
            layer.bias.uniform_(-bound, bound, generator=gen)
        layers.append(layer)
        if i < len(widths) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


def num_params(d_in: int, hidden: tuple[int, ...] | list[int], d_out: int) -> int:
    """Parameter count of :func:`mlp` without building it.

    Args:
        d_in: the input width.
        hidden: the hidden layers' widths.
        d_out: the output width.
    """
    widths = [d_in, *hidden, d_out]
    return sum(a * b + b for a, b in zip(widths[:-1], widths[1:]))
