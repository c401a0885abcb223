"""The Hessian's spectral density by stochastic Lanczos quadrature, from products only.

**Stochastic Lanczos quadrature** (:func:`slq`; Golub & Meurant 1994, Ubaru, Chen & Saad 2017).
For a unit probe z the spectral measure μ_z = Σ_i (u_iᵀz)² δ(λ_i) has mass 1, and for normalised
Rademacher probes E[μ_z] is the eigenvalue distribution (1/n)·Σ_i δ(λ_i). m Lanczos steps from
q₁ = z give T_m, and its eigenpairs (θ_j, s_j) are the m-point Gauss rule of μ_z — nodes θ_j,
weights s_{1j}² — exact for every polynomial of degree ≤ 2m−1:

    ∫ f dμ  ≈  (1/p) Σ_probes Σ_j s_{1j}² f(θ_j).

The per-probe tridiagonals are kept, so :mod:`saddlescope.inertia` can bracket counts by
Gauss–Radau rules without further products.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from saddlescope.checks import check_int, check_positive
from saddlescope.errors import InvalidInputError
from saddlescope.lanczos import Tridiagonal, lanczos_tridiag
from saddlescope.operators import Operator, as_operator

__all__ = ["Estimate", "SpectralDensity", "radau_bracket", "rademacher", "slq"]

DEFAULT_LANCZOS_STEPS = 80
DEFAULT_PROBES = 10
_BASIS_BYTES = 256 * 1024**2  # Lanczos bases of the probes run together in one block
_RADAU_GUARD = 1e8  # |bordering term| above this × scale: t is a Ritz value, use the Gauss rule


@dataclass(frozen=True)
class Estimate:
    """A stochastic estimate and its standard error (nan with a single sample).

    Attributes:
        value: the estimate, the mean over probes.
        stderr: its standard error, the probes' sample standard deviation over √probes.
    """

    value: float
    stderr: float

    def to_dict(self) -> dict[str, Any]:
        """Value and standard error."""
        return {"value": self.value, "stderr": self.stderr}

    def __str__(self) -> str:
        return f"{self.value:.6g} ± {self.stderr:.3g} (s.e.)"


@dataclass(frozen=True, eq=False)
class SpectralDensity:
    """Per-probe Gauss quadrature rules of the Hessian's spectral measure, from :func:`slq`.

    ``nodes[k, j]``, ``weights[k, j]``: the Ritz values of probe k's tridiagonal and the squared
    first components of their eigenvectors (each row sums to 1; rows of probes whose Lanczos run
    ended early are padded with weight 0). ``tridiagonals`` keep each probe's T and β_m for the
    Gauss–Radau brackets of :meth:`cdf_bracket`.

    Attributes:
        nodes: (probes, m) Ritz values, CPU float64.
        weights: (probes, m) quadrature weights, each row summing to 1.
        tridiagonals: each probe's :class:`~saddlescope.lanczos.Tridiagonal` (no basis).
        residuals: per probe, the largest β_m·|s_m| of its two extreme Ritz values: how far the
            spectrum may reach beyond the nodes (used by :attr:`scale_bound`).
        num_params: n, the operator's size (counts are fractions × n).
        hvps: operator products spent.
        seed: the seed the probes were drawn from (reproduces them).
    """

    nodes: Tensor
    weights: Tensor
    tridiagonals: tuple[Tridiagonal, ...]
    residuals: Tensor
    num_params: int
    hvps: int
    seed: int

    @property
    def probes(self) -> int:
        """How many probes (rows)."""
        return self.nodes.shape[0]

    @property
    def lanczos_steps(self) -> int:
        """The longest probe's Lanczos steps (columns)."""
        return self.nodes.shape[1]

    @property
    def scale(self) -> float:
        """max|θ| over every probe's Ritz values: a lower bound on max|λ| (converges fast)."""
        return float(self.nodes[self.weights > 0].abs().max())

    @property
    def scale_bound(self) -> float:
        """:attr:`scale` plus the largest extreme-Ritz residual bound: an upper estimate."""
        return self.scale + float(self.residuals.max())

    def default_sigma(self) -> float:
        """(max θ − min θ)/m: about the Gauss nodes' spacing inside the spectrum, π(b−a)/(2m)."""
        held = self.nodes[self.weights > 0]
        width = float(held.max() - held.min())
        return width / self.lanczos_steps if width > 0 else 1e-3 * max(1.0, float(held.abs().max()))

    def density(self, grid: Tensor | Sequence[float], sigma: float | None = None) -> Tensor:
        """φ(x) = (1/p) Σ_k Σ_j w_kj·N(x; θ_kj, σ²), the smoothed density (∫φ = 1 over ℝ).

        Args:
            grid: the points x (1-D).
            sigma: the Gaussian width; default :meth:`default_sigma`, the resolution m Gauss
                nodes have inside the spectrum: narrower shows the nodes as spikes, not the
                density; wider blurs it.
        """
        x = torch.as_tensor(grid, dtype=torch.float64)
        if x.ndim != 1:
            raise InvalidInputError(
                f"grid must be a 1-D sequence of points, got shape {tuple(x.shape)}"
            )
        s = self.default_sigma() if sigma is None else check_positive("sigma", sigma)
        z = (x[:, None, None] - self.nodes[None]) / s
        kernel = torch.exp(-0.5 * z**2) / (s * math.sqrt(2 * math.pi))
        return (kernel * self.weights[None]).sum(dim=(1, 2)) / self.probes

    def _per_probe(self, mask: Tensor) -> Estimate:
        values = (self.weights * mask).sum(dim=1)
        se = float(values.std() / math.sqrt(self.probes)) if self.probes > 1 else math.nan
        return Estimate(float(values.mean()), se)

    def count(self, a: float, b: float) -> Estimate:
        """The fraction of eigenvalues in (a, b] by the Gauss rules, with its standard error.

        The standard error is the probes' spread only; :meth:`cdf_bracket` bounds the
        quadrature's own bias.

        Args:
            a: the interval's open lower end.
            b: its closed upper end (≥ a).
        """
        a, b = float(a), float(b)
        if not a <= b:
            raise InvalidInputError(f"count(a, b) needs a ≤ b, got a={a}, b={b}")
        return self._per_probe((self.nodes > a) & (self.nodes <= b))

    def cdf(self, x: float) -> Estimate:
        """F(x) = #{λ ≤ x}/n by the Gauss rules, with its standard error.

        Args:
            x: the point.
        """
        return self._per_probe(self.nodes <= float(x))

    def cdf_bracket(self, x: float) -> tuple[Tensor, Tensor]:
        """Per probe: lower ≤ μ_z((−∞, x)) ≤ μ_z((−∞, x]) ≤ upper, by the Gauss–Radau rule.

        Args:
            x: the point.
        """
        bounds = [radau_bracket(tri, float(x)) for tri in self.tridiagonals]
        return (
            torch.tensor([lo for lo, _ in bounds], dtype=torch.float64),
            torch.tensor([hi for _, hi in bounds], dtype=torch.float64),
        )

    def truncated(self, lanczos_steps: int) -> SpectralDensity:
        """What ``lanczos_steps`` steps a probe would have given: runs are nested, so no HVPs.

        Args:
            lanczos_steps: the steps to keep of each probe's run.
        """
        check_int("lanczos_steps", lanczos_steps, 1)
        tris = [tri.prefix(lanczos_steps) for tri in self.tridiagonals]
        return _assemble(tris, self.num_params, sum(t.steps for t in tris), self.seed)

    def to_dict(self) -> dict[str, Any]:
        """Sizes, cost, seed, scale, and the nodes and weights as lists."""
        return {
            "num_params": self.num_params,
            "probes": self.probes,
            "lanczos_steps": self.lanczos_steps,
            "hvps": self.hvps,
            "seed": self.seed,
            "scale": self.scale,
            "nodes": self.nodes.tolist(),
            "weights": self.weights.tolist(),
        }

    def __str__(self) -> str:
        held = self.nodes[self.weights > 0]
        return (
            f"SpectralDensity(n={self.num_params}, {self.probes} probes × "
            f"{self.lanczos_steps} steps): "
            f"Ritz values in [{float(held.min()):.6g}, {float(held.max()):.6g}]; "
            f"{self.hvps} HVPs"
        )


