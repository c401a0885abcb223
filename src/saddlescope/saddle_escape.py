"""SaddleEscape: a ``torch.optim`` optimizer that steps out of saddles when training stalls.

It is a real :class:`torch.optim.Optimizer` whose ``param_groups`` and ``state`` *are* its base
optimizer's (the same objects), so learning-rate schedulers, ``state_dict`` /
``load_state_dict`` (in the base optimizer's format), ``zero_grad`` and the optimizer hooks all
work on it as on the base. The user's model changes only in :meth:`SaddleEscape.step`: through
the base optimizer's step, and through the negative-curvature step when training has stalled.
One :class:`~saddlescope.Objective` serves every check: at each one it takes the model's current
values (:meth:`~saddlescope.Objective.refresh`), and new data only where the data changed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import torch
from torch import Tensor

from saddlescope.batches import fingerprint
from saddlescope.checks import check_int, check_positive
from saddlescope.errors import InvalidInputError
from saddlescope.negative_curvature import way_down
from saddlescope.objective import Objective
from saddlescope.operators import DEFAULT_MEMORY_BUDGET
from saddlescope.params import NormStats, ParamFilter
from saddlescope.plateau import LossWindow
from saddlescope.tolerance import STALL_GRAD_NORM

__all__ = ["EscapeEvent", "SaddleEscape", "write_parameters"]


@dataclass(frozen=True)
class EscapeEvent:
    """What :class:`SaddleEscape` did when it found training stalled.

    Args:
        step: the optimizer step (counting from 1) at which training was found stalled.
        loss_before: the loss there.
        loss_after: the loss after the negative-curvature step (``loss_before`` if none).
        curvature: the most negative eigenvalue found.
        action: "escaped", or "no-negative-curvature" when no step lowered the loss.
        hvps: Hessian-vector products the check spent.
    """

    step: int
    loss_before: float
    loss_after: float
    curvature: float
    action: str
    hvps: int

    def to_dict(self) -> dict[str, Any]:
        """The event's fields by name."""
        return asdict(self)

    def __str__(self) -> str:
        return (
            f"step {self.step}: {self.action} (λ = {self.curvature:.3g}), loss "
            f"{self.loss_before:.6g} → {self.loss_after:.6g}, {self.hvps} HVPs"
        )


