"""The dimension effect (MISSION §5): a minimum in fewer dimensions is often a saddle in more.

Two ways of adding dimensions to a problem, both as pure functions of flat parameter vectors:

* **restriction** — the loss on an affine subspace, z ↦ L(θ0 + B·z) (:func:`restrict`). Its
  gradient is Bᵀ∇L and its Hessian BᵀHB, so a saddle of L is a minimum of the restriction to the
  span of its positive-curvature eigenvectors: reading it the other way, lifting a minimum back
  into the full space can open downhill directions.
* **widening** — one more hidden unit in an MLP, the function unchanged (:func:`split_neuron`,
  :func:`add_neuron`). Splitting unit j of a critical point of the narrow network into two copies
  with outgoing weights λ·v_j and (1 − λ)·v_j gives a critical point of the wide network with the
  same loss (Fukumizu & Amari, 2000, "Local minima and plateaus in hierarchical structures of
  multilayer perceptrons", Neural Networks 13(3):317–327; Şimşek et al., 2021, "Geometry of the
  loss landscape in overparameterized neural networks", ICML).

**The split theorem, as implemented and verified here.** Let hidden layer ℓ take h ∈ ℝᵏ to
a = W·h̃ (h̃ = [h; 1] with a bias, h̃ = h without; p = dim h̃), unit j have incoming row w_j ∈ ℝᵖ,
activation σ, and outgoing column v_j ∈ ℝᵐ into the next layer's pre-activation z (m = next
width). With δ_n = ∂L/∂z_n (the loss's own normalisation, e.g. 2/(N·d_out)·residual for
``MSELoss``), define

    B_j = Σ_n ⟨δ_n, v_j⟩ σ''(a_nj) h̃_n h̃_nᵀ   (p×p, :func:`split_gain_matrix`)
    C_j = Σ_n σ'(a_nj) h̃_n δ_nᵀ               (p×m, the coupling; C_j·v_j = ∂L/∂w_j).

In the coordinates (θ_narrow, ζ, u) with w′ = w + (1−λ)ζ, w″ = w − λζ (so ζ = w′ − w″ is the
difference direction and w = λw′ + (1−λ)w″ the common one), v′ = λv + u, v″ = (1−λ)v − u — a
linear change θ_wide = T·(θ_narrow, ζ, u) with det T = ±1 for every λ (:func:`split_coordinates`)
— the next layer's pre-activation is

    z = z_narrow + ½λ(1−λ)·σ''(a_j)(ζᵀh̃)²·v_j + σ'(a_j)(ζᵀh̃)·u + O(‖(ζ, u)‖³),

with no term linear in (ζ, u) whatever θ_narrow is. Hence, at every θ (critical or not),

    Tᵀ H_wide T = diag(H_narrow, K),   K = [[λ(1−λ)·B_j, C_j], [C_jᵀ, 0]]   ((p + m)×(p + m)),

a *congruence*, not a similarity: by Sylvester's law of inertia In(H_wide) = In(H_narrow) + In(K)
(the counts of negative, zero and positive eigenvalues carry over; the eigenvalues do not). At a
critical point C_j·v_j = 0, so with v_j ≠ 0 the rank r of C_j is ≤ min(p, m − 1), and with Z an
orthonormal basis of range(C_j)^⊥ ⊂ ℝᵖ,

    In(K) = In(λ(1−λ)·ZᵀB_jZ) + (r negative, m − r zero, r positive)

(:func:`predicted_inertia`; r > 0 makes every split a saddle, λ ∈ {0, 1} included). For a scalar
next layer (m = 1: one hidden layer, one output) C_j = 0 and, writing In(B_j) = (b₋, b₀, b₊),

    0 < λ < 1:        In(H_wide) = In(H_narrow) + (b₋, b₀ + 1, b₊)
    λ < 0 or λ > 1:   In(H_wide) = In(H_narrow) + (b₊, b₀ + 1, b₋)
    λ ∈ {0, 1}:       In(H_wide) = In(H_narrow) + (0, p + 1, 0)

The extra zero is the line of critical points that λ itself traces (u ∥ v_j). So a strict
minimum splits into a saddle for λ outside [0, 1] as soon as B_j has a positive eigenvalue, and
for λ inside (0, 1) as soon as it has a negative one.

:func:`lift_experiment` runs the whole story on a small tanh MLP: a strict minimum of the narrow
net, its split points for several λ (observed against predicted inertia), the way out of one of
those saddles to a loss strictly below the narrow minimum.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap

from saddlescope.checks import check_positive
from saddlescope.classify import CriticalPoint, classify
from saddlescope.errors import InvalidInputError, SaddlescopeError
from saddlescope.escape import curvature_step
from saddlescope.objective import Objective
from saddlescope.runtime import one_thread
from saddlescope.search import find_critical_point
from saddlescope.spectrum import Spectrum
from saddlescope.tolerance import Tolerance

__all__ = [
    "EscapeRecord",
    "Inertia",
    "LiftReport",
    "NarrowMinimum",
    "SplitBlocks",
    "SplitRow",
    "add_neuron",
    "lift_experiment",
    "module_at",
    "predicted_inertia",
    "restrict",
    "split_blocks",
    "split_coordinates",
    "split_gain_matrix",
    "split_neuron",
    "split_objective",
    "split_theta",
    "train_strict_minimum",
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


# ============================================================================ restriction
class _AffineSlice(nn.Module):
    """z ↦ f(x; θ0 + B·z): a module whose only trainable parameter is z (length k)."""

    def __init__(
        self,
        module: nn.Module,
        names: tuple[str, ...],
        shapes: tuple[torch.Size, ...],
        theta0: Tensor,
        basis: Tensor,
    ) -> None:
        super().__init__()
        self.inner = module
        self._names = names
        self._shapes = shapes
        self._numels = tuple(math.prod(s) for s in shapes)
        self.register_buffer("theta0", theta0.detach().clone())
        self.register_buffer("basis", basis.detach().clone())
        self.z = nn.Parameter(torch.zeros(basis.shape[1], dtype=basis.dtype, device=basis.device))

    def forward(self, x: Tensor) -> Tensor:
        theta = self.theta0 + self.basis @ self.z
        chunks = torch.split(theta, self._numels)
        params = {n: c.view(s) for n, c, s in zip(self._names, chunks, self._shapes)}
        return functional_call(self.inner, params, (x,))


def _data_of(obj: Objective) -> list[tuple[Tensor, Tensor]]:
    """The objective's batches as (inputs, targets) pairs; an Objective built from them is equal."""
    return [(b.inputs, b.targets) for b in obj.batches]


