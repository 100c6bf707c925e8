"""Map a pure per-item function over jobs: in this process or in a process pool.

The pool uses the ``spawn`` start method: the Kedro process may already hold torch's
and OpenCV's thread pools, which do not survive ``fork``.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import TypeVar

import cv2

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


def _single_threaded_worker() -> None:
    # One segment per process already fills the cores; nested threads only contend.
    cv2.setNumThreads(1)


def map_unordered(
    function: Callable[[Job], Result], jobs: Sequence[Job], workers: int
) -> Iterator[Result]:
    """Yield ``function(job)`` for every job as each finishes; errors propagate."""
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
