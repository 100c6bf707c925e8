"""Ingestion: a notebook-style baseline against the project's segment ingestion.

Both turn the same parquet files into labelled (image, label) pairs at one size. The
baseline reads whole files with ``pandas.read_parquet``, joins with ``merge`` and decodes
every pair at full size with PIL. The project reads the key columns, then the image
column of only the row groups holding labelled frames, and decodes at reduced DCT scale.

Bytes read are counted on the file objects both read through (``CountingFile``); the
project's files are opened by ``CountingParquetSource``, a ``ParquetSource`` that logs
its count to a folder when closed, so worker processes report theirs too. This module
does not import torch: worker processes import it to unpickle their jobs.
"""

from __future__ import annotations

import io
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import cv2
import numpy as np
import pandas as pd
from PIL import Image

from benchmarks.encoded_pairs import EncodedPairReader, pair_locations
from benchmarks.input_data import SPLIT, BenchmarkInput
from waymo_unet.data.ingest import (
    IngestionConfig,
    SegmentResult,
    SourceTree,
    decode_pair,
    ingest_segments,
    plan_segment_jobs,
)
from waymo_unet.data.parquet import ParquetSource
from waymo_unet.data.shards import ShardStore
from waymo_unet.data.waymo import (
    IMAGE_COLUMN,
    KEY_COLUMNS,
    PANOPTIC_DIVISOR_COLUMN,
    PANOPTIC_LABEL_COLUMN,
)

logger = logging.getLogger(__name__)

Run = TypeVar("Run")

COLUMNS = [
    "method",
    "workers",
    "pairs",
    "seconds",
    "pairs_per_s",
    "steady_pairs_per_s",
    "runs",
    "steady_range",
    "speedup",
    "read_mib_per_pair",
    "file_mib_per_pair",
    "read_fraction",
]


class CountingFile:
    """A binary file object that counts the bytes its reads return; other calls pass through."""

    def __init__(self, file: BinaryIO, path: str = "", log_dir: str | None = None) -> None:
        self._file = file
        self.path = path
        self.log_dir = log_dir
        self.bytes_read = 0
        self._logged = False

    def read(self, size: int = -1) -> bytes:
        data = self._file.read(size)
        self.bytes_read += len(data)
        return data

    def read1(self, size: int = -1) -> bytes:
        data = self._file.read1(size)
        self.bytes_read += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        count = self._file.readinto(buffer)
        self.bytes_read += count or 0
        return count

    def close(self) -> None:
        self._file.close()
        if self.log_dir is not None and not self._logged:
            self._logged = True
            log = Path(self.log_dir) / f"{os.getpid()}.tsv"
            with open(log, "a") as file:
                file.write(f"{self.path}\t{self.bytes_read}\n")

    def __enter__(self) -> CountingFile:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)


@dataclass(frozen=True)
class CountingParquetSource(ParquetSource):
    """A ``ParquetSource`` whose files count the bytes read and log them to ``log_dir``."""

    log_dir: str = ""

    def open(self) -> BinaryIO:
        return CountingFile(super().open(), self.path, self.log_dir)  # type: ignore[return-value]


def bytes_logged(log_dir: str | Path) -> dict[str, int]:
    """Bytes read per file path, summed over every open logged under ``log_dir``."""
    totals: dict[str, int] = {}
    for log in Path(log_dir).glob("*.tsv"):
        for line in log.read_text().splitlines():
            path, count = line.rsplit("\t", 1)
            totals[path] = totals.get(path, 0) + int(count)
    return totals


def new_log_dir(parent: str | Path) -> Path:
    """A fresh, empty folder for byte-count logs."""
    path = Path(parent) / f"read_log_{uuid.uuid4().hex[:8]}"
    path.mkdir(parents=True)
    return path


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
    keys: list[tuple[str, int, int]]  # (segment, timestamp, camera) of every pair
    images: list[np.ndarray]
    labels: list[np.ndarray]


def read_whole(path: str, log_dir: Path) -> pd.DataFrame:
    """``pandas.read_parquet`` of every column of a file, through a counting file object."""
    with CountingFile(open(path, "rb"), path, str(log_dir)) as file:
        return pd.read_parquet(file)


