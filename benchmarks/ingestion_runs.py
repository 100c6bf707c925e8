"""One run of each ingestion: the notebook-style baseline and the project's.

Both turn the same parquet files into labelled (image, label) pairs at one size. The
baseline reads whole files with ``pandas.read_parquet``, joins with ``merge`` and decodes
every pair at full size with PIL. The project reads the key columns, then the image
column of only the row groups holding labelled frames, and decodes at reduced DCT scale.
Both read through counted files (``benchmarks.remote_storage``), locally or from the
modelled remote storage. Torch-free: worker processes import it to unpickle their jobs.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from PIL import Image

from benchmarks.input_data import SPLIT, BenchmarkInput
from benchmarks.read_log import new_log_dir, read_log
from benchmarks.remote_storage import CountingParquetSource, RemoteStorage, open_counted
from benchmarks.timing import median_run
from waymo_unet.data.ingest import SourceTree, ingest_segments, plan_segment_jobs
from waymo_unet.data.ingestion_config import IngestionConfig
from waymo_unet.data.segment_result import SegmentResult
from waymo_unet.data.shards import ShardStore
from waymo_unet.data.waymo import (
    IMAGE_COLUMN,
    KEY_COLUMNS,
    PANOPTIC_DIVISOR_COLUMN,
    PANOPTIC_LABEL_COLUMN,
)

logger = logging.getLogger(__name__)


@contextmanager
def opencv_threads(count: int) -> Iterator[None]:
    """Limit OpenCV's thread pool inside the block (one worker must mean one core)."""
    previous = cv2.getNumThreads()
    cv2.setNumThreads(count)
    try:
        yield
    finally:
        cv2.setNumThreads(previous)


# The notebook way ---------------------------------------------------------------------


