"""Where runs execute: in this process, a local process pool, or a Ray cluster.

Every executor yields records as runs finish, in completion order; a run that raises twice,
or whose worker process dies twice, yields a :class:`~saddlescope.survey.runner.RunFailure`
instead, and the others go on. The driver alone writes them to the store, and claims each run
just before it starts (:mod:`~saddlescope.survey.claims`). Runs are independent and seeded by
their spec (:func:`run_one`), so the same study gives the same records on any executor with
any number of workers.

* ``local`` — ``workers == 1``: in this process; otherwise a ``ProcessPoolExecutor`` over
  ``workers`` spawned processes (at most one per core and per run), one torch thread each,
  which die with the driver, even when it is killed.
* ``ray`` — a Ray task per run (one CPU each, and ``gpus_per_run`` GPUs where the cluster
  has GPUs: a run that gets one runs on it); ``address`` joins an existing cluster
  (``"auto"`` or ``"ray://host:10001"``; one that does not answer within
  :data:`RAY_CONNECT_TIMEOUT` seconds is refused, and that cluster's own security applies),
  otherwise a private local Ray instance with ``workers`` CPUs, bound to 127.0.0.1 with Ray's
  authentication as installed, is started and shut down afterwards.
"""

from __future__ import annotations

import ctypes
import dataclasses
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from saddlescope.checks import check_choice
from saddlescope.errors import InvalidInputError
from saddlescope.survey.config import RunSpec
from saddlescope.survey.record import SurveyRecord
from saddlescope.survey.runner import RunFailure, attempt

__all__ = ["BACKENDS", "RAY_CONNECT_TIMEOUT", "check_reachable", "execute", "ray_options"]

BACKENDS = ("local", "ray")
RAY_CONNECT_TIMEOUT = 10.0  # seconds for a Ray address to answer