def naive_ingest(data: BenchmarkInput, height: int, width: int, log_dir: Path) -> NaiveRun:
    """Read whole files, join with ``merge``, decode every labelled pair at full size."""
    run = NaiveRun(0, 0.0, 0.0, 0.0, 0, [], [], [])
    start = time.perf_counter()
    for segment in data.segments:
        read_start = time.perf_counter()
        images = read_whole(segment.image_path, log_dir)
        labels = read_whole(segment.label_path, log_dir)
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
    run.bytes_read = sum(bytes_logged(log_dir).values())
    return run


# The project's way ---------------------------------------------------------------------


@dataclass
class ProjectRun:
    """Results and costs of the project's ingestion with some number of workers."""

    workers: int
    pairs: int
    seconds: float
    bytes_read: int
    store: ShardStore
    results: list[SegmentResult]


def source_trees(data: BenchmarkInput, log_dir: Path) -> tuple[SourceTree, SourceTree]:
    """The input's image and label files as counting sources, by split and segment."""
    images = {
        s.segment: CountingParquetSource(s.image_path, log_dir=str(log_dir)) for s in data.segments
    }
    labels = {
        s.segment: CountingParquetSource(s.label_path, log_dir=str(log_dir)) for s in data.segments
    }
    return {SPLIT: images}, {SPLIT: labels}


def project_ingest(
    data: BenchmarkInput, height: int, width: int, workers: int, work_dir: Path
) -> ProjectRun:
    """``plan_segment_jobs`` + ``ingest_segments`` into a fresh shard store."""
    log_dir = new_log_dir(work_dir)
    store = ShardStore(str(work_dir / f"shards_{workers}_workers_{log_dir.name}"))
    config = IngestionConfig(height, width, splits=(SPLIT,), workers=workers)
    jobs = plan_segment_jobs(*source_trees(data, log_dir), store, config)
    start = time.perf_counter()
    results = ingest_segments(jobs, workers)
    seconds = time.perf_counter() - start
    pairs = sum(r.pairs_written for r in results)
    return ProjectRun(workers, pairs, seconds, sum(bytes_logged(log_dir).values()), store, results)


def decode_only_rate(data: BenchmarkInput, height: int, width: int, limit: int = 100) -> float:
    """Pairs/s of ``decode_pair`` alone on one core: bytes in memory, no parquet, no shards.

    The ceiling one ingestion worker could reach on this machine with these decoders.
    """
    reader = EncodedPairReader()
    pairs = [reader.read(where) for where in pair_locations(data)[:limit]]
    with opencv_threads(1):
        decode_pair(*pairs[0], height, width)  # first call loads the codecs
        start = time.perf_counter()
        for jpeg, png, divisor in pairs:
            decode_pair(jpeg, png, divisor, height, width)
        seconds = time.perf_counter() - start
    return len(pairs) / seconds if seconds else 0.0


# Comparison ------------------------------------------------------------------------------


def compare_outputs(naive: NaiveRun, project: ProjectRun) -> dict[str, float]:
    """How far the project's shards are from the baseline's arrays, pair by pair."""
    position = {key: i for i, key in enumerate(naive.keys)}
    equal_pixels = total_pixels = 0
    absolute_error = 0.0
    matched = 0
    for result in project.results:
        images, labels = project.store.open_segment(result.split, result.segment)
        for item, keys in enumerate(result.items):
            index = position.get((result.segment, keys["timestamp"], keys["camera"]))
            if index is None:
                continue
            matched += 1
            equal_pixels += int((labels[item] == naive.labels[index]).sum())
            total_pixels += labels[item].size
            difference = images[item].astype(np.int16) - naive.images[index].astype(np.int16)
            absolute_error += float(np.abs(difference).mean())
    return {
        "pairs_matched": matched,
        "label_agreement": equal_pixels / total_pixels if total_pixels else 0.0,
        "image_mean_abs_diff": absolute_error / matched if matched else 0.0,
    }


def ingestion_row(
    method: str,
    workers: int,
    pairs: int,
    seconds: float,
    steady_seconds: float,
    bytes_read: int,
    file_bytes: int,
    rates: list[float],
) -> dict[str, Any]:
    """One table row; ``speedup`` is filled in against the baseline afterwards.

    ``steady_seconds`` leaves out the process pool's start-up: the time the workers spent
    inside ``ingest_segment``, shared among them.
    """
    return {
        "method": method,
        "workers": workers,
        "pairs": pairs,
        "seconds": seconds,
        "pairs_per_s": pairs / seconds if seconds else 0.0,
        "steady_pairs_per_s": pairs / steady_seconds if steady_seconds else 0.0,
        "runs": len(rates),
        "steady_range": f"{min(rates):.1f}-{max(rates):.1f}",
        "read_mib_per_pair": bytes_read / max(pairs, 1) / 2**20,
        "file_mib_per_pair": file_bytes / max(pairs, 1) / 2**20,
        "read_fraction": bytes_read / file_bytes if file_bytes else 0.0,
        "bytes_read": bytes_read,
    }


