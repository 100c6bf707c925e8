"""Ingestion: a notebook-style baseline against the project's segment ingestion.

Both turn the same parquet files into labelled (image, label) pairs at one size. The
baseline reads whole files with ``pandas.read_parquet``, joins with ``merge`` and decodes
every pair at full size with PIL. The project reads the key columns, then the image
column of only the row groups holding labelled frames, and decodes at reduced DCT scale.

Bytes read are counted on the file objects both read through (``CountingFile``); the
project's files are opened by ``CountingParquetSource``, a ``ParquetSource`` that logs
its count to a folder when closed, so worker processes report theirs too. This module
does not import torch: worker processes import it to unpickle their jobs.

GCS cannot be reached from here, so a second table runs both on ``RemoteStorage``: the
same local files read as gcsfs reads objects (``RemoteFile``: ranged requests behind
an fsspec cache), each request waiting as one from GCS would. There, the
bytes and reads logged are those fetched and the requests made.
"""

from __future__ import annotations

import io
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import cv2
import imagecodecs
import numpy as np
import pandas as pd
from fsspec.implementations.local import LocalFileSystem
from fsspec.spec import AbstractBufferedFile
from PIL import Image

from benchmarks.encoded_pairs import EncodedPairReader, pair_locations
from benchmarks.input_data import SPLIT, BenchmarkInput
from waymo_unet.data.ingest import SourceTree, ingest_segments, plan_segment_jobs
from waymo_unet.data.ingestion_config import IngestionConfig
from waymo_unet.data.pairs import decode_pair
from waymo_unet.data.parquet import ParquetSource
from waymo_unet.data.png import decode_grey16
from waymo_unet.data.segment_result import SegmentResult
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
    "read_ahead",
    "pairs",
    "seconds",
    "pairs_per_s",
    "steady_pairs_per_s",
    "runs",
    "steady_range",
    "warm_pairs_per_s",
    "speedup",
    "read_mib_per_pair",
    "file_mib_per_pair",
    "read_fraction",
]
REMOTE_COLUMNS = [
    "method",
    "workers",
    "read_ahead",
    "pairs",
    "steady_pairs_per_s",
    "runs",
    "steady_range",
    "speedup",
    "pairs_per_s",
    "reads",
    "storage_wait_s",
    "read_mib_per_pair",
]


@dataclass(frozen=True)
class RemoteStorage:
    """A modelled object store: a request waits ``latency_s`` plus its bytes at ``mib_per_s``.

    The defaults are typical of one GCS stream from a VM in the bucket's region. Requests
    go through fsspec's ``cache_type`` as in gcsfs; "none" makes every read of the
    reader one ranged request of exactly its size (gcsfs's default adaptive prefetcher,
    which fetches ahead concurrently, is not modelled). The wait is a sleep, so the CPU
    is free meanwhile, as it is while a socket waits.
    """

    latency_s: float = 0.05
    mib_per_s: float = 100.0
    cache_type: str = "none"
    block_size: int = 5 * 2**20  # for cache types that read ahead

    def seconds(self, requests: int, size: int) -> float:
        """How long ``requests`` requests fetching ``size`` bytes in all wait, one by one."""
        return requests * self.latency_s + size / (self.mib_per_s * 2**20)

    def wait(self, size: int) -> None:
        time.sleep(self.seconds(1, size))

    def describe(self) -> str:
        return (
            f"{1000 * self.latency_s:.0f} ms + {self.mib_per_s:.0f} MiB/s a request, "
            f"fsspec cache_type={self.cache_type!r}"
        )


class RemoteFile(AbstractBufferedFile):
    """A local file read as gcsfs reads an object, each request waiting as ``storage`` says.

    Reads go through the fsspec cache ``storage.cache_type``, which turns them into
    ranged requests (``_fetch_range``); the requests and their bytes go to ``log_dir``.
    """

    def __init__(self, path: str, storage: RemoteStorage, log_dir: str | None = None) -> None:
        self.storage = storage
        self.log_dir = log_dir
        self.requests = 0
        self.bytes_fetched = 0
        self._local = open(path, "rb")  # noqa: SIM115 - closed in close()
        super().__init__(
            LocalFileSystem(),
            path,
            block_size=storage.block_size,
            cache_type=storage.cache_type,
            size=os.path.getsize(path),
        )

    def _fetch_range(self, start: int, end: int) -> bytes:
        self._local.seek(start)
        data = self._local.read(end - start)
        self.requests += 1
        self.bytes_fetched += len(data)
        self.storage.wait(len(data))
        return data

    def close(self) -> None:
        if not self.closed:
            self._local.close()
            log_reads(self.log_dir, self.path, self.bytes_fetched, self.requests)
        super().close()


