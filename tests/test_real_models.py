"""Real models as their users hold them: HuggingFace BERT / GPT-2 / ResNet (dict batches, their
own loss, tied weights), stock attention, GroupNorm, legacy weight_norm, LSTM and GRU.

Ground truth is plain torch (tests/real_models.py): the objective's loss and gradient equal the
weighted mean of the model's own batch losses, its HVPs central finite differences of its
gradient (float64); a parameter block's Hessian is a sub-block of the full one; streamed data
gives the held objective; the model is left bit-for-bit unchanged.
"""

from __future__ import annotations

import os

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import real_models as rm
from conftest import assert_unchanged, snapshot
from saddlescope import (
    InvalidInputError,
    Objective,
    classify,
    find_critical_point,
    hessian_spectrum,
)

F64 = torch.float64
F32 = torch.float32

HF = {"bert": rm.tiny_bert, "gpt2": rm.tiny_gpt2, "resnet": rm.tiny_hf_resnet}
TORCH = {
    "groupnorm_cnn": rm.tiny_groupnorm_cnn,
    "weight_norm": rm.tiny_weight_norm,
    "transformer_encoder": rm.tiny_transformer_encoder,
    "mha": rm.tiny_mha,
    "lstm": rm.tiny_lstm,
    "gru": rm.tiny_gru,
}
ALL = sorted(HF) + sorted(TORCH)
LARGE = {"bert", "gpt2", "resnet"}  # too many parameters for a dense Hessian in CI time


def make(name: str) -> rm.Case:
    if name in HF:
        pytest.importorskip("transformers")
        return HF[name]()
    return TORCH[name]()


def small_bert() -> rm.Case:
    """A BERT small enough (923 parameters) for a dense Hessian in CI time."""
    pytest.importorskip("transformers")
    return rm.tiny_bert(vocab=16, hidden=8, intermediate=16)


def objective(case: rm.Case, dtype: torch.dtype = F64, **kw) -> Objective:
    if case.weight_fn is not None:
        kw["batch_weight"] = case.weight_fn
    return Objective(case.model, case.loss_fn, case.batches, dtype=dtype, **kw)


def perturbed(obj: Objective, seed: int = 0, scale: float = 0.05) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return obj.theta0 + scale * torch.randn(obj.num_params, generator=g, dtype=obj.dtype)


def unit_directions(n: int, k: int, seed: int = 1) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(k):
        v = torch.randn(n, generator=g, dtype=F64)
        out.append(v / v.norm())
    return out


def reference_grad(case: rm.Case, obj: Objective, theta: torch.Tensor) -> torch.Tensor:
    leaf = theta.detach().clone().requires_grad_(True)
    loss = rm.reference_loss(case, obj.dtype, params=obj.unflatten(leaf))
    (g,) = torch.autograd.grad(loss, leaf)
    return g


def close(a: torch.Tensor, b: torch.Tensor, rtol: float) -> bool:
    """Norm-wise: ‖a − b‖ ≤ rtol·max(‖a‖, ‖b‖) (robust to tiny entries)."""
    return float((a - b).norm()) <= rtol * max(float(a.norm()), float(b.norm()), 1e-300)


def check_hvp_against_finite_differences(obj: Objective, theta: torch.Tensor) -> None:
    h = 1e-5
    for v in unit_directions(obj.num_params, 2):
        hv = obj.hvp(theta, v)
        fd = (obj.grad(theta + h * v) - obj.grad(theta - h * v)) / (2 * h)
        assert torch.isfinite(hv).all()
        assert close(hv, fd, 1e-5), f"‖Hv − FD‖/‖Hv‖ = {float((hv - fd).norm() / hv.norm()):.2e}"


