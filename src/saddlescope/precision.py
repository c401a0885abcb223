"""Half precision, honestly: how far a bfloat16/float16 model's Hessian is from float32's.

A model in bfloat16 or float16 is analysed with its products in its own dtype and everything
else — Krylov vectors, recurrences, sums over batches, eigendecompositions — in float32
(:func:`~saddlescope.operators.working_dtype`). What remains is the rounding of the products
themselves: H̃ = H + E. By Weyl's inequality every eigenvalue moves by at most ‖E‖₂, so
:func:`product_error` estimates ‖E‖₂ — a few power iterations on v ↦ H̃v − Hv, against a
float32 twin of the objective (the same model values, the same data) — and
:func:`require_precision` refuses a verdict that an error that large could flip: λ_min or λ_max
within ‖E‖₂ of the zero band's edge ±threshold. docs/benchmarks.md#half-precision has the
measured errors.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor

from saddlescope.errors import InvalidInputError
from saddlescope.objective import Objective
from saddlescope.operators import HALF_DTYPES, Operator
from saddlescope.spectrum import Spectrum
from saddlescope.twins import module_at, objective_like

__all__ = [
    "PrecisionCheck",
    "float32_twin",
    "product_error",
    "refuse_imprecise_verdict",
    "require_precision",
]

DEFAULT_POWER_STEPS = 4  # power iterations on H̃ − H (two products each)


@dataclass(frozen=True)
class PrecisionCheck:
    """How far the products in ``dtype`` are from float32's at one θ.

    Attributes:
        dtype: the model's dtype.
        error: ‖H̃ − H‖₂ estimated (power iteration: a lower estimate that converges from
            below; every eigenvalue of H̃ is within this of one of H, to that estimate).
        hvps: products spent (in each dtype).
    """

    dtype: str
    error: float
    hvps: int

    def to_dict(self) -> dict[str, Any]:
        """The fields by name."""
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.dtype} products: ‖H̃ − H‖₂ ≈ {self.error:.3g} against float32"


def float32_twin(obj: Objective) -> Objective:
    """The same objective computed in float32: the model copy's values, the held data.

    Args:
        obj: an objective (its data held).
    """
    if not obj.data.held:
        raise InvalidInputError(
            f"a {obj.dtype} objective is checked against float32, which needs its data held: "
            "pass hold_data=True (or a larger memory_budget)"
        )
    return objective_like(obj, module_at(obj, obj.theta0), dtype=torch.float32, **obj.options())


def product_error(
    obj: Objective,
    theta: Tensor,
    *,
    steps: int = DEFAULT_POWER_STEPS,
    seed: int = 0,
    op: Operator | None = None,
) -> PrecisionCheck:
    """Estimate ‖H̃ − H‖₂ at θ: H̃ the products in the objective's dtype, H in float32.

    Args:
        obj: the objective (any dtype; float32 and float64 give an error of 0 without work).
        theta: the parameters.
        steps: power iterations on v ↦ H̃v − Hv.
        seed: seeds the start vector.
        op: the objective's Hessian operator at θ when the caller has it (its gradient graphs
            are not built again).
    """
    if obj.dtype not in HALF_DTYPES:
        return PrecisionCheck(str(obj.dtype).removeprefix("torch."), 0.0, 0)
    low = obj.hessian_operator(theta) if op is None else op
    ref = float32_twin(obj).hessian_operator(theta.float())
    gen = torch.Generator().manual_seed(seed)
    v = torch.randn(obj.num_params, generator=gen).to(obj.device)
    v /= v.norm()
    error = 0.0
    for _ in range(steps):
        w = low @ v - ref @ v
        error = float(w.norm())
        if error == 0 or not math.isfinite(error):
            break
        v = w / error
    return PrecisionCheck(str(obj.dtype).removeprefix("torch."), error, 2 * steps)


def require_precision(check: PrecisionCheck, low: float, high: float, threshold: float) -> None:
    """Refuse a verdict the products' rounding could flip: λ_min or λ_max near ±threshold.

    Args:
        check: the products' error (:func:`product_error`).
        low: λ_min computed.
        high: λ_max computed.
        threshold: the zero band's half-width.
    """
    near = [
        (name, value, edge)
        for name, value, edge in (("λ_min", low, -threshold), ("λ_max", high, threshold))
        if abs(value - edge) <= check.error
    ]
    if near:
        name, value, edge = near[0]
        raise InvalidInputError(
            f"in {check.dtype} the Hessian-vector products are off by up to ≈{check.error:.3g} "
            f"(‖H̃ − H‖₂ against float32), and {name} = {value:.4g} lies within that of the "
            f"zero band's edge {edge:.4g}: the verdict could flip. Analyse in float32 "
            "(Objective(..., dtype=torch.float32)), or widen the zero band (rtol)"
        )


def refuse_imprecise_verdict(
    obj: Objective, theta: Tensor, spectrum: Spectrum, seed: int = 0, op: Operator | None = None
) -> PrecisionCheck | None:
    """For a half-precision objective: measure its products' error, refuse what it could flip.

    Args:
        obj: the objective (float32 and float64: nothing to do, None).
        theta: the point classified.
        spectrum: its spectrum (λ_min, λ_max and the zero band's half-width).
        seed: seeds the power iteration's start vector.
        op: the objective's Hessian operator at θ, when the caller has it.
    """
    if obj.dtype not in HALF_DTYPES:
        return None
    check = product_error(obj, theta, seed=seed, op=op)
    require_precision(check, spectrum.min, spectrum.max, spectrum.threshold)
    return check
