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

The modules, one idea each: :mod:`~saddlescope.lifting.subspace` (restriction to an affine slice),
:mod:`~saddlescope.lifting.layout` (what counts as an MLP), :mod:`~saddlescope.lifting.widen`
(split or add a unit), :mod:`~saddlescope.lifting.views` (the same on flat θ, and the split
coordinates T), :mod:`~saddlescope.lifting.split` (B_j, C_j and the predicted inertia),
:mod:`~saddlescope.lifting.experiment` and :mod:`~saddlescope.lifting.report` (the whole story).
"""

from saddlescope.lifting.experiment import NarrowMinimum, lift_experiment, train_strict_minimum
from saddlescope.lifting.layout import ELEMENTWISE
from saddlescope.lifting.report import EscapeRecord, LiftReport, SplitRow
from saddlescope.lifting.split import (
    SplitBlocks,
    inertia_of,
    predicted_inertia,
    split_blocks,
    split_gain_matrix,
)
from saddlescope.lifting.subspace import restrict
from saddlescope.lifting.views import module_at, split_coordinates, split_objective, split_theta
from saddlescope.lifting.widen import add_neuron, split_neuron
from saddlescope.tolerance import Inertia

__all__ = [
    "ELEMENTWISE",
    "EscapeRecord",
    "Inertia",
    "LiftReport",
    "NarrowMinimum",
    "SplitBlocks",
    "SplitRow",
    "add_neuron",
    "inertia_of",
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