class CountingLoader:
    """A re-iterable loader (a list of batches) that counts the passes made over it."""

    def __init__(self, batches: list) -> None:
        self.batches = batches
        self.passes = 0

    def __iter__(self):
        self.passes += 1
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def data_bytes(batches: list) -> int:
    tensors = [t for b in batches for t in (b.values() if isinstance(b, dict) else b)]
    return sum(t.numel() * 8 for t in tensors)  # as held in float64 / int64


# ----------------------------------------------------------------------------- the environment
def test_hub_is_offline_for_tests():
    # Set by tests/conftest.py before anything imports transformers: tests never download.
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    assert os.environ.get("TRANSFORMERS_OFFLINE") == "1"


def test_transformers_imports_beside_this_torch():
    transformers = pytest.importorskip("transformers")
    from transformers import BertConfig, BertForSequenceClassification  # noqa: F401

    assert transformers.__version__


# ----------------------------------------------------------------------------- the factories
@pytest.mark.parametrize("name", ALL)
def test_factories_build_small_seeded_models(name):
    a, b = make(name), make(name)
    assert rm.unique_param_count(a.model) < (7000 if name in LARGE else 1000)
    assert len(a.batches) >= 2
    sd_a, sd_b = a.model.state_dict(), b.model.state_dict()
    assert all(torch.equal(sd_a[k], sd_b[k]) for k in sd_a)  # seeded
    assert float(rm.reference_loss(a)) == float(rm.reference_loss(b))
    assert torch.isfinite(rm.reference_loss(a))


def test_gpt2_token_weights_give_the_token_mean():
    """The factory's weight makes Σ w_b ℓ_b / Σ w_b the cross-entropy mean over all tokens."""
    case = make("gpt2")
    model = rm.copy_model(case.model).double().eval()
    losses, count = [], 0
    with torch.no_grad():
        for b in case.batches:
            logits = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits
            labels = b["labels"][:, 1:]
            ce = torch.nn.functional.cross_entropy(
                logits[:, :-1].reshape(-1, logits.shape[-1]),
                labels.reshape(-1),
                ignore_index=-100,
                reduction="sum",
            )
            losses.append(ce)
            count += int((labels != -100).sum())
    token_mean = sum(losses) / count
    assert float(rm.reference_loss(case)) == pytest.approx(float(token_mean), rel=1e-12)
    # The model's own loss is the same quantity, computed with float32 logits.
    own = rm.tiny_gpt2(own_loss=True)
    assert float(rm.reference_loss(own)) == pytest.approx(float(token_mean), rel=1e-6)
    sizes = [float(b["input_ids"].shape[0]) for b in case.batches]
    weights = [rm.gpt2_token_weight(b) for b in case.batches]
    assert [w / sum(weights) for w in weights] != [s / sum(sizes) for s in sizes]  # it matters


# ----------------------------------------------------------------------------- every model
@pytest.mark.parametrize("name", ALL)
def test_objective_equals_plain_torch(name):
    case = make(name)
    obj = objective(case)
    assert obj.num_params == rm.unique_param_count(case.model)
    assert float(obj.loss(obj.theta0)) == pytest.approx(float(rm.reference_loss(case)), rel=1e-10)
    theta = perturbed(obj)
    ref = rm.reference_loss(case, params=obj.unflatten(theta))
    assert float(obj.loss(theta)) == pytest.approx(float(ref), rel=1e-10)
    assert close(obj.grad(theta), reference_grad(case, obj, theta), 1e-9)


@pytest.mark.parametrize("name", ALL)
def test_hvp_equals_finite_differences_of_the_gradient(name):
    obj = objective(make(name))
    check_hvp_against_finite_differences(obj, obj.theta0)


