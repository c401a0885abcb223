"""A model, a loss and data, turned into pure functions of one flat parameter vector θ.

Everything in saddlescope is a function of θ, a 1-D tensor holding the model's trainable
parameters end to end (in ``model.named_parameters()`` order). :class:`Objective` builds
those functions once and never touches the user's module again:

    L(θ) = Σ_b (n_b / N) · ℓ(f(x_b; θ), y_b)      (the mean loss over all N samples)

    ∇L(θ),   H(θ)·v,   H(θ) (dense, when it fits),   a SciPy LinearOperator for H(θ).

Curvature lives in :mod:`saddlescope.operators`: :meth:`Objective.hessian_operator` gives H(θ)
as an operator (cached gradient graphs under the memory budget) and :meth:`Objective.hessian`
the dense matrix when it fits.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, cast

import numpy as np
import torch
from torch import Tensor, nn
from torch.func import vmap

from saddlescope import checks
from saddlescope.batch_loss import LossFn, batch_loss, flat_leaf, loss_and_grad_at, model_outputs
from saddlescope.batches import Batch, Data, HeldData, hold_bytes, load_data
from saddlescope.errors import InvalidInputError
from saddlescope.graphs import GraphPlan
from saddlescope.hessian import HessianOperator, check_dense_fits, dense_hessian
from saddlescope.loss_checks import check_loss
from saddlescope.merging import Stacking
from saddlescope.operators import DEFAULT_MEMORY_BUDGET, HessianLinearOperator, working_dtype
from saddlescope.params import (
    NORM_STATS,
    NormStats,
    ParamFilter,
    ParamLayout,
    batch_coupled,
    own_copy,
    refresh_copy,
)
from saddlescope.reduction import LOCAL, Reducer

__all__ = ["Batch", "Objective"]


class Objective:
    """θ ↦ loss, gradient, Hessian-vector products and dense Hessian of a model on data.

    Args:
        model: any ``nn.Module``. It is copied once; the original is never modified
            (parameters, buffers, ``training`` flags and ``requires_grad`` stay bit-for-bit as
            they were). Its trainable parameters, in ``named_parameters()`` order, make θ.
        loss_fn: the batch's *mean* loss, a scalar: ``loss_fn(outputs, targets)`` for
            ``(inputs, targets)`` batches, ``loss_fn(outputs, batch)`` for tuple and dict
            batches, or None for the model's own loss (HF's ``outputs.loss``; the model then gets
            the whole batch). See :mod:`saddlescope.batch_loss`.
        data: one batch or an iterable of batches (a list or a ``DataLoader``); a batch is an
            ``(inputs, targets)`` pair of tensors, a tuple of several inputs then targets
            (``model(*inputs)``), or a dict (``model(**batch)``). It must give the same batches
            on every pass (a shuffling loader is refused). Data that fits half the memory budget
            is copied once and held on ``device``; larger data is read from the loader on every
            pass (see :mod:`saddlescope.batches`).
        batch_weight: the weight of a batch, ``batch_weight(batch) -> float`` (e.g. its number
            of non-padding label tokens for a token-mean loss); default: its number of samples.
            The objective is Σ w_b·ℓ_b / Σ w_b, the mean over all the data.
        param_filter: which parameters θ holds: None (every trainable one), parameter names, a
            predicate ``f(name, parameter) -> bool``, or submodule(s); the others stay fixed
            at the model's values — the Hessian block, and the verdict, of that block.
        hold_data: None (default) holds the data when it fits half the memory budget and
            streams it otherwise; True always holds it, False always streams it.
        per_sample_mean: the loss is a mean of per-sample terms (default True; checked on the
            first batch's halves, see :mod:`saddlescope.loss_checks`). False for a loss that
            couples a batch's samples (e.g. contrastive): no check, and batches are never
            stacked.
        dtype: the floating-point dtype the analysis runs in; default: the model's. Use
            ``torch.float64`` for precise work (tolerances default by dtype).
        device: where the analysis runs; default: the model's.
        norm_stats: ``"running"`` (default): the model is evaluated in eval mode — BatchNorm
            uses its running statistics (read, never written) and dropout is off. ``"batch"``:
            BatchNorm normalises with each batch's own statistics, as in training (dropout still
            off so the objective is deterministic); the objective is then the weighted mean of
            per-batch losses.
        memory_budget: bytes the analysis may hold (default
            :data:`~saddlescope.operators.DEFAULT_MEMORY_BUDGET`): a dense Hessian over it is
            refused (:meth:`hessian` points at Lanczos instead); gradient graphs of held data
            are kept for Hessian-vector products only while they fit it (later batches, and
            streamed ones, are rebuilt per product); on a GPU it also bounds the blocks in
            which the dense Hessian is computed.

    Example:
    >>> import torch
    >>> from saddlescope import Objective
    >>> model = torch.nn.Linear(3, 1)
    >>> x, y = torch.randn(8, 3), torch.randn(8, 1)
    >>> obj = Objective(model, torch.nn.MSELoss(), (x, y), dtype=torch.float64)
    >>> obj.num_params, obj.hessian(obj.theta0).shape
    (4, torch.Size([4, 4]))
    """

    reducer: Reducer = LOCAL  # completes the sums over data (across ranks: DistributedObjective)

    def __init__(
        self,
        model: nn.Module,
        loss_fn: LossFn | None,
        data: Any,
        *,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
        norm_stats: NormStats = "running",
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
        batch_weight: Callable[[Any], float] | None = None,
        param_filter: ParamFilter = None,
        hold_data: bool | None = None,
        per_sample_mean: bool = True,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise InvalidInputError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        checks.check_callable(
            "loss_fn", loss_fn, "loss_fn(outputs, targets), or None for the model's own"
        )
        checks.check_callable("batch_weight", batch_weight, "batch_weight(batch)")
        self.norm_stats = cast(NormStats, checks.check_choice("norm_stats", norm_stats, NORM_STATS))
        self.memory_budget = int(checks.check_positive("memory_budget", memory_budget))

        self.layout = ParamLayout.of_trainable(model, param_filter)
        ref = next(p for n, p in model.named_parameters() if n == self.layout.names[0])
        self.dtype = checks.check_dtype(dtype) or checks.check_dtype(ref.dtype) or ref.dtype
        self.device = checks.check_device(device) or checks.check_device(ref.device) or ref.device
        self._module = own_copy(model, self.dtype, self.device, self.norm_stats)
        self.param_names = self.layout.names
        self.param_shapes = self.layout.shapes
        self.num_params = self.layout.num_params
        self._theta0 = self.layout.flatten(dict(self._module.named_parameters()))
        if isinstance(loss_fn, nn.Module):  # e.g. class weights: our own copy, in our dtype
            loss_fn = copy.deepcopy(loss_fn).to(device=self.device, dtype=self.dtype)
            loss_fn.requires_grad_(False)  # its own parameters are constants here
        self.loss_fn = loss_fn
        hold = hold_bytes(hold_data, self.memory_budget)
        self._load = partial(load_data, batch_weight=batch_weight, hold_bytes=hold)
        self._vmap_ok = True  # False once a vmap'd loss failed (see losses)
        # a per-sample mean can be checked, and batches stacked, unless batch statistics couple
        # the samples of a batch
        checks.check_bool("per_sample_mean", per_sample_mean)
        self._per_sample_mean = per_sample_mean and not batch_coupled(self._module)
        self._batch_weight = batch_weight
        self._set_data(data)

    def _set_data(self, data: Any) -> None:
        self._data = self._load(data, self.dtype, self.device)
        stacking = Stacking(self._batch_loss, enabled=self._per_sample_mean)
        self._graphs = GraphPlan(self._build_graph, self._data, stacking, self.memory_budget)
        self.num_samples = self._data.num_samples
        theta = self._theta0
        check_loss(
            lambda b: self._batch_loss(theta, b),
            lambda b: model_outputs(self._module, self.unflatten(theta), b),
            self._data.first(),
            self.loss_fn,
            dtype=self.dtype,
            weight=self._batch_weight,
            per_sample_mean=self._per_sample_mean,
        )

    def refresh(self, model: nn.Module, data: Any = None) -> Tensor:
        """Follow a model in training: our copy takes its current values (and new data); θ now.

        Every parameter (those outside θ too) and buffer (BatchNorm's running statistics) of our
        copy takes the model's current value, the model only read: an objective follows a model
        being trained without copying it again. Operators made before are stale.

        Args:
            model: the module this objective was made from, or one with its names and shapes.
            data: new data, read with this objective's options (None: keep the data).

        Returns:
            θ, the model's trainable parameters now (:attr:`theta0` becomes it).
        """
        refresh_copy(self._module, model)
        self._theta0 = self.layout.flatten(dict(self._module.named_parameters()))
        if data is not None:
            self._set_data(data)
        return self.theta0

    # ----------------------------------------------------------------------------- θ helpers
    @property
    def theta0(self) -> Tensor:
        """A fresh copy of the model's trainable parameters as one flat vector."""
        return self._theta0.clone()

    @property
    def num_batches(self) -> int:
        """How many batches the data holds."""
        return len(self._data)

    @property
    def data(self) -> Data:
        """The batches, held or streamed, in their fixed order with their weights."""
        return self._data

    @property
    def batches(self) -> tuple[Batch, ...]:
        """The batches as held (our copies, in our dtype and device; do not modify).

        Only for held data: streamed data is read a pass at a time (iterate :attr:`data`).
        """
        if not isinstance(self._data, HeldData):
            raise InvalidInputError(
                "this objective streams its data (it is larger than half the memory budget); "
                "iterate obj.data for one pass over the batches"
            )
        return self._data.batches

    @property
    def module(self) -> nn.Module:
        """The objective's own copy of the model (eval mode, frozen; do not modify)."""
        return self._module

    def unflatten(self, theta: Tensor) -> dict[str, Tensor]:
        """Split θ into ``{parameter name: tensor}`` views with the model's shapes.

        Args:
            theta: a flat vector of length ``num_params`` (views share its storage).
        """
        return self.layout.unflatten(theta)

    def check_theta(self, theta: Tensor | np.ndarray | Sequence[float], name: str = "θ") -> Tensor:
        """Return θ as a 1-D tensor in this objective's dtype and device, or raise a clear error.

        Args:
            theta: a flat vector of ``num_params`` real numbers (tensor, array or sequence);
                detached and copied if its dtype or device differ.
            name: what to call it in the error message (default "θ"; e.g. "direction").
        """
        return self.layout.check(theta, self.dtype, self.device, name)

    def options(self) -> dict[str, Any]:
        """The keywords that build this objective again, dtype aside (e.g. a float32 twin)."""
        return {
            "param_filter": list(self.param_names), "norm_stats": self.norm_stats,
            "memory_budget": self.memory_budget, "batch_weight": self._batch_weight,
            "per_sample_mean": self._per_sample_mean, "device": self.device,
        }  # fmt: skip

    def describe(self) -> dict[str, Any]:
        """What the objective is: sizes, dtype, device, and which normalisation statistics."""
        return {
            "num_params": self.num_params,
            "num_samples": self.num_samples,
            "num_batches": self.num_batches,
            "total_weight": self._data.total_weight,
            "streamed": not self._data.held,
            "dtype": str(self.dtype).removeprefix("torch."),
            "device": str(self.device),
            "norm_stats": self.norm_stats,
        }

    # ----------------------------------------------------------------------------- functions of θ
    def _batch_loss(self, theta: Tensor, batch: Batch) -> Tensor:
        return batch_loss(self._module, self.unflatten(theta), batch, self.loss_fn)

    def loss(self, theta: Tensor) -> Tensor:
        """L(θ): the mean loss over all samples (a 0-dim tensor).

        Args:
            theta: the parameters, a flat vector like :attr:`theta0`.
        """
        theta = self.check_theta(theta)
        with torch.no_grad():
            (total,) = self.reducer.sum(self._mean_loss(theta))
        self.layout.require_finite_loss(total, theta)
        return total

    def _mean_loss(self, theta: Tensor) -> Tensor:
        total = torch.zeros((), dtype=self.dtype, device=self.device)
        for b in self._data:
            total = total + b.weight * self._batch_loss(theta, b)
        return total

    def losses(self, thetas: Tensor, *, chunk_size: int = 1024) -> Tensor:
        """L at every row of an (m, n) block of parameter vectors, by ``vmap`` (slices, probes).

        Modules without ``vmap`` batching rules (``nn.GRU``, ``nn.LSTM``, fused kernels) are
        evaluated row by row instead (remembered for this objective), and streamed data row by
        row (each row one pass over the loader).

        Args:
            thetas: an (m, n) block, one parameter vector per row.
            chunk_size: rows evaluated per ``vmap`` pass (default 1024): bounds the memory of
                the batched forward, (chunk_size × a forward's activations).

        Returns:
            The m losses, a 1-D tensor.
        """
        thetas = self.layout.check_rows(thetas, self.dtype, self.device)
        with torch.no_grad():
            (out,) = self.reducer.sum(self._batched_losses(thetas, chunk_size))
        bad = torch.nonzero(~torch.isfinite(out)).flatten()
        if bad.numel():
            self.layout.require_finite_loss(out[bad[0]], thetas[bad[0]])
        return out

    def _batched_losses(self, thetas: Tensor, chunk_size: int) -> Tensor:
        if self._vmap_ok and self._data.held:
            try:
                return vmap(self._mean_loss, chunk_size=chunk_size)(thetas)
            except (RuntimeError, NotImplementedError):  # no batching rule: a loop gives the same
                self._vmap_ok = False
        return torch.stack([self._mean_loss(t) for t in thetas])

    def loss_and_grad(self, theta: Tensor) -> tuple[Tensor, Tensor]:
        """(L(θ), ∇L(θ)) with one backward pass per batch (batches of one shape stacked).

        Plain ``torch.autograd`` on a flat leaf (cheaper than ``torch.func.grad``; see
        docs/benchmarks.md); under ``no_grad``/``inference_mode`` too, unused parameters getting 0.

        Args:
            theta: the parameters, a flat vector like :attr:`theta0`.
        """
        theta = self.check_theta(theta)
        leaf = flat_leaf(theta)
        total_loss = torch.zeros((), dtype=self.dtype, device=self.device)
        total_grad = torch.zeros_like(theta)
        for b in self._graphs.for_gradient(theta):
            value, g = loss_and_grad_at(partial(self._batch_loss, batch=b), leaf)
            total_grad.add_(g, alpha=b.weight)
            total_loss = total_loss + b.weight * value.detach()
        total_loss, total_grad = self.reducer.sum(total_loss, total_grad)
        self.layout.require_finite_loss(total_loss, theta)
        self.require_finite(total_grad, "gradient", theta)
        return total_loss, total_grad

    def grad(self, theta: Tensor) -> Tensor:
        """∇L(θ), a vector like θ.

        Args:
            theta: the parameters, a flat vector like :attr:`theta0`.
        """
        return self.loss_and_grad(theta)[1]

    def hvp(self, theta: Tensor, v: Tensor) -> Tensor:
        """H(θ)·v. For many products at one θ use :meth:`hessian_operator`, which reuses graphs.

        Args:
            theta: the parameters, a flat vector like :attr:`theta0`.
            v: a vector like θ, or an n×k block of k vectors (one product each).
        """
        return self.hessian_operator(theta, cache=False) @ v

    def hessian_operator(self, theta: Tensor, *, cache: bool | None = None) -> HessianOperator:
        """H(θ) as an operator (``op @ v`` for a vector, ``op @ V`` for an n×k block).

        A cached batch has its gradient graph built once and kept, so each product costs one
        backward pass through it; an uncached one is rebuilt for every product (a forward and
        a backward more).

        Args:
            theta: the parameters.
            cache: None (default) caches held batches in order while their graphs fit the
                memory budget (one batch always) and streamed batches not at all (a single one
                excepted); True caches all, False none. Cached batches of one shape share a
                graph where the loss allows (:meth:`graph_batches`).
        """
        return HessianOperator(self, self.check_theta(theta), cache=cache)

    def graph_bytes(self, theta: Tensor) -> int | None:
        """Estimated bytes the gradient graphs of *all* batches hold (None if unmeasurable).

        Measured once per objective on a graph of the first batch, built for that and dropped:
        the tensors autograd saves for a double backward, each storage once, data and θ
        excluded, scaled by weight to the other batches. Graph sizes follow the shapes, not θ.

        Args:
            theta: where to build the measured graph (the size does not depend on it).
        """
        return self._graphs.graph_bytes(self.check_theta(theta))

    def gradient_graph(self, theta: Tensor, batch: Batch) -> tuple[Tensor, Tensor]:
        """(leaf, g): a leaf holding θ and ∇ℓ_b at it, with its graph kept (for HVPs).

        Works under ``torch.no_grad`` and ``torch.inference_mode`` too; parameters the loss
        does not use get zero gradient (and zero curvature), as with ``torch.func``.

        Args:
            theta: the parameters.
            batch: one of the batches of :attr:`data`, or several stacked
                (:meth:`graph_batches`).
        """
        return self._build_graph(theta, batch)

    def graph_batches(self, theta: Tensor, batches: list[Batch]) -> list[Batch]:
        """The batches whose graphs a Hessian operator keeps: each stackable run as one batch.

        Runs of consecutive batches of one shape are concatenated (fewer, larger kernels per
        product) where the loss allows, checked once per objective; never with
        ``norm_stats="batch"`` (see :class:`saddlescope.merging.Stacking`).

        Args:
            theta: where the check runs if it has not yet.
            batches: consecutive batches of :attr:`data`, in order.
        """
        return self._graphs.stacked(theta, batches)

    def _build_graph(self, theta: Tensor, batch: Batch) -> tuple[Tensor, Tensor]:
        leaf = flat_leaf(theta)
        _, g = loss_and_grad_at(partial(self._batch_loss, batch=batch), leaf, create_graph=True)
        return leaf, g

    def linear_operator(self, theta: Tensor) -> HessianLinearOperator:
        """H(θ) as a ``scipy.sparse.linalg.LinearOperator`` that counts its products.

        Args:
            theta: the parameters.
        """
        return HessianLinearOperator(self.hessian_operator(theta))

    def dense_hessian_bytes(self) -> int:
        """Bytes the dense n×n Hessian takes in this objective's dtype."""
        itemsize = torch.empty((), dtype=working_dtype(self.dtype)).element_size()
        return self.num_params**2 * itemsize

    def check_dense_fits(self) -> None:
        """Raise :class:`HessianTooLargeError` if the dense Hessian exceeds the memory budget."""
        check_dense_fits(self)

    def hessian(self, theta: Tensor) -> Tensor:
        """The dense Hessian H(θ) (n×n, symmetric), when it fits the memory budget.

        Args:
            theta: the parameters.
        """
        return dense_hessian(self, theta)

    # ----------------------------------------------------------------------------- checks
    def require_finite(self, vec: Tensor, what: str, theta: Tensor) -> None:
        """Raise :class:`NonFiniteError` naming the first parameter where ``vec`` is not finite.

        Args:
            vec: a vector like θ (a gradient, a product).
            what: what ``vec`` is, for the message.
            theta: where it was computed (a non-finite θ is named as the cause).
        """
        self.layout.require_finite(vec, what, theta)
