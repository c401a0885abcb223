"""Spectral density, trace and inertia of the Hessian from Hessian-vector products only.

**Stochastic Lanczos quadrature** (:func:`slq`; Golub & Meurant 1994, Ubaru, Chen & Saad 2017).
For a unit probe z the spectral measure μ_z = Σ_i (u_iᵀz)² δ(λ_i) has mass 1, and for normalised
Rademacher probes E[μ_z] is the eigenvalue distribution (1/n)·Σ_i δ(λ_i). m Lanczos steps from
q₁ = z give T_m, and its eigenpairs (θ_j, s_j) are the m-point Gauss rule of μ_z — nodes θ_j,
weights s_{1j}² — exact for every polynomial of degree ≤ 2m−1:

    ∫ f dμ  ≈  (1/p) Σ_probes Σ_j s_{1j}² f(θ_j).

**Trace** (:func:`hutchinson_trace`, :func:`hutch_pp_trace`). tr H = E[zᵀHz] for Rademacher z
(Hutchinson 1989); Hutch++ (Meyer, Musco, Musco & Woodruff 2021) takes the trace of H on the range
of H·S exactly and Hutchinson only on the rest, so its error falls like 1/budget, not 1/√budget.

**Inertia** (:func:`estimate_inertia`). n₋, n₀, n₊ at tol = max(atol, rtol·max|λ|) are n times
the distribution function F(x) = #{λ ≤ x}/n at ±tol. The Gauss rule's own count is biased where
nodes are sparse, so each probe is *bracketed* instead: the Gauss–Radau rule with a node fixed at
t (T_m bordered by β_m) matches the 2m+1 moments the probe measured, and by the Markov–Krein
theorem every measure with those moments satisfies

    Σ_{x_j < t} w_j  ≤  μ_z((−∞, t))  ≤  μ_z((−∞, t])  ≤  Σ_{x_j ≤ t} w_j       (x, w: Radau rule),

the sharpest bounds those moments allow; their gap is the Christoffel function at t, the mass
the probe cannot place on either side of t. The bracket *is* the allowance for quadrature bias —
a bound, not a guess. The sampling error comes on top: the probes' mean of zᵀPz (P the spectral
projector of the counted set, rank f·n) lies between the mean lower and upper ends exactly, and
for Rademacher probes its variance is at most 2f(1−f)/(n·p) whatever the eigenvectors, which
gives a Wilson-type score interval at the stated confidence (``variance="bound"``, the default,
valid for any number of probes); ``variance="sample"`` uses Student t on the probe-to-probe
spread of the two ends instead.

Why not a Chebyshev / kernel-polynomial (KPM, Jackson-damped) count: a degree-d KPM has one
fixed resolution, ~(λmax−λmin)/d inside the spectrum, and the Jackson kernel's bias on a step
function has no computable bound; Lanczos adapts its nodes to the spectrum (outliers cost one
node each, so deflating extreme eigenvectors buys little) and Gauss–Radau bounds its bias. What
no HVP-only method can do is separate eigenvalues from ±tol closer than its polynomial degree
resolves (for polynomials, about (λmax−λmin)/m² near an edge of the spectrum, (λmax−λmin)/m
inside; converged Ritz values do better): eigenvalue mass there lands inside the bar, honestly
widening it. Neural-network Hessians put much of their spectrum within 10⁻⁴·max|λ| of zero, so
short runs give wide bars at the default rtol = 10⁻⁶; long runs resolve it — a few hundred
steps on ``python -m benchmarks.inertia``'s 4.7k-parameter MLP.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from scipy.stats import norm as normal
from scipy.stats import t as student_t
from torch import Tensor

from saddlescope.checks import check_choice, check_positive
from saddlescope.errors import InvalidInputError, NonFiniteError
from saddlescope.lanczos import _BREAKDOWN, _DGKS, Tridiagonal
from saddlescope.objective import Objective
from saddlescope.tolerance import Inertia, Tolerance

__all__ = [
    "CountEstimate",
    "Estimate",
    "InertiaEstimate",
    "SpectralDensity",
    "TraceEstimate",
    "estimate_inertia",
    "hutch_pp_trace",
    "hutchinson_trace",
    "slq",
]

MatVec = Callable[[Tensor], Tensor]
Variance = Literal["bound", "sample"]
DEFAULT_STEPS = 80
DEFAULT_PROBES = 10
DEFAULT_TRACE_PRODUCTS = 99
DEFAULT_INERTIA_STEPS = 400
DEFAULT_INERTIA_PROBES = 1
_BASIS_BYTES = 256 * 1024**2  # Lanczos bases of the probes run together in one block
_RADAU_GUARD = 1e8  # |bordering term| above this × scale: t is a Ritz value, use the Gauss rule


# ============================================================================ the operator
@dataclass
class _Operator:
    """H as a block product V (n×k) ↦ H·V that counts its products."""

    apply: Callable[[Tensor], Tensor]
    n: int
    dtype: torch.dtype
    device: torch.device
    counter: Callable[[], int]


def _check_int(name: str, value: Any, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise InvalidInputError(f"{name} must be an integer ≥ {minimum}, got {value!r}")
    return value


def _operator(
    source: Objective | MatVec,
    where: Tensor | int,
    dtype: torch.dtype | None,
    device: torch.device | str | None,
) -> _Operator:
    if isinstance(source, Objective):
        if isinstance(where, int) and not isinstance(where, bool):
            raise InvalidInputError(
                "with an Objective pass the parameter vector θ (a tensor of length "
                f"{source.num_params}) as the second argument, not an integer"
            )
        op = source.hessian_operator(where)
        return _Operator(
            apply=lambda V: op @ V,
            n=source.num_params,
            dtype=source.dtype,
            device=source.device,
            counter=lambda: op.num_products,
        )
    if not callable(source):
        raise InvalidInputError(
            "pass an Objective and θ, or a matvec callable v ↦ H·v and the dimension n; "
            f"got {type(source).__name__}"
        )
    n = where
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise InvalidInputError(
            f"with a matvec callable pass the dimension n (a positive integer), got {n!r}"
        )
    dt = torch.float64 if dtype is None else dtype
    if not dt.is_floating_point:
        raise InvalidInputError(f"dtype must be a floating-point dtype, got {dt}")
    dev = torch.device("cpu") if device is None else torch.device(device)
    count = [0]

    def apply(V: Tensor) -> Tensor:
        cols = []
        for i in range(V.shape[1]):
            out = torch.as_tensor(source(V[:, i]))
            if out.shape != (n,):
                raise InvalidInputError(
                    f"matvec must map a vector of length {n} to one of length {n}, got shape "
                    f"{tuple(out.shape)}; check n"
                )
            cols.append(out.to(device=dev, dtype=dt))
            count[0] += 1
        return torch.stack(cols, dim=1)

    return _Operator(apply=apply, n=n, dtype=dt, device=dev, counter=lambda: count[0])


def _rademacher(n: int, k: int, seed: int, op: _Operator) -> Tensor:
    """K columns of ±1 (n×k), drawn on the CPU from ``seed`` so every device sees the same."""
    gen = torch.Generator().manual_seed(seed)
    signs = torch.randint(0, 2, (n, k), generator=gen, dtype=torch.int8) * 2 - 1
    return signs.to(device=op.device, dtype=op.dtype)


def _apply_checked(op: _Operator, V: Tensor) -> Tensor:
    out = op.apply(V)
    if not torch.isfinite(out).all():
        raise NonFiniteError(
            "the Hessian-vector product holds NaN or Inf; check θ and the model (float64?)"
        )
    return out


# ============================================================================ block Lanczos
def _lanczos_probes(op: _Operator, Z: Tensor, steps: int) -> list[Tridiagonal]:
    """Independent Lanczos runs (full reorthogonalisation) from the unit columns of Z.

    The probes advance together, one block product per step; a probe whose β falls to rounding
    level (an invariant subspace) stops there and costs no further products.
    """
    n, p = Z.shape
    eps = torch.finfo(Z.dtype).eps
    Q = Z.new_zeros(p, steps + 1, n)
    Q[:, 0] = Z.mT
    alpha = Z.new_zeros(p, steps)
    beta = Z.new_zeros(p, steps)
    length = [steps] * p
    active = torch.arange(p, device=Z.device)
    for j in range(steps):
        rows = slice(None) if active.numel() == p else active  # a view while all run
        W = _apply_checked(op, Q[rows, j].mT).mT  # (a, n)
        a = (Q[rows, j] * W).sum(dim=1)
        alpha[rows, j] = a
        W = W - a[:, None] * Q[rows, j]
        if j > 0:
            W = W - beta[rows, j - 1, None] * Q[rows, j - 1]
        basis = Q[rows, : j + 1]  # (a, j+1, n)
        before = torch.linalg.vector_norm(W, dim=1)
        for _ in range(2):  # full reorthogonalisation; a second pass only where norms collapse
            W = W - torch.einsum("akn,ak->an", basis, torch.einsum("akn,an->ak", basis, W))
            b = torch.linalg.vector_norm(W, dim=1)
            if not bool((b < _DGKS * before).any()):
                break
            before = b
        beta[rows, j] = b
        scale = alpha[rows, : j + 1].abs().amax(dim=1) + beta[rows, : j + 1].amax(dim=1)
        done = b <= _BREAKDOWN * eps * scale.clamp_min(eps)
        if bool(done.any()):
            for i in active[done].tolist():
                beta[i, j] = 0.0
                length[i] = j + 1
            keep = ~done
            W, b, active = W[keep], b[keep], active[keep]
            rows = active
        if active.numel() == 0:
            break
        if j + 1 < steps:
            Q[rows, j + 1] = W / b[:, None]
    alpha, beta = alpha.to("cpu", torch.float64), beta.to("cpu", torch.float64)
    return [
        Tridiagonal(
            alpha=alpha[i, : length[i]].clone(),
            beta=beta[i, : length[i] - 1].clone(),
            beta_last=float(beta[i, length[i] - 1]),
            basis=None,
        )
        for i in range(p)
    ]


def _gauss_rule(tri: Tridiagonal) -> tuple[Tensor, Tensor, float]:
    """Nodes θ_j, weights s_{1j}² of T, and the residual bound β_m·max(|s_{m,1}|, |s_{m,m}|)."""
    theta, S = torch.linalg.eigh(tri.matrix())
    weights = S[0] ** 2
    edge = float(max(S[-1, 0].abs(), S[-1, -1].abs()))
    return theta, weights / weights.sum(), abs(tri.beta_last) * edge


# ============================================================================ results
@dataclass(frozen=True)
class Estimate:
    """A stochastic estimate and its standard error (nan with a single sample)."""

    value: float
    stderr: float

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "stderr": self.stderr}

    def __str__(self) -> str:
        return f"{self.value:.6g} ± {self.stderr:.3g} (s.e.)"


@dataclass(frozen=True)
class TraceEstimate:
    """tr H ≈ value; ``stderr`` is the standard error of its random part (0: exact)."""

    value: float
    stderr: float
    method: str
    hvps: int
    num_params: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "value": self.value,
            "stderr": self.stderr,
            "hvps": self.hvps,
            "num_params": self.num_params,
        }

    def __str__(self) -> str:
        return (
            f"TraceEstimate({self.method}, n={self.num_params}): tr H ≈ {self.value:.6g} "
            f"± {self.stderr:.3g} (s.e.); {self.hvps} HVPs"
        )


@dataclass(frozen=True, eq=False)
class SpectralDensity:
    """Per-probe Gauss quadrature rules of the Hessian's spectral measure, from :func:`slq`.

    ``nodes[k, j]``, ``weights[k, j]``: the Ritz values of probe k's tridiagonal and the squared
    first components of their eigenvectors (each row sums to 1; rows of probes whose Lanczos run
    ended early are padded with weight 0). ``tridiagonals`` keep each probe's T and β_m for the
    Gauss–Radau brackets of :meth:`cdf_bracket`.
    """

    nodes: Tensor
    weights: Tensor
    tridiagonals: tuple[Tridiagonal, ...]
    residuals: Tensor  # per probe: β_m·|s_m| of the extreme Ritz values
    num_params: int
    hvps: int
    seed: int

    @property
    def probes(self) -> int:
        return self.nodes.shape[0]

    @property
    def steps(self) -> int:
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
        return width / self.steps if width > 0 else 1e-3 * max(1.0, float(held.abs().max()))

    def density(self, grid: Tensor | Sequence[float], sigma: float | None = None) -> Tensor:
        """φ(x) = (1/p) Σ_k Σ_j w_kj·N(x; θ_kj, σ²), the smoothed density (∫φ = 1 over ℝ).

        ``sigma`` defaults to :meth:`default_sigma`, the resolution m Gauss nodes have inside
        the spectrum: narrower shows the nodes as spikes, not the density; wider blurs it.
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
        """
        a, b = float(a), float(b)
        if not a <= b:
            raise InvalidInputError(f"count(a, b) needs a ≤ b, got a={a}, b={b}")
        return self._per_probe((self.nodes > a) & (self.nodes <= b))

    def cdf(self, x: float) -> Estimate:
        """F(x) = #{λ ≤ x}/n by the Gauss rules, with its standard error."""
        return self._per_probe(self.nodes <= float(x))

    def cdf_bracket(self, x: float) -> tuple[Tensor, Tensor]:
        """Per probe: lower ≤ μ_z((−∞, x)) ≤ μ_z((−∞, x]) ≤ upper, by the Gauss–Radau rule."""
        bounds = [_radau_bracket(tri, float(x)) for tri in self.tridiagonals]
        return (
            torch.tensor([lo for lo, _ in bounds], dtype=torch.float64),
            torch.tensor([hi for _, hi in bounds], dtype=torch.float64),
        )

    def truncated(self, steps: int) -> SpectralDensity:
        """What ``steps`` Lanczos steps a probe would have given: runs are nested, so no HVPs."""
        _check_int("steps", steps, 1)
        tris = [_prefix(tri, steps) for tri in self.tridiagonals]
        return _assemble(tris, self.num_params, sum(t.steps for t in tris), self.seed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "num_params": self.num_params,
            "probes": self.probes,
            "steps": self.steps,
            "hvps": self.hvps,
            "seed": self.seed,
            "scale": self.scale,
            "nodes": self.nodes.tolist(),
            "weights": self.weights.tolist(),
        }

    def __str__(self) -> str:
        held = self.nodes[self.weights > 0]
        return (
            f"SpectralDensity(n={self.num_params}, {self.probes} probes × {self.steps} steps): "
            f"Ritz values in [{float(held.min()):.6g}, {float(held.max()):.6g}]; "
            f"{self.hvps} HVPs"
        )


