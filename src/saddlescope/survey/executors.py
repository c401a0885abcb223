"""Where runs execute: in this process, a local process pool, or a Ray cluster.

Every executor yields records as runs finish, in completion order; the driver alone writes
them to the store. Runs are independent and seeded by their spec (:func:`run_one`), so the
same study gives the same records on any executor with any number of workers.

* ``local`` — ``workers == 1``: in this process; otherwise a ``ProcessPoolExecutor`` over
  ``workers`` spawned processes, one torch thread each.
* ``ray`` — a Ray task per run (one CPU each); ``address`` joins an existing cluster
  (``"auto"`` or ``"ray://host:10001"``), otherwise a local Ray instance with ``workers`` CPUs
  is started and shut down afterwards.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

from saddlescope.checks import check_choice
from saddlescope.errors import InvalidInputError
from saddlescope.survey.config import RunSpec
from saddlescope.survey.record import SurveyRecord
from saddlescope.survey.runner import run_one

__all__ = ["BACKENDS", "execute"]

BACKENDS = ("local", "ray")


def execute(
    specs: Sequence[RunSpec],
    *,
    workers: int = 1,
    backend: str = "local",
    address: str | None = None,
) -> Iterator[SurveyRecord]:
    """Run every spec; yield each record as soon as its run finishes.

    Args:
        specs: the runs.
        workers: parallel runs (local: processes; Ray: CPUs of a local instance).
        backend: "local" or "ray".
        address: the Ray cluster to join (Ray only), or None.
    """
    check_choice("backend", backend, BACKENDS)
    if not isinstance(workers, int) or workers < 1:
        raise InvalidInputError(f"workers must be a positive integer, got {workers!r}")
    if address is not None and backend != "ray":
        raise InvalidInputError("address is only for the Ray backend (--backend ray)")
    if not specs:
        return iter(())
    if backend == "ray":
        return _ray(specs, workers, address)
    if workers == 1:
        return (run_one(spec) for spec in specs)
    return _pool(specs, workers)


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


def _pool(specs: Sequence[RunSpec], workers: int) -> Iterator[SurveyRecord]:
    ctx = multiprocessing.get_context("spawn")
    # At most 2·workers runs in flight: results stream back and a kill loses little.
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker) as ex:
        pending = iter(specs)
        running = {ex.submit(run_one, s) for _, s in zip(range(2 * workers), pending)}
        while running:
            done, running = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                yield fut.result()
                nxt = next(pending, None)
                if nxt is not None:
                    running.add(ex.submit(run_one, nxt))


def _ray(specs: Sequence[RunSpec], workers: int, address: str | None) -> Iterator[SurveyRecord]:
    try:
        import ray
    except ImportError:
        raise InvalidInputError(
            "the Ray backend needs Ray: pip install 'saddlescope[ray]'"
        ) from None
    started_here = not ray.is_initialized()
    if started_here:
        if address is None:  # private: bound to loopback, Ray's own authentication left on
            ray.init(
                num_cpus=workers,
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
                _node_ip_address="127.0.0.1",
            )
        else:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
    try:
        remote = ray.remote(num_cpus=1)(_ray_run)
        refs = [remote.remote(s) for s in specs]
        while refs:
            done, refs = ray.wait(refs, num_returns=1)
            for ref in done:
                yield ray.get(ref)
    finally:
        if started_here:
            ray.shutdown()


def _ray_run(spec: RunSpec) -> SurveyRecord:
    _init_worker()
    return run_one(spec)
