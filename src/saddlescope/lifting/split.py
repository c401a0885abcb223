"""The split theorem: In(H_wide) = In(H_narrow) + In(K(λ)) when one hidden unit is split in two.

K(λ) = [[λ(1−λ)·B_j, C_j], [C_jᵀ, 0]] is built from the gain B_j and the coupling C_j of the
split unit (:func:`split_blocks`); the package docstring (:mod:`saddlescope.lifting`) derives it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import Tensor, nn
from torch.func import grad, vmap

from saddlescope.classify import CriticalPoint
from saddlescope.errors import InvalidInputError
from saddlescope.lifting.layout import check_ratio, mlp_layout
from saddlescope.lifting.views import check_split
from saddlescope.objective import Batch, Objective
from saddlescope.spectrum import Spectrum
from saddlescope.tolerance import Inertia, Tolerance

__all__ = [
    "SplitBlocks",
    "inertia_of",
    "predicted_inertia",
    "split_blocks",
    "split_gain_matrix",
]


def inertia_of(source: Inertia | Spectrum | CriticalPoint) -> Inertia:
    """The exact inertia held by an Inertia, a complete Spectrum or a CriticalPoint.

    Args:
        source: an :class:`~saddlescope.Inertia` (returned as it is), a
            :class:`~saddlescope.Spectrum` holding every eigenvalue, or a
            :class:`~saddlescope.CriticalPoint` whose spectrum does.

    Raises:
        InvalidInputError: ``source`` is none of these, or its spectrum holds only extreme
            eigenvalues (then the counts are unknown).
    """
    if isinstance(source, Inertia):
        return source
    spectrum = source if isinstance(source, Spectrum) else getattr(source, "spectrum", None)
    if not isinstance(spectrum, Spectrum):
        raise InvalidInputError(
            f"need an Inertia, a Spectrum or a CriticalPoint, got {type(source).__name__}"
        )
    inertia = spectrum.inertia
    if inertia is None:
        raise InvalidInputError(
            "the spectrum holds only extreme eigenvalues (Lanczos), so the inertia is unknown; "
            "use a dense spectrum"
        )
    return inertia


@dataclass(frozen=True, eq=False)
class SplitBlocks:
    """B_j (``gain``, p×p) and C_j (``coupling``, p×m) of hidden unit j at θ, and v_j.

    ``block(λ)`` is K = [[λ(1−λ)·B_j, C_j], [C_jᵀ, 0]], the part of the split network's Hessian
    (in :func:`~saddlescope.lifting.split_coordinates`) that the narrow Hessian does not hold.

    Attributes:
        layer: the hidden layer, counted from 0.
        neuron: the unit j.
        gain: B_j = Σ_n ⟨δ_n, v_j⟩ σ''(a_nj) h̃_n h̃_nᵀ (p×p, symmetric).
        coupling: C_j = Σ_n σ'(a_nj) h̃_n δ_nᵀ (p×m).
        outgoing: v_j, the unit's outgoing weights (length m).
    """

    layer: int
    neuron: int
    gain: Tensor
    coupling: Tensor
    outgoing: Tensor

    @property
    def gain_eigenvalues(self) -> Tensor:
        """The eigenvalues of B_j, ascending."""
        return torch.linalg.eigvalsh(self.gain)

    def block(self, ratio: float) -> Tensor:
        """K(λ) = [[λ(1−λ)·B_j, C_j], [C_jᵀ, 0]].

        Args:
            ratio: the split ratio λ.
        """
        lam = check_ratio(ratio)
        m = self.coupling.shape[1]
        zero = torch.zeros(m, m, dtype=self.gain.dtype, device=self.gain.device)
        top = torch.cat([lam * (1 - lam) * self.gain, self.coupling], dim=1)
        return torch.cat([top, torch.cat([self.coupling.mT, zero], dim=1)], dim=0)

    def inertia(
        self, ratio: float, *, rtol: float | None = None, atol: float | None = None
    ) -> Inertia:
        """In(K(λ)) = In(λ(1−λ)·ZᵀB_jZ) + (r, m − r, r), r = rank C_j, Z ⟂ range(C_j).

        C_j is first projected off v_j (C_j·v_j = ∂L/∂w_j is zero at a critical point, up to
        the search's tolerance). Singular values of C_j and eigenvalues of λ(1−λ)ZᵀB_jZ count
        as zero when ≤ max(atol, rtol·s), s = max(|λ(1−λ)|·‖B_j‖₂, ‖C_j‖₂).

        Args:
            ratio: the split ratio λ.
            rtol: the zero band relative to s (default :func:`~saddlescope.default_rtol` of
                the blocks' dtype).
            atol: the zero band's absolute floor (default 0).
        """
        lam = check_ratio(ratio)
        tol = Tolerance.resolve(self.gain.dtype, rtol=rtol, atol=atol)
        A = lam * (1 - lam) * self.gain
        C = self.coupling
        vn = float(torch.linalg.vector_norm(self.outgoing))
        if vn > 0:
            vhat = self.outgoing / vn
            C = C - torch.outer(C @ vhat, vhat)
        m, p = C.shape[1], C.shape[0]
        U, s, _ = torch.linalg.svd(C, full_matrices=True)
        threshold = tol.threshold(
            max(float(torch.linalg.matrix_norm(A, 2)), float(s.max()) if s.numel() else 0.0)
        )
        r = int((s > threshold).sum())
        Z = U[:, r:]
        reduced = (
            Inertia.of_values(torch.linalg.eigvalsh(Z.mT @ A @ Z), threshold)
            if p > r
            else Inertia(0, 0, 0)
        )
        return reduced + Inertia(r, m - r, r)

    def to_dict(self) -> dict[str, Any]:
        """The blocks as nested lists, with B_j's eigenvalues."""
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


@dataclass(frozen=True)
class _Around:
    """A hidden layer of an MLP at θ: its two Linears (positions, tensors) and its activation."""

    net: nn.Sequential
    i: int
    o: int
    act: nn.Module
    w_in: Tensor
    b_in: Tensor | None
    w_out: Tensor
    b_out: Tensor | None


def _linear_params(
    net: nn.Sequential, params: dict[str, Tensor], i: int
) -> tuple[Tensor, Tensor | None]:
    """Weight and bias of Linear ``i``: from ``params`` when trainable, else the module's own."""
    mod = cast(nn.Linear, net[i])
    w = params.get(f"{i}.weight", mod.weight)
    b = None if mod.bias is None else params.get(f"{i}.bias", mod.bias)
    return w, b


def _around(obj: Objective, params: dict[str, Tensor], layer: int) -> _Around:
    layout = mlp_layout(obj.module)
    net = cast(nn.Sequential, obj.module)
    i, o = layout.linears[layer], layout.linears[layer + 1]
    w_in, b_in = _linear_params(net, params, i)
    w_out, b_out = _linear_params(net, params, o)
    return _Around(net, i, o, layout.activations[layer], w_in, b_in, w_out, b_out)


def _run(net: nn.Sequential, params: dict[str, Tensor], x: Tensor, start: int, stop: int) -> Tensor:
    """Modules ``start`` … ``stop`` − 1 of the MLP applied to ``x``, Linears at ``params``."""
    for i in range(start, stop):
        mod = net[i]
        if isinstance(mod, nn.Linear):
            w, b = _linear_params(net, params, i)
            x = nn.functional.linear(x, w, b)
        else:
            x = mod(x)
    return x


def _derivatives(act: nn.Module) -> tuple[Callable[[Tensor], Tensor], Callable[[Tensor], Tensor]]:
    """σ' and σ'' of an elementwise activation module, vectorised over a 1-D tensor."""

    def sigma(t: Tensor) -> Tensor:
        return act(t.reshape(1).clone()).reshape(())

    return vmap(grad(sigma)), vmap(grad(grad(sigma)))


def _batch_blocks(
    obj: Objective, params: dict[str, Tensor], at: _Around, neuron: int, batch: Batch
) -> tuple[Tensor, Tensor]:
    """One batch's (B_j, C_j) terms; the batch weight is inside δ."""
    loss_fn = obj.loss_fn
    if loss_fn is None:
        raise InvalidInputError("the split theorem needs the objective's loss_fn (not None)")
    with torch.no_grad():
        h = _run(at.net, params, batch.inputs, 0, at.i)
        a = nn.functional.linear(h, at.w_in, at.b_in)
        # clone: the activation may work in place
        z = nn.functional.linear(at.act(a.clone()), at.w_out, at.b_out)
    with torch.enable_grad():
        z = z.detach().requires_grad_(True)
        out = _run(at.net, params, z, at.o + 1, len(at.net))
        loss = batch.weight * loss_fn(out, batch.targets)
        (delta,) = torch.autograd.grad(loss, z)
    ht = h if at.b_in is None else torch.cat([h, torch.ones_like(h[:, :1])], dim=1)
    aj = a[:, neuron].detach().contiguous()
    d1, d2 = _derivatives(at.act)
    coef = (delta @ at.w_out[:, neuron]) * d2(aj)
    return (ht * coef[:, None]).mT @ ht, (ht * d1(aj)[:, None]).mT @ delta


def split_blocks(obj: Objective, theta: Tensor, layer: int, neuron: int) -> SplitBlocks:
    """B_j = Σ_n ⟨δ_n, v_j⟩σ''(a_nj)h̃_nh̃_nᵀ and C_j = Σ_n σ'(a_nj)h̃_nδ_nᵀ at θ.

    δ_n = ∂L/∂z_n, z the pre-activation of the layer after ``layer``: the loss's normalisation
    (and the batch weights) are in δ. Works for any depth, width, loss and twice-differentiable
    elementwise activation (σ'' = 0 for ReLU).

    Args:
        obj: the narrow objective (an MLP).
        theta: the narrow flat parameters (any θ; critical for :func:`predicted_inertia`).
        layer: the hidden layer, counted from 0.
        neuron: the unit j.
    """
    theta = obj.check_theta(theta)
    neuron, _ = check_split(obj, layer, neuron, 0.5)
    params = {k: v.detach() for k, v in obj.unflatten(theta).items()}
    at = _around(obj, params, layer)
    v = at.w_out[:, neuron].detach()
    p = at.w_in.shape[1] + int(at.b_in is not None)
    gain = torch.zeros(p, p, dtype=obj.dtype, device=obj.device)
    coupling = torch.zeros(p, at.w_out.shape[0], dtype=obj.dtype, device=obj.device)
    for batch in obj.batches:
        g, c = _batch_blocks(obj, params, at, neuron, batch)
        gain += g
        coupling += c
    gain = 0.5 * (gain + gain.mT)
    return SplitBlocks(layer, neuron, gain, coupling, v.clone())


def split_gain_matrix(obj: Objective, theta: Tensor, layer: int, neuron: int) -> Tensor:
    """B_j = Σ_n ⟨δ_n, v_j⟩ σ''(w_jᵀh̃_n) h̃_n h̃_nᵀ, the split unit's curvature (p×p).

    Args:
        obj: the narrow objective (an MLP).
        theta: the narrow flat parameters.
        layer: the hidden layer, counted from 0.
        neuron: the unit j.
    """
    return split_blocks(obj, theta, layer, neuron).gain


def predicted_inertia(
    narrow: Inertia | Spectrum | CriticalPoint,
    blocks: SplitBlocks,
    ratio: float,
    *,
    rtol: float | None = None,
    atol: float | None = None,
) -> Inertia:
    """In(H_wide) = In(H_narrow) + In(K(λ)) at the split of a narrow critical point.

    Exact in exact arithmetic by Sylvester's law of inertia: the block decomposition is a
    congruence (T is not orthogonal), so the *counts* carry over but the eigenvalues do not. A
    numerical spectrum agrees when the eigenvalues of λ(1−λ)ZᵀB_jZ are clear of its tolerance.

    Args:
        narrow: the narrow Hessian's inertia, or what holds it (see :func:`inertia_of`).
        blocks: the split unit's blocks at the narrow critical point (:func:`split_blocks`).
        ratio: the split ratio λ.
        rtol: the zero band for K(λ), relative (see :meth:`SplitBlocks.inertia`).
        atol: the zero band's absolute floor for K(λ) (default 0).
    """
    return inertia_of(narrow) + blocks.inertia(ratio, rtol=rtol, atol=atol)