def _objective_like(obj: Objective, model: nn.Module) -> Objective:
    """An Objective for ``model`` with ``obj``'s loss, data, dtype, device and settings."""
    return Objective(
        model,
        obj.loss_fn,
        _data_of(obj),
        dtype=obj.dtype,
        device=obj.device,
        norm_stats=obj.norm_stats,
        memory_budget=obj.memory_budget,
    )


def restrict(obj: Objective, theta0: Tensor, basis: Tensor) -> Objective:
    """The objective on the affine subspace θ0 + B·z: z ↦ L(θ0 + B·z), an :class:`Objective` over z.

    ``basis`` is n×k (k directions as columns; a length-n vector is one direction). The new
    objective starts at z = 0 (i.e. θ0); its gradient is Bᵀ∇L and its Hessian BᵀHB at θ0 + B·z.
    Same loss, data, dtype and device as ``obj``; ``obj`` is not changed.

    >>> import torch
    >>> from saddlescope import classify, toy
    >>> obj = toy.worked_example_objective()          # the origin is a saddle in 2-D ...
    >>> d = torch.tensor([[1.0], [-1.0]], dtype=torch.float64) / 2**0.5
    >>> line = restrict(obj, torch.zeros(2), d)        # L(t·(1, −1)/√2) = (1 + t²/2)²
    >>> classify(line, line.theta0).kind               # ... and a minimum on this line
    'minimum'
    """
    theta0 = obj.check_theta(theta0, "theta0")
    B = torch.as_tensor(basis)
    if B.ndim == 1:
        B = B.reshape(-1, 1)
    if B.ndim != 2 or B.shape[0] != obj.num_params or B.shape[1] < 1:
        raise InvalidInputError(
            f"basis must be an n×k matrix with n = {obj.num_params} (this objective's parameters) "
            f"and k ≥ 1 directions as columns, got shape {tuple(torch.as_tensor(basis).shape)}"
        )
    if B.is_complex():
        raise InvalidInputError(f"basis must be real, got {B.dtype}")
    B = B.to(device=obj.device, dtype=obj.dtype)
    if not torch.isfinite(B).all():
        raise InvalidInputError("basis holds NaN or Inf; pass finite directions")
    wrapper = _AffineSlice(obj.module, obj.param_names, obj.param_shapes, theta0, B)
    return _objective_like(obj, wrapper)


# ============================================================================ MLP structure
@dataclass(frozen=True)
class _Layout:
    """Positions of an MLP's Linear layers in its Sequential, and its activation modules."""

    linears: tuple[int, ...]
    activations: tuple[nn.Module, ...]

    @property
    def num_hidden(self) -> int:
        return len(self.linears) - 1


def _layout(model: nn.Module) -> _Layout:
    """Check that ``model`` is Linear → act → … → Linear (saddlescope.models.mlp) and map it."""
    hint = (
        "an MLP: an nn.Sequential of nn.Linear layers with one elementwise activation "
        "(Tanh, ReLU, GELU, …) between consecutive ones, as saddlescope.models.mlp builds"
    )
    if not isinstance(model, nn.Sequential):
        raise InvalidInputError(f"need {hint}; got {type(model).__name__}")
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
        raise InvalidInputError(f"need {hint} and at least one hidden layer; got [{got}]")
    return _Layout(tuple(range(0, len(children), 2)), tuple(children[1::2]))