def steady_seconds(run: ProjectRun) -> float:
    """Time the workers spent inside ``ingest_segment``, shared among them."""
    return sum(r.seconds for r in run.results) / min(run.workers, len(run.results))


def steady_rate(run: ProjectRun) -> float:
    seconds = steady_seconds(run)
    return run.pairs / seconds if seconds else 0.0


def median_run(runs: list[Run], rate: Callable[[Run], float]) -> Run:
    """The run whose rate is the median (the lower middle one for an even count)."""
    return sorted(runs, key=rate)[(len(runs) - 1) // 2]


def run_ingestion_benchmark(
    data: BenchmarkInput,
    height: int,
    width: int,
    workers: tuple[int, ...],
    work_dir: str | Path,
    repeats: int = 1,
) -> tuple[dict[str, Any], ProjectRun]:
    """Measure the baseline and the project (per worker count) on the same input.

    Each case runs ``repeats`` times and its row is the run with the median steady rate
    (a shared VM's neighbours move single runs by a third). Returns the section's results
    and a single-worker project run, whose shards feed the training-input benchmark.
    """
    work_dir = Path(work_dir)
    file_bytes = sum(s.file_bytes for s in data.segments)
    naive_runs = []
    for attempt in range(repeats):
        logger.info("Ingestion: notebook baseline at %dx%d, run %d", height, width, attempt + 1)
        with opencv_threads(1):
            naive_runs.append(naive_ingest(data, height, width, new_log_dir(work_dir)))
    naive = median_run(naive_runs, lambda run: run.pairs / run.seconds)
    rows = [
        ingestion_row(
            "naive: pandas.read_parquet + merge + PIL",
            1,
            naive.pairs,
            naive.seconds,
            naive.seconds,
            naive.bytes_read,
            file_bytes,
            [run.pairs / run.seconds for run in naive_runs],
        )
    ]
    runs = []
    for count in workers:
        attempts = []
        for attempt in range(repeats):
            logger.info("Ingestion: project, %d worker(s), run %d", count, attempt + 1)
            with opencv_threads(1) if count == 1 else nullcontext():
                attempts.append(project_ingest(data, height, width, count, work_dir))
        run = median_run(attempts, steady_rate)
        runs.append(run)
        rows.append(
            ingestion_row(
                "project: plan_segment_jobs + ingest_segments",
                count,
                run.pairs,
                run.seconds,
                steady_seconds(run),
                run.bytes_read,
                file_bytes,
                [steady_rate(attempt) for attempt in attempts],
            )
        )
    for row in rows:
        row["speedup"] = row["steady_pairs_per_s"] / rows[0]["steady_pairs_per_s"]
    first = runs[0]
    agreement = compare_outputs(naive, first)
    decode_only = decode_only_rate(data, height, width)
    section = {
        "size": [height, width],
        "rows": rows,
        "naive_read_seconds": naive.read_seconds,
        "naive_decode_seconds": naive.decode_seconds,
        "naive_decode_pairs_per_s": naive.pairs / naive.decode_seconds
        if naive.decode_seconds
        else 0.0,
        "agreement": agreement,
        "decode_only_pairs_per_s": decode_only,
        "single_worker_share_of_decode_only": rows[1]["steady_pairs_per_s"] / decode_only
        if decode_only
        else 0.0,
        "image_row_groups": labelled_row_groups(data),
        "labelled_pairs_in_input": data.labelled_pairs,
    }
    return section, first


def labelled_row_groups(data: BenchmarkInput) -> dict[str, int]:
    """Image row groups in all, and those holding a labelled frame (the ones read)."""
    per_group = data.config.frames_per_row_group
    return {
        "total": sum(s.row_groups for s in data.segments),
        "with_labelled_frames": sum(
            len({frame // per_group for frame in s.labelled_frames}) for s in data.segments
        ),
    }