@pytest.mark.parametrize("name", ALL)
def test_spectrum_classify_search_run_and_leave_the_model_unchanged(name):
    case = make(name)
    before = snapshot(case.model)
    obj = objective(case)
    theta = obj.theta0
    k = 2 if name in LARGE else None
    spec = hessian_spectrum(obj, theta, k=k, eigenvectors=False)
    assert spec.eigenvalues.numel() == (2 * k if k else obj.num_params)
    assert torch.isfinite(spec.eigenvalues).all()
    cp = classify(obj, theta, k=k, estimate=name not in LARGE)
    assert cp.kind in {"minimum", "maximum", "saddle", "degenerate", "not-critical"}
    search = find_critical_point(obj, theta, max_steps=2, minres_maxiter=20)
    assert search.steps <= 2
    assert torch.isfinite(search.theta).all() and search.loss == search.loss
    assert_unchanged(case.model, before)


# ----------------------------------------------------------------------------- parameters
def test_bert_attention_block_hessian_is_the_full_hessians_sub_block():
    case = small_bert()
    attention = case.model.bert.encoder.layer[0].attention
    full = objective(case)
    block = objective(case, param_filter=attention)
    prefix = "bert.encoder.layer.0.attention."
    expected = [n for n in full.param_names if n.startswith(prefix)]
    assert list(block.param_names) == expected
    assert block.num_params == sum(p.numel() for p in attention.parameters())
    offsets, start = {}, 0
    for n, shape in zip(full.param_names, full.param_shapes):
        size = int(torch.Size(shape).numel())
        offsets[n] = torch.arange(start, start + size)
        start += size
    idx = torch.cat([offsets[n] for n in block.param_names])
    assert torch.equal(block.theta0, full.theta0[idx])
    H_full = full.hessian(full.theta0)
    H_block = block.hessian(block.theta0)
    scale = float(H_full.abs().max())
    assert torch.allclose(H_block, H_full[idx][:, idx], rtol=1e-9, atol=1e-12 * scale)
    g = full.grad(full.theta0)
    assert torch.allclose(block.grad(block.theta0), g[idx], rtol=1e-10, atol=1e-14)


def test_param_filter_as_names_predicate_or_module_agree():
    case = small_bert()
    attention = case.model.bert.encoder.layer[0].attention
    names = [n for n, _ in case.model.named_parameters() if ".attention." in n]
    by_module = objective(case, param_filter=attention)
    by_list = objective(case, param_filter=[attention])
    by_names = objective(case, param_filter=set(names))
    by_predicate = objective(case, param_filter=lambda n, p: ".attention." in n)
    for other in (by_list, by_names, by_predicate):
        assert list(other.param_names) == list(by_module.param_names)
        assert torch.equal(other.theta0, by_module.theta0)
    # The rest of the model is held fixed at its values: the loss is the full model's.
    assert float(by_module.loss(by_module.theta0)) == pytest.approx(
        float(rm.reference_loss(case)), rel=1e-10
    )


def test_gpt2_tied_embedding_appears_once_in_theta():
    case = make("gpt2")
    obj = objective(case)
    assert obj.num_params == rm.unique_param_count(case.model)
    assert obj.num_params < sum(
        p.numel() for _, p in case.model.named_parameters(remove_duplicate=False)
    )
    tied = {"transformer.wte.weight", "lm_head.weight"} & set(obj.param_names)
    assert len(tied) == 1
    # Moving the one tied tensor moves the embedding and the LM head together.
    theta = perturbed(obj, seed=3)
    ref = rm.reference_loss(case, params=obj.unflatten(theta))
    assert float(obj.loss(theta)) == pytest.approx(float(ref), rel=1e-10)
    check_hvp_against_finite_differences(obj, theta)


def test_gpt2_with_its_own_loss():
    """loss_fn=None: the model's own outputs.loss (float32-precise: HF casts the logits)."""
    pytest.importorskip("transformers")
    case = rm.tiny_gpt2(own_loss=True)
    obj = objective(case)
    assert float(obj.loss(obj.theta0)) == pytest.approx(float(rm.reference_loss(case)), rel=1e-6)
    exact = objective(make("gpt2"))
    (v,) = unit_directions(obj.num_params, 1)
    assert close(obj.hvp(obj.theta0, v), exact.hvp(exact.theta0, v), 1e-4)