def naive_decode_pair(
    jpeg: bytes, png: bytes, divisor: int, height: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Full-size PIL decode, ``convert("RGB")``, BILINEAR / NEAREST resize, ``// divisor``."""
    image = Image.open(io.BytesIO(jpeg)).convert("RGB")
    image = image.resize((width, height), Image.Resampling.BILINEAR)
    label = Image.open(io.BytesIO(png)).resize((width, height), Image.Resampling.NEAREST)
    return np.asarray(image), (np.asarray(label) // divisor).astype(np.uint8)


@dataclass
class NaiveRun:
    """Output and costs of the notebook-style ingestion."""

    pairs: int
    seconds: float
    read_seconds: float
    decode_seconds: float
    bytes_read: int
    reads: int
    keys: list[tuple[str, int, int]]  # (segment, timestamp, camera) of every pair
    images: list[np.ndarray]
    labels: list[np.ndarray]

    @property
    def rate(self) -> float:
        return self.pairs / self.seconds if self.seconds else 0.0


def naive_ingest(
    data: BenchmarkInput,
    height: int,
    width: int,
    log_dir: Path,
    storage: RemoteStorage | None = None,
) -> NaiveRun:
    """Read whole files, join with ``merge``, decode every labelled pair at full size."""
    run = NaiveRun(0, 0.0, 0.0, 0.0, 0, 0, [], [], [])
    start = time.perf_counter()
    for segment in data.segments:
        read_start = time.perf_counter()
        with (
            open_counted(segment.image_path, str(log_dir), storage) as image_file,
            open_counted(segment.label_path, str(log_dir), storage) as label_file,
        ):
            images, labels = pd.read_parquet(image_file), pd.read_parquet(label_file)
        pairs = images.merge(labels, on=list(KEY_COLUMNS)).sort_values(list(KEY_COLUMNS[1:]))
        decode_start = time.perf_counter()
        run.read_seconds += decode_start - read_start
        for _, row in pairs.iterrows():
            image, label = naive_decode_pair(
                row[IMAGE_COLUMN],
                row[PANOPTIC_LABEL_COLUMN],
                int(row[PANOPTIC_DIVISOR_COLUMN]),
                height,
                width,
            )
            run.images.append(image)
            run.labels.append(label)
            run.keys.append((segment.segment, int(row[KEY_COLUMNS[1]]), int(row[KEY_COLUMNS[2]])))
        run.decode_seconds += time.perf_counter() - decode_start
    run.seconds = time.perf_counter() - start
    run.pairs = len(run.images)
    counts = read_log(log_dir)
    run.bytes_read, run.reads = counts.bytes, counts.reads
    return run


def measure_naive(
    data: BenchmarkInput,
    size: tuple[int, int],
    work_dir: Path,
    repeats: int,
    storage: RemoteStorage | None = None,
) -> tuple[NaiveRun, list[float]]:
    """The baseline ``repeats`` times at ``size``: the median run and every run's rate."""
    runs = []
    for attempt in range(repeats):
        logger.info("Ingestion: notebook baseline at %dx%d, run %d", *size, attempt + 1)
        with opencv_threads(1):
            runs.append(naive_ingest(data, *size, new_log_dir(work_dir), storage))
    return median_run(runs, lambda run: run.rate), [run.rate for run in runs]


# The project's way ---------------------------------------------------------------------


@dataclass
class ProjectRun:
    """Results and costs of the project's ingestion with some number of workers."""

    workers: int
    pairs: int
    seconds: float
    bytes_read: int
    reads: int
    store: ShardStore
    results: list[SegmentResult]

    @property
    def steady_seconds(self) -> float:
        """Time the workers spent inside ``ingest_segment``, shared among them.

        At least the slowest segment: with as many workers as segments, the run lasts as
        long as that one, not as the mean.
        """
        shared = sum(r.seconds for r in self.results) / min(self.workers, len(self.results))
        return max(shared, max((r.seconds for r in self.results), default=0.0))

    @property
    def steady_rate(self) -> float:
        seconds = self.steady_seconds
        return self.pairs / seconds if seconds else 0.0

    @property
    def warm_rate(self) -> float | None:
        """Pairs/s of the segments each worker ingested after its first one, wall-clock.

        A fresh worker's first segment also pays one-off costs (loading the codecs,
        faulting in its memory): here a worker gets a few segments, in a real run
        hundreds. The time is the span from the first of the later segments starting to
        the last one ending, idle workers included. None where no worker ingested more
        than one segment.
        """
        first_of: dict[str, SegmentResult] = {}
        for result in sorted(self.results, key=lambda r: r.started):
            first_of.setdefault(result.worker, result)
        warm = [r for r in self.results if first_of[r.worker] is not r]
        if not warm:
            return None
        span = max(r.started + r.seconds for r in warm) - min(r.started for r in warm)
        return sum(r.pairs_written for r in warm) / span if span > 0 else None


def source_trees(
    data: BenchmarkInput, log_dir: Path, storage: RemoteStorage | None = None
) -> tuple[SourceTree, SourceTree]:
    """The input's image and label files as counting sources, by split and segment."""
    images, labels = {}, {}
    for segment in data.segments:
        images[segment.segment] = CountingParquetSource(
            segment.image_path, log_dir=str(log_dir), storage=storage
        )
        labels[segment.segment] = CountingParquetSource(
            segment.label_path, log_dir=str(log_dir), storage=storage
        )
    return {SPLIT: images}, {SPLIT: labels}


def project_ingest(
    data: BenchmarkInput,
    height: int,
    width: int,
    workers: int,
    work_dir: Path,
    read_ahead: int = 1,
    storage: RemoteStorage | None = None,
) -> ProjectRun:
    """``plan_segment_jobs`` + ``ingest_segments`` into a fresh shard store."""
    log_dir = new_log_dir(work_dir)
    store = ShardStore(str(work_dir / f"shards_{workers}_workers_{log_dir.name}"))
    config = IngestionConfig(height, width, splits=(SPLIT,), workers=workers, read_ahead=read_ahead)
    jobs = plan_segment_jobs(*source_trees(data, log_dir, storage), store, config)
    start = time.perf_counter()
    results = ingest_segments(jobs, workers)
    seconds = time.perf_counter() - start
    pairs = sum(r.pairs_written for r in results)
    counts = read_log(log_dir)
    return ProjectRun(workers, pairs, seconds, counts.bytes, counts.reads, store, results)


def measure_project(
    data: BenchmarkInput,
    size: tuple[int, int],
    workers: int,
    work_dir: Path,
    repeats: int,
    read_ahead: int = 1,
    storage: RemoteStorage | None = None,
) -> tuple[ProjectRun, list[float]]:
    """The project's ingestion ``repeats`` times at ``size``: the median run and every
    run's rate."""
    runs = []
    for attempt in range(repeats):
        logger.info("Ingestion: project, %d worker(s), run %d", workers, attempt + 1)
        with opencv_threads(1) if workers == 1 else nullcontext():
            runs.append(project_ingest(data, *size, workers, work_dir, read_ahead, storage))
    return median_run(runs, lambda run: run.steady_rate), [run.steady_rate for run in runs]