class CountingFile:
    """A binary file object that counts its reads and their bytes; other calls pass through."""

    def __init__(self, file: BinaryIO, path: str = "", log_dir: str | None = None) -> None:
        self._file = file
        self.path = path
        self.log_dir = log_dir
        self.bytes_read = 0
        self.reads = 0
        self._logged = False

    def _count(self, size: int) -> None:
        self.bytes_read += size
        self.reads += 1

    def read(self, size: int = -1) -> bytes:
        data = self._file.read(size)
        self._count(len(data))
        return data

    def read1(self, size: int = -1) -> bytes:
        data = self._file.read1(size)
        self._count(len(data))
        return data

    def readinto(self, buffer: Any) -> int:
        count = self._file.readinto(buffer)
        self._count(count or 0)
        return count

    def close(self) -> None:
        self._file.close()
        if not self._logged:
            self._logged = True
            log_reads(self.log_dir, self.path, self.bytes_read, self.reads)

    def __enter__(self) -> CountingFile:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)


def log_reads(log_dir: str | None, path: str, size: int, reads: int) -> None:
    """Append one open's counts to this process's log under ``log_dir`` (if any)."""
    if log_dir is not None:
        with open(Path(log_dir) / f"{os.getpid()}.tsv", "a") as log:
            log.write(f"{path}\t{size}\t{reads}\n")


def open_counted(path: str, log_dir: str | None, storage: RemoteStorage | None = None) -> BinaryIO:
    """``path`` opened to log what is read: through ``storage`` if given, else locally."""
    if storage is not None:
        return RemoteFile(path, storage, log_dir)  # type: ignore[return-value]
    return CountingFile(open(path, "rb"), path, log_dir)  # type: ignore[return-value]


@dataclass(frozen=True)
class CountingParquetSource(ParquetSource):
    """A local ``ParquetSource`` that logs what is read to ``log_dir`` (``open_counted``),
    through ``storage`` when given."""

    log_dir: str | None = None  # None: count without logging
    storage: RemoteStorage | None = None

    def open(self) -> BinaryIO:
        return open_counted(self.path, self.log_dir, self.storage)


def bytes_logged(log_dir: str | Path) -> dict[str, int]:
    """Bytes read per file path, summed over every open logged under ``log_dir``."""
    return {path: counts[0] for path, counts in read_log(log_dir).items()}


def reads_logged(log_dir: str | Path) -> int:
    """Read calls (requests, on remote storage) of every open logged under ``log_dir``."""
    return log_totals(log_dir)[1]


def log_totals(log_dir: str | Path) -> tuple[int, int]:
    """Bytes and read calls of every open logged under ``log_dir``, in all (one parse)."""
    counts = read_log(log_dir).values()
    return sum(size for size, _ in counts), sum(reads for _, reads in counts)


def read_log(log_dir: str | Path) -> dict[str, tuple[int, int]]:
    """(bytes, read calls) per file path, summed over every open logged under ``log_dir``."""
    totals: dict[str, tuple[int, int]] = {}
    for log in Path(log_dir).glob("*.tsv"):
        for line in log.read_text().splitlines():
            path, size, reads = line.split("\t")
            before = totals.get(path, (0, 0))
            totals[path] = (before[0] + int(size), before[1] + int(reads))
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
    reads: int
    keys: list[tuple[str, int, int]]  # (segment, timestamp, camera) of every pair
    images: list[np.ndarray]
    labels: list[np.ndarray]


def read_whole(path: str, log_dir: Path, storage: RemoteStorage | None = None) -> pd.DataFrame:
    """``pandas.read_parquet`` of every column of a file, through a counting file object."""
    with open_counted(path, str(log_dir), storage) as file:
        return pd.read_parquet(file)


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
        images = read_whole(segment.image_path, log_dir, storage)
        labels = read_whole(segment.label_path, log_dir, storage)
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
    run.bytes_read, run.reads = log_totals(log_dir)
    return run


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
    return ProjectRun(workers, pairs, seconds, *log_totals(log_dir), store, results)


def time_decoders_alone(
    data: BenchmarkInput, height: int, width: int, limit: int = 100
) -> tuple[float, dict[str, float]]:
    """Pairs/s of ``decode_pair`` alone on one core (bytes in memory, no parquet, no
    shards), and ms per label PNG of each decoder in ``LABEL_DECODERS`` on the same labels.

    The first is the ceiling one ingestion worker could reach on this machine with these
    decoders; the second shows what the project's PNG decoder buys.
    """
    pairs = EncodedPairReader().read_all(pair_locations(data)[:limit])
    with opencv_threads(1):
        decode_pair(*pairs[0], height, width)  # first call loads the codecs
        start = time.perf_counter()
        for jpeg, png, divisor in pairs:
            decode_pair(jpeg, png, divisor, height, width)
        seconds = time.perf_counter() - start
        labels = [png for _, png, _ in pairs]
        label_ms = {name: _ms_per_call(decode, labels) for name, decode in LABEL_DECODERS.items()}
    return (len(pairs) / seconds if seconds else 0.0), label_ms