def radau_bracket(tri: Tridiagonal, t: float) -> tuple[float, float]:
    """Markov–Krein bounds on μ((−∞, t)) and μ((−∞, t]) from T_m and β_m (Gauss–Radau at t).

    Bordering T_m with β_m and α̃ = t + β_m²·[(T_m − t)⁻¹]_mm gives the (m+1)-point rule with a
    node at t exact to degree 2m; the mass left of t is the lower bound, plus t's weight the
    upper. With β_m = 0 the Gauss rule is μ itself; with t a Ritz value it is the limit.

    Args:
        tri: one probe's Lanczos tridiagonal.
        t: the point.
    """
    T = tri.matrix()
    m = T.shape[0]
    scale = float(T.abs().max()) + abs(t) + 1e-300
    radau = None
    if tri.beta_last != 0.0:
        e = torch.zeros(m, dtype=T.dtype)
        e[-1] = tri.beta_last**2
        shifted = T - t * torch.eye(m, dtype=T.dtype)
        try:
            delta = float(torch.linalg.solve(shifted, e)[-1])
        except RuntimeError:  # singular: t is a Ritz value
            delta = math.inf
        if math.isfinite(delta) and abs(delta) <= _RADAU_GUARD * scale:
            bordered = torch.zeros(m + 1, m + 1, dtype=T.dtype)
            bordered[:m, :m] = T
            bordered[m - 1, m] = bordered[m, m - 1] = tri.beta_last
            bordered[m, m] = t + delta
            radau = bordered
    if radau is None:
        theta, S = torch.linalg.eigh(T)
        w = S[0] ** 2
        at = (theta - t).abs() <= 1e-12 * scale
        below = float(w[(theta < t) & ~at].sum())
        return below, below + float(w[at].sum())
    theta, S = torch.linalg.eigh(radau)
    w = S[0] ** 2
    w = w / w.sum()
    fixed = int((theta - t).abs().argmin())
    below = float(w[theta < t].sum()) - (float(w[fixed]) if theta[fixed] < t else 0.0)
    below = max(0.0, below)
    return below, min(1.0, below + float(w[fixed]))