def _check_index(name: str, value: Any, size: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(f"{name} must be an integer, got {value!r}")
    if not 0 <= value < size:
        raise InvalidInputError(f"{name} = {value} is out of range: {what} (0 … {size - 1})")
    return value


def _check_layer(layout: _Layout, layer: Any) -> int:
    n = layout.num_hidden
    return _check_index("layer", layer, n, f"the model has {n} hidden layer{'s' * (n != 1)}")


def _check_ratio(ratio: Any) -> float:
    if isinstance(ratio, bool):
        raise InvalidInputError(f"ratio must be a real number, got {ratio!r}")
    try:
        lam = float(ratio)
    except (TypeError, ValueError):
        raise InvalidInputError(f"ratio must be a real number, got {ratio!r}") from None
    if not math.isfinite(lam):
        raise InvalidInputError(f"ratio must be finite, got {ratio!r}")
    return lam


# ============================================================================ widening
def _split_tensors(
    w_in: Tensor, b_in: Tensor | None, w_out: Tensor, neuron: int, ratio: float
) -> tuple[Tensor, Tensor | None, Tensor]:
    """(W_in, b_in, W_out) with unit ``neuron`` copied to a new last unit, outgoing λ : 1 − λ."""
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
    layout = _layout(model)
    i, o = layout.linears[layer], layout.linears[layer + 1]
    new = copy.deepcopy(model)
    new[i] = _new_linear(model[i], w_in, b_in)
    new[o] = _new_linear(model[o], w_out, None if model[o].bias is None else model[o].bias.detach())
    return new


def split_neuron(model: nn.Module, layer: int, neuron: int, ratio: float = 0.5) -> nn.Sequential:
    """A NEW MLP with hidden unit ``neuron`` of hidden layer ``layer`` split in two; same function.

    The copy (appended as the layer's last unit) gets the unit's incoming weights and bias; the
    outgoing column v is shared as λ·v (kept by the unit) and (1 − λ)·v (the copy), λ = ``ratio``
    — any real number. Σ of the two contributions is v·σ(a): the output is unchanged (to
    rounding), and a critical point of the narrow net maps to one of the wide net (with the same
    loss). ``layer`` counts hidden layers from 0. ``model`` is not changed.

    >>> from saddlescope.models import mlp
    >>> net = mlp(2, [3], 1)
    >>> wide = split_neuron(net, 0, 1, ratio=0.3)
    >>> wide[0].weight.shape, wide[2].weight.shape
    (torch.Size([4, 2]), torch.Size([1, 4]))
    """
    layout = _layout(model)
    layer = _check_layer(layout, layer)
    first, second = model[layout.linears[layer]], model[layout.linears[layer + 1]]
    neuron = _check_index("neuron", neuron, first.out_features, f"hidden layer {layer}'s units")
    lam = _check_ratio(ratio)
    with torch.no_grad():
        b = None if first.bias is None else first.bias.detach()
        w_in, b_in, w_out = _split_tensors(
            first.weight.detach(), b, second.weight.detach(), neuron, lam
        )
    return _widened(model, layer, w_in, b_in, w_out)


def add_neuron(
    model: nn.Module, layer: int, incoming: Tensor | Sequence[float] | None = None, *, seed: int = 0
) -> nn.Sequential:
    """A NEW MLP with one more unit (appended last) in hidden layer ``layer``, outgoing weights 0.

    ``incoming`` is the new unit's [weights; bias] (length fan_in + 1 with a bias, fan_in
    without); None draws it from nn.Linear's default U(−1/√fan_in, 1/√fan_in) with ``seed``. The
    output is unchanged exactly (the unit's contribution is 0·σ(a)). At a critical point of the
    narrow net the new gradient is 0 except ∂L/∂v_new = Σ_n δ_n σ(a_n,new), which vanishes
    when the unit is constant (zero input weights, any bias; the next layer has a bias) or copies
    an existing unit's incoming weights (the split with λ = 1) — but not in general, so a
    random ``incoming`` usually makes the narrow critical point a non-critical point of the wide
    net. ``model`` is not changed.
    """
    layout = _layout(model)
    layer = _check_layer(layout, layer)
    first, second = model[layout.linears[layer]], model[layout.linears[layer + 1]]
    fan_in, has_bias = first.in_features, first.bias is not None
    size = fan_in + int(has_bias)
    ref = first.weight
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
    vec = vec.to(device=ref.device, dtype=ref.dtype)
    with torch.no_grad():
        w_in = torch.cat([first.weight.detach(), vec[:fan_in].reshape(1, -1)], dim=0)
        b_in = None if not has_bias else torch.cat([first.bias.detach(), vec[fan_in:]])
        zeros = torch.zeros(second.out_features, 1, dtype=second.weight.dtype)
        w_out = torch.cat([second.weight.detach(), zeros.to(second.weight.device)], dim=1)
    return _widened(model, layer, w_in, b_in, w_out)


# ============================================================================ flat-vector views
def module_at(obj: Objective, theta: Tensor) -> nn.Module:
    """A fresh copy of the objective's module with θ loaded (trainable as in the original model).

    In the objective's dtype and device and in eval mode; the objective is not changed.
    """
    theta = obj.check_theta(theta)
    module = copy.deepcopy(obj.module)
    params = dict(module.named_parameters())
    with torch.no_grad():
        for name, value in obj.unflatten(theta).items():
            params[name].copy_(value)
            params[name].requires_grad_(True)
    return module


def _mlp_names(obj: Objective, layer: int) -> tuple[str, str | None, str]:
    """(incoming weight, incoming bias or None, outgoing weight) parameter names of a layer."""
    layout = _layout(obj.module)
    layer = _check_layer(layout, layer)
    i, o = layout.linears[layer], layout.linears[layer + 1]
    names = (f"{i}.weight", None if obj.module[i].bias is None else f"{i}.bias", f"{o}.weight")
    missing = [n for n in names if n is not None and n not in obj.param_names]
    if missing:
        raise InvalidInputError(
            f"parameters {missing} are frozen (requires_grad=False) in this objective; splitting "
            "needs the two Linear layers around the hidden layer to be trainable"
        )
    return names


def _split_flat(
    obj: Objective, theta: Tensor, layer: int, neuron: int, ratio: float
) -> dict[str, Tensor]:
    w_name, b_name, o_name = _mlp_names(obj, layer)
    params = obj.unflatten(theta)
    w_in, b_in, w_out = _split_tensors(
        params[w_name], None if b_name is None else params[b_name], params[o_name], neuron, ratio
    )
    params[w_name], params[o_name] = w_in, w_out
    if b_name is not None and b_in is not None:
        params[b_name] = b_in
    return params


def _flatten(params: dict[str, Tensor], names: tuple[str, ...]) -> Tensor:
    return torch.cat([params[n].reshape(-1) for n in names])


def _check_split_args(obj: Objective, layer: Any, neuron: Any, ratio: Any) -> tuple[int, float]:
    w_name, _, _ = _mlp_names(obj, layer)
    width = obj.param_shapes[obj.param_names.index(w_name)][0]
    neuron = _check_index("neuron", neuron, width, f"hidden layer {layer}'s units")
    return neuron, _check_ratio(ratio)


def split_theta(obj: Objective, theta: Tensor, layer: int, neuron: int, ratio: float) -> Tensor:
    """θ of the narrow MLP ↦ θ of the wide one (:func:`split_neuron`'s map, on flat vectors).

    Linear in θ for a fixed λ. The result is laid out as :func:`split_objective`'s parameters.
    """
    theta = obj.check_theta(theta)
    neuron, lam = _check_split_args(obj, layer, neuron, ratio)
    return _flatten(_split_flat(obj, theta, layer, neuron, lam), obj.param_names)


def split_objective(
    obj: Objective,
    layer: int,
    neuron: int = 0,
    ratio: float = 0.5,
    theta: Tensor | None = None,
) -> Objective:
    """The wide network's objective, starting (``theta0``) at the split of θ (default obj.theta0).

    Any other split point of the same layer (another neuron or λ) lives in the same parameter
    layout: ``split_theta(obj, θ, layer, neuron', λ')``.
    """
    theta = obj.theta0 if theta is None else obj.check_theta(theta)
    neuron, lam = _check_split_args(obj, layer, neuron, ratio)
    return _objective_like(obj, split_neuron(module_at(obj, theta), layer, neuron, lam))


def split_coordinates(obj: Objective, layer: int, neuron: int, ratio: float) -> Tensor:
    """T (n_wide × n_wide): θ_wide = T·(θ_narrow, ζ, u), the coordinates of the split theorem.

    w′ = w + (1−λ)ζ, w″ = w − λζ (incoming [weights; bias] of the unit and its copy), v′ = λv + u,
    v″ = (1−λ)v − u (their outgoing columns); every other parameter is copied. det T = ±1 for
    every λ, and at any θ, Tᵀ·H_wide·T = diag(H_narrow, K) with K from :class:`SplitBlocks`.
    """
    neuron, lam = _check_split_args(obj, layer, neuron, ratio)
    w_name, b_name, o_name = _mlp_names(obj, layer)
    eye = torch.eye(obj.num_params, dtype=obj.dtype, device=obj.device)
    narrow = vmap(
        lambda e: _flatten(_split_flat(obj, e, layer, neuron, lam), obj.param_names),
        in_dims=1,
        out_dims=1,
    )(eye)
    zero = {n: torch.zeros_like(t) for n, t in _split_flat(obj, eye[0], layer, neuron, lam).items()}
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
    return torch.cat([narrow, torch.stack(cols, dim=1)], dim=1)


# ============================================================================ the split theorem
@dataclass(frozen=True)
class Inertia:
    """Counts of negative, zero and positive eigenvalues of a symmetric matrix."""

    n_neg: int
    n_zero: int
    n_pos: int

    @classmethod
    def of(cls, source: Inertia | Spectrum | CriticalPoint) -> Inertia:
        """The inertia held by a complete :class:`Spectrum` or :class:`CriticalPoint`."""
        if isinstance(source, Inertia):
            return source
        spectrum = source.spectrum if isinstance(source, CriticalPoint) else source
        if not isinstance(spectrum, Spectrum):
            raise InvalidInputError(
                f"need an Inertia, a Spectrum or a CriticalPoint, got {type(source).__name__}"
            )
        if not spectrum.complete:
            raise InvalidInputError(
                "the spectrum holds only extreme eigenvalues (Lanczos), so the inertia is unknown; "
                "use a dense spectrum"
            )
        counts = spectrum.inertia
        assert counts is not None
        return cls(int(counts.n_neg), int(counts.n_zero), int(counts.n_pos))

    @property
    def total(self) -> int:
        return self.n_neg + self.n_zero + self.n_pos

    def __add__(self, other: Inertia) -> Inertia:
        return Inertia(
            self.n_neg + other.n_neg, self.n_zero + other.n_zero, self.n_pos + other.n_pos
        )

    def to_dict(self) -> dict[str, int]:
        return {"n_neg": self.n_neg, "n_zero": self.n_zero, "n_pos": self.n_pos}

    def __str__(self) -> str:
        return f"(n-={self.n_neg}, n0={self.n_zero}, n+={self.n_pos})"


def _signs(values: Tensor, tol: float) -> Inertia:
    neg, pos = int((values < -tol).sum()), int((values > tol).sum())
    return Inertia(neg, values.numel() - neg - pos, pos)


@dataclass(frozen=True, eq=False)
class SplitBlocks:
    """B_j (``gain``, p×p) and C_j (``coupling``, p×m) of hidden unit j at θ, and v_j.

    ``block(λ)`` is K = [[λ(1−λ)·B_j, C_j], [C_jᵀ, 0]], the part of the split network's Hessian
    (in :func:`split_coordinates`) that the narrow Hessian does not hold.
    """

    layer: int
    neuron: int
    gain: Tensor
    coupling: Tensor
    outgoing: Tensor

    @property
    def gain_eigenvalues(self) -> Tensor:
        return torch.linalg.eigvalsh(self.gain)

    def block(self, ratio: float) -> Tensor:
        """K(λ) = [[λ(1−λ)·B_j, C_j], [C_jᵀ, 0]]."""
        lam = _check_ratio(ratio)
        m = self.coupling.shape[1]
        zero = torch.zeros(m, m, dtype=self.gain.dtype, device=self.gain.device)
        top = torch.cat([lam * (1 - lam) * self.gain, self.coupling], dim=1)
        return torch.cat([top, torch.cat([self.coupling.mT, zero], dim=1)], dim=0)

    def inertia(self, ratio: float, *, rtol: float | None = None, atol: float = 0.0) -> Inertia:
        """In(K(λ)) = In(λ(1−λ)·ZᵀB_jZ) + (r, m − r, r), r = rank C_j, Z ⟂ range(C_j).

        C_j is first projected off v_j (C_j·v_j = ∂L/∂w_j is zero at a critical point, up to
        the search's tolerance). Singular values of C_j and eigenvalues of λ(1−λ)ZᵀB_jZ count
        as zero when ≤ max(atol, rtol·s), s = max(|λ(1−λ)|·‖B_j‖₂, ‖C_j‖₂); rtol defaults to
        the dtype's (1e-6 in float64).
        """
        lam = _check_ratio(ratio)
        tol = Tolerance.resolve(self.gain.dtype, rtol=rtol, atol=atol)
        rtol, atol = tol.rtol, tol.atol
        A = lam * (1 - lam) * self.gain
        C = self.coupling
        v = self.outgoing
        vn = float(torch.linalg.vector_norm(v))
        if vn > 0:
            vhat = v / vn
            C = C - torch.outer(C @ vhat, vhat)
        m, p = C.shape[1], C.shape[0]
        U, s, _ = torch.linalg.svd(C, full_matrices=True)
        scale = max(float(torch.linalg.matrix_norm(A, 2)), float(s.max()) if s.numel() else 0.0)
        tol = max(atol, rtol * scale)
        r = int((s > tol).sum())
        Z = U[:, r:]
        reduced = _signs(torch.linalg.eigvalsh(Z.mT @ A @ Z), tol) if p > r else Inertia(0, 0, 0)
        return reduced + Inertia(r, m - r, r)

    def to_dict(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "neuron": self.neuron,
            "gain": self.gain.tolist(),
            "gain_eigenvalues": self.gain_eigenvalues.tolist(),
            "coupling": self.coupling.tolist(),
            "outgoing": self.outgoing.tolist(),
        }

    def __str__(self) -> str:
        eig = ", ".join(f"{x:.4g}" for x in self.gain_eigenvalues.tolist())
        c_norm = float(torch.linalg.matrix_norm(self.coupling))
        return (
            f"SplitBlocks(layer {self.layer}, unit {self.neuron}): B_j {tuple(self.gain.shape)} "
            f"with eigenvalues [{eig}], ‖C_j‖ = {c_norm:.3g}"
        )


def _linear_params(
    obj: Objective, params: dict[str, Tensor], i: int
) -> tuple[Tensor, Tensor | None]:
    mod = obj.module[i]
    w = params.get(f"{i}.weight", mod.weight)
    b = None if mod.bias is None else params.get(f"{i}.bias", mod.bias)
    return w, b


def _run(obj: Objective, params: dict[str, Tensor], x: Tensor, start: int, stop: int) -> Tensor:
    for i in range(start, stop):
        mod = obj.module[i]
        if isinstance(mod, nn.Linear):
            w, b = _linear_params(obj, params, i)
            x = nn.functional.linear(x, w, b)
        else:
            x = mod(x)
    return x


def split_blocks(obj: Objective, theta: Tensor, layer: int, neuron: int) -> SplitBlocks:
    """B_j = Σ_n ⟨δ_n, v_j⟩σ''(a_nj)h̃_nh̃_nᵀ and C_j = Σ_n σ'(a_nj)h̃_nδ_nᵀ at θ (see the module doc).

    δ_n = ∂L/∂z_n, z the pre-activation of the layer after ``layer``: the loss's normalisation
    (and the batch weights) are in δ. Works for any depth, width, loss and twice-differentiable
    elementwise activation (σ'' = 0 for ReLU).
    """
    theta = obj.check_theta(theta)
    neuron, _ = _check_split_args(obj, layer, neuron, 0.5)
    layout = _layout(obj.module)
    i, o = layout.linears[layer], layout.linears[layer + 1]
    act = layout.activations[layer]
    params = {k: v.detach() for k, v in obj.unflatten(theta).items()}
    w_in, b_in = _linear_params(obj, params, i)
    w_out, b_out = _linear_params(obj, params, o)
    v = w_out[:, neuron].detach()

    def sigma(t: Tensor) -> Tensor:
        return act(t.reshape(1).clone()).reshape(())

    d1, d2 = vmap(grad(sigma)), vmap(grad(grad(sigma)))
    p = w_in.shape[1] + int(b_in is not None)
    gain = torch.zeros(p, p, dtype=obj.dtype, device=obj.device)
    coupling = torch.zeros(p, w_out.shape[0], dtype=obj.dtype, device=obj.device)
    n_modules = len(obj.module)
    for batch in obj.batches:
        with torch.no_grad():
            h = _run(obj, params, batch.inputs, 0, i)
            a = nn.functional.linear(h, w_in, b_in)
            z = nn.functional.linear(act(a.clone()), w_out, b_out)  # clone: act may be in-place
        with torch.enable_grad():
            z = z.detach().requires_grad_(True)
            out = _run(obj, params, z, o + 1, n_modules)
            loss = batch.weight * obj.loss_fn(out, batch.targets)
            (delta,) = torch.autograd.grad(loss, z)
        ht = h if b_in is None else torch.cat([h, torch.ones_like(h[:, :1])], dim=1)
        aj = a[:, neuron].detach().contiguous()
        coef = (delta @ v) * d2(aj)
        gain += (ht * coef[:, None]).mT @ ht
        coupling += (ht * d1(aj)[:, None]).mT @ delta
    gain = 0.5 * (gain + gain.mT)
    return SplitBlocks(layer, neuron, gain, coupling, v.clone())


def split_gain_matrix(obj: Objective, theta: Tensor, layer: int, neuron: int) -> Tensor:
    """B_j = Σ_n ⟨δ_n, v_j⟩ σ''(w_jᵀh̃_n) h̃_n h̃_nᵀ, the split unit's curvature (p×p)."""
    return split_blocks(obj, theta, layer, neuron).gain


def predicted_inertia(
    narrow: Inertia | Spectrum | CriticalPoint,
    blocks: SplitBlocks,
    ratio: float,
    *,
    rtol: float | None = None,
    atol: float = 0.0,
) -> Inertia:
    """In(H_wide) = In(H_narrow) + In(K(λ)) at the split of a narrow critical point.

    Exact in exact arithmetic by Sylvester's law of inertia: the block decomposition is a
    congruence (T is not orthogonal), so the *counts* carry over but the eigenvalues do not. A
    numerical spectrum agrees when the eigenvalues of λ(1−λ)ZᵀB_jZ are clear of its tolerance.
    """
    return Inertia.of(narrow) + blocks.inertia(ratio, rtol=rtol, atol=atol)


# ============================================================================ the experiment
def _lbfgs(obj: Objective, theta: Tensor, max_iter: int) -> tuple[Tensor, int]:
    """Full-batch L-BFGS (strong Wolfe) from θ: (last iterate, loss evaluations)."""
    p = theta.detach().clone().requires_grad_(True)
    opt = torch.optim.LBFGS(
        [p],
        lr=1.0,
        max_iter=max_iter,
        history_size=20,
        line_search_fn="strong_wolfe",
        tolerance_grad=1e-12,
        tolerance_change=1e-16,
    )

    evaluations = 0

    def closure() -> Tensor:
        nonlocal evaluations
        evaluations += 1
        value, g = obj.loss_and_grad(p.detach())
        p.grad = g
        return value

    opt.step(closure)
    return p.detach().clone(), evaluations


@dataclass(frozen=True, eq=False)
class NarrowMinimum:
    """A strict local minimum of a small tanh MLP: objective, trained model (a copy at the
    minimum), verdict, and the seed that gave it.
    """

    objective: Objective
    model: nn.Sequential
    critical_point: CriticalPoint
    seed: int
    seeds_tried: int

    @property
    def theta(self) -> Tensor:
        return self.critical_point.theta

    def _widths(self) -> tuple[int, ...]:
        """Layer widths, input to output (e.g. (2, 2, 1))."""
        linears = [m for m in self.model if isinstance(m, nn.Linear)]
        return (linears[0].in_features, *(m.out_features for m in linears))

    def to_dict(self) -> dict[str, Any]:
        return {
            "widths": list(self._widths()),
            "seed": self.seed,
            "seeds_tried": self.seeds_tried,
            "objective": self.objective.describe(),
            "critical_point": self.critical_point.to_dict(),
        }

    def __str__(self) -> str:
        cp = self.critical_point
        strict = "strict " if cp.strict else ""
        arch = "-".join(map(str, self._widths()))
        return (
            f"NarrowMinimum: {strict}{cp.kind} of an MLP {arch} "
            f"({self.objective.num_params} params, {self.objective.num_samples} samples), "
            f"loss {cp.loss:.6g}, ‖g‖ {cp.grad_norm:.2g}, λ_min(H) {cp.spectrum.min:.3g} "
            f"(tol {cp.threshold:.2g}); seed {self.seed} ({self.seeds_tried} tried)"
        )


def train_strict_minimum(
    *,
    dataset: str = "teacher-student",
    hidden: tuple[int, ...] | int = 2,
    n_samples: int = 40,
    seed: int = 0,
    max_seeds: int = 8,
    data_seed: int = 0,
    noise: float = 0.1,
    d_out: int = 1,
    train_steps: int = 400,
    rtol: float | None = None,
) -> NarrowMinimum:
    """Train tanh MLPs (seeds ``seed``, ``seed``+1, …) until one reaches a strict local minimum.

    Each try: L-BFGS on the MSE from ``mlp(..., seed=s)``, then Levenberg–Marquardt to ‖g‖ ≤ 1e-10,
    then :func:`classify` (eigenvalue tolerance ``rtol``, default the dtype's): accepted when
    every Hessian eigenvalue is positive beyond the tolerance and the loss is not zero. Data:
    ``teacher-student`` (2 inputs, ``d_out`` outputs, a teacher with (last hidden width + 2) tanh
    units, so that the student cannot fit it) or ``sinc``, with Gaussian ``noise``, float64.
    Deterministic; raises :class:`SaddlescopeError` if no seed in range gives a strict minimum.
    """
    from saddlescope.data import load_dataset
    from saddlescope.models import mlp

    widths = (hidden,) if isinstance(hidden, int) else tuple(hidden)
    if not widths or any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in widths):
        raise InvalidInputError(f"hidden must be positive integer widths, got {hidden!r}")
    if isinstance(max_seeds, bool) or not isinstance(max_seeds, int) or max_seeds < 1:
        raise InvalidInputError(f"max_seeds must be a positive integer, got {max_seeds!r}")
    check_positive("noise", noise, allow_zero=True)
    if dataset == "teacher-student":
        data = load_dataset(
            dataset,
            n_samples=n_samples,
            seed=data_seed,
            d_in=2,
            teacher_hidden=widths[-1] + 2,
            d_out=d_out,
            noise=noise,
        )
    elif dataset == "sinc":
        data = load_dataset(dataset, n_samples=n_samples, seed=data_seed, noise=noise)
    else:
        raise InvalidInputError(f"unknown dataset {dataset!r}; choose 'teacher-student' or 'sinc'")
    for s in range(seed, seed + max_seeds):
        model = mlp(data.num_features, list(widths), data.num_outputs, seed=s)
        obj = Objective(model, nn.MSELoss(), (data.inputs, data.targets), dtype=torch.float64)
        with one_thread():
            theta, _ = _lbfgs(obj, obj.theta0, train_steps)
            search = find_critical_point(obj, theta, method="lm", grad_tol=1e-10)
            if not search.converged:
                continue
            cp = classify(obj, search.theta, rtol=rtol)
        if (
            cp.kind == "minimum"
            and cp.strict
            and cp.inertia is not None
            and cp.inertia.n_zero == 0
            and cp.loss > 1e-12
        ):
            trained = module_at(obj, cp.theta)
            return NarrowMinimum(obj, trained, cp, s, s - seed + 1)  # type: ignore[arg-type]
    raise SaddlescopeError(
        f"no strict local minimum with nonzero loss from seeds {seed}…{seed + max_seeds - 1} "
        f"({dataset}, hidden {widths}); try more seeds (max_seeds) or other data"
    )


