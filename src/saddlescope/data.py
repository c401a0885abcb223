"""Embedded datasets, generated or shipped with a package — nothing is downloaded.

* ``digits`` — scikit-learn's 8×8 handwritten digits (shipped with scikit-learn), pooled to
  4×4 (16 features), standardised, a class-balanced subsample, one-hot targets for squared error;
* ``teacher-student`` — Gaussian inputs labelled by a random tanh teacher network, so a student at
  least as wide can reach zero loss;
* ``sinc`` — 1-D regression y = sin(4πx)/(4πx) on x ∈ [−1, 1].

Every dataset is a deterministic function of its seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from saddlescope.checks import check_choice
from saddlescope.errors import InvalidInputError

__all__ = ["DATASETS", "Dataset", "load_dataset"]

DATASETS = ("digits", "teacher-student", "sinc")


@dataclass(frozen=True, eq=False)
class Dataset:
    """Inputs (N, d_in) and regression targets (N, d_out), float64.

    Attributes:
        name: the dataset's name, one of :data:`DATASETS`.
        inputs: the (N, d_in) float64 input matrix, one row per sample.
        targets: the (N, d_out) float64 regression targets (one-hot rows for digits).
    """

    name: str
    inputs: Tensor
    targets: Tensor

    @property
    def num_samples(self) -> int:
        """N, the number of samples (rows)."""
        return self.inputs.shape[0]

    @property
    def num_features(self) -> int:
        """d_in, the number of input features."""
        return self.inputs.shape[1]

    @property
    def num_outputs(self) -> int:
        """d_out, the number of targets per sample."""
        return self.targets.shape[1]


def load_dataset(
    name: str,
    *,
    n_samples: int,
    seed: int = 0,
    classes: int = 10,
    pool: int = 2,
    d_in: int = 4,
    teacher_hidden: int = 3,
    d_out: int = 1,
    noise: float = 0.0,
) -> Dataset:
    """Build an embedded dataset of ``n_samples`` samples, deterministically from ``seed``.

    Args:
        name: which dataset, one of :data:`DATASETS` (``"digits"``, ``"teacher-student"``,
            ``"sinc"``).
        n_samples: N, the number of samples (≥ 1; digits has at most the images available).
        seed: seeds everything random (subsample, inputs, teacher, noise); default 0.
        classes: digits only: keep the digits 0…classes−1 (2…10, default 10).
        pool: digits only: average-pool the 8×8 images by this factor (1, 2, 4 or 8; default 2,
            i.e. 4×4 = 16 features).
        d_in: teacher-student only: the input dimension (default 4).
        teacher_hidden: teacher-student only: the teacher's tanh hidden width (default 3).
        d_out: teacher-student only: the number of outputs (default 1).
        noise: teacher-student and sinc: the standard deviation of Gaussian noise added to the
            targets (default 0, noiseless; ignored by digits).

    Returns:
        The :class:`Dataset`.

    >>> load_dataset("sinc", n_samples=5).inputs.shape
    torch.Size([5, 1])
    """
    check_choice("dataset", name, DATASETS)
    if not isinstance(n_samples, int) or n_samples < 1:
        raise InvalidInputError(f"n_samples must be a positive integer, got {n_samples!r}")
    rng = np.random.default_rng(seed)
    if name == "digits":
        x, y = _digits(n_samples, rng, classes, pool)
    elif name == "teacher-student":
        x, y = _teacher_student(n_samples, rng, d_in, teacher_hidden, d_out)
    else:
        x = np.sort(rng.uniform(-1, 1, size=(n_samples, 1)), axis=0)
        y = np.sinc(4 * x)
    if noise and name != "digits":
        y = y + noise * rng.standard_normal(y.shape)
    return Dataset(
        name,
        torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64)),
        torch.from_numpy(np.ascontiguousarray(y, dtype=np.float64)),
    )


def _digits(n: int, rng: np.random.Generator, classes: int, pool: int) -> tuple[np.ndarray, ...]:
    from sklearn.datasets import load_digits

    if not 2 <= classes <= 10:
        raise InvalidInputError(f"digits: classes must be in 2…10, got {classes}")
    if pool not in (1, 2, 4, 8):
        raise InvalidInputError(f"digits: pool must divide 8 (1, 2, 4 or 8), got {pool}")
    bunch = load_digits()
    images, labels = bunch.images, bunch.target
    keep = labels < classes
    images, labels = images[keep], labels[keep]
    if n > len(labels):
        raise InvalidInputError(f"digits: n_samples={n} exceeds the {len(labels)} images available")
    # Class-balanced subsample: round-robin over classes in a seeded order.
    per_class = [rng.permutation(np.flatnonzero(labels == c)) for c in range(classes)]
    order = [idx for group in zip(*per_class) for idx in group]
    chosen = np.array(order[:n]) if n <= len(order) else rng.permutation(len(labels))[:n]
    side = 8 // pool
    x = images[chosen].reshape(-1, side, pool, side, pool).mean(axis=(2, 4)).reshape(n, -1)
    x = (x - x.mean(0)) / np.where(x.std(0) > 0, x.std(0), 1.0)
    y = np.eye(classes)[labels[chosen]]
    return x, y


def _teacher_student(
    n: int, rng: np.random.Generator, d_in: int, hidden: int, d_out: int
) -> tuple[np.ndarray, ...]:
    if min(d_in, hidden, d_out) < 1:
        raise InvalidInputError("teacher-student: d_in, teacher_hidden and d_out must be ≥ 1")
    x = rng.standard_normal((n, d_in))
    w1 = rng.standard_normal((d_in, hidden)) / np.sqrt(d_in)
    w2 = rng.standard_normal((hidden, d_out)) / np.sqrt(hidden)
    return x, np.tanh(x @ w1) @ w2