def slq(
    source: Any,
    theta: Tensor | None = None,
    *,
    lanczos_steps: int | None = None,
    probes: int = DEFAULT_PROBES,
    seed: int = 0,
) -> SpectralDensity:
    """Stochastic Lanczos quadrature: per-probe Gauss rules of the Hessian's spectral measure.

    Costs probes × lanczos_steps products (fewer when a run finds an invariant subspace); the
    probes run together, one block product per step.

    Args:
        source: an Objective (with ``theta``), an operator, or a symmetric matrix.
        theta: the parameters, for an Objective only.
        lanczos_steps: steps per probe, default min(n, 80): m Gauss nodes integrate
            polynomials of degree 2m−1 exactly, so smooth spectral sums converge geometrically
            in m (Ubaru, Chen & Saad 2017) and the density is resolved to ~(λmax−λmin)/m inside
            the spectrum — about 1 % of the range at 80 products a probe.
        probes: normalised Rademacher probes, default 10: a probe's fraction of any eigenvalue
            set has variance ≤ 2f(1−f)/n, so ten put the standard error of a count under 0.5 %
            of n once n ≥ 1000, and leave 9 degrees of freedom for Student-t intervals.
        seed: seeds the probes (drawn on the CPU: every device sees the same).

    >>> H = torch.diag(torch.linspace(-1.0, 1.0, 200, dtype=torch.float64))
    >>> sd = slq(H, lanczos_steps=30, probes=4)
    >>> round(sd.cdf(0.0).value, 1), sd.hvps
    (0.5, 120)
    """
    op = as_operator(source, theta)
    n = op.shape[0]
    steps = DEFAULT_LANCZOS_STEPS if lanczos_steps is None else lanczos_steps
    steps = min(check_int("lanczos_steps", steps, 1), n)
    check_int("probes", probes, 1)
    check_int("seed", seed, 0)
    itemsize = torch.empty((), dtype=op.dtype).element_size()
    chunk = max(1, min(probes, _BASIS_BYTES // max(1, (steps + 1) * n * itemsize)))
    Z = rademacher(op, probes, seed) / math.sqrt(n)
    before = op.num_products
    tris: list[Tridiagonal] = []
    for start in range(0, probes, chunk):
        tris.extend(lanczos_tridiag(op, Z[:, start : start + chunk], steps))
    return _assemble(tris, n, op.num_products - before, seed)


def rademacher(op: Operator, k: int, seed: int) -> Tensor:
    """K columns of ±1 (n×k) in the operator's dtype and device, drawn on the CPU from ``seed``.

    Args:
        op: the operator whose size, dtype and device the probes take.
        k: how many probes.
        seed: the seed (the same on every device).
    """
    gen = torch.Generator().manual_seed(seed)
    signs = torch.randint(0, 2, (op.shape[0], k), generator=gen, dtype=torch.int8) * 2 - 1
    return signs.to(device=op.device, dtype=op.dtype)


def _assemble(tris: list[Tridiagonal], n: int, hvps: int, seed: int) -> SpectralDensity:
    width = max(t.steps for t in tris)
    nodes = torch.zeros(len(tris), width, dtype=torch.float64)
    weights = torch.zeros(len(tris), width, dtype=torch.float64)
    residuals = torch.zeros(len(tris), dtype=torch.float64)
    for k, tri in enumerate(tris):
        theta, w, res = _gauss_rule(tri)
        nodes[k, : theta.numel()] = theta
        nodes[k, theta.numel() :] = theta[-1]
        weights[k, : w.numel()] = w
        residuals[k] = res
    return SpectralDensity(
        nodes=nodes,
        weights=weights,
        tridiagonals=tuple(tris),
        residuals=residuals,
        num_params=n,
        hvps=hvps,
        seed=seed,
    )


def _gauss_rule(tri: Tridiagonal) -> tuple[Tensor, Tensor, float]:
    """Nodes θ_j, weights s_{1j}² of T, and the residual bound β_m·max(|s_{m,1}|, |s_{m,m}|)."""
    theta, S = torch.linalg.eigh(tri.matrix())
    weights = S[0] ** 2
    edge = float(max(S[-1, 0].abs(), S[-1, -1].abs()))
    return theta, weights / weights.sum(), abs(tri.beta_last) * edge