@dataclass(frozen=True)
class SplitRow:
    """One split point: unit, λ, the observed verdict and counts, and the predicted inertia."""

    unit: int
    ratio: float
    kind: str
    n_neg: int
    n_zero: int
    n_pos: int
    predicted: Inertia
    grad_norm: float
    min_eigenvalue: float

    @property
    def observed(self) -> Inertia:
        return Inertia(self.n_neg, self.n_zero, self.n_pos)

    @property
    def matches(self) -> bool:
        return self.observed == self.predicted

    def to_dict(self) -> dict[str, Any]:
        return {
            "unit": self.unit,
            "ratio": self.ratio,
            "kind": self.kind,
            "n_neg": self.n_neg,
            "n_zero": self.n_zero,
            "n_pos": self.n_pos,
            "predicted": self.predicted.to_dict(),
            "matches": self.matches,
            "grad_norm": self.grad_norm,
            "min_eigenvalue": self.min_eigenvalue,
        }

    def __str__(self) -> str:
        mark = "✓" if self.matches else "✗"
        return (
            f"unit {self.unit}, λ = {self.ratio:g}: {self.kind} {self.observed}, "
            f"predicted {self.predicted} {mark}; ‖g‖ {self.grad_norm:.2g}, "
            f"λ_min(H) {self.min_eigenvalue:.3g}"
        )