def _radau_bracket(tri: Tridiagonal, t: float) -> tuple[float, float]:
    """Markov–Krein bounds on μ((−∞, t)) and μ((−∞, t]) from T_m and β_m (Gauss–Radau at t).

    Bordering T_m with β_m and α̃ = t + β_m²·[(T_m − t)⁻¹]_mm gives the (m+1)-point rule with a
    node at t exact to degree 2m; the mass left of t is the lower bound, plus t's weight the
    upper. With β_m = 0 the Gauss rule is μ itself; with t a Ritz value it is the limit.
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


# ============================================================================ SLQ
def slq(
    source: Objective | MatVec,
    where: Tensor | int,
    *,
    steps: int | None = None,
    probes: int = DEFAULT_PROBES,
    seed: int = 0,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> SpectralDensity:
    """Stochastic Lanczos quadrature: per-probe Gauss rules of the Hessian's spectral measure.

    ``slq(obj, θ)`` uses ``obj.hessian_operator(θ)`` (blocks of probes, on the objective's
    device); ``slq(matvec, n)`` any symmetric v ↦ H·v on vectors of length n (``dtype``,
    ``device`` say where its probes live; float64 on the CPU by default). Costs probes × steps
    products (fewer when a run finds an invariant subspace).

    Defaults: ``steps`` = min(n, 80): m Gauss nodes integrate polynomials of degree 2m−1 exactly,
    so smooth spectral sums converge geometrically in m (Ubaru, Chen & Saad 2017) and the density
    is resolved to ~(λmax−λmin)/m inside the spectrum — about 1 % of the range at 80 products a
    probe. ``probes`` = 10: a normalised Rademacher probe's fraction of any eigenvalue set has
    variance ≤ 2f(1−f)/n, so ten probes put the standard error of a count under 0.5 % of n once
    n ≥ 1000, and leave 9 degrees of freedom for Student-t intervals.

    >>> H = torch.diag(torch.linspace(-1.0, 1.0, 200, dtype=torch.float64))
    >>> sd = slq(lambda v: H @ v, 200, steps=30, probes=4)
    >>> round(sd.cdf(0.0).value, 1), sd.hvps
    (0.5, 120)
    """
    op = _operator(source, where, dtype, device)
    n = op.n
    steps = min(n, DEFAULT_STEPS) if steps is None else _check_int("steps", steps, 1)
    steps = min(steps, n)
    _check_int("probes", probes, 1)
    _check_int("seed", seed, 0)
    itemsize = torch.empty((), dtype=op.dtype).element_size()
    chunk = max(1, min(probes, _BASIS_BYTES // max(1, (steps + 1) * n * itemsize)))
    Z = _rademacher(n, probes, seed, op) / math.sqrt(n)
    tris: list[Tridiagonal] = []
    for start in range(0, probes, chunk):
        tris.extend(_lanczos_probes(op, Z[:, start : start + chunk], steps))
    return _assemble(tris, n, op.counter(), seed)


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


def _prefix(tri: Tridiagonal, steps: int) -> Tridiagonal:
    if steps >= tri.steps:
        return tri
    return Tridiagonal(
        alpha=tri.alpha[:steps],
        beta=tri.beta[: steps - 1],
        beta_last=float(tri.beta[steps - 1]),
        basis=None,
    )


# ============================================================================ trace
def hutchinson_trace(
    source: Objective | MatVec,
    where: Tensor | int,
    *,
    products: int = DEFAULT_TRACE_PRODUCTS,
    seed: int = 0,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> TraceEstimate:
    """Tr H ≈ (1/k) Σ_i z_iᵀ H z_i over k = ``products`` Rademacher probes (Hutchinson 1989).

    ``stderr`` is the sample standard deviation over √k; the variance of one probe is
    2(‖H‖_F² − Σ_i H_ii²), so the error falls like 1/√k.

    >>> H = torch.diag(torch.arange(1.0, 11.0, dtype=torch.float64))
    >>> hutchinson_trace(lambda v: H @ v, 10, products=4).value   # diagonal: exact
    55.0
    """
    op = _operator(source, where, dtype, device)
    _check_int("products", products, 2)
    _check_int("seed", seed, 0)
    Z = _rademacher(op.n, products, seed, op)
    samples = (Z * _apply_checked(op, Z)).sum(dim=0).to("cpu", torch.float64)
    return TraceEstimate(
        value=float(samples.mean()),
        stderr=float(samples.std() / math.sqrt(products)),
        method="hutchinson",
        hvps=op.counter(),
        num_params=op.n,
    )


def hutch_pp_trace(
    source: Objective | MatVec,
    where: Tensor | int,
    *,
    products: int = DEFAULT_TRACE_PRODUCTS,
    seed: int = 0,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> TraceEstimate:
    """Hutch++: tr H = tr(QᵀHQ) + tr((I−QQᵀ)H(I−QQᵀ)), Q an orthonormal basis of H·S.

    Of the ``products`` budget, k = ⌊budget/3⌋ go to H·S (S: n×k Rademacher), k to H·Q, and the
    rest to Hutchinson on the deflated remainder — whose standard error is ``stderr`` (the first
    term is exact). Error O(‖H‖_* / budget) against Hutchinson's O(‖H‖_F / √budget) (Meyer,
    Musco, Musco & Woodruff 2021); exact when rank H ≤ k.

    >>> u = torch.arange(1.0, 21.0, dtype=torch.float64)
    >>> H = torch.outer(u, u)                        # rank 1: captured by the sketch
    >>> round(hutch_pp_trace(lambda v: H @ v, 20, products=6).value, 6) == float(u @ u)
    True
    """
    op = _operator(source, where, dtype, device)
    _check_int("products", products, 4)
    _check_int("seed", seed, 0)
    n = op.n
    k = min(products // 3, n)
    g = products - 2 * k
    S = _rademacher(n, k + g, seed, op)
    Q, _ = torch.linalg.qr(_apply_checked(op, S[:, :k]))
    exact = float((Q * _apply_checked(op, Q)).sum())
    G = S[:, k:]
    G = G - Q @ (Q.mT @ G)
    samples = (G * _apply_checked(op, G)).sum(dim=0).to("cpu", torch.float64)
    stderr = float(samples.std() / math.sqrt(g))
    return TraceEstimate(
        value=exact + float(samples.mean()),
        stderr=stderr,
        method="hutch++",
        hvps=op.counter(),
        num_params=n,
    )


# ============================================================================ inertia
@dataclass(frozen=True)
class CountEstimate:
    """An eigenvalue count: ``value`` with the confidence interval [``low``, ``high``].

    ``value`` is the midpoint of the probes' mean Gauss–Radau bracket; ``error`` the larger of
    its distances to the two ends, so value ± error contains [low, high]. ``quadrature`` is the
    bracket's mean half-gap (the allowance for quadrature bias), ``statistical`` the mean of the
    two sampling margins, both before clipping to [0, n].
    """

    value: float
    error: float
    low: float
    high: float
    quadrature: float
    statistical: float

    def covers(self, count: float) -> bool:
        return self.low <= count <= self.high

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "error": self.error,
            "low": self.low,
            "high": self.high,
            "quadrature": self.quadrature,
            "statistical": self.statistical,
        }

    def __str__(self) -> str:
        return f"{self.value:.1f} ± {self.error:.1f}"


def _score_root(x: float, c: float, upper: bool) -> float:
    """The root f of (f − x)² = c·f(1 − f) above x (``upper``) or below it: a Wilson score end."""
    x = min(1.0, max(0.0, x))
    b = 2 * x + c
    disc = math.sqrt(max(0.0, b * b - 4 * (1 + c) * x * x))
    return (b + disc) / (2 * (1 + c)) if upper else (b - disc) / (2 * (1 + c))


def _count(lower: Tensor, upper: Tensor, confidence: float, n: int, variance: str) -> CountEstimate:
    """A confidence interval for a fraction f from per-probe brackets, times n.

    ``"bound"``: the interval is every f with mean(lower) − q·σ(f) ≤ f ≤ mean(upper) + q·σ(f),
    σ²(f) = 2f(1−f)/(n·p), q normal (a Wilson score interval: tight near 0 and 1).
    ``"sample"``: [mean(lower) − q·se(lower), mean(upper) + q·se(upper)], the probes' standard
    errors, q Student-t on p − 1 degrees of freedom.
    """
    p = lower.numel()
    mean_lo, mean_hi = float(lower.mean()), float(upper.mean())
    if variance == "bound":
        z = float(normal.ppf(0.5 + confidence / 2))
        c = 2 * z * z / (n * p)
        low, high = _score_root(mean_lo, c, upper=False), _score_root(mean_hi, c, upper=True)
    else:
        q = float(student_t.ppf(0.5 + confidence / 2, p - 1))
        low = mean_lo - q * float(lower.std() / math.sqrt(p))
        high = mean_hi + q * float(upper.std() / math.sqrt(p))
    quadrature = max(0.0, mean_hi - mean_lo) / 2
    statistical = max(0.0, (high - mean_hi) + (mean_lo - low)) / 2
    low, high = min(1.0, max(0.0, low)), max(0.0, min(1.0, high))
    low = min(low, high)
    value = min(high, max(low, (mean_lo + mean_hi) / 2))
    return CountEstimate(
        value=n * value,
        error=n * max(high - value, value - low),
        low=n * low,
        high=n * high,
        quadrature=n * quadrature,
        statistical=n * statistical,
    )


@dataclass(frozen=True, eq=False)
class InertiaEstimate:
    """n₋, n₀, n₊ of H(θ) at |λ| ≤ tolerance, each a :class:`CountEstimate` with its ± bar.

    ``threshold`` = max(atol, rtol·scale) with ``scale`` the largest |Ritz value| (a lower bound
    on max|λ|); the bars also allow for max|λ| up to ``scale`` + the extreme Ritz residual, i.e.
    for thresholds in ``threshold_range``. ``index`` = n₋/n, ``minimum_ratio`` = n₊/n.
    """

    neg: CountEstimate
    zero: CountEstimate
    pos: CountEstimate
    num_params: int
    threshold: float
    threshold_range: tuple[float, float]
    rtol: float
    atol: float
    scale: float
    confidence: float
    probes: int
    steps: int
    hvps: int
    variance: str = "bound"
    method: str = "slq-radau"

    @property
    def n_neg(self) -> float:
        return self.neg.value

    @property
    def n_zero(self) -> float:
        return self.zero.value

    @property
    def n_pos(self) -> float:
        return self.pos.value

    @property
    def index(self) -> float:
        """n₋/n (estimated)."""
        return self.neg.value / self.num_params

    @property
    def index_err(self) -> float:
        return self.neg.error / self.num_params

    @property
    def minimum_ratio(self) -> float:
        """n₊/n (estimated)."""
        return self.pos.value / self.num_params

    @property
    def minimum_ratio_err(self) -> float:
        return self.pos.error / self.num_params

    @property
    def inertia(self) -> Inertia:
        """The counts with their confidence intervals, as an :class:`Inertia`."""
        return Inertia(
            self.neg.value,
            self.zero.value,
            self.pos.value,
            bars=tuple((c.low, c.high) for c in (self.neg, self.zero, self.pos)),  # type: ignore[arg-type]
            confidence=self.confidence,
        )

    def covers(self, n_neg: float, n_zero: float, n_pos: float) -> bool:
        """True when all three counts lie inside their bars."""
        return self.neg.covers(n_neg) and self.zero.covers(n_zero) and self.pos.covers(n_pos)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "num_params": self.num_params,
            "n_neg": self.neg.to_dict(),
            "n_zero": self.zero.to_dict(),
            "n_pos": self.pos.to_dict(),
            "index": self.index,
            "index_err": self.index_err,
            "minimum_ratio": self.minimum_ratio,
            "minimum_ratio_err": self.minimum_ratio_err,
            "threshold": self.threshold,
            "threshold_range": list(self.threshold_range),
            "rtol": self.rtol,
            "atol": self.atol,
            "scale": self.scale,
            "confidence": self.confidence,
            "probes": self.probes,
            "steps": self.steps,
            "hvps": self.hvps,
            "variance": self.variance,
        }

    def __str__(self) -> str:
        pct = f"{100 * self.confidence:g} %"
        return (
            f"InertiaEstimate(SLQ + Gauss–Radau brackets, {self.probes} probes × {self.steps} "
            f"steps, n={self.num_params}): n-={self.neg} n0={self.zero} n+={self.pos}; "
            f"index {self.index:.4f} ± {self.index_err:.4f}, minimum ratio "
            f"{self.minimum_ratio:.4f} ± {self.minimum_ratio_err:.4f} ({pct} confidence) at "
            f"|λ| ≤ {self.threshold:.3g} (rtol={self.rtol:g}, atol={self.atol:g}); "
            f"{self.hvps} HVPs"
        )


def inertia_from_density(
    sd: SpectralDensity,
    *,
    rtol: float,
    atol: float = 0.0,
    confidence: float = 0.95,
    variance: Variance = "bound",
) -> InertiaEstimate:
    """Bars on n₋ = n·F(−tol−0), n₊ = n·(1 − F(tol)), n₀ = the rest, from per-probe brackets.

    Per probe, lower ≤ zᵀPz ≤ upper for the spectral projector P of each set (Gauss–Radau), so
    the probes' mean of zᵀPz lies in [mean(lower), mean(upper)] exactly; each side of the
    interval adds the sampling error at probability (1−confidence)/2 (``variance``: see the
    module docstring). No products: reuse one :func:`slq` run for several tolerances.
    """
    check_positive("rtol", rtol, allow_zero=True)
    check_positive("atol", atol, allow_zero=True)
    check_choice("variance", variance, ("bound", "sample"))
    confidence = float(confidence)
    if not 0 < confidence < 1:
        raise InvalidInputError(f"confidence must be in (0, 1), e.g. 0.95; got {confidence}")
    if variance == "sample" and sd.probes < 2:
        raise InvalidInputError(
            "variance='sample' needs at least 2 probes (3 or more for a useful Student-t "
            "quantile); pass more probes or variance='bound'"
        )
    n = sd.num_params
    scale_lo, scale_hi = sd.scale, sd.scale_bound
    tol_lo, tol_hi = max(atol, rtol * scale_lo), max(atol, rtol * scale_hi)
    lo_neg, _ = sd.cdf_bracket(-tol_hi)  # ≤ F(−tol−0) for every tol in the range
    _, hi_neg = sd.cdf_bracket(-tol_lo)
    lo_cdf, _ = sd.cdf_bracket(tol_lo)
    _, hi_cdf = sd.cdf_bracket(tol_hi)  # ≥ F(tol)
    return InertiaEstimate(
        neg=_count(lo_neg, hi_neg, confidence, n, variance),
        zero=_count(lo_cdf - hi_neg, hi_cdf - lo_neg, confidence, n, variance),
        pos=_count(1 - hi_cdf, 1 - lo_cdf, confidence, n, variance),
        num_params=n,
        threshold=tol_lo,
        threshold_range=(tol_lo, tol_hi),
        rtol=rtol,
        atol=atol,
        scale=scale_lo,
        confidence=confidence,
        probes=sd.probes,
        steps=sd.steps,
        hvps=sd.hvps,
        variance=variance,
    )


def estimate_inertia(
    source: Objective | MatVec,
    where: Tensor | int,
    *,
    rtol: float | None = None,
    atol: float = 0.0,
    probes: int = DEFAULT_INERTIA_PROBES,
    steps: int | None = None,
    seed: int = 0,
    confidence: float = 0.95,
    variance: Variance = "bound",
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> InertiaEstimate:
    """n₋, n₀, n₊ (hence index and minimum ratio) with error bars, from probes × steps HVPs.

    Runs :func:`slq` and brackets each probe's distribution function at ±tol by Gauss–Radau
    (module docstring): the bars hold the quadrature bias by construction and the sampling
    error at ``confidence``. tol = max(atol, rtol·max|λ|) as everywhere in saddlescope (rtol
    defaults by dtype: 1e-6 in float64), max|λ| from the probes' extreme Ritz values. Where much
    of the spectrum lies within about (λmax−λmin)/steps² of ±tol the bars are wide: they say
    what HVPs can tell, no more. ``variance``: ``"bound"`` (default) the largest variance a
    Rademacher probe's count can have, valid for any number of probes; ``"sample"`` Student t on
    the probe-to-probe spread (≥ 2 probes).

    Defaults: one probe of ``steps`` = min(n, 400). The sampling part, ≈ q·√(2f(1−f)/(n·p)), is
    known in advance and small for large n (±0.02·n at n = 5000, f = ½, one probe), whereas the
    quadrature part dominates for Hessians with much mass near zero and falls fast with the
    Lanczos degree — one long run beats several short ones at equal cost. On
    ``python -m benchmarks.inertia`` (4,698 parameters, rtol = 1e-6) the minimum ratio's bar was
    ±0.36 after 93 steps, ±0.18 after 187, ±0.028 after 281 and ±0.021 after 375 (quadrature
    part 0.0014, the rest sampling). Memory: the Lanczos basis, (steps + 1)·n numbers.

    >>> lam = torch.cat([torch.full((50,), -1.0), torch.zeros(100), torch.full((50,), 2.0)])
    >>> H = torch.diag(lam.to(torch.float64))
    >>> est = estimate_inertia(lambda v: H @ v, 200)   # Lanczos stops after 3 steps: exact rule
    >>> est.covers(50, 100, 50), round(est.minimum_ratio, 6), est.hvps
    (True, 0.25, 3)
    """
    if isinstance(source, Objective):
        dtype = source.dtype
    tol = Tolerance.resolve(torch.float64 if dtype is None else dtype, rtol=rtol, atol=atol)
    rtol, atol = tol.rtol, tol.atol
    if steps is None:
        steps = DEFAULT_INERTIA_STEPS
    sd = slq(source, where, steps=steps, probes=probes, seed=seed, dtype=dtype, device=device)
    return inertia_from_density(sd, rtol=rtol, atol=atol, confidence=confidence, variance=variance)
