"""How each anchor is given the models: PyHessian, hessian-eigenthings, curvlinops."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor

from benchmarks.real_models.cases import Case, Inputs


@contextlib.contextmanager
def anchor_context(case: Case) -> Iterator[None]:
    """The anchors on HF models: inside the math attention kernel (they fail without it)."""
    if not case.hf:
        yield
        return
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with sdpa_kernel(SDPBackend.MATH):
        yield


def concat_pairs(case: Case) -> tuple[Any, Tensor]:
    """All the data as one ``(inputs, targets)`` batch: PyHessian's batch mode."""
    pairs = case.pairs()
    if case.hf:
        keys = pairs[0][0].keys()
        inputs: Any = Inputs({k: torch.cat([p[0][k] for p in pairs]) for k in keys})
    else:
        inputs = torch.cat([p[0] for p in pairs])
    return inputs, torch.cat([p[1] for p in pairs])


def concat_batches(case: Case) -> Any:
    """All the data as one batch in the user's own structure (dict or pair)."""
    if case.hf:
        return {k: torch.cat([b[k] for b in case.batches]) for k in case.batches[0]}
    return tuple(torch.cat([b[i] for b in case.batches]) for i in range(2))


def pyhessian_batch(case: Case) -> Any:
    from pyhessian import hessian

    return hessian(case.logit_model(), case.criterion, data=concat_pairs(case), cuda=False)


def pyhessian_loader(case: Case) -> Any:
    from pyhessian import hessian

    return hessian(case.logit_model(), case.criterion, dataloader=case.pairs(), cuda=False)


def eigenthings_op(case: Case) -> Any:
    import hessian_eigenthings as he

    model = copy.deepcopy(case.model).eval()
    loss = he.hf_lm_loss() if case.hf else he.supervised_loss(case.criterion)
    return he.HessianOperator(model, case.batches, loss)


def curvlinops_op(case: Case) -> Any:
    from curvlinops import HessianLinearOperator

    model = case.logit_model()
    pairs = case.pairs()
    size_fn = (lambda X: int(X["input_ids"].shape[0])) if case.hf else None
    return HessianLinearOperator(
        model,
        case.criterion,
        [p for p in model.parameters() if p.requires_grad],
        pairs,
        check_deterministic=False,
        num_data=sum(int(y.shape[0]) for _, y in pairs),
        batch_size_fn=size_fn,
    )


def split_like(params: list[Tensor], v: Tensor) -> list[Tensor]:
    chunks = torch.split(v, [p.numel() for p in params])
    return [c.view_as(p) for c, p in zip(chunks, params)]


def flat(vs: Any) -> Tensor:
    return torch.cat([t.reshape(-1) for t in vs])


def hvp_setups(case: Case, ok: dict[str, bool]) -> dict[str, Callable[[], Callable]]:
    """label → set-up returning ``v ↦ H·v`` on flat float32 vectors (anchors under the
    math attention for HF models)."""

    def ours() -> Callable:
        obj = case.objective()
        op = obj.hessian_operator(obj.theta0)
        return lambda v: op @ v

    def ours_one() -> Callable:
        obj = case.objective(data=[concat_batches(case)])
        op = obj.hessian_operator(obj.theta0)
        return lambda v: op @ v

    def pyh_batch() -> Callable:
        from pyhessian.utils import hessian_vector_product

        h = pyhessian_batch(case)
        return lambda v: flat(hessian_vector_product(h.gradsH, h.params, split_like(h.params, v)))

    def pyh_loader() -> Callable:
        h = pyhessian_loader(case)
        return lambda v: flat(h.dataloader_hv_product(split_like(h.params, v))[1])

    def eig() -> Callable:
        return eigenthings_op(case).matvec

    def curv() -> Callable:
        op = curvlinops_op(case)
        return lambda v: op @ v

    out: dict[str, Callable[[], Callable]] = {
        "ours (cached graphs)": ours,
        "ours, all data as 1 batch": ours_one,
    }
    if ok.get("pyhessian"):
        out["PyHessian batch (1 batch)"] = pyh_batch
        out["PyHessian dataloader"] = pyh_loader
    if ok.get("hessian-eigenthings"):
        out["hessian-eigenthings"] = eig
    if ok.get("curvlinops-for-pytorch"):
        out["curvlinops"] = curv
    return out