@dataclass(frozen=True)
class EscapeRecord:
    """Leaving one split saddle: a line search along the escape direction, then L-BFGS."""

    unit: int
    ratio: float
    saddle_loss: float
    curvature: float
    step: float
    loss_after_step: float
    loss_final: float
    grad_norm_final: float
    evaluations: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def __str__(self) -> str:
        return (
            f"escape from unit {self.unit}, λ = {self.ratio:g}: step {self.step:.3g} along "
            f"curvature {self.curvature:.3g}, loss {self.saddle_loss:.6g} → "
            f"{self.loss_after_step:.6g}; L-BFGS ({self.evaluations} evaluations) → "
            f"{self.loss_final:.6g}, ‖g‖ {self.grad_norm_final:.2g}"
        )


@dataclass(frozen=True)
class LiftReport:
    """The dimension effect on a trained MLP: a narrow strict minimum, split into wide saddles.

    ``rows`` compare the classified split points with :func:`predicted_inertia`;
    ``restricted_kind`` is the verdict at the escaped saddle restricted to the narrow-sized
    subspace of split networks (a minimum: the narrow Hessian); ``escape`` leaves the saddle to
    a loss strictly below the narrow minimum.
    """

    dataset: str
    n_samples: int
    widths: tuple[int, ...]
    seed: int
    seeds_tried: int
    narrow_params: int
    wide_params: int
    narrow_loss: float
    narrow_grad_norm: float
    narrow_min_eigenvalue: float
    narrow_tolerance: float
    rtol: float
    gains: tuple[tuple[float, ...], ...]
    rows: tuple[SplitRow, ...]
    restricted_kind: str | None
    escape: EscapeRecord | None
    seconds: float

    @property
    def all_match(self) -> bool:
        return all(r.matches for r in self.rows)

    @property
    def escaped_below(self) -> bool:
        return self.escape is not None and self.escape.loss_final < self.narrow_loss

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "n_samples": self.n_samples,
            "widths": list(self.widths),
            "seed": self.seed,
            "seeds_tried": self.seeds_tried,
            "narrow_params": self.narrow_params,
            "wide_params": self.wide_params,
            "narrow_loss": self.narrow_loss,
            "narrow_grad_norm": self.narrow_grad_norm,
            "narrow_min_eigenvalue": self.narrow_min_eigenvalue,
            "narrow_tolerance": self.narrow_tolerance,
            "rtol": self.rtol,
            "gains": [list(g) for g in self.gains],
            "rows": [r.to_dict() for r in self.rows],
            "all_match": self.all_match,
            "restricted_kind": self.restricted_kind,
            "escape": None if self.escape is None else self.escape.to_dict(),
            "escaped_below": self.escaped_below,
            "seconds": self.seconds,
        }

    def __str__(self) -> str:
        arch = "-".join(map(str, self.widths))
        wide = list(self.widths)
        wide[1] += 1
        lines = [
            f"Lifting a tanh MLP {arch} ({self.dataset}, {self.n_samples} samples, seed "
            f"{self.seed}) to {'-'.join(map(str, wide))} by splitting one hidden unit",
            f"narrow: strict minimum, loss {self.narrow_loss:.6g}, "
            f"‖g‖ {self.narrow_grad_norm:.2g}, "
            f"λ_min(H) {self.narrow_min_eigenvalue:.3g} > tol {self.narrow_tolerance:.2g} "
            f"(rtol {self.rtol:g}); {self.narrow_params} params → {self.wide_params}",
        ]
        for j, g in enumerate(self.gains):
            lines.append(f"  unit {j}: eig B_j = [{', '.join(f'{x:.3g}' for x in g)}]")
        lines.append(
            f"{'unit':>4} {'λ':>6}  {'kind':<10} {'n-':>3} {'n0':>3} {'n+':>3}   predicted"
        )
        for r in self.rows:
            mark = "✓" if r.matches else "✗"
            lines.append(
                f"{r.unit:>4} {r.ratio:>6g}  {r.kind:<10} {r.n_neg:>3} {r.n_zero:>3} {r.n_pos:>3}"
                f"   {r.predicted!s:<24} {mark}"
            )
        if self.restricted_kind is not None and self.escape is not None:
            lines.append(
                f"the saddle (unit {self.escape.unit}, λ = {self.escape.ratio:g}) restricted to "
                f"the {self.narrow_params}-dim subspace of split narrow nets: "
                f"{self.restricted_kind}"
            )
        e = self.escape
        if e is None:
            lines.append("no split point was a saddle: nothing to escape")
        else:
            below = "<" if e.loss_final < self.narrow_loss else "≥"
            lines.append(
                f"escape: step {e.step:.3g} along the eigenvector of curvature {e.curvature:.3g}: "
                f"loss {e.saddle_loss:.6g} → {e.loss_after_step:.6g}; L-BFGS ({e.evaluations} "
                f"evaluations) → {e.loss_final:.6g} {below} {self.narrow_loss:.6g} (narrow minimum)"
            )
        lines.append(f"({self.seconds:.1f} s)")
        return "\n".join(lines)


