"""Problems with known answers: the worked example and small scalar fields.

The worked example (MISSION §3): the model y = w1·w2·x on the single example (x, ŷ) = (1, 1)
with squared error, so

    L(w1, w2) = (1 − w1·w2)²,   ∇L = −2(1 − w1w2)·(w2, w1),
    H = [[2w2², 4w1w2 − 2], [4w1w2 − 2, 2w1²]].

Its critical points are the origin (a saddle: eigenvalues ±2, loss 1) and the hyperbola
w1·w2 = 1 (eigenvalues 0 and 2(w1² + w2²), loss 0: non-strict global minima).

:func:`scalar_objective` wraps any smooth f(w) as an :class:`~saddlescope.Objective`, for test
functions whose critical points are known (x² + y³, monkey saddles, flat directions…).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from saddlescope.errors import InvalidInputError
from saddlescope.objective import Objective
from saddlescope.tolerance import Inertia

__all__ = [
    "LinearCriticalPoint",
    "ScalarField",
    "WorkedExample",
    "balance_linear_network",
    "half_squared_error",
    "linear_network",
    "linear_network_critical_points",
    "match_linear_critical_point",
    "scalar_objective",
    "worked_example",
    "worked_example_grad",
    "worked_example_hessian",
    "worked_example_loss",
    "worked_example_minima",
    "worked_example_objective",
]


class WorkedExample(nn.Module):
    """The two-parameter linear model y = w1·w2·x (MISSION §3).

    Args:
        w1: the first weight's initial value (default 0.5).
        w2: the second weight's initial value (default −0.3; the defaults start off every
            critical point).
    """

    def __init__(self, w1: float = 0.5, w2: float = -0.3) -> None:
        super().__init__()
        self.w1 = nn.Parameter(torch.tensor(float(w1)))
        self.w2 = nn.Parameter(torch.tensor(float(w2)))

    def forward(self, x: Tensor) -> Tensor:
        """The output w1·w2·x.

        Args:
            x: the inputs, any shape.
        """
        return self.w1 * self.w2 * x


def worked_example(
    w1: float = 0.5, w2: float = -0.3
) -> tuple[WorkedExample, nn.Module, tuple[Tensor, Tensor]]:
    """(model, loss_fn, data) of the worked example: one sample x = 1, ŷ = 1, squared error.

    Args:
        w1: the first weight's initial value.
        w2: the second weight's initial value.
    """
    data = (torch.ones(1, 1), torch.ones(1, 1))
    return WorkedExample(w1, w2), nn.MSELoss(), data


def worked_example_objective(dtype: torch.dtype = torch.float64) -> Objective:
    """The worked example as an :class:`Objective` over θ = (w1, w2), in float64 by default.

    Args:
        dtype: the objective's dtype (default float64, where the closed forms match to 1e-12).
    """
    model, loss_fn, data = worked_example()
    return Objective(model, loss_fn, data, dtype=dtype)


def worked_example_loss(w: Tensor) -> Tensor:
    """Closed form L(w) = (1 − w1·w2)².

    Args:
        w: the point (w1, w2), a tensor of 2 entries.
    """
    return (1 - w[0] * w[1]) ** 2


def worked_example_grad(w: Tensor) -> Tensor:
    """Closed form ∇L = −2(1 − w1w2)·(w2, w1).

    Args:
        w: the point (w1, w2), a tensor of 2 entries.
    """
    r = 1 - w[0] * w[1]
    return torch.stack([-2 * r * w[1], -2 * r * w[0]])


def worked_example_hessian(w: Tensor) -> Tensor:
    """Closed form H = [[2w2², 4w1w2 − 2], [4w1w2 − 2, 2w1²]].

    Args:
        w: the point (w1, w2), a tensor of 2 entries.
    """
    off = 4 * w[0] * w[1] - 2
    return torch.stack([torch.stack([2 * w[1] ** 2, off]), torch.stack([off, 2 * w[0] ** 2])])


def worked_example_minima(extent: float = 2.2, num: int = 200) -> list[tuple[Tensor, Tensor]]:
    """The two branches of w1·w2 = 1 inside [−extent, extent]², as (w1, w2) curves.

    Args:
        extent: the half-width of the square (> 1 for the curves to be non-empty; default 2.2).
        num: points per branch, log-spaced in |w1| from 1/extent to extent (default 200).
    """
    w1 = torch.logspace(math.log10(1 / extent), math.log10(extent), num, dtype=torch.float64)
    return [(w1, 1 / w1), (-w1, -1 / w1)]


class ScalarField(nn.Module):
    """A module whose only parameter is w and whose output is f(w), whatever the input.

    Args:
        f: the scalar field, a differentiable map from a 1-D tensor w to a 0-dim tensor.
        w0: w's initial value (stored as a float64 parameter).
    """

    def __init__(self, f: Callable[[Tensor], Tensor], w0: Tensor) -> None:
        super().__init__()
        self.f = f
        self.w = nn.Parameter(torch.as_tensor(w0, dtype=torch.float64).clone())

    def forward(self, x: Tensor) -> Tensor:
        """f(w); ``x`` is ignored (kept in the graph as 0·Σx so shapes and devices check).

        Args:
            x: any input tensor.
        """
        return self.f(self.w) + 0 * x.sum()


def _identity_loss(output: Tensor, target: Tensor) -> Tensor:
    return output


def scalar_objective(f: Callable[[Tensor], Tensor], w0: Tensor | list[float]) -> Objective:
    """L(θ) = f(θ) as a float64 :class:`Objective` (θ starts at ``w0``).

    Args:
        f: the function, from a 1-D float64 tensor θ to a 0-dim tensor (twice differentiable
            by autograd where it is analysed).
        w0: θ's starting value.

    >>> obj = scalar_objective(lambda w: w[0] ** 2 + w[1] ** 3, [0.0, 0.0])
    >>> obj.hessian(obj.theta0).tolist()
    [[2.0, 0.0], [0.0, 0.0]]
    """
    model = ScalarField(f, torch.as_tensor(w0, dtype=torch.float64))
    data = (torch.zeros(1, 1, dtype=torch.float64), torch.zeros(1, dtype=torch.float64))
    return Objective(model, _identity_loss, data, dtype=torch.float64)


# ------------------------------------------------------------------ Baldi & Hornik linear network
def half_squared_error(output: Tensor, target: Tensor) -> Tensor:
    """ℓ = ½‖ŷ − y‖² per sample, averaged over the batch: L = (1/2N)·‖Y − W2·W1·X‖_F².

    Args:
        output: the predictions ŷ, (N, n_out).
        target: the targets y, (N, n_out).
    """
    return 0.5 * (output - target).pow(2).sum(dim=-1).mean()


def linear_network(
    eigenvalues: tuple[float, ...] = (4.0, 2.0, 1.0),
    n_in: int = 4,
    hidden: int = 1,
    num_samples: int = 64,
    noise: float = 0.5,
    seed: int = 0,
) -> tuple[nn.Sequential, Callable[[Tensor, Tensor], Tensor], tuple[Tensor, Tensor]]:
    """(model, loss_fn, data) for y = W2·W1·x, the two-layer linear net of Baldi & Hornik (1989).

    ``nn.Sequential(Linear(n_in, hidden), Linear(hidden, n_out))`` without biases, in float64,
    n_out = len(eigenvalues); loss :func:`half_squared_error`. The seeded data (rows are samples)
    has a random, non-white Σxx = XᵀX/N and Y = X·Mᵀ + E with E ⟂ the columns of X, M chosen so
    that Σ = Σyx·Σxx⁻¹·Σxy has exactly the given (distinct, positive) ``eigenvalues``. The
    model's initial weights are seeded random. Its critical points:
    :func:`linear_network_critical_points`.

    Args:
        eigenvalues: the eigenvalues λ of Σ, distinct and positive; their count is n_out.
        n_in: the input dimension n (≥ n_out).
        hidden: the hidden width p (1 ≤ p ≤ n_out).
        num_samples: N, the number of samples (≥ n_in, so that Σxx is invertible).
        noise: the scale of the residual E, orthogonal to X's columns so it changes the loss
            but not Σ (default 0.5).
        seed: seeds the data and the initial weights (default 0).
    """
    lam = torch.tensor(eigenvalues, dtype=torch.float64)
    n_out = lam.numel()
    if not 1 <= hidden <= n_out <= n_in or num_samples < n_in:
        raise InvalidInputError("need 1 ≤ hidden ≤ n_out = len(eigenvalues) ≤ n_in ≤ num_samples")
    if bool((lam <= 0).any()) or lam.unique().numel() != n_out:
        raise InvalidInputError(f"eigenvalues must be positive and distinct, got {eigenvalues}")
    gen = torch.Generator().manual_seed(seed)

    def randn(*shape: int) -> Tensor:
        return torch.randn(*shape, generator=gen, dtype=torch.float64)

    x = randn(num_samples, n_in) @ (torch.eye(n_in, dtype=torch.float64) + 0.3 * randn(n_in, n_in))
    evals, evecs = torch.linalg.eigh(x.mT @ x / num_samples)
    sxx_inv_half = evecs @ torch.diag(evals.rsqrt()) @ evecs.mT
    u = torch.linalg.qr(randn(n_out, n_out))[0]
    v = torch.linalg.qr(randn(n_in, n_out))[0]
    m = u @ torch.diag(lam.sqrt()) @ v.mT @ sxx_inv_half  # Σyx·Σxx^(-½) = M·Σxx^½ = U·diag(√λ)·Vᵀ
    e = randn(num_samples, n_out)
    e = noise * (e - x @ torch.linalg.solve(x.mT @ x, x.mT @ e))
    y = x @ m.mT + e
    with torch.random.fork_rng(devices=[]):  # nn.Linear's own init would draw from the global RNG
        model = nn.Sequential(
            nn.Linear(n_in, hidden, bias=False), nn.Linear(hidden, n_out, bias=False)
        ).double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(randn(*p.shape) / math.sqrt(p.shape[1]))
    return model, half_squared_error, (x, y)


@dataclass(frozen=True, eq=False)
class LinearCriticalPoint:
    """A closed-form critical point of :func:`linear_network`: θ = (W1, W2) flattened in order.

    Attributes:
        subset: S, 0-based indices of Σ's eigenvalues in decreasing order; () at the origin.
        theta: θ = (W1, W2) flattened, at the balanced point of the GL(p) orbit.
        product: W2·W1, the same all along the orbit.
        loss: L(θ).
        inertia: the Hessian's exact (n₋, n₀, n₊) there (closed form, see
            :func:`linear_network_critical_points`).
        kind: ``"minimum"`` (S = the top p: the global, non-strict minimum) or ``"saddle"``.
    """

    subset: tuple[int, ...]
    theta: Tensor
    product: Tensor
    loss: float
    inertia: Inertia
    kind: str

    def to_dict(self) -> dict[str, Any]:
        """Every field as plain values (the inertia as :meth:`Inertia.to_dict`)."""
        return {
            "subset": list(self.subset),
            "kind": self.kind,
            "loss": self.loss,
            "inertia": self.inertia.to_dict(),
            "theta": self.theta.tolist(),
            "product": self.product.tolist(),
        }

    def __str__(self) -> str:
        where = f"S = {{{', '.join(map(str, self.subset))}}}" if self.subset else "origin"
        return (
            f"{self.kind} at {where}: loss {self.loss:.6g}, inertia {self.inertia} "
            f"({self.theta.numel()} params)"
        )


def linear_network_critical_points(
    data: tuple[Tensor, Tensor], hidden: int = 1
) -> list[LinearCriticalPoint]:
    """Every critical point of (1/2N)‖Y − W2·W1·X‖² with rank(W2·W1) = p, and the origin.

    Baldi & Hornik (1989), "Neural networks and principal component analysis: learning from
    examples without local minima", Neural Networks 2(1):53–58: with Σxx = XᵀX/N invertible and
    Σ = Σyx·Σxx⁻¹·Σxy = U·diag(λ)·Uᵀ, λ1 > λ2 > … > λm > 0, p = hidden ≤ m ≤ n, the critical
    points with full-rank W2·W1 are projections, and only the top-p one is a minimum (their
    result); the inertia (n₋, n₀, n₊ = n − n₋ − n₀) is derived below. ``subset`` S is 0-based.

    * products:  W2·W1 = U_S·U_Sᵀ·Σyx·Σxx⁻¹, one per index set |S| = p (θ: a balanced pair);
    * loss:      L = ½·tr Σyy − ½·Σ_{i∈S} λi;  origin W1 = W2 = 0: L = ½·tr Σyy;
    * n_zero:    p², the tangent of the orbit W1 → A·W1, W2 → W2·A⁻¹ (A ∈ GL(p));
    * n_neg:     #{(i, j): i ∈ S, j ∉ S, λj > λi}; for p = 1 and S = {i}: #{j: λj > λi} = i;
    * kind:      S = top-p: global minimum (non-strict); any other S: saddle;
    * origin:    n_neg = p·m, n_zero = p·(n − m), a saddle. For p = 1 any other critical θ has
      one of the products above, or W2 = 0 and Σyx·W1ᵀ = 0 (if n > m; same loss and counts).

    Derivation: whitening x and rotating by the singular vectors of Σyx·Σxx^(-1/2) = U·diag(s)·Vᵀ
    (s = √λ) changes θ linearly, so by Sylvester's law the Hessian's inertia at a critical
    point is unchanged. There, with the balanced W2 = U_S·diag(s_S)^½, W1 = diag(s_S)^½·V_Sᵀ,
    ½·d²L = ½‖dW2·W1 + W2·dW1‖² + ⟨W2·W1 − Σyx, dW2·dW1⟩ splits into 2×2 blocks: for each
    i ∈ S and j ∉ S the pair (dW2[j, i], dW1[i, j]) has ½[[si, −sj], [−sj, si]], eigenvalues
    si ± sj — exactly one negative when λj > λi; the S×S entries give p² positive and p² zero
    eigenvalues; every other entry is positive. At the origin the pairs give ±sj, p per j.

    Args:
        data: the (inputs X, targets Y) of :func:`linear_network`, rows are samples.
        hidden: the hidden width p of the network (default 1).

    >>> _, _, data = linear_network()  # Σ's eigenvalues 4 > 2 > 1, 4 → 1 → 3
    >>> points = linear_network_critical_points(data)
    >>> [(p.subset, p.kind, p.inertia.n_neg, p.inertia.n_zero) for p in points]
    [((0,), 'minimum', 0, 1), ((1,), 'saddle', 1, 1), ((2,), 'saddle', 2, 1), ((), 'saddle', 3, 1)]
    """
    x, y = (t.to(torch.float64) for t in data)
    n, n_in = x.shape
    n_out = y.shape[1]
    sxx, syx = x.mT @ x / n, y.mT @ x / n
    w_ls = torch.linalg.solve(sxx, syx.mT).mT  # Σyx·Σxx⁻¹
    lam, u = torch.linalg.eigh(w_ls @ syx.mT)
    lam, u = lam.flip(0), u.flip(1)  # decreasing
    if not 1 <= hidden <= n_out <= n_in or bool((lam[:-1] - lam[1:] <= 1e-9 * lam[0]).any()):
        raise InvalidInputError("need 1 ≤ hidden ≤ n_out ≤ n_in and distinct eigenvalues of Σ")
    const = 0.5 * float(torch.trace(y.mT @ y / n))
    num_params = hidden * (n_in + n_out)
    points = []
    for subset in itertools.combinations(range(n_out), hidden):
        idx = list(subset)
        u_s, lam_s = u[:, idx], lam[idx]
        w2 = u_s * lam_s.pow(0.25)  # U_S·diag(λ_S)^¼ = U_S·diag(s_S)^½
        w1 = (u_s * lam_s.pow(-0.25)).mT @ w_ls  # so that W2·W1 = U_S·U_Sᵀ·Σyx·Σxx⁻¹
        n_neg = sum(1 for i in subset for j in range(i) if j not in subset)  # λj > λi ⇔ j < i
        points.append(
            LinearCriticalPoint(
                subset=subset,
                theta=torch.cat([w1.reshape(-1), w2.reshape(-1)]),
                product=w2 @ w1,
                loss=const - 0.5 * float(lam_s.sum()),
                inertia=_inertia(n_neg, hidden**2, num_params),
                kind="minimum" if subset == tuple(range(hidden)) else "saddle",
            )
        )
    points.append(
        LinearCriticalPoint(
            subset=(),
            theta=torch.zeros(num_params, dtype=torch.float64),
            product=torch.zeros(n_out, n_in, dtype=torch.float64),
            loss=const,
            inertia=_inertia(hidden * n_out, hidden * (n_in - n_out), num_params),
            kind="saddle",
        )
    )
    return points


def _inertia(n_neg: int, n_zero: int, num_params: int) -> Inertia:
    return Inertia(n_neg, n_zero, num_params - n_neg - n_zero)


def match_linear_critical_point(
    theta: Tensor, points: list[LinearCriticalPoint], rtol: float = 1e-6
) -> LinearCriticalPoint | None:
    """The point of ``points`` whose W2·W1 is θ's (so equal up to GL(p)), else None.

    Args:
        theta: a parameter vector of the network (W1, W2 flattened in order).
        points: the closed-form critical points, from :func:`linear_network_critical_points`.
        rtol: match when ‖W2·W1 − product‖_F ≤ rtol · the largest ‖product‖_F (default 1e-6).
    """
    n_out, n_in = points[0].product.shape
    hidden = points[0].theta.numel() // (n_in + n_out)
    theta = theta.detach().to(torch.float64).cpu()
    w1, w2 = theta[: hidden * n_in].view(hidden, n_in), theta[hidden * n_in :].view(n_out, hidden)
    w = w2 @ w1
    scale = max(float(torch.linalg.matrix_norm(p.product)) for p in points)
    for p in points:
        if float(torch.linalg.matrix_norm(w - p.product)) <= rtol * scale:
            return p
    return None


def balance_linear_network(theta: Tensor, n_in: int, n_out: int) -> Tensor:
    """The point (A·W1, W2·A⁻¹) of θ's GL(p) orbit with W1·W1ᵀ = W2ᵀ·W2 (same W2·W1, same loss).

    A = M^½ with M·P·M = Q, P = W1·W1ᵀ, Q = W2ᵀ·W2 (both invertible: W1, W2 of rank p). The map
    is linear in θ, so at a critical point the Hessian's inertia is the same on the whole orbit
    (Sylvester) while its conditioning is best near the balanced point.

    Args:
        theta: (W1, W2) flattened, both of rank p.
        n_in: the input dimension (W1 is p × n_in).
        n_out: the output dimension (W2 is n_out × p).
    """
    hidden = theta.numel() // (n_in + n_out)
    w1, w2 = theta[: hidden * n_in].view(hidden, n_in), theta[hidden * n_in :].view(n_out, hidden)

    def power(s: Tensor, k: float) -> Tensor:  # s^k of a symmetric positive definite s
        evals, evecs = torch.linalg.eigh(s)
        return (evecs * evals.pow(k)) @ evecs.mT

    p_half, p_inv_half = power(w1 @ w1.mT, 0.5), power(w1 @ w1.mT, -0.5)
    m = p_inv_half @ power(p_half @ w2.mT @ w2 @ p_half, 0.5) @ p_inv_half
    a, a_inv = power(m, 0.5), power(m, -0.5)
    return torch.cat([(a @ w1).reshape(-1), (w2 @ a_inv).reshape(-1)])
