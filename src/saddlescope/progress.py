"""Progress for long curvature work: a bar over a Hessian operator's products.

Every long stage of an analysis (a dense Hessian, a Lanczos run, the SLQ inertia estimate) is a
stream of Hessian-vector products, so progress is counted in products: the operator calls back
after each one (:attr:`HessianOperator.on_products`). By default a rich bar (on stderr, gone
when done) appears only for a stage estimated to take longer than a few seconds; ``True``
always shows it, ``False`` never, and a callable ``f(done, total, stage)`` receives the counts
instead (for a notebook widget or a log).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from saddlescope.hessian import HessianOperator

__all__ = ["LONG_SECONDS", "ProgressOption", "product_progress"]

LONG_SECONDS = 3.0  # a stage expected to take longer than this shows a bar by default
ProgressOption = bool | None | Callable[[int, int, str], None]


@contextmanager
def product_progress(
    op: HessianOperator,
    total: int,
    stage: str,
    *,
    show: ProgressOption = None,
    expected_seconds: float | None = None,
) -> Iterator[None]:
    """Report ``op``'s products against ``total`` while the ``with`` block runs.

    Args:
        op: the operator whose products are counted (its ``on_products`` is set for the block
            and restored after).
        total: the products the stage is expected to take at most.
        stage: what the stage is, e.g. "dense Hessian".
        show: None (default): a bar when ``expected_seconds`` exceeds :data:`LONG_SECONDS`;
            True: always a bar; False: nothing; a callable ``f(done, total, stage)``: called
            after every product instead.
        expected_seconds: the stage's estimated duration, for the default.
    """
    if show is False or (show is None and (expected_seconds or 0.0) <= LONG_SECONDS):
        yield
        return
    with ExitStack() as stack:
        if callable(show) and not isinstance(show, bool):
            update = _counting(show, total, stage)
        else:
            bar = stack.enter_context(_bar())
            task = bar.add_task(stage, total=total)
            update = lambda count: bar.advance(task, count)  # noqa: E731
        previous, op.on_products = op.on_products, update
        try:
            yield
        finally:
            op.on_products = previous


def _counting(
    show: Callable[[int, int, str], None], total: int, stage: str
) -> Callable[[int], None]:
    done = [0]

    def update(count: int) -> None:
        done[0] += count
        show(done[0], total, stage)

    return update


def _bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("HVPs"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )
