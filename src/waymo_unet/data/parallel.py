"""Map a pure per-item function over jobs: in this process, a process pool, or on Dask.

The pool uses the ``spawn`` start method: the Kedro process may already hold torch's
and OpenCV's thread pools, which do not survive ``fork``. Given a scheduler address,
the jobs run as tasks of an existing Dask cluster instead; each job then reads its
input and writes its output itself, so nothing big passes through this process.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import socket
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import TypeVar

import cv2

logger = logging.getLogger(__name__)

Job = TypeVar("Job")
Result = TypeVar("Result")


def available_cores() -> int:
    """Cores this process may run on (respects CPU affinity and container limits)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def resolve_workers(workers: int | None) -> int:
    """``None`` or 0 means one worker per available core."""
    if workers is not None and workers < 0:
        raise ValueError(f"workers must be >= 0 or null, got {workers}")
    return workers or available_cores()


def worker_name() -> str:
    """``host:pid`` of this process: which worker did a job, in a pool or on Dask.

    A Dask worker with several threads runs jobs side by side under one name.
    """
    return f"{socket.gethostname()}:{os.getpid()}"


def _single_threaded_worker() -> None:
    # One segment per process already fills the cores; nested threads only contend.
    cv2.setNumThreads(1)


def map_unordered(
    function: Callable[[Job], Result],
    jobs: Sequence[Job],
    workers: int,
    scheduler: str | None = None,
    retries: int = 2,
) -> Iterator[Result]:
    """Yield ``function(job)`` for every job as each finishes; errors propagate.

    ``scheduler`` (``tcp://host:port``) sends the jobs to that Dask cluster, where a
    failed task is retried ``retries`` times and the tasks of a worker that dies are
    rescheduled on the others; ``workers`` then does not apply.
    """
    if scheduler:
        yield from _map_on_dask(function, jobs, scheduler, retries)
        return
    if workers <= 1 or len(jobs) <= 1:
        yield from map(function, jobs)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=min(workers, len(jobs)),
        mp_context=context,
        initializer=_single_threaded_worker,
    ) as pool:
        futures = [pool.submit(function, job) for job in jobs]
        try:
            for future in as_completed(futures):
                yield future.result()
        finally:
            for future in futures:
                future.cancel()


def _map_on_dask(
    function: Callable[[Job], Result], jobs: Sequence[Job], scheduler: str, retries: int
) -> Iterator[Result]:
    from distributed import Client, as_completed  # only needed on this path

    with Client(scheduler) as client:
        workers = len(client.scheduler_info().get("workers", {}))
        logger.info("Attached to the Dask scheduler at %s (%d workers)", scheduler, workers)
        futures = client.map(function, jobs, retries=retries, pure=False)
        try:
            for future in as_completed(futures):
                yield future.result()
        finally:
            client.cancel(futures)