def test_legacy_weight_norm_parameters_are_g_and_v():
    case = make("weight_norm")
    obj = objective(case)
    assert set(obj.param_names) == {
        f"{i}.{p}" for i in (0, 2) for p in ("weight_g", "weight_v", "bias")
    }


# ----------------------------------------------------------------------------- data
@pytest.mark.parametrize("name", ["lstm", "mha", "bert", "gpt2"])
def test_streamed_objective_equals_held(name):
    case = make(name)
    held = objective(case)
    loader = CountingLoader(case.batches)
    streamed_case = rm.Case(case.model, case.loss_fn, loader, case.weight_fn)
    streamed = objective(streamed_case, memory_budget=data_bytes(case.batches) // 2)
    theta = perturbed(held)
    passes = loader.passes
    assert float(streamed.loss(theta)) == pytest.approx(float(held.loss(theta)), rel=1e-12)
    assert loader.passes > passes  # it iterated the loader again: the data is not held
    assert close(streamed.grad(theta), held.grad(theta), 1e-12)
    (v,) = unit_directions(held.num_params, 1, seed=4)
    assert close(streamed.hvp(theta, v), held.hvp(theta, v), 1e-10)
    held_loader = CountingLoader(case.batches)
    held_again = objective(rm.Case(case.model, case.loss_fn, held_loader, case.weight_fn))
    passes = held_loader.passes
    held_again.loss(theta)
    held_again.grad(theta)
    assert held_loader.passes == passes  # data that fits is held, not iterated per pass


def test_shuffling_loader_is_refused():
    case = make("lstm")
    x = torch.cat([b[0] for b in case.batches])
    y = torch.cat([b[1] for b in case.batches])
    loader = DataLoader(
        TensorDataset(x, y), batch_size=2, shuffle=True, generator=torch.Generator().manual_seed(0)
    )
    with pytest.raises(InvalidInputError, match="shuffle=False"):
        obj = Objective(case.model, case.loss_fn, loader, dtype=F64, memory_budget=64)
        for _ in range(3):
            obj.loss(obj.theta0)
            obj.grad(obj.theta0)


# ----------------------------------------------------------------------------- layers
@pytest.mark.parametrize("dtype", [F32, F64], ids=["float32", "float64"])
@pytest.mark.parametrize("name", ["transformer_encoder", "mha"])
def test_stock_attention_in_float32_and_float64(name, dtype):
    case = make(name)
    before = snapshot(case.model)
    obj = objective(case, dtype=dtype)
    rel = 1e-5 if dtype == F32 else 1e-10
    assert float(obj.loss(obj.theta0)) == pytest.approx(
        float(rm.reference_loss(case, dtype)), rel=rel
    )
    (v,) = unit_directions(obj.num_params, 1)
    hv = obj.hvp(obj.theta0, v.to(dtype))
    assert hv.dtype == dtype and torch.isfinite(hv).all()
    exact = objective(case).hvp(objective(case).theta0, v)
    assert close(hv.double(), exact, 1e-3 if dtype == F32 else 1e-12)
    assert_unchanged(case.model, before)


def test_groupnorm_dense_hessian_equals_hvp_columns():
    obj = objective(make("groupnorm_cnn"))
    theta = perturbed(obj)
    H = obj.hessian(theta)
    n = obj.num_params
    cols = torch.stack([obj.hvp(theta, torch.eye(n, dtype=F64)[j]) for j in range(n)], dim=1)
    assert torch.allclose(H, cols, rtol=1e-9, atol=1e-12 * float(cols.abs().max()))


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_rnn_losses_on_a_block_equal_single_losses(name):
    obj = objective(make(name))
    thetas = torch.stack([perturbed(obj, seed=s) for s in range(3)])
    block = obj.losses(thetas)
    singles = torch.stack([obj.loss(t) for t in thetas])
    assert torch.allclose(block, singles, rtol=1e-12, atol=0)