def execute(
    specs: Sequence[RunSpec],
    *,
    workers: int = 1,
    backend: str = "local",
    address: str | None = None,
    claim: Callable[[RunSpec], bool] | None = None,
    gpus_per_run: float = 0.0,
) -> Iterator[SurveyRecord | RunFailure]:
    """Run every spec; yield each record as soon as its run finishes.

    Args:
        specs: the runs.
        workers: parallel runs (local: processes; Ray: CPUs of a local instance).
        backend: "local" or "ray".
        address: the Ray cluster to join (Ray only), or None.
        claim: asked just before a run starts; False skips it (another process has it).
        gpus_per_run: Ray only: the GPUs each run asks for (dropped where the cluster has none).
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
    claimed = (s for s in specs if claim is None or claim(s))
    if backend == "ray":
        return _ray(claimed, workers, address, gpus_per_run)
    if workers == 1:
        return (attempt(spec) for spec in claimed)
    return _pool(claimed, workers)


def _init_worker(parent: int | None = None) -> None:
    """A pool worker: one torch thread, and it dies with the driver (no orphans).

    On Linux the kernel kills it when the driver dies (``PR_SET_PDEATHSIG``), even by SIGKILL;
    elsewhere a watchdog thread exits when the driver's pid is no longer its parent.
    """
    if parent is not None:
        if not _die_with_parent():
            threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
        if os.getppid() != parent:  # the driver died before this line: do not start work
            os._exit(1)
    import torch

    torch.set_num_threads(1)


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


class _PoolBroken(Exception):
    """A worker died mid-run (killed, out of memory): the runs that were in flight."""

    def __init__(self, in_flight: list[RunSpec]) -> None:
        super().__init__(f"{len(in_flight)} runs in flight")
        self.in_flight = in_flight


Run = Callable[[RunSpec], "SurveyRecord | RunFailure"]


def _pool(
    specs: Iterator[RunSpec], workers: int, run: Run = attempt
) -> Iterator[SurveyRecord | RunFailure]:
    """Runs in a process pool; a pool broken by a dying worker is replaced.

    Which run killed a worker is unknown when several were in flight, so those runs are run
    again one at a time; a run whose worker dies while it runs alone twice is a failure.
    """
    suspects: deque[RunSpec] = deque()
    deaths: dict[str, int] = {}
    while True:
        ex = _new_pool(workers)
        try:
            yield from _drain(ex, specs, suspects, workers, run)
            ex.shutdown(wait=True)
        except _PoolBroken as broken:
            if len(broken.in_flight) > 1:
                suspects.extend(s for s in broken.in_flight if s not in suspects)
                continue
            spec = broken.in_flight[0]  # it ran alone: its worker died running it
            deaths[spec.run_id] = deaths.get(spec.run_id, 0) + 1
            if spec in suspects:
                suspects.remove(spec)
            if deaths[spec.run_id] < 2:
                suspects.appendleft(spec)
            else:
                yield RunFailure(spec.run_id, _DIED, deaths[spec.run_id])
            continue
        finally:  # Ctrl-C, SIGTERM, a run that raised, a broken pool: stop it now
            ex.shutdown(wait=False, cancel_futures=True)
        return


_DIED = "WorkerDied: its worker process died while running it (killed, or out of memory?)"


def _new_pool(workers: int) -> ProcessPoolExecutor:
    ctx = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(
        max_workers=workers, mp_context=ctx, initializer=_init_worker, initargs=(os.getpid(),)
    )


def _drain(
    ex: ProcessPoolExecutor,
    specs: Iterator[RunSpec],
    suspects: deque[RunSpec],
    workers: int,
    run: Run,
) -> Iterator[SurveyRecord | RunFailure]:
    """Suspects first, one at a time; then the specs, at most 2·workers in flight.

    Raises :class:`_PoolBroken` (after yielding what finished) when a worker dies; a suspect
    leaves ``suspects`` only when its run has ended.
    """
    while suspects:
        fut = ex.submit(run, suspects[0])
        try:
            result = fut.result()
        except BrokenProcessPool:
            raise _PoolBroken([suspects[0]]) from None
        suspects.popleft()
        yield result
    running = {ex.submit(run, s): s for _, s in zip(range(2 * workers), specs)}
    while running:
        done, _ = wait(running, return_when=FIRST_COMPLETED)
        broken = any(isinstance(f.exception(), BrokenProcessPool) for f in done)
        if broken:
            done, _ = wait(running)  # a broken pool fails every run in it at once
        lost = []
        for fut in done:
            spec = running.pop(fut)
            if isinstance(fut.exception(), BrokenProcessPool):
                lost.append(spec)
                continue
            yield fut.result()
            nxt = None if broken else next(specs, None)
            if nxt is not None:
                running[ex.submit(run, nxt)] = nxt
        if lost:
            raise _PoolBroken(lost + list(running.values()))


def _ray(
    specs: Iterator[RunSpec], workers: int, address: str | None, gpus_per_run: float
) -> Iterator[SurveyRecord | RunFailure]:
    """Ray tasks, at most 2·workers in flight; a task whose worker dies is retried once."""
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
            check_reachable(address)
            ray.init(address=address, log_to_driver=False, configure_logging=False)
    try:
        remote = ray.remote(_ray_run).options(**ray_options(gpus_per_run))
        running = {remote.remote(s): s for _, s in zip(range(2 * workers), specs)}
        while running:
            done, _ = ray.wait(list(running), num_returns=1)
            for ref in done:
                spec = running.pop(ref)
                try:
                    yield ray.get(ref)
                except ray.exceptions.RayError as err:  # its worker died on both attempts
                    yield RunFailure(spec.run_id, f"{type(err).__name__}: {err}"[:2000], 2)
                nxt = next(specs, None)
                if nxt is not None:
                    running[remote.remote(nxt)] = nxt
    finally:
        if started_here:
            ray.shutdown()


def ray_options(gpus_per_run: float) -> dict[str, float | int]:
    """A run's Ray task options: one CPU, and the GPUs asked for where the cluster has any.

    Args:
        gpus_per_run: the GPUs each run asks for (0: none).
    """
    import ray

    has_gpus = ray.cluster_resources().get("GPU", 0) > 0
    return {"num_cpus": 1, "num_gpus": gpus_per_run if has_gpus else 0, "max_retries": 1}


def _ray_run(spec: RunSpec) -> SurveyRecord | RunFailure:
    import ray
    import torch

    _init_worker()
    if ray.get_gpu_ids() and torch.cuda.is_available():  # a GPU was given to this task
        spec = dataclasses.replace(spec, device="cuda")
    return attempt(spec)


def check_reachable(address: str, timeout: float = RAY_CONNECT_TIMEOUT) -> None:
    """Refuse a Ray address whose host does not answer within ``timeout`` seconds.

    Ray itself retries an unreachable address for a long time; "auto" (a cluster on this
    machine) is left to Ray, which fails at once when there is none.

    Args:
        address: "auto", "host:port" or "ray://host:port".
        timeout: seconds to wait for a TCP connection.
    """
    if address == "auto":
        return
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise InvalidInputError(
            f"Ray address {address!r} is not 'auto', 'host:port' or 'ray://host:port'"
        )
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as err:
        raise InvalidInputError(
            f"no Ray cluster answered at {address} within {timeout:g} s ({err}); "
            "check the address and that the cluster is up"
        ) from None
