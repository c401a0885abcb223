"""What lifting accepts as an MLP, and the checks of its layer, unit and split-ratio arguments.

An MLP here is what :func:`saddlescope.models.mlp` builds: an ``nn.Sequential`` of ``nn.Linear``
layers with one elementwise activation between consecutive ones. Hidden layers are counted from 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from torch import nn

from saddlescope.errors import InvalidInputError

__all__ = [
    "ELEMENTWISE",
    "MLPLayout",
    "check_index",
    "check_layer",
    "check_ratio",
    "mlp_layout",
]

#: Elementwise activations accepted between the Linear layers of an MLP.
ELEMENTWISE = (
    nn.Tanh,
    nn.ReLU,
    nn.GELU,
    nn.Sigmoid,
    nn.Softplus,
    nn.Identity,
    nn.LeakyReLU,
    nn.ELU,
    nn.CELU,
    nn.SELU,
    nn.SiLU,
    nn.Mish,
    nn.Softsign,
    nn.Tanhshrink,
    nn.Hardtanh,
    nn.LogSigmoid,
)

_HINT = (
    "an MLP: an nn.Sequential of nn.Linear layers with one elementwise activation "
    "(Tanh, ReLU, GELU, …) between consecutive ones, as saddlescope.models.mlp builds"
)


@dataclass(frozen=True)
class MLPLayout:
    """Positions of an MLP's Linear layers in its Sequential, and its activation modules.

    Attributes:
        linears: indices of the ``nn.Linear`` children, input to output.
        activations: the activation module after each hidden layer.
    """

    linears: tuple[int, ...]
    activations: tuple[nn.Module, ...]

    @property
    def num_hidden(self) -> int:
        """The number of hidden layers (Linear layers less one)."""
        return len(self.linears) - 1


def mlp_layout(model: nn.Module) -> MLPLayout:
    """Check that ``model`` is Linear → act → … → Linear and map where its layers are.

    Args:
        model: the network to check.

    Returns:
        Its :class:`MLPLayout`.

    Raises:
        InvalidInputError: ``model`` is not such an MLP with at least one hidden layer.
    """
    if not isinstance(model, nn.Sequential):
        raise InvalidInputError(f"need {_HINT}; got {type(model).__name__}")
    children = list(model)
    kinds = [
        "L" if isinstance(c, nn.Linear) else "a" if isinstance(c, ELEMENTWISE) else "?"
        for c in children
    ]
    pattern = "".join(kinds)
    ok = (
        len(children) >= 3
        and len(children) % 2 == 1
        and pattern == "L" + "aL" * (len(children) // 2)
    )
    if not ok:
        got = ", ".join(type(c).__name__ for c in children) or "nothing"
        raise InvalidInputError(f"need {_HINT} and at least one hidden layer; got [{got}]")
    return MLPLayout(tuple(range(0, len(children), 2)), tuple(children[1::2]))


def check_index(name: str, value: Any, size: int, what: str) -> int:
    """Return ``value`` if it is an integer (not a bool) in 0 … size − 1, else raise.

    Args:
        name: the argument's name, for the message.
        value: the index to check.
        size: the number of valid indices.
        what: what is indexed, for the message (e.g. "hidden layer 0's units").
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(f"{name} must be an integer, got {value!r}")
    if not 0 <= value < size:
        raise InvalidInputError(f"{name} = {value} is out of range: {what} (0 … {size - 1})")
    return value


def check_layer(layout: MLPLayout, layer: Any) -> int:
    """Return ``layer`` if it is a hidden layer of ``layout``, else raise.

    Args:
        layout: the MLP's layout.
        layer: the hidden layer's index, from 0.
    """
    n = layout.num_hidden
    return check_index("layer", layer, n, f"the model has {n} hidden layer{'s' * (n != 1)}")


def check_ratio(ratio: Any) -> float:
    """Return the split ratio λ as a float if it is a finite real number (any sign), else raise.

    Args:
        ratio: the split ratio λ.
    """
    if isinstance(ratio, bool):
        raise InvalidInputError(f"ratio must be a real number, got {ratio!r}")
    try:
        lam = float(ratio)
    except (TypeError, ValueError):
        raise InvalidInputError(f"ratio must be a real number, got {ratio!r}") from None
    if not math.isfinite(lam):
        raise InvalidInputError(f"ratio must be finite, got {ratio!r}")
    return lam
