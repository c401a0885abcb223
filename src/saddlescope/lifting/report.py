"""What :func:`~saddlescope.lifting.lift_experiment` returns: split rows, the escape, the report."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from saddlescope.tolerance import Inertia

__all__ = ["EscapeRecord", "LiftReport", "SplitRow"]


@dataclass(frozen=True)
class SplitRow:
    """One split point: unit, λ, the observed verdict and inertia, and the predicted inertia.

    Attributes:
        unit: the hidden unit j that was split.
        ratio: the split ratio λ.
        kind: the wide network's verdict at the split point (``classify``'s kind).
        observed: the wide Hessian's inertia there.
        predicted: the split theorem's inertia (:func:`~saddlescope.lifting.predicted_inertia`).
        grad_norm: ‖∇L‖ of the wide network at the split point.
        min_eigenvalue: the wide Hessian's smallest eigenvalue there.
    """

    unit: int
    ratio: float
    kind: str
    observed: Inertia
    predicted: Inertia
    grad_norm: float
    min_eigenvalue: float

    @property
    def matches(self) -> bool:
        """True when the observed inertia is the predicted one."""
        return self.observed == self.predicted

    def to_dict(self) -> dict[str, Any]:
        """The row, inertias as dicts, with ``matches``."""
        return {
            "unit": self.unit,
            "ratio": self.ratio,
            "kind": self.kind,
            "observed": self.observed.to_dict(),
            "predicted": self.predicted.to_dict(),
            "matches": self.matches,
            "grad_norm": self.grad_norm,
            "min_eigenvalue": self.min_eigenvalue,
        }

    def __str__(self) -> str:
        mark = "✓" if self.matches else "✗"
        return (
            f"unit {self.unit}, λ = {self.ratio:g}: {self.kind} {self.observed}, "
            f"predicted {self.predicted} {mark}; ‖g‖ {self.grad_norm:.2g}, "
            f"λ_min(H) {self.min_eigenvalue:.3g}"
        )


@dataclass(frozen=True)
class EscapeRecord:
    """Leaving one split saddle: a line search along the escape direction, then L-BFGS.

    Attributes:
        unit: the split unit of the saddle.
        ratio: its split ratio λ.
        saddle_loss: the loss at the saddle (the narrow minimum's loss).
        curvature: the escape direction's curvature (the most negative eigenvalue, < 0).
        step: the length of the accepted step along it.
        loss_after_step: the loss after that step.
        loss_final: the loss after L-BFGS.
        grad_norm_final: ‖∇L‖ after L-BFGS.
        evaluations: L-BFGS's loss evaluations.
    """

    unit: int
    ratio: float
    saddle_loss: float
    curvature: float
    step: float
    loss_after_step: float
    loss_final: float
    grad_norm_final: float
    evaluations: int

    def to_dict(self) -> dict[str, Any]:
        """The fields, by name."""
        return asdict(self)

    def __str__(self) -> str:
        return (
            f"escape from unit {self.unit}, λ = {self.ratio:g}: step {self.step:.3g} along "
            f"curvature {self.curvature:.3g}, loss {self.saddle_loss:.6g} → "
            f"{self.loss_after_step:.6g}; L-BFGS ({self.evaluations} evaluations) → "
            f"{self.loss_final:.6g}, ‖g‖ {self.grad_norm_final:.2g}"
        )


@dataclass(frozen=True)
class LiftReport:
    """The dimension effect on a trained MLP: a narrow strict minimum, split into wide saddles.

    Attributes:
        dataset: the data set's name.
        n_samples: its number of samples.
        widths: the narrow network's layer widths, input to output.
        seed: the seed of the narrow network that reached a strict minimum.
        seeds_tried: how many seeds were tried.
        narrow_params: the narrow network's parameter count.
        wide_params: the wide network's (one unit more).
        narrow_loss: the loss at the narrow minimum.
        narrow_grad_norm: ‖∇L‖ there.
        narrow_min_eigenvalue: the narrow Hessian's smallest eigenvalue there.
        narrow_threshold: the zero band's half-width of the narrow verdict.
        rtol: the relative eigenvalue tolerance of every verdict and prediction.
        gains: the eigenvalues of B_j, for each unit j.
        rows: the classified split points compared with
            :func:`~saddlescope.lifting.predicted_inertia`.
        restricted_kind: the verdict at the escaped saddle restricted to the narrow-sized
            subspace of split networks (a minimum: the narrow Hessian); None without a saddle.
        escape: leaving the saddle to a loss strictly below the narrow minimum; None without one.
        seconds: the wall-clock time of the experiment.
    """

    dataset: str
    n_samples: int
    widths: tuple[int, ...]
    seed: int
    seeds_tried: int
    narrow_params: int
    wide_params: int
    narrow_loss: float
    narrow_grad_norm: float
    narrow_min_eigenvalue: float
    narrow_threshold: float
    rtol: float
    gains: tuple[tuple[float, ...], ...]
    rows: tuple[SplitRow, ...]
    restricted_kind: str | None
    escape: EscapeRecord | None
    seconds: float

    @property
    def all_match(self) -> bool:
        """True when every split point's observed inertia is the predicted one."""
        return all(r.matches for r in self.rows)

    @property
    def escaped_below(self) -> bool:
        """True when the escape ended at a loss strictly below the narrow minimum."""
        return self.escape is not None and self.escape.loss_final < self.narrow_loss

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data, with ``all_match`` and ``escaped_below``."""
        return {
            "dataset": self.dataset,
            "n_samples": self.n_samples,
            "widths": list(self.widths),
            "seed": self.seed,
            "seeds_tried": self.seeds_tried,
            "narrow_params": self.narrow_params,
            "wide_params": self.wide_params,
            "narrow_loss": self.narrow_loss,
            "narrow_grad_norm": self.narrow_grad_norm,
            "narrow_min_eigenvalue": self.narrow_min_eigenvalue,
            "narrow_threshold": self.narrow_threshold,
            "rtol": self.rtol,
            "gains": [list(g) for g in self.gains],
            "rows": [r.to_dict() for r in self.rows],
            "all_match": self.all_match,
            "restricted_kind": self.restricted_kind,
            "escape": None if self.escape is None else self.escape.to_dict(),
            "escaped_below": self.escaped_below,
            "seconds": self.seconds,
        }

    def _header(self) -> list[str]:
        arch = "-".join(map(str, self.widths))
        wide = list(self.widths)
        wide[1] += 1
        return [
            f"Lifting a tanh MLP {arch} ({self.dataset}, {self.n_samples} samples, seed "
            f"{self.seed}) to {'-'.join(map(str, wide))} by splitting one hidden unit",
            f"narrow: strict minimum, loss {self.narrow_loss:.6g}, "
            f"‖g‖ {self.narrow_grad_norm:.2g}, "
            f"λ_min(H) {self.narrow_min_eigenvalue:.3g} > tol {self.narrow_threshold:.2g} "
            f"(rtol {self.rtol:g}); {self.narrow_params} params → {self.wide_params}",
        ]

    def _table(self) -> list[str]:
        lines = [
            f"  unit {j}: eig B_j = [{', '.join(f'{x:.3g}' for x in g)}]"
            for j, g in enumerate(self.gains)
        ]
        lines.append(
            f"{'unit':>4} {'λ':>6}  {'kind':<10} {'n-':>3} {'n0':>3} {'n+':>3}   predicted"
        )
        for r in self.rows:
            mark = "✓" if r.matches else "✗"
            o = r.observed
            lines.append(
                f"{r.unit:>4} {r.ratio:>6g}  {r.kind:<10} {o.n_neg:>3} {o.n_zero:>3} {o.n_pos:>3}"
                f"   {r.predicted!s:<24} {mark}"
            )
        return lines

    def _escape_lines(self) -> list[str]:
        e = self.escape
        if e is None:
            return ["no split point was a saddle: nothing to escape"]
        lines = []
        if self.restricted_kind is not None:
            lines.append(
                f"the saddle (unit {e.unit}, λ = {e.ratio:g}) restricted to "
                f"the {self.narrow_params}-dim subspace of split narrow nets: "
                f"{self.restricted_kind}"
            )
        below = "<" if e.loss_final < self.narrow_loss else "≥"
        lines.append(
            f"escape: step {e.step:.3g} along the eigenvector of curvature {e.curvature:.3g}: "
            f"loss {e.saddle_loss:.6g} → {e.loss_after_step:.6g}; L-BFGS ({e.evaluations} "
            f"evaluations) → {e.loss_final:.6g} {below} {self.narrow_loss:.6g} (narrow minimum)"
        )
        return lines

    def __str__(self) -> str:
        lines = [*self._header(), *self._table(), *self._escape_lines()]
        lines.append(f"({self.seconds:.1f} s)")
        return "\n".join(lines)
