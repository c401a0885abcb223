"""Kinks of piecewise-linear networks: margins, first-order distance, patterns, exact zeros.

Ground truth: constructed points sitting exactly on a breakpoint, every pre-activation and its
θ-gradient computed independently (``torch.func.jacrev`` of a hand-written forward), max-pooling
gaps by brute force, finite differences of ∇L across the detected boundary, and a dense Hessian
for the exact zeros.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from conftest import assert_unchanged, make_mlp, snapshot
from saddlescope import (
    InvalidInputError,
    Objective,
    RegionTrace,
    activation_pattern,
    classify,
    default_grad_tol,
    exact_zero_directions,
    find_critical_point,
    kink_check,
    toy,
)

F64 = torch.float64


def one_unit() -> tuple[Objective, torch.Tensor]:
    """F(x) = relu(w·x + b) on (x, y) = (0, −1), (1, 1): a minimiser on a kink at (w, b) = (1, 0).

    L = ½[(relu(b) + 1)² + (relu(w + b) − 1)²] is ½ on {w + b = 1, b ≤ 0} and more elsewhere;
    at b = 0 the first sample's pre-activation is exactly 0 and ∂L/∂b jumps from 0 to 1.
    """
    net = nn.Sequential(nn.Linear(1, 1), nn.ReLU())
    x = torch.tensor([[0.0], [1.0]], dtype=F64)
    y = torch.tensor([[-1.0], [1.0]], dtype=F64)
    return Objective(net, nn.MSELoss(), (x, y), dtype=F64), torch.tensor([1.0, 0.0], dtype=F64)


def shallow(seed: int = 0, n: int = 12) -> tuple[nn.Sequential, tuple[torch.Tensor, torch.Tensor]]:
    """A 3-5-2 ReLU net (every kink in the first layer, linear in θ) and seeded data."""
    net = make_mlp([3, 5, 2], "relu", seed=seed).double()
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(n, 3, generator=g, dtype=F64)
    return net, (x, torch.randn(n, 2, generator=g, dtype=F64))


def pre_activations(theta: torch.Tensor, x: torch.Tensor, widths: list[int]) -> torch.Tensor:
    """Every hidden pre-activation of a ReLU MLP with ``widths``, written out by hand."""
    h, start, zs = x, 0, []
    for a, b in zip(widths[:-1], widths[1:]):
        W = theta[start : start + a * b].reshape(b, a)
        c = theta[start + a * b : start + a * b + b]
        start += a * b + b
        z = h @ W.T + c
        zs.append(z.flatten())
        h = torch.relu(z)
    return torch.cat(zs[:-1])  # the output layer has no ReLU


def test_minimiser_on_a_kink_is_detected() -> None:
    obj, theta = one_unit()
    g = obj.grad(theta)
    assert torch.equal(g, torch.zeros(2, dtype=F64))  # autograd calls it critical (relu'(0) = 0)
    check = kink_check(obj, theta)
    assert check.on_kink and not check.smooth
    assert check.margin == 0.0 and check.distance == 0.0
    near = check.nearest
    assert near is not None
    assert (near.op, near.batch, near.element, near.z) == ("relu", 0, (0, 0), 0.0)
    assert near.grad_norm == pytest.approx(1.0, abs=1e-15)  # ∂z/∂(w, b) = (x, 1) = (0, 1)
    assert "1 (ReLU)" in near.module
    assert check.radius == default_grad_tol(F64) == 1e-8
    # ground truth: it is a minimiser (one-sided), and ∇L jumps across b = 0 at every scale
    gen = torch.Generator().manual_seed(0)
    moves = 1e-3 * torch.randn(200, 2, generator=gen, dtype=F64)
    assert bool((obj.losses(theta + moves) >= float(obj.loss(theta)) - 1e-15).all())
    e = torch.tensor([0.0, 1.0], dtype=F64)
    for h in (1e-4, 1e-7, 1e-10):
        jump = obj.grad(theta + h * e) - obj.grad(theta - h * e)
        assert float(jump[1]) == pytest.approx(1.0, abs=1e-3)  # does not shrink with h


def test_near_kink_by_radius() -> None:
    """|z| = 1e-13 (the stalled searches of issue 14) is on a kink; |z| = 1e-3 is not."""
    obj, theta = one_unit()
    assert kink_check(obj, theta + torch.tensor([0.0, -1e-13], dtype=F64)).on_kink
    off = kink_check(obj, theta + torch.tensor([0.0, -1e-3], dtype=F64))
    assert not off.on_kink and off.distance == pytest.approx(1e-3, rel=1e-9)
    assert kink_check(obj, theta + torch.tensor([0.0, -1e-3], dtype=F64), radius=2e-3).on_kink


def test_smooth_model_is_answered_after_one_batch_forward() -> None:
    class Counting(nn.Module):
        calls = 0

        def __init__(self) -> None:
            super().__init__()
            self.body = make_mlp([4, 6, 3], "tanh")

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            type(self).calls += 1
            return self.body(x)

    g = torch.Generator().manual_seed(0)
    data = [(torch.randn(5, 4, generator=g), torch.randint(0, 3, (5,), generator=g))] * 3
    obj = Objective(Counting(), nn.CrossEntropyLoss(), data, hold_data=False)
    Counting.calls = 0
    check = kink_check(obj, obj.theta0)
    assert Counting.calls == 1
    assert check.smooth and not check.on_kink and check.pattern == "" and check.units == 0
    assert str(check).startswith("smooth")
    assert activation_pattern(obj, obj.theta0) == ""


def test_kinks_of_the_data_alone_do_not_count() -> None:
    """A ReLU of the raw inputs does not depend on θ: nothing θ can cross."""

    class Pre(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(3, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.tanh(self.lin(torch.relu(x)))

    x = torch.zeros(4, 3)  # every input on the kink
    obj = Objective(Pre(), nn.MSELoss(), (x, torch.zeros(4, 1)), dtype=F64)
    assert kink_check(obj, obj.theta0).smooth


def test_generic_point_against_independent_gradients() -> None:
    widths = [3, 5, 4, 2]
    net = make_mlp(widths, "relu", seed=4).double()
    g = torch.Generator().manual_seed(5)
    x, y = torch.randn(10, 3, generator=g, dtype=F64), torch.randn(10, 2, generator=g, dtype=F64)
    obj = Objective(net, nn.MSELoss(), (x, y), dtype=F64)
    theta = obj.theta0
    z = pre_activations(theta, x, widths)
    J = torch.func.jacrev(lambda t: pre_activations(t, x, widths))(theta)
    dist = z.abs() / torch.linalg.vector_norm(J, dim=1)
    exact = kink_check(obj, theta, candidates=10_000)
    assert exact.units == z.numel() == exact.evaluated
    assert exact.margin == pytest.approx(float(z.abs().min()), rel=1e-12)
    assert exact.distance == pytest.approx(float(dist.min()), rel=1e-10)
    assert not exact.on_kink and exact.within == int((dist <= exact.radius).sum()) == 0
    default = kink_check(obj, theta)
    assert default.evaluated == 16
    assert default.distance >= exact.distance * (1 - 1e-12)  # a subset: never nearer
    assert default.distance == pytest.approx(exact.distance, rel=1e-10)  # the estimate found it
    assert default.pattern == exact.pattern == activation_pattern(obj, theta)


def test_pattern_same_region_and_crossing() -> None:
    net, data = shallow()
    obj = Objective(net, nn.MSELoss(), data, dtype=F64)
    theta = obj.theta0
    check = kink_check(obj, theta, candidates=1000)
    near = check.nearest
    assert near is not None and not check.on_kink
    leaf = theta.clone().requires_grad_(True)
    z = pre_activations(leaf, data[0], [3, 5, 2])[near.element[0] * 5 + near.element[1]]
    (dz,) = torch.autograd.grad(z, leaf)
    assert float(z.detach()) == pytest.approx(near.z, rel=1e-12)
    gen = torch.Generator().manual_seed(1)
    small = torch.randn(theta.numel(), generator=gen, dtype=F64)
    inside = theta + 0.1 * check.distance * small / torch.linalg.vector_norm(small)
    across = theta - 1.5 * float(z.detach()) * dz / float(dz @ dz)  # z → −z/2: this unit flips
    trace = RegionTrace(obj)
    assert [trace.visit(t) for t in (theta, inside, across, across)] == [False, False, True, False]
    assert trace.crossings == [2] and trace.regions == 2
    assert trace.to_dict() == {"visited": 4, "crossings": [2], "regions": 2}
    assert activation_pattern(obj, inside) == check.pattern != activation_pattern(obj, across)


def test_gradient_jumps_across_the_detected_boundary() -> None:
    """Put θ on the nearest boundary found: ∇L jumps there (finite differences), not elsewhere."""
    net, data = shallow(seed=2)
    obj = Objective(net, nn.MSELoss(), data, dtype=F64)
    theta = obj.theta0
    near = kink_check(obj, theta).nearest
    assert near is not None
    leaf = theta.clone().requires_grad_(True)
    z = pre_activations(leaf, data[0], [3, 5, 2])[near.element[0] * 5 + near.element[1]]
    (dz,) = torch.autograd.grad(z, leaf)
    on = theta - float(z.detach()) * dz / float(dz @ dz)  # z = 0 exactly to rounding (linear in θ)
    check = kink_check(obj, on)
    assert check.on_kink and check.nearest is not None
    assert check.nearest.element == near.element and abs(check.nearest.z) < 1e-14
    d = dz / torch.linalg.vector_norm(dz)

    def jump(at: torch.Tensor, h: float) -> float:
        return float(torch.linalg.vector_norm(obj.grad(at + h * d) - obj.grad(at - h * d)))

    assert jump(on, 1e-9) > 1e-3 and jump(on, 1e-9) == pytest.approx(jump(on, 1e-6), rel=1e-2)
    assert jump(theta, 1e-9) < 1e-6 * jump(on, 1e-9)  # off the kink ∇L is continuous


def test_streamed_data_gives_the_same_check() -> None:
    net, (x, y) = shallow(seed=3, n=15)
    batches = [(x[:6], y[:6]), (x[6:], y[6:])]
    held = Objective(net, nn.MSELoss(), batches, dtype=F64)
    streamed = Objective(net, nn.MSELoss(), batches, dtype=F64, hold_data=False)
    assert streamed.describe()["streamed"] and not held.describe()["streamed"]
    a, b = kink_check(held, held.theta0), kink_check(streamed, streamed.theta0)
    assert a.to_dict() == b.to_dict()
    assert activation_pattern(held, held.theta0) == activation_pattern(streamed, held.theta0)


def _hooks(model: nn.Module) -> dict:
    names = [a for a in vars(nn.Module()) if a.endswith("_hooks") or "_hooks_" in a]
    out = {}
    for n, m in model.named_modules():
        for a in names:
            d = getattr(m, a)
            out[(n, a)] = (id(d), dict(d))
    return out


def test_the_model_and_its_hooks_are_unchanged() -> None:
    net, data = shallow(seed=6)
    seen: list[int] = []
    net[0].register_forward_hook(lambda *_: seen.append(1))  # a user's own hook stays
    before, hooks = snapshot(net), _hooks(net)
    obj = Objective(net, nn.MSELoss(), data, dtype=F64)
    ours = _hooks(obj.module)
    kink_check(obj, obj.theta0)
    activation_pattern(obj, obj.theta0)
    RegionTrace(obj).visit(obj.theta0)
    exact_zero_directions(obj, obj.theta0)
    assert_unchanged(net, before)
    assert _hooks(net) == hooks and _hooks(obj.module) == ours
    assert seen  # the user's hook ran in our copy, as it would in theirs


def test_hooks_are_removed_when_the_forward_raises() -> None:
    class Flaky(nn.Module):
        fail = False

        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(2, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if type(self).fail:
                raise RuntimeError("boom")
            return torch.relu(self.lin(x))

    obj = Objective(Flaky(), nn.MSELoss(), (torch.randn(3, 2), torch.randn(3, 1)))
    ours = _hooks(obj.module)
    Flaky.fail = True
    try:
        with pytest.raises(RuntimeError, match="boom"):
            kink_check(obj, obj.theta0)
    finally:
        Flaky.fail = False
    assert _hooks(obj.module) == ours
    assert not kink_check(obj, obj.theta0).smooth  # and nothing is left watching


class Then(nn.Module):
    """Linear(2 → 3), then ``act``, then Linear(3 → 1)."""

    def __init__(self, act: nn.Module | None = None, fn=None) -> None:
        super().__init__()
        self.lin, self.act, self.fn, self.out = nn.Linear(2, 3), act, fn, nn.Linear(3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.lin(x)
        return self.out(self.act(z) if self.act is not None else self.fn(z))


BREAKPOINTS = [
    ("relu", nn.ReLU(), None, 0.0, 1.0),
    ("leaky_relu", nn.LeakyReLU(0.1), None, 0.0, 1.0),
    ("prelu", nn.PReLU(), None, 0.0, 1.0),
    ("rrelu", nn.RReLU(), None, 0.0, 1.0),
    ("elu", nn.ELU(alpha=0.5), None, 0.0, 1.0),
    ("selu", nn.SELU(), None, 0.0, 1.0),
    ("hardtanh", nn.ReLU6(), None, 6.0, 1.0),
    ("hardtanh", nn.Hardtanh(-2.0, 3.0), None, -2.0, 1.0),
    ("hardswish", nn.Hardswish(), None, -3.0, 1.0),
    ("hardsigmoid", nn.Hardsigmoid(), None, 3.0, 1.0),
    ("softshrink", nn.Softshrink(0.3), None, -0.3, 1.0),
    ("hardshrink", nn.Hardshrink(0.4), None, 0.4, 1.0),
    ("threshold", nn.Threshold(0.2, -1.0), None, 0.2, 1.0),
    ("relu6", None, nn.functional.relu6, 6.0, 1.0),
    ("relu", None, lambda z: z.relu(), 0.0, 1.0),
    ("clamp", None, lambda z: z.clamp(min=-1.0, max=2.0), 2.0, 1.0),
    ("clamp_min", None, lambda z: torch.clamp_min(z, 0.5), 0.5, 1.0),
    ("abs", None, torch.abs, 0.0, 1.0),
    ("maximum", None, lambda z: torch.maximum(z, torch.zeros_like(z)), 0.0, 1.0),
    ("max", None, lambda z: torch.max(z, 0.5 * z), 0.0, 0.5),
]


@pytest.mark.parametrize(
    ("op", "act", "fn", "point", "speed"),
    BREAKPOINTS,
    ids=[f"{b[0]}@{b[3]:g}" for b in BREAKPOINTS],
)
def test_each_op_breakpoint(op: str, act, fn, point: float, speed: float) -> None:
    """Input 0 of sample 0 makes unit 1's pre-activation its bias: set it on the breakpoint.

    Then z = b₁ − point (for two inputs a − b, here 0.5·b₁), so ‖∂z/∂θ‖ = ``speed``.
    """
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.zeros(1, 2, dtype=F64), torch.randn(5, 2, generator=g, dtype=F64)])
    obj = Objective(Then(act, fn), nn.MSELoss(), (x, torch.randn(6, 1, dtype=F64)), dtype=F64)
    theta = obj.theta0
    obj.unflatten(theta)["lin.bias"][1] = point
    check = kink_check(obj, theta)
    assert check.on_kink and check.margin == 0.0 and check.nearest is not None
    assert (check.nearest.op, check.nearest.element, check.nearest.z) == (op, (0, 1), 0.0)
    assert check.nearest.grad_norm == pytest.approx(speed, rel=1e-12)  # ∂z/∂W₁ = x = 0
    obj.unflatten(theta)["lin.bias"][1] = point + 0.05
    assert not kink_check(obj, theta).on_kink


def test_a_kinked_loss_is_seen_outside_the_model() -> None:
    """L1 loss: the residual of sample 0 is exactly 0 when the target equals the bias."""
    x = torch.cat([torch.zeros(1, 2, dtype=F64), torch.randn(4, 2, dtype=F64)])
    net = nn.Linear(2, 1).double()
    y = torch.cat([net.bias.detach().reshape(1, 1), torch.randn(4, 1, dtype=F64)])
    obj = Objective(net, nn.L1Loss(), (x, y), dtype=F64)
    check = kink_check(obj, obj.theta0)
    assert check.ops == ("l1_loss in (loss)",) and check.on_kink
    assert check.nearest is not None and check.nearest.element == (0, 0)


@pytest.mark.parametrize(
    "act", [nn.GELU(), nn.SiLU(), nn.Softplus(), nn.ELU(alpha=1.0), nn.CELU(), nn.Tanh()]
)
def test_smooth_activations(act: nn.Module) -> None:
    x = torch.randn(4, 2, dtype=F64)
    obj = Objective(Then(act), nn.MSELoss(), (x, torch.randn(4, 1, dtype=F64)), dtype=F64)
    assert kink_check(obj, obj.theta0).smooth


def _pool_gaps(
    planes: torch.Tensor, k: tuple[int, int], s: tuple[int, int], p: tuple[int, int]
) -> torch.Tensor:
    """Top-two gaps of every max-pooling window, by loops (planes: (B, H, W))."""
    H, W = planes.shape[1:]
    gaps = []
    for b in range(planes.shape[0]):
        for i in range(-p[0], H + p[0] - k[0] + 1, s[0]):
            for j in range(-p[1], W + p[1] - k[1] + 1, s[1]):
                vals = sorted(
                    (
                        float(planes[b, a, c])
                        for a in range(i, i + k[0])
                        for c in range(j, j + k[1])
                        if 0 <= a < H and 0 <= c < W
                    ),
                    reverse=True,
                )
                gaps.append(vals[0] - vals[1] if len(vals) > 1 else math.inf)
    return torch.tensor(gaps, dtype=F64)


@pytest.mark.parametrize("dims", [1, 2])
def test_max_pooling_gap_against_brute_force(dims: int) -> None:
    class Pool(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            conv = nn.Conv1d if dims == 1 else nn.Conv2d
            self.conv, self.pool = (
                conv(1, 2, 2),
                (nn.MaxPool1d if dims == 1 else nn.MaxPool2d)(kernel_size=3, stride=2, padding=1),
            )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.pool(self.conv(x)).flatten(1).sum(1, keepdim=True)

    torch.manual_seed(0)
    x = torch.randn(3, 1, *([7] if dims == 1 else [6, 7]), dtype=F64)
    obj = Objective(Pool(), nn.MSELoss(), (x, torch.randn(3, 1, dtype=F64)), dtype=F64)
    with torch.no_grad():
        out = obj.module.conv(x)
    planes = out.reshape(-1, *(out.shape[-2:] if dims == 2 else (1, out.shape[-1])))
    if dims == 2:
        gaps = _pool_gaps(planes, (3, 3), (2, 2), (1, 1))
    else:
        gaps = _pool_gaps(planes, (1, 3), (1, 2), (0, 1))
    check = kink_check(obj, obj.theta0, candidates=1000)
    assert check.ops == (f"max_pool{dims}d in pool (MaxPool{dims}d)",)
    assert check.margin == pytest.approx(float(gaps.min()), rel=1e-12)
    rms = float(out.pow(2).mean().sqrt())
    assert check.relative_margin == pytest.approx(float(gaps.min()) / rms, rel=1e-12)
    assert check.units == int(torch.isfinite(gaps).sum())


def test_unmeasured_kinks_are_named() -> None:
    class Adaptive(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(2, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return nn.functional.adaptive_max_pool1d(self.lin(x).unsqueeze(1), 2).sum(-1)

    obj = Objective(Adaptive(), nn.MSELoss(), (torch.randn(3, 2), torch.randn(3, 1)))
    check = kink_check(obj, obj.theta0)
    assert not check.smooth and not check.on_kink and check.units == 0
    assert check.unmeasured == ("adaptive_max_pool in (model) (Adaptive)",)
    assert "not measured: adaptive_max_pool" in str(check)


def test_ceil_mode_pooling_is_unmeasured_but_the_relu_is_measured() -> None:
    class Ceil(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin, self.pool = nn.Linear(2, 5), nn.MaxPool1d(2, ceil_mode=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.pool(torch.relu(self.lin(x)).unsqueeze(1)).sum(-1)

    obj = Objective(Ceil(), nn.MSELoss(), (torch.randn(3, 2), torch.randn(3, 1)))
    check = kink_check(obj, obj.theta0)
    assert check.unmeasured == ("max_pool1d in pool (MaxPool1d)",)
    assert check.ops == ("relu in (model) (Ceil)",) and check.units == 15


def test_exact_zeros_of_a_dead_unit_against_the_dense_hessian() -> None:
    net, data = shallow(seed=8)
    obj = Objective(net, nn.MSELoss(), data, dtype=F64)
    theta = obj.theta0
    obj.unflatten(theta)["0.bias"][2] = -100.0  # hidden unit 2 is off on every sample
    z = pre_activations(theta, data[0], [3, 5, 2]).reshape(-1, 5)
    assert bool((z[:, 2] < 0).all()) and bool(((z > 0).any(0) | (torch.arange(5) == 2)).all())
    zeros = exact_zero_directions(obj, theta)
    H = obj.hessian(theta)
    assert zeros.count == int((H == 0).all(dim=1).sum()) == 3 + 1 + 2
    assert zeros.by_parameter == (("0.weight", 3), ("0.bias", 1), ("2.weight", 2))
    assert zeros.n == obj.num_params and zeros.fraction == 6 / obj.num_params
    lam = torch.linalg.eigvalsh(H)
    assert int((lam.abs() <= 1e-13 * lam.abs().max()).sum()) >= 6  # computed as rounding
    cp = classify(obj, theta, grad_tol=1e3)  # not critical here: only the zero band matters
    assert cp.inertia is not None and cp.inertia.n_zero >= zeros.count
    assert "6 of" in str(zeros) and json.dumps(zeros.to_dict())
    tanh = Objective(make_mlp([3, 4, 2], "tanh"), nn.MSELoss(), data)
    assert exact_zero_directions(tanh, tanh.theta0).count == 0


def test_results_print_and_serialise() -> None:
    obj, theta = one_unit()
    check = kink_check(obj, theta)
    d = json.loads(json.dumps(check.to_dict()))
    assert d["on_kink"] is True and d["nearest"]["element"] == [0, 0]
    assert d["ops"] == ["relu in 1 (ReLU)"] and d["pattern"] == check.pattern
    text = str(check)
    assert text.startswith("on a kink") and "relu in 1 (ReLU)" in text
    assert "distance 0" in str(check.nearest)
    trace = RegionTrace(obj)
    trace.visit(theta)
    assert str(trace) == "1 points in 1 linear regions; 0 boundary crossings"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"candidates": 0}, "candidates"),
        ({"radius": -1.0}, "radius"),
        ({"probes": 0}, "probes"),
    ],
)
def test_bad_options(kwargs: dict, match: str) -> None:
    obj, theta = one_unit()
    with pytest.raises(InvalidInputError, match=match):
        kink_check(obj, theta, **kwargs)


def test_bad_theta() -> None:
    obj, _ = one_unit()
    with pytest.raises(InvalidInputError):
        kink_check(obj, torch.zeros(3))
    with pytest.raises(InvalidInputError):
        exact_zero_directions(obj, torch.zeros(2), probes=0)


def test_a_critical_point_on_a_kink_is_its_own_verdict() -> None:
    obj, theta = one_unit()  # ∇L = 0 by autograd's convention, but ∂L/∂b jumps there
    cp = classify(obj, theta)
    assert cp.kind == "on-kink" and cp.kink is not None and cp.kink.on_kink
    assert cp.escape_direction is None and "activation boundary" in cp.resolution
    assert cp.to_dict()["kink"]["on_kink"] is True
    off = classify(obj, theta + torch.tensor([0.0, -0.2], dtype=F64))  # on w + b = 1, b < 0
    assert off.kind != "on-kink" and off.kink is None


def test_a_search_ending_on_a_kink_says_so_and_counts_crossings() -> None:
    # L = (w0 − 1)² + relu(w1) − w1/2: a V in w1 with its tip on the kink w1 = 0; ‖g‖ ≥ 1/2.
    obj = toy.scalar_objective(lambda w: (w[0] - 1) ** 2 + torch.relu(w[1]) - 0.5 * w[1], [0, 0])
    start = torch.tensor([0.3, 1e-13], dtype=F64)
    res = find_critical_point(obj, start, method="lm", max_steps=20)
    assert res.status == "on-kink" and res.kink is not None and res.kink.on_kink, str(res)
    assert res.flatness is None and not res.converged
    smooth = find_critical_point(toy.worked_example_objective(), torch.tensor([0.9, 1.3]))
    assert smooth.crossings is None and smooth.kink is None
    obj, _ = one_unit()  # from b > 0 Newton-MR steps across b = 0 into the other region
    crossed = find_critical_point(obj, torch.tensor([1.5, 0.5], dtype=F64))
    assert crossed.crossings is not None and crossed.crossings >= 1, str(crossed)