def _opencv_png_decode(data: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)


LABEL_DECODERS: dict[str, Callable[[bytes], np.ndarray]] = {
    "waymo_unet.data.png (libdeflate + numba)": decode_grey16,
    "imagecodecs.png_decode (libpng)": imagecodecs.png_decode,
    "cv2.imdecode": _opencv_png_decode,
}


def _ms_per_call(function: Callable[[bytes], object], inputs: list[bytes]) -> float:
    """Milliseconds per call over ``inputs``, the fastest of 3 passes after a warm-up call."""
    function(inputs[0])
    passes = []
    for _ in range(3):
        start = time.perf_counter()
        for item in inputs:
            function(item)
        passes.append((time.perf_counter() - start) / len(inputs))
    return 1000 * min(passes)


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
    """Time the workers spent inside ``ingest_segment``, shared among them.

    At least the slowest segment: with as many workers as segments, the run lasts as
    long as that one, not as the mean.
    """
    shared = sum(r.seconds for r in run.results) / min(run.workers, len(run.results))
    return max(shared, max((r.seconds for r in run.results), default=0.0))


def steady_rate(run: ProjectRun) -> float:
    seconds = steady_seconds(run)
    return run.pairs / seconds if seconds else 0.0


def warm_rate(run: ProjectRun) -> float | None:
    """Pairs/s of the segments each worker ingested after its first one, in wall-clock time.

    A fresh worker's first segment also pays one-off costs (loading the codecs, faulting
    in its memory): here a worker gets a few segments, in a real run hundreds. The time is
    the span from the first of the later segments starting to the last one ending, idle
    workers included. None where no worker ingested more than one segment.
    """
    first_of: dict[str, SegmentResult] = {}
    for result in sorted(run.results, key=lambda r: r.started):
        first_of.setdefault(result.worker, result)
    warm = [r for r in run.results if first_of[r.worker] is not r]
    if not warm:
        return None
    span = max(r.started + r.seconds for r in warm) - min(r.started for r in warm)
    return sum(r.pairs_written for r in warm) / span if span > 0 else None


