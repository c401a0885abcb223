"""Batches as users hold them (saddlescope.batches, .batch_loss): structures, weights, streaming."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from conftest import assert_unchanged, snapshot
from saddlescope import InvalidInputError, NonFiniteError, Objective

F64 = torch.float64


class MaskedRegressor(nn.Module):
    """A model of two inputs: y = W·(x ⊙ mask) + b."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.lin(x * mask))


class DictModel(nn.Module):
    """HF-style: keyword inputs, and its own loss when labels are given."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(10, 3)
        self.head = nn.Linear(3, 2)

    def forward(self, input_ids, attention_mask, labels=None):
        h = (self.emb(input_ids) * attention_mask[..., None]).sum(1)
        logits = self.head(torch.tanh(h))
        loss = None if labels is None else nn.functional.cross_entropy(logits, labels)
        return {"logits": logits, "loss": loss}


def masked_batches(n_batches: int = 3, size: int = 5):
    g = torch.Generator().manual_seed(0)
    return [
        (
            torch.randn(size + i, 4, generator=g, dtype=F64),
            (torch.rand(size + i, 4, generator=g) > 0.3).to(F64),
            torch.randn(size + i, 2, generator=g, dtype=F64),
        )
        for i in range(n_batches)
    ]


def dict_batches(n_batches: int = 3, size: int = 4):
    g = torch.Generator().manual_seed(1)
    out = []
    for i in range(n_batches):
        ids = torch.randint(0, 10, (size + i, 6), generator=g)
        mask = (torch.rand(size + i, 6, generator=g) > 0.2).to(F64)
        out.append({"input_ids": ids, "attention_mask": mask, "labels": ids[:, 0] % 2})
    return out


def tuple_loss(outputs, batch):
    return nn.functional.mse_loss(outputs, batch[-1])


def by_hand_tuple(model, batches):
    total = sum(b[0].shape[0] for b in batches)
    return sum(b[0].shape[0] / total * tuple_loss(model(*b[:-1]), b) for b in batches)


def test_tuple_batches_call_the_model_with_every_input():
    torch.manual_seed(0)
    model = MaskedRegressor().to(F64)
    batches = masked_batches()
    before = snapshot(model)
    obj = Objective(model, tuple_loss, batches)
    want = by_hand_tuple(model, batches)
    assert float(obj.loss(obj.theta0)) == pytest.approx(float(want.detach()), rel=1e-12)
    grad = torch.autograd.grad(want, list(model.parameters()))
    assert torch.allclose(obj.grad(obj.theta0), torch.cat([g.reshape(-1) for g in grad]))
    assert_unchanged(model, before)


def test_dict_batches_with_the_models_own_loss_and_a_weight():
    torch.manual_seed(0)
    model = DictModel().to(F64)
    batches = dict_batches()
    tokens = [float(b["attention_mask"].sum()) for b in batches]

    def weight(batch):
        return float(batch["attention_mask"].sum())

    obj = Objective(model, None, batches, batch_weight=weight)
    want = sum(t / sum(tokens) * model(**b)["loss"] for t, b in zip(tokens, batches))
    assert float(obj.loss(obj.theta0)) == pytest.approx(float(want.detach()), rel=1e-12)
    assert obj.describe()["total_weight"] == pytest.approx(sum(tokens))
    # the same objective through a loss_fn(outputs, batch)
    other = Objective(
        model,
        lambda out, b: nn.functional.cross_entropy(out["logits"], b["labels"]),
        batches,
        batch_weight=weight,
    )
    assert torch.allclose(other.grad(obj.theta0), obj.grad(obj.theta0))


def test_hvp_through_dict_batches_matches_finite_differences():
    torch.manual_seed(0)
    obj = Objective(DictModel(), None, dict_batches(), dtype=F64)
    theta = obj.theta0
    v = torch.randn(obj.num_params, dtype=F64)
    h = 1e-5
    fd = (obj.grad(theta + h * v) - obj.grad(theta - h * v)) / (2 * h)
    assert torch.allclose(obj.hvp(theta, v), fd, rtol=1e-5, atol=1e-8)


def test_streamed_data_equals_held_data():
    torch.manual_seed(0)
    model = MaskedRegressor().to(F64)
    batches = masked_batches(4)
    held = Objective(model, tuple_loss, batches)
    streamed = Objective(model, tuple_loss, batches, hold_data=False)
    assert not Objective(model, tuple_loss, batches, memory_budget=64).data.held
    assert held.data.held and not streamed.data.held
    theta = held.theta0 + 0.1
    v = torch.randn(held.num_params, dtype=F64)
    assert torch.allclose(streamed.loss(theta), held.loss(theta), rtol=1e-13)
    assert torch.allclose(streamed.grad(theta), held.grad(theta), rtol=1e-12)
    assert torch.allclose(streamed.hvp(theta, v), held.hvp(theta, v), rtol=1e-11)
    assert torch.allclose(streamed.hessian(theta), held.hessian(theta), rtol=1e-11)
    with pytest.raises(InvalidInputError, match="streams its data"):
        streamed.batches


def test_a_shuffling_loader_is_refused():
    g = torch.Generator().manual_seed(0)
    ds = TensorDataset(torch.randn(40, 4, dtype=F64), torch.randn(40, 1, dtype=F64))
    loader = DataLoader(ds, batch_size=8, shuffle=True, generator=g)
    with pytest.raises(InvalidInputError, match="shuffle=False"):
        Objective(nn.Linear(4, 1).to(F64), nn.MSELoss(), loader)
    fixed = DataLoader(ds, batch_size=8, shuffle=False)
    obj = Objective(nn.Linear(4, 1).to(F64), nn.MSELoss(), fixed)
    assert obj.num_batches == 5 and obj.num_samples == 40


def test_a_loader_that_changes_later_is_caught_while_streaming():
    class Drifting:
        def __init__(self) -> None:
            self.shift = 0.0
            self.x = torch.randn(12, 3, dtype=F64)

        def __iter__(self):
            for i in range(0, 12, 4):
                yield self.x[i : i + 4] + self.shift, self.x[i : i + 4, :1]

    loader = Drifting()
    obj = Objective(nn.Linear(3, 1).to(F64), nn.MSELoss(), loader, hold_data=False)
    obj.loss(obj.theta0)
    loader.shift = 1.0
    with pytest.raises(InvalidInputError, match="different batch 0"):
        obj.loss(obj.theta0)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ([torch.zeros(3)], "batch 0 of data is a Tensor"),
        ([{"a": 1}], "without any tensor"),
        ([{1: torch.zeros(2, 2)}], "keys must be strings"),
        ([("x", torch.zeros(2))], "first element"),
        ([(torch.zeros(2, 3), torch.zeros(3, 1))], "same leading"),
        (42, "iterable of batches"),
        ([], "empty"),
    ],
)
def test_batches_we_cannot_read_get_a_clear_error(data, words):
    with pytest.raises(InvalidInputError, match=words):
        Objective(nn.Linear(3, 1), nn.MSELoss(), data)


def test_non_finite_entries_are_named():
    bad = {"x": torch.tensor([[float("nan")]]), "y": torch.zeros(1, 1)}
    with pytest.raises(NonFiniteError, match="'x'"):
        Objective(nn.Linear(1, 1), lambda out, b: (out - b["y"]).pow(2).mean(), [bad])


def test_loss_fn_none_needs_a_model_that_returns_its_loss():
    with pytest.raises(InvalidInputError, match="loss_fn=None"):
        Objective(nn.Linear(3, 1), None, (torch.zeros(4, 3), torch.zeros(4, 1)))
    with pytest.raises(InvalidInputError, match="own loss"):
        Objective(
            DictModel(),
            None,
            [{k: v for k, v in b.items() if k != "labels"} for b in dict_batches()],
        )


def test_a_generator_is_held_and_one_too_large_is_refused():
    x, y = torch.randn(12, 3, dtype=F64), torch.randn(12, 1, dtype=F64)

    def gen():
        for i in range(0, 12, 4):
            yield x[i : i + 4], y[i : i + 4]

    model = nn.Linear(3, 1).to(F64)
    obj = Objective(model, nn.MSELoss(), gen())
    assert obj.data.held and obj.num_batches == 3
    assert torch.allclose(obj.loss(obj.theta0), nn.functional.mse_loss(model(x), y).detach())
    with pytest.raises(InvalidInputError, match="one-pass iterator"):
        Objective(model, nn.MSELoss(), gen(), hold_data=False)