class SaddleEscape(torch.optim.Optimizer):
    """A ``torch.optim`` optimizer around a base optimizer that steps out of saddles.

    Every ``step`` runs the base optimizer, then tests whether training has stalled: the loss
    varied by at most ``loss_tol``·max(1, |L|) over the last ``window`` steps *and* the gradient
    norm ‖g‖ (read from ``p.grad`` of the base's parameters) is ≤ ``stall_grad_norm``. The loss
    comes from the closure when ``step`` gets one (free; ‖g‖ is read only once that window is
    flat). Without a closure (``loss.backward(); opt.step()``) ‖g‖ is read every step and the
    window holds the full objective's loss, evaluated only at steps where ‖g‖ is small: a step
    with a large gradient empties it, so a check needs ``window`` small-gradient steps in a row
    with a flat loss, never one per step.

    When training has stalled it finds the most negative Hessian eigenvalue of the full
    objective (dense when small, else Lanczos); if it is below −threshold the parameters θ take
    the negative-curvature step of :func:`~saddlescope.curvature_step` (and the base
    optimizer's state for them is reset, since its momenta point the old way); either way the
    event is logged in :attr:`events` and the window starts again.

    One :class:`~saddlescope.Objective` is built at construction and reused: at each check its
    copy of the model takes the model's current parameters and buffers (BatchNorm's running
    statistics included), and re-iterable data (a list of batches, a ``DataLoader``) is read
    again for fingerprints only, the objective taking the new data when they differ. One-pass
    data (a generator) is held once, at construction, as :class:`~saddlescope.Objective` does.

    ``param_groups``, ``state`` and ``defaults`` are the base optimizer's own objects, so a
    scheduler built on this optimizer changes the base's learning rate, and ``state_dict()`` is
    the base's state dict (``load_state_dict`` takes one). Hooks registered on this optimizer run
    around its step; the base's own step hooks run too, inside it.

    Args:
        base: the optimizer that trains the model (it must optimise every parameter of θ).
        model: the user's model; it is read, and changed only by :meth:`step`.
        loss_fn: the loss, as :class:`~saddlescope.Objective` takes it.
        data: the data the curvature is checked on, as :class:`~saddlescope.Objective` takes
            it: a batch, a list of batches (pairs, tuples, dicts), a ``DataLoader`` (not
            shuffling), or a generator (held once).
        stall_grad_norm: training is stalled only while ‖g‖ ≤ this (as the escape methods'
            option of the same name).
        loss_tol: and while the loss varied by at most loss_tol·max(1, |L|) over ``window``.
        window: the number of recent steps whose losses must be flat (an integer ≥ 1).
        rtol: the eigenvalue zero band (default for the dtype when None).
        seed: seeds the Lanczos start vectors (``seed`` + step).
        norm_stats: ``"batch"`` (default): BatchNorm normalises each batch of ``data`` by its
            own statistics, as the model does in training, so the objective is the loss
            training minimises and an escape lowers it (pass ``data`` in the batch size you
            train with). With ``"running"`` it is the eval-mode loss (the model's running
            statistics at each check), another function of θ wherever those statistics lag the
            batches', whose way down can raise the training loss; pass it when you train with
            BatchNorm frozen (in eval mode). For a model without BatchNorm the two are the same
            function.
        dtype: the dtype the check runs in (default: the model's); steps are written back in
            the parameters' own dtype.
        param_filter: which parameters θ holds, as :class:`~saddlescope.Objective` takes it:
            the escape looks for negative curvature in that block and moves only it (the base
            optimizer still trains everything it holds).
        memory_budget: bytes the check may hold, as :class:`~saddlescope.Objective` takes it.
        batch_weight: the weight of a batch, as :class:`~saddlescope.Objective` takes it.
        hold_data: hold or stream the data, as :class:`~saddlescope.Objective` takes it.

    >>> from saddlescope import toy
    >>> model, loss_fn, data = toy.worked_example(1e-4, 0.0)
    >>> opt = SaddleEscape(torch.optim.SGD(model.parameters(), lr=0.1), model, loss_fn, data,
    ...                    window=3)
    >>> for _ in range(10):
    ...     opt.zero_grad(); loss_fn(model(data[0]), data[1]).backward(); opt.step()
    >>> opt.events[0].step, opt.events[0].action, loss_fn(model(data[0]), data[1]).item() < 0.5
    (3, 'escaped', True)
    """

    def __init__(
        self,
        base: torch.optim.Optimizer,
        model: torch.nn.Module,
        loss_fn: Any,
        data: Any,
        *,
        stall_grad_norm: float = STALL_GRAD_NORM,
        loss_tol: float = 1e-4,
        window: int = 20,
        rtol: float | None = None,
        seed: int = 0,
        norm_stats: NormStats = "batch",
        dtype: torch.dtype | None = None,
        param_filter: ParamFilter = None,
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
        batch_weight: Callable[[Any], float] | None = None,
        hold_data: bool | None = None,
    ) -> None:
        if not isinstance(base, torch.optim.Optimizer):
            raise InvalidInputError("base must be a torch.optim.Optimizer")
        self.stall_grad_norm = check_positive("stall_grad_norm", stall_grad_norm)
        self.loss_tol = check_positive("loss_tol", loss_tol, allow_zero=True)
        self.window = check_int("window", window, 1)
        self.rtol, self.seed = rtol, seed
        self.model, self.loss_fn, self.data = model, loss_fn, data
        self.objective = Objective(
            model,
            loss_fn,
            data,
            dtype=dtype,
            norm_stats=norm_stats,
            param_filter=param_filter,
            memory_budget=memory_budget,
            batch_weight=batch_weight,
            hold_data=hold_data,
        )
        self._prints = _fingerprints(data)  # None for one-pass data: held, never read again
        live = dict(model.named_parameters())
        self._params = [live[n] for n in self.objective.param_names]
        ours = {id(p) for g in base.param_groups for p in g["params"]}
        if not all(id(p) in ours for p in self._params):
            raise InvalidInputError(
                "the base optimizer must optimise every trainable parameter of the model (every "
                "parameter of θ: with param_filter, every one it selects)"
            )
        # The base class sets up hooks and the step wrapper on copies of the base's groups
        # (so the base is not touched); then the groups and state become the base's own.
        super().__init__([dict(g) for g in base.param_groups], base.defaults)
        self.base = base
        self._share_base()
        self.events: list[EscapeEvent] = []
        self._losses = LossWindow(self.window, self.loss_tol)
        self._source: Literal["closure", "objective"] = "closure"
        self._steps = 0

    def _share_base(self) -> None:
        """Make ``param_groups``, ``state`` and ``defaults`` the base optimizer's objects."""
        self.param_groups = self.base.param_groups
        self.state = self.base.state
        self.defaults = self.base.defaults

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients, by the base optimizer.

        Args:
            set_to_none: set the gradients to None instead of zero (as ``torch.optim``).
        """
        self.base.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:
        """The base optimizer's state dict (this optimizer's state-dict hooks apply to it)."""
        self._share_base()  # in case the base's state was loaded directly, not through us
        return super().state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state dict in the base optimizer's format into the base optimizer.

        Args:
            state_dict: as returned by :meth:`state_dict` or by the base's ``state_dict``.
        """
        self._share_base()
        super().load_state_dict(state_dict)  # this optimizer's hooks; new groups and state
        # the base's own __setstate__ (e.g. Adam's defaults for old checkpoints), then share
        self.base.__setstate__({"state": self.state, "param_groups": self.param_groups})
        self._share_base()

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One base step, then the saddle check if training has stalled.

        Args:
            closure: re-evaluates the model and returns the loss (as ``torch.optim``); its
                losses make the stall window. Without it the window holds the objective's
                loss at the steps whose gradient is small (see the class docstring).

        Returns:
            What the base optimizer's step returned (the closure's loss).
        """
        loss = self.base.step(closure) if closure is not None else self.base.step()
        self._steps += 1
        if self._stalled(loss):
            self._escape()
        return loss

    def _stalled(self, loss: Any) -> bool:
        if loss is not None:  # the closure's loss: the cheap test (a flat window) first
            self._record(float(loss.detach() if isinstance(loss, Tensor) else loss), "closure")
            return self._losses.flat() and self._grad_norm() <= self.stall_grad_norm
        if not self._grad_norm() <= self.stall_grad_norm:  # no closure: ‖g‖ first (NaN: no)
            self._losses.clear()
            return False
        self._record(float(self.objective.loss(self._sync())), "objective")
        return self._losses.flat()

    def _record(self, loss: float, source: Literal["closure", "objective"]) -> None:
        if source != self._source:  # closure and objective losses are not comparable
            self._losses.clear()
            self._source = source
        self._losses.append(loss)

    def _grad_norm(self) -> float:
        grads = [p.grad for g in self.param_groups for p in g["params"] if p.grad is not None]
        if not grads:
            return math.inf
        ref = grads[0]
        norms = [g.detach().norm().to(ref.device, torch.float32) for g in grads]
        return float(torch.linalg.vector_norm(torch.stack(norms)))

    def _sync(self) -> Tensor:
        """θ now: the objective's copy takes the model's values, and the data if it changed."""
        prints = _fingerprints(self.data) if self._prints is not None else None
        changed = prints is not None and prints != self._prints
        if changed:
            self._prints = prints
        return self.objective.refresh(self.model, self.data if changed else None)

    @torch.no_grad()
    def _escape(self) -> None:
        obj = self.objective
        theta = self._sync()
        loss, g = obj.loss_and_grad(theta)
        new, after, low = way_down(obj, theta, g, float(loss), self.rtol, self.seed + self._steps)
        action = "no-negative-curvature"
        if new is not None:
            write_parameters(self._params, obj, new, self.base)
            action = "escaped"
        self.events.append(EscapeEvent(self._steps, float(loss), after, low.min, action, low.hvps))
        self._losses.clear()


@torch.no_grad()
def write_parameters(
    params: Sequence[Tensor], obj: Objective, theta: Tensor, optimizer: torch.optim.Optimizer | None
) -> None:
    """θ written into the model's parameters (each in its own dtype); their optimizer state dropped.

    Momenta from before a jump point the wrong way.

    Args:
        params: the model's parameters in θ's order (``obj.param_names``).
        obj: the objective θ belongs to.
        theta: the new θ.
        optimizer: the training optimizer (or None).
    """
    for p, chunk in zip(params, obj.unflatten(theta).values()):
        p.copy_(chunk.to(p))
        if optimizer is not None:
            optimizer.state.pop(p, None)


def _fingerprints(data: Any) -> list[Any] | None:
    """Each batch's fingerprint, to see when the user's data changed; None for one-pass data."""
    if isinstance(data, Mapping) or (
        isinstance(data, (tuple, list)) and len(data) >= 2 and isinstance(data[0], Tensor)
    ):
        data = [data]  # a single batch
    if isinstance(data, Iterator):  # a generator: held by the objective, cannot be read again
        return None
    return [fingerprint(b) for b in data]