def median_run(runs: list[Run], rate: Callable[[Run], float]) -> Run:
    """The run whose rate is the median (the lower middle one for an even count)."""
    return sorted(runs, key=rate)[(len(runs) - 1) // 2]


def measure_naive(
    data: BenchmarkInput,
    height: int,
    width: int,
    work_dir: Path,
    repeats: int,
    storage: RemoteStorage | None = None,
) -> tuple[NaiveRun, list[float]]:
    """The baseline ``repeats`` times: the median run and every run's rate."""
    runs = []
    for attempt in range(repeats):
        logger.info("Ingestion: notebook baseline at %dx%d, run %d", height, width, attempt + 1)
        with opencv_threads(1):
            runs.append(naive_ingest(data, height, width, new_log_dir(work_dir), storage))
    return median_run(runs, naive_rate), [naive_rate(run) for run in runs]


def naive_rate(run: NaiveRun) -> float:
    return run.pairs / run.seconds if run.seconds else 0.0


def measure_project(
    data: BenchmarkInput,
    height: int,
    width: int,
    workers: int,
    work_dir: Path,
    repeats: int,
    read_ahead: int = 1,
    storage: RemoteStorage | None = None,
) -> tuple[ProjectRun, list[float]]:
    """The project's ingestion ``repeats`` times: the median run and every run's rate."""
    runs = []
    for attempt in range(repeats):
        logger.info("Ingestion: project, %d worker(s), run %d", workers, attempt + 1)
        with opencv_threads(1) if workers == 1 else nullcontext():
            runs.append(project_ingest(data, height, width, workers, work_dir, read_ahead, storage))
    return median_run(runs, steady_rate), [steady_rate(run) for run in runs]


def naive_row(run: NaiveRun, rates: list[float], file_bytes: int) -> dict[str, Any]:
    row = ingestion_row(
        "naive: pandas.read_parquet + merge + PIL",
        1,
        run.pairs,
        run.seconds,
        run.seconds,
        run.bytes_read,
        file_bytes,
        rates,
    )
    return {**row, "read_ahead": "-", "reads": run.reads, "warm_pairs_per_s": "-"}


def project_row(
    run: ProjectRun, rates: list[float], file_bytes: int, read_ahead: int
) -> dict[str, Any]:
    row = ingestion_row(
        "project: plan_segment_jobs + ingest_segments",
        run.workers,
        run.pairs,
        run.seconds,
        steady_seconds(run),
        run.bytes_read,
        file_bytes,
        rates,
    )
    return {**row, "read_ahead": read_ahead, "reads": run.reads, "warm_pairs_per_s": warm_rate(run)}


def add_speedups(rows: list[dict[str, Any]]) -> None:
    """Each row's steady rate over the first row's (the baseline's)."""
    for row in rows:
        row["speedup"] = row["steady_pairs_per_s"] / rows[0]["steady_pairs_per_s"]


def run_remote_storage_benchmark(
    data: BenchmarkInput,
    height: int,
    width: int,
    work_dir: Path,
    repeats: int,
    storage: RemoteStorage,
    workers: int = 1,
) -> dict[str, Any]:
    """Baseline and project on modelled remote storage.

    The project runs with 1 worker, read-ahead off and on; then with ``workers`` and
    twice as many (more processes than cores keep more requests in flight).
    """
    file_bytes = sum(s.file_bytes for s in data.segments)
    naive, rates = measure_naive(data, height, width, work_dir, repeats, storage)
    rows = [naive_row(naive, rates, file_bytes)]
    cases = [(1, 0), (1, 1), *((count, 1) for count in sorted({workers, 2 * workers} - {1}))]
    for count, read_ahead in cases:
        run, rates = measure_project(
            data, height, width, count, work_dir, repeats, read_ahead, storage
        )
        rows.append(project_row(run, rates, file_bytes, read_ahead))
    add_speedups(rows)
    for row in rows:
        row["storage_wait_s"] = storage.seconds(row["reads"], row["bytes_read"])
    return {"storage": asdict(storage), "model": storage.describe(), "rows": rows}


def run_ingestion_benchmark(
    data: BenchmarkInput,
    height: int,
    width: int,
    workers: tuple[int, ...],
    work_dir: str | Path,
    repeats: int = 1,
    storage: RemoteStorage | None = None,
) -> tuple[dict[str, Any], ProjectRun]:
    """Measure the baseline and the project (per worker count) on the same input.

    Each case runs ``repeats`` times and its row is the run with the median steady rate
    (a shared VM's neighbours move single runs by a third). Given ``storage``, the
    section also has ``remote``: the same cases on that modelled remote storage. Returns
    the section's results and a single-worker project run, whose shards feed the
    training-input benchmark.
    """
    work_dir = Path(work_dir)
    file_bytes = sum(s.file_bytes for s in data.segments)
    naive, rates = measure_naive(data, height, width, work_dir, repeats)
    rows = [naive_row(naive, rates, file_bytes)]
    runs = []
    for count in workers:
        run, rates = measure_project(data, height, width, count, work_dir, repeats)
        runs.append(run)
        rows.append(project_row(run, rates, file_bytes, read_ahead=1))
    add_speedups(rows)
    first = runs[0]
    agreement = compare_outputs(naive, first)
    decode_only, label_decode_ms = time_decoders_alone(data, height, width)
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
        "label_decode_ms": label_decode_ms,
        "single_worker_share_of_decode_only": rows[1]["steady_pairs_per_s"] / decode_only
        if decode_only
        else 0.0,
        "image_row_groups": labelled_row_groups(data),
        "labelled_pairs_in_input": data.labelled_pairs,
        "worker_scaling": worker_scaling(rows[1:]),
    }
    if storage is not None:
        section["remote"] = run_remote_storage_benchmark(
            data, height, width, work_dir, repeats, storage, max(workers)
        )
    return section, first


def worker_scaling(project_rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Most workers' rates over one worker's: steady, and without first segments (warm).

    A ratio is None where a rate is missing (no worker ingested two segments).
    """
    one, most = project_rows[0], project_rows[-1]
    return {
        "workers": [one["workers"], most["workers"]],
        "steady": _ratio(most["steady_pairs_per_s"], one["steady_pairs_per_s"]),
        "warm": _ratio(most["warm_pairs_per_s"], one["warm_pairs_per_s"]),
    }


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    return numerator / denominator if numerator and denominator else None


def labelled_row_groups(data: BenchmarkInput) -> dict[str, int]:
    """Image row groups in all, and those holding a labelled frame (the ones read)."""
    per_group = data.config.frames_per_row_group
    return {
        "total": sum(s.row_groups for s in data.segments),
        "with_labelled_frames": sum(
            len({frame // per_group for frame in s.labelled_frames}) for s in data.segments
        ),
    }
