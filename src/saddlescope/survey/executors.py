"""Where runs execute: in this process, a local process pool, or a Ray cluster.

Every executor yields records as runs finish, in completion order (a run that raises twice
yields a :class:`~saddlescope.survey.runner.RunFailure` instead); the driver alone writes
them to the store. Runs are independent and seeded by their spec (:func:`run_one`), so the
same study gives the same records on any executor with any number of workers.

* ``local`` — ``workers == 1``: in this process; otherwise a ``ProcessPoolExecutor`` over
  ``workers`` spawned processes (at most one per core and per run), one torch thread each,
  which die with the driver, even when it is killed.
* ``ray`` — a Ray task per run (one CPU each); ``address`` joins an existing cluster
  (``"auto"`` or ``"ray://host:10001"``), otherwise a local Ray instance with ``workers`` CPUs
  is started and shut down afterwards.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

from saddlescope.checks import check_choice
from saddlescope.errors import InvalidInputError
from saddlescope.survey.config import RunSpec
from saddlescope.survey.record import SurveyRecord
from saddlescope.survey.runner import RunFailure, attempt

__all__ = ["BACKENDS", "execute"]

BACKENDS = ("local", "ray")


def execute(
    specs: Sequence[RunSpec],
    *,
    workers: int = 1,
    backend: str = "local",
    address: str | None = None,
) -> Iterator[SurveyRecord | RunFailure]:
    """Run every spec; yield each record as soon as its run finishes.

    Args:
        specs: the runs.
        workers: parallel runs (local: processes; Ray: CPUs of a local instance).
        backend: "local" or "ray".
        address: the Ray cluster to join (Ray only), or None.
    """
    check_choice("backend", backend, BACKENDS)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InvalidInputError(f"workers must be a positive integer, got {workers!r}")
    if backend == "local":  # never more processes than cores or runs
        workers = max(1, min(workers, os.cpu_count() or 1, len(specs)))
    if address is not None and backend != "ray":
        raise InvalidInputError("address is only for the Ray backend (--backend ray)")
    if not specs:
        return iter(())
    if backend == "ray":
        return _ray(specs, workers, address)
    if workers == 1:
        return (attempt(spec) for spec in specs)
    return _pool(specs, workers)


def _init_worker(parent: int | None = None) -> None:
    """A pool worker: one torch thread, and it dies with the driver (no orphans).

    On Linux the kernel kills it when the driver dies (``PR_SET_PDEATHSIG``), even by SIGKILL;
    elsewhere a watchdog thread exits when the driver's pid is no longer its parent.
    """
    import torch

    torch.set_num_threads(1)
    if parent is None:
        return
    if not _die_with_parent():
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    if os.getppid() != parent:  # the driver died before this line: do not start work
        os._exit(1)


def _die_with_parent() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return False
    pr_set_pdeathsig = 1
    return libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0) == 0


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def _pool(specs: Sequence[RunSpec], workers: int) -> Iterator[SurveyRecord | RunFailure]:
    ctx = multiprocessing.get_context("spawn")
    # At most 2·workers runs in flight: results stream back and a kill loses little.
    ex = ProcessPoolExecutor(
        max_workers=workers, mp_context=ctx, initializer=_init_worker, initargs=(os.getpid(),)
    )
    try:
        pending = iter(specs)
        running = {ex.submit(attempt, s) for _, s in zip(range(2 * workers), pending)}
        while running:
            done, running = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                yield fut.result()
                nxt = next(pending, None)
                if nxt is not None:
                    running.add(ex.submit(attempt, nxt))
    except BaseException:  # Ctrl-C, SIGTERM, a run that raised: stop now, not after the queue
        ex.shutdown(wait=False, cancel_futures=True)
        raise
    ex.shutdown(wait=True)


def _ray(
    specs: Sequence[RunSpec], workers: int, address: str | None
) -> Iterator[SurveyRecord | RunFailure]:
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


def _ray_run(spec: RunSpec) -> SurveyRecord | RunFailure:
    _init_worker()
    return attempt(spec)