def _escape(obj: Objective, cp: CriticalPoint) -> tuple[float, float, Tensor]:
    """The negative-curvature step of :func:`~saddlescope.curvature_step`: (length, loss, θ)."""
    u, curv = cp.escape_direction, cp.escape_curvature
    if u is None or curv is None:
        raise SaddlescopeError("the point has no negative-curvature direction to escape along")
    theta, value, _ = curvature_step(obj, cp.theta, u, curv, cp.loss)
    if not value < cp.loss:
        raise SaddlescopeError("no step along the escape direction lowered the loss")
    return float(torch.linalg.vector_norm(theta - cp.theta)), value, theta


def lift_experiment(
    *,
    dataset: str = "teacher-student",
    hidden: int = 2,
    n_samples: int = 40,
    ratios: Sequence[float] = (-0.5, 0.0, 0.25, 0.5, 1.0, 1.5),
    seed: int = 0,
    max_seeds: int = 8,
    data_seed: int = 0,
    noise: float = 0.1,
    train_steps: int = 400,
    rtol: float | None = None,
) -> LiftReport:
    """Narrow strict minimum → split saddles → escape below the narrow minimum, as a report.

    A tanh MLP d_in-``hidden``-1 is trained to a strict local minimum
    (:func:`train_strict_minimum`); for every hidden unit j and every λ in ``ratios`` the
    split point is classified and its inertia compared with :func:`predicted_inertia`; the
    saddle with the most negative curvature is left along its escape direction (backtracking
    on the actual loss) and L-BFGS continues from there. Deterministic.

    ``rtol`` is the relative eigenvalue tolerance of every verdict and prediction (default: the
    dtype's, 1e-6). Predicted counts are exact; the observed ones can disagree (✗ in the table)
    only when some eigenvalue of λ(1−λ)·B_j is so small that the congruence takes its partner in
    the wide Hessian below the tolerance: a smaller ``rtol`` settles it.
    """
    with one_thread():
        return _lift(
            dataset, hidden, n_samples, ratios, seed, max_seeds, data_seed, noise, train_steps, rtol
        )


