"""Curvature of half-precision models against float64: the error table.

    python -m benchmarks.mixed_precision

For each probe network and point, the model is analysed in float32, bfloat16 and float16 —
products in that dtype, everything else in float32 (``saddlescope.operators.working_dtype``) —
and compared with float64 on the same model values and data: the error of λ_min and λ_max
relative to max|λ|, n₋ at one zero band for all (1e-2·max|λ|, half precision's default) against
float64's, the products' error ‖H̃ − H‖₂ / max|λ| (``saddlescope.product_error``, against
float32), and whether ``classify`` would refuse a verdict there at the dtype's default band.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from saddlescope import Objective, hessian_spectrum, product_error
from saddlescope.data import load_dataset
from saddlescope.errors import InvalidInputError
from saddlescope.precision import require_precision
from saddlescope.runtime import one_thread
from saddlescope.tolerance import default_rtol

DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def _probes() -> list[tuple[str, nn.Module, nn.Module, tuple[torch.Tensor, torch.Tensor]]]:
    """(name, model, loss, data): each probe at initialisation and after 1,000 Adam steps."""
    digits = load_dataset("digits", n_samples=200, pool=2)
    ts = load_dataset("teacher-student", n_samples=256, d_in=4)
    cases = [
        ("digits 16-8-10 tanh", (16, 8, 10), nn.CrossEntropyLoss(),
         (digits.inputs.float(), digits.targets.argmax(1))),
        ("teacher 4-16-16-1 tanh", (4, 16, 16, 1), nn.MSELoss(),
         (ts.inputs.float(), ts.targets.float())),
    ]  # fmt: skip
    out = []
    for name, sizes, loss, data in cases:
        torch.manual_seed(0)
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), nn.Tanh()]
        model = nn.Sequential(*layers[:-1])
        out.append((f"{name}, init", copy.deepcopy(model), loss, data))
        opt = torch.optim.Adam(model.parameters(), lr=0.01)
        for _ in range(1000):
            opt.zero_grad()
            loss(model(data[0]), data[1]).backward()
            opt.step()
        out.append((f"{name}, 1,000 Adam steps", model, loss, data))
    return out


def _row(
    name: str, model: nn.Module, loss: nn.Module, data: tuple, dtype: torch.dtype, lam: torch.Tensor
) -> str:
    """One dtype's row against the float64 eigenvalues ``lam``."""
    scale = float(lam.abs().max())
    band = 1e-2 * scale
    obj = Objective(model, loss, data, dtype=dtype)
    got = hessian_spectrum(obj, obj.theta0, method="dense", eigenvectors=False).eigenvalues
    check = product_error(obj, obj.theta0)
    try:
        thr = default_rtol(dtype) * float(got.abs().max())
        require_precision(check, float(got[0]), float(got[-1]), thr)
        refused = "no"
    except InvalidInputError:
        refused = "yes"
    n_neg = int((got < -band).sum())
    n_ref = int((lam < -band).sum())
    return (
        f"| {name} | {obj.num_params} | {str(dtype).removeprefix('torch.')} | "
        f"{abs(float(got[0]) - float(lam[0])) / scale:.2e} | "
        f"{abs(float(got[-1]) - float(lam[-1])) / scale:.2e} | {n_neg} ({n_ref}) | "
        f"{check.error / scale:.2e} | {refused} |"
    )


def main() -> None:
    print("| probe | n | dtype | λ_min error | λ_max error | n₋ (float64) | ‖H̃ − H‖₂ | refused |")
    print("|---|---:|---|---:|---:|---:|---:|---|")
    with one_thread():
        for name, model, loss, data in _probes():
            ref = Objective(model, loss, data, dtype=torch.float64)
            lam = torch.linalg.eigvalsh(ref.hessian(ref.theta0))
            for dtype in DTYPES:
                print(_row(name, model, loss, data, dtype, lam), flush=True)


if __name__ == "__main__":
    main()