def _lift(
    dataset: str,
    hidden: int,
    n_samples: int,
    ratios: Sequence[float],
    seed: int,
    max_seeds: int,
    data_seed: int,
    noise: float,
    train_steps: int,
    rtol: float | None,
) -> LiftReport:
    start = time.perf_counter()
    if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 1:
        raise InvalidInputError(
            f"hidden must be a positive integer (one hidden layer), got {hidden!r}"
        )
    lams = [_check_ratio(r) for r in ratios]
    if not lams:
        raise InvalidInputError("ratios must hold at least one λ")
    narrow = train_strict_minimum(
        dataset=dataset,
        hidden=hidden,
        n_samples=n_samples,
        seed=seed,
        max_seeds=max_seeds,
        data_seed=data_seed,
        noise=noise,
        train_steps=train_steps,
        rtol=rtol,
    )
    obj, cp = narrow.objective, narrow.critical_point
    wide = split_objective(obj, 0, 0, 0.5, cp.theta)
    gains, rows, saddles = [], [], []
    for j in range(hidden):
        blocks = split_blocks(obj, cp.theta, 0, j)
        gains.append(tuple(blocks.gain_eigenvalues.tolist()))
        for lam in lams:
            wcp = classify(wide, split_theta(obj, cp.theta, 0, j, lam), rtol=rtol)
            rows.append(
                SplitRow(
                    unit=j,
                    ratio=lam,
                    kind=wcp.kind,
                    n_neg=int(wcp.inertia.n_neg if wcp.inertia else 0),
                    n_zero=int(wcp.inertia.n_zero if wcp.inertia else 0),
                    n_pos=int(wcp.inertia.n_pos if wcp.inertia else 0),
                    predicted=predicted_inertia(cp, blocks, lam, rtol=rtol),
                    grad_norm=wcp.grad_norm,
                    min_eigenvalue=wcp.spectrum.min,
                )
            )
            if wcp.kind == "saddle" and wcp.escape_curvature is not None:
                saddles.append((wcp.escape_curvature, j, lam, wcp))
    escape, restricted_kind = None, None
    if saddles:
        curv, j, lam, wcp = min(saddles, key=lambda s: s[0])
        T = split_coordinates(obj, 0, j, lam)
        sub = restrict(wide, wcp.theta, T[:, : obj.num_params])
        restricted_kind = classify(sub, sub.theta0, rtol=rtol).kind
        step, after, theta = _escape(wide, wcp)
        theta, evaluations = _lbfgs(wide, theta, train_steps)
        final, g = wide.loss_and_grad(theta)
        escape = EscapeRecord(
            unit=j,
            ratio=lam,
            saddle_loss=wcp.loss,
            curvature=curv,
            step=step,
            loss_after_step=after,
            loss_final=float(final),
            grad_norm_final=float(torch.linalg.vector_norm(g)),
            evaluations=evaluations,
        )
    return LiftReport(
        dataset=dataset,
        n_samples=obj.num_samples,
        widths=(
            obj.param_shapes[0][1],
            hidden,
            obj.param_shapes[-1][0],
        ),
        seed=narrow.seed,
        seeds_tried=narrow.seeds_tried,
        narrow_params=obj.num_params,
        wide_params=wide.num_params,
        narrow_loss=cp.loss,
        narrow_grad_norm=cp.grad_norm,
        narrow_min_eigenvalue=cp.spectrum.min,
        narrow_tolerance=cp.threshold,
        rtol=cp.spectrum.rtol,
        gains=tuple(gains),
        rows=tuple(rows),
        restricted_kind=restricted_kind,
        escape=escape,
        seconds=time.perf_counter() - start,
    )
