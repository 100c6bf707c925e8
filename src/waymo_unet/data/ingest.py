"""Ingestion of one Waymo v2 segment: parquet in, a uint8 training shard out.

``ingest_segment`` is the one function that touches pixels. It is pure in the sense
that matters for scaling out: everything it needs travels in a small picklable
``SegmentJob``, it opens its files itself through fsspec, and it returns a
``SegmentResult`` of counts, quarantined rows and class histograms. The same function
runs serially, in a process pool and on a Dask worker.

A committed shard is reused only while it is still what ingestion would write now: the
same settings (``IngestionConfig.fingerprint``) and the same raw files, by the identity
their listing gave (size and modification time, or a checksum or generation on an
object store). Otherwise the segment is redone, and its result says why.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import closing, nullcontext
from dataclasses import asdict, dataclass, field, fields
from functools import lru_cache
from itertools import groupby
from operator import attrgetter
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from tqdm.auto import tqdm

from waymo_unet.config import config_from_params
from waymo_unet.data.decode import (
    DecodeError,
    decode_camera_image,
    decode_panoptic_label,
    jpeg_size,
    panoptic_label_size,
    resize_label,
    semantic_from_panoptic,
    semantic_histogram,
)
from waymo_unet.data.parallel import map_unordered, resolve_workers, worker_name
from waymo_unet.data.parquet import (
    INVALID_CAMERA,
    ComponentFile,
    ParquetSource,
    empty_keys,
    read_row_groups,
)
from waymo_unet.data.shards import IMAGES_FILE, ShardStore
from waymo_unet.data.waymo import (
    CAMERA_IMAGE,
    CAMERA_SEGMENTATION,
    IMAGE_COLUMN,
    PANOPTIC_DIVISOR_COLUMN,
    PANOPTIC_LABEL_COLUMN,
    CameraName,
)
from waymo_unet.digest import content_digest

logger = logging.getLogger(__name__)

# Bump when the shard layout or decoding changes, so old shards are rebuilt.
SHARD_FORMAT_VERSION = 1
KEYS = ["timestamp", "camera"]

# Why a segment is ingested again rather than reused: the part of ``redo_reason``
# before any ": detail".
NEW = "new"
UNFINISHED = "previous attempt did not finish"
SETTINGS_CHANGED = "settings changed"
RAW_FILE_CHANGED = "raw file changed"
IDENTITY_UNKNOWN = "raw file identity unknown"


@dataclass(frozen=True)
class IngestionConfig:
    """What ingestion produces: image size, splits, cameras and how many segments."""

    height: int
    width: int
    splits: tuple[str, ...] = ("training", "validation")
    cameras: tuple[int, ...] = tuple(int(c) for c in CameraName)
    max_segments: int | None = None
    workers: int | None = None
    dask_scheduler: str | None = None  # tcp://host:port of a Dask cluster to run on
    task_retries: int = 2  # on Dask: how often a failed segment task is retried
    read_ahead: int = 1  # image row groups read on a thread while one decodes (0: off)

    def __post_init__(self) -> None:
        if self.height < 1 or self.width < 1:
            raise ValueError(f"image size must be positive, got {self.height}x{self.width}")
        if unknown := set(self.cameras) - {int(c) for c in CameraName}:
            raise ValueError(f"unknown camera id(s) {sorted(unknown)}; valid ids are 1..5")
        if self.max_segments is not None and self.max_segments < 1:
            raise ValueError(f"max_segments must be >= 1 or null, got {self.max_segments}")
        if self.read_ahead < 0:
            raise ValueError(f"read_ahead must be >= 0, got {self.read_ahead}")

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> IngestionConfig:
        """From the ``ingestion`` parameters; an unknown key or a wrong type is named."""
        values = dict(params)
        for name in ("splits", "cameras"):
            if isinstance(values.get(name), list):
                values[name] = tuple(values[name])  # YAML lists
        return config_from_params(cls, values, "ingestion", "parameters_ingestion.yml")

    @property
    def fingerprint(self) -> str:
        """Identifies the shard content these settings produce (not how it is computed).

        The raw files' identities are checked beside it (``redo_reason``), not folded
        in: this value also marks the shard index, which must not differ between a
        local and a bucket copy of the same files.
        """
        content = [SHARD_FORMAT_VERSION, self.height, self.width, sorted(self.cameras)]
        return content_digest(content)


@dataclass(frozen=True)
class SegmentJob:
    """Everything a worker needs to ingest one segment."""

    split: str
    segment: str
    images: ParquetSource | None
    labels: ParquetSource | None
    store: ShardStore
    config: IngestionConfig

    @property
    def sources(self) -> dict[str, dict[str, Any]]:
        """Path and identity of each raw file, by component, as recorded in the result."""
        files = ((CAMERA_IMAGE, self.images), (CAMERA_SEGMENTATION, self.labels))
        return {component: file.describe() for component, file in files if file is not None}


@dataclass
class SegmentResult:
    """What ingesting one segment found; committed beside its shard as JSON."""

    split: str
    segment: str
    status: str = "ingested"
    fingerprint: str = ""
    frames: int = 0
    image_rows: int = 0
    label_rows: int = 0
    pairs_written: int = 0
    unlabelled_frames: int = 0
    unlabelled_images: int = 0
    other_camera_rows: int = 0
    # How long, where and when it ran; a reused result keeps those of the run that made it.
    seconds: float = 0.0
    worker: str = ""  # host:pid of the process that ingested it
    started: float = 0.0  # Unix time
    reused: bool = False
    redo_reason: str = ""  # why it was not reused (see NEW...IDENTITY_UNKNOWN)
    no_pairs_reason: str = ""  # why it yields no pairs, where it yields none
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)  # SegmentJob.sources
    quarantine: list[dict[str, Any]] = field(default_factory=list)
    items: list[dict[str, Any]] = field(default_factory=list)
    class_pixels: dict[int, int] = field(default_factory=dict)
    class_images: dict[int, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SegmentResult:
        """A committed result; keys this version does not know (a newer one's) are ignored."""
        known = {f.name for f in fields(cls)}
        values = {key: value for key, value in data.items() if key in known}
        for name in ("class_pixels", "class_images"):
            values[name] = {int(k): int(v) for k, v in values.get(name, {}).items()}
        return cls(**values)

    def add_quarantine(self, file: str, rows: pd.DataFrame, reason: str) -> None:
        for row in rows.itertuples(index=False):
            self.quarantine.append(
                {
                    "file": file,
                    "timestamp": int(row.timestamp),
                    "camera": int(row.camera),
                    "reason": reason,
                }
            )


@dataclass
class DecodedPair:
    image: np.ndarray
    label: np.ndarray
    class_pixels: np.ndarray
    source_height: int
    source_width: int


def check_pair_bytes(jpeg: bytes | None, png: bytes | None, divisor: int | None) -> tuple[int, int]:
    """The pair's (height, width) from its headers; DecodeError if it cannot be a pair."""
    if not jpeg:
        raise DecodeError("image bytes are empty", CAMERA_IMAGE)
    if not png:
        raise DecodeError("label bytes are empty")
    if divisor is None or divisor < 1:
        raise DecodeError(f"invalid panoptic_label_divisor {divisor}")
    source_size, label_size = jpeg_size(jpeg), panoptic_label_size(png)
    if label_size != source_size:
        raise DecodeError(
            f"label size {label_size[1]}x{label_size[0]} differs from image size "
            f"{source_size[1]}x{source_size[0]}"
        )
    return source_size


def decode_pair(
    jpeg: bytes | None, png: bytes | None, divisor: int | None, height: int, width: int
) -> DecodedPair:
    """Decode and resize one image/label pair; raises DecodeError saying why it is unusable."""
    source_size = check_pair_bytes(jpeg, png, divisor)
    panoptic = decode_panoptic_label(png)
    label = semantic_from_panoptic(resize_label(panoptic, height, width), divisor)
    return DecodedPair(
        image=decode_camera_image(jpeg, height, width),
        label=label,
        class_pixels=semantic_histogram(panoptic, divisor),
        source_height=source_size[0],
        source_width=source_size[1],
    )


def ingest_segment(job: SegmentJob) -> SegmentResult:
    """Ingest one segment, or return its committed result if done alike from the same files."""
    committed = job.store.read_result(job.split, job.segment)
    reason = redo_reason(job, committed)
    if reason is None:
        return SegmentResult.from_dict({**committed, "reused": True, "redo_reason": ""})
    start = time.perf_counter()
    result = SegmentResult(
        job.split,
        job.segment,
        fingerprint=job.config.fingerprint,
        worker=worker_name(),
        started=round(time.time(), 3),
        redo_reason=reason,
        sources=job.sources,
    )
    images = np.empty((0, job.config.height, job.config.width, 3), np.uint8)
    labels = np.empty((0, job.config.height, job.config.width), np.uint8)
    with (
        _open(job.images, CAMERA_IMAGE) as image_file,
        _open(job.labels, CAMERA_SEGMENTATION) as label_file,
    ):
        pairs = match_rows(image_file, label_file, job.config.cameras, result)
        if len(pairs):
            images, labels = _decode_pairs(image_file, label_file, pairs, job.config, result)
    result.pairs_written = len(images)
    if len(pairs) and not result.pairs_written:
        reasons = sorted({row["reason"] for row in result.quarantine})
        result.no_pairs_reason = (
            f"all {len(pairs)} matched pair(s) were quarantined ({'; '.join(reasons)})"
        )
    if result.status == "ingested" and not result.pairs_written:
        result.status = "no_labelled_pairs"
    job.store.write_arrays(job.split, job.segment, images, labels)
    result.seconds = round(time.perf_counter() - start, 3)
    job.store.commit(job.split, job.segment, result.to_dict())
    return result


def redo_reason(job: SegmentJob, committed: dict[str, Any] | None) -> str | None:
    """Why the segment must be ingested (again), or None if its committed shard is current."""
    if committed is None:
        unfinished = job.store.filesystem.exists(
            job.store.segment_path(job.split, job.segment, IMAGES_FILE)
        )
        return UNFINISHED if unfinished else NEW
    if committed.get("fingerprint") != job.config.fingerprint:
        return SETTINGS_CHANGED
    recorded = committed.get("sources")
    if recorded is None:
        return f"{IDENTITY_UNKNOWN}: not recorded by the run that made the shard"
    current = job.sources
    unlisted = [component for component, source in current.items() if not _identity(source)]
    if unlisted:
        return f"{IDENTITY_UNKNOWN}: {', '.join(unlisted)} not listed with details"
    changes = []
    for component in sorted(recorded.keys() | current.keys()):
        if component not in current:
            changes.append(f"{component} (gone)")
        elif component not in recorded:
            changes.append(f"{component} (new file)")
        else:
            before, now = _identity(recorded[component]), _identity(current[component])
            changed = sorted(k for k in before.keys() | now.keys() if before.get(k) != now.get(k))
            if changed:
                changes.append(f"{component} ({', '.join(changed)})")
    return f"{RAW_FILE_CHANGED}: {'; '.join(changes)}" if changes else None


def _identity(described: dict[str, Any]) -> dict[str, Any]:
    """A recorded source without its path: a moved folder of the same files is current."""
    return {key: value for key, value in described.items() if key != "path"}


def _open(source: ParquetSource | None, component: str) -> ComponentFile | nullcontext[None]:
    return ComponentFile(source, component) if source is not None else nullcontext()


def match_rows(
    image_file: ComponentFile | None,
    label_file: ComponentFile | None,
    cameras: tuple[int, ...],
    result: SegmentResult,
) -> pd.DataFrame:
    """Join image and label rows on (timestamp, camera); count and quarantine the rest.

    Returns one row per usable pair with the row group and row of each side, in
    (timestamp, camera) order.
    """
    image_keys = _usable_keys(image_file, cameras, result)
    label_keys = _usable_keys(label_file, cameras, result)
    result.image_rows = len(image_file.keys) if image_file else 0
    result.label_rows = len(label_file.keys) if label_file else 0
    result.frames = image_file.keys["timestamp"].nunique() if image_file else 0
    if image_file is None:
        result.status = "no_image_file"
    elif label_file is None:
        result.status = "no_label_file"
    joined = image_keys.merge(
        label_keys, on=KEYS, how="outer", suffixes=("_image", "_label"), indicator=True
    )
    orphans = joined[joined["_merge"] == "right_only"]
    if len(orphans):
        result.add_quarantine(
            label_file.source.path, orphans, "label row has no matching image row"
        )
    pairs = joined[joined["_merge"] == "both"].sort_values(KEYS)
    result.unlabelled_images = int((joined["_merge"] == "left_only").sum())
    result.unlabelled_frames = result.frames - pairs["timestamp"].nunique()
    if pairs.empty:
        result.no_pairs_reason = _why_no_match(
            image_file, label_file, len(image_keys), len(label_keys), cameras, result
        )
    return pairs.astype(
        {
            c: "int64"
            for c in (
                "row_group_image",
                "row_in_group_image",
                "row_group_label",
                "row_in_group_label",
            )
        }
    )


def _why_no_match(
    image_file: ComponentFile | None,
    label_file: ComponentFile | None,
    usable_images: int,
    usable_labels: int,
    cameras: tuple[int, ...],
    result: SegmentResult,
) -> str:
    """Why no image row and label row of a segment make a pair, in a few words."""
    if image_file is None:
        return f"no {CAMERA_IMAGE} file"
    if label_file is None:
        return f"no {CAMERA_SEGMENTATION} file"
    for file, usable in ((label_file, usable_labels), (image_file, usable_images)):
        if not len(file.keys):
            return f"its {file.component} file has no rows"
        if not usable:
            quarantined = sum(row["file"] == file.source.path for row in result.quarantine)
            return (
                f"none of its {len(file.keys)} {file.component} row(s) is usable: "
                f"{len(file.keys) - quarantined} of cameras other than {list(cameras)}, "
                f"{quarantined} quarantined"
            )
    return f"none of its {usable_labels} label row(s) matches an image row by (timestamp, camera)"


def _usable_keys(
    file: ComponentFile | None, cameras: tuple[int, ...], result: SegmentResult
) -> pd.DataFrame:
    """Keys of the rows worth joining; invalid and duplicated rows are quarantined."""
    if file is None:
        return empty_keys()
    keys = file.keys
    invalid = keys["camera"] == INVALID_CAMERA
    result.add_quarantine(file.source.path, keys[invalid], "unknown camera name")
    selected = keys[~invalid & keys["camera"].isin(cameras)]
    result.other_camera_rows += int((~invalid).sum()) - len(selected)
    duplicated = selected.duplicated(KEYS, keep="first")
    result.add_quarantine(
        file.source.path, selected[duplicated], "duplicate (timestamp, camera) key"
    )
    return selected[~duplicated]


def _decode_pairs(
    image_file: ComponentFile,
    label_file: ComponentFile,
    pairs: pd.DataFrame,
    config: IngestionConfig,
    result: SegmentResult,
) -> tuple[np.ndarray, np.ndarray]:
    """Decode every pair (in file order) into its place in (timestamp, camera) order;
    unusable pairs are quarantined and left out."""
    images = np.empty((len(pairs), config.height, config.width, 3), np.uint8)
    labels = np.empty((len(pairs), config.height, config.width), np.uint8)
    items: list[dict[str, Any] | None] = [None] * len(pairs)
    pixels: Counter[int] = Counter()
    images_with: Counter[int] = Counter()
    label_columns = [PANOPTIC_DIVISOR_COLUMN, PANOPTIC_LABEL_COLUMN]
    rows = read_pair_bytes(image_file, label_file, pairs, label_columns, config.read_ahead)
    with closing(rows):
        for pair, jpeg, label_row in rows:
            try:
                decoded = decode_pair(
                    jpeg,
                    label_row[PANOPTIC_LABEL_COLUMN],
                    label_row[PANOPTIC_DIVISOR_COLUMN],
                    config.height,
                    config.width,
                )
            except DecodeError as error:
                bad_file = image_file if error.component == CAMERA_IMAGE else label_file
                result.add_quarantine(bad_file.source.path, pd.DataFrame([pair]), str(error))
                continue
            images[pair.Index], labels[pair.Index] = decoded.image, decoded.label
            present = np.flatnonzero(decoded.class_pixels)
            pixels.update(
                dict(zip(present.tolist(), decoded.class_pixels[present].tolist(), strict=True))
            )
            images_with.update(present.tolist())
            items[pair.Index] = {
                "timestamp": int(pair.timestamp),
                "camera": int(pair.camera),
                "source_height": decoded.source_height,
                "source_width": decoded.source_width,
            }
    result.class_pixels, result.class_images = dict(pixels), dict(images_with)
    written = np.array([item is not None for item in items], dtype=bool)
    result.items = [item for item in items if item is not None]
    if written.all():
        return images, labels
    return images[written], labels[written]


def read_pair_bytes(
    image_file: ComponentFile,
    label_file: ComponentFile,
    pairs: pd.DataFrame,
    label_columns: list[str],
    read_ahead: int = 1,
) -> Iterator[tuple[Any, bytes | None, dict[str, Any]]]:
    """Each pair of ``match_rows`` with its JPEG bytes and its label row's ``label_columns``.

    Pairs come in image file order, which reads each image row group once even where a
    frame's rows straddle two row groups (rows are not in camera order); ``pair.Index``
    is the pair's position in ``pairs``. Label row groups are read once per run of pairs.
    Close the generator (``contextlib.closing``) before the files.
    """
    read_labels = lru_cache(maxsize=2)(lambda g: label_file.read_columns(g, label_columns))
    in_file_order = pairs.reset_index(drop=True).sort_values(
        ["row_group_image", "row_in_group_image"], kind="stable"
    )
    with closing(_with_image_column(image_file, in_file_order, read_ahead)) as rows:
        for pair, jpegs in rows:
            table = read_labels(pair.row_group_label)
            label_row = {c: table[c][pair.row_in_group_label].as_py() for c in label_columns}
            yield pair, jpegs[pair.row_in_group_image].as_py(), label_row


def _with_image_column(
    image_file: ComponentFile, pairs: pd.DataFrame, read_ahead: int
) -> Iterator[tuple[Any, pa.ChunkedArray]]:
    """Each pair (with its index) and the image column of its row group.

    The next row groups are read ahead while the caller decodes; a row group is read
    again only if ``pairs`` comes back to it.
    """
    runs = [
        (group, list(run))
        for group, run in groupby(pairs.itertuples(), key=attrgetter("row_group_image"))
    ]
    order = [group for group, _ in runs]
    with closing(read_row_groups(image_file, [IMAGE_COLUMN], order, read_ahead)) as tables:
        for (_, run), (_, table) in zip(runs, tables, strict=True):
            jpegs = table[IMAGE_COLUMN]
            for pair in run:
                yield pair, jpegs


SourceTree = dict[str, dict[str, ParquetSource]]
"""Parquet files of one component by split, then by segment."""


def plan_segment_jobs(
    images: SourceTree, labels: SourceTree, store: ShardStore, config: IngestionConfig
) -> list[SegmentJob]:
    """One job per segment of the chosen splits.

    ``max_segments`` caps the labelled segments per split (taken in name order); the
    segments lacking one of the two files are always planned too, so that the report
    lists them instead of dropping them silently.
    """
    jobs = []
    for split in config.splits:
        if split not in images:
            found = ", ".join(sorted(images)) or "none"
            raise ValueError(f"split {split!r} has no camera_image files (splits found: {found})")
        image_files, label_files = images[split], labels.get(split, {})
        labelled = sorted(image_files.keys() & label_files.keys())[: config.max_segments]
        incomplete = sorted(image_files.keys() ^ label_files.keys())
        for segment in (*labelled, *incomplete):
            jobs.append(
                SegmentJob(
                    split,
                    segment,
                    image_files.get(segment),
                    label_files.get(segment),
                    store,
                    config,
                )
            )
    return jobs


def ingest_segments(
    jobs: list[SegmentJob],
    workers: int | None = None,
    dask_scheduler: str | None = None,
    task_retries: int = 2,
) -> list[SegmentResult]:
    """Run ``ingest_segment`` over all jobs, logging progress; results in job order.

    Locally with ``workers`` processes, or on the Dask cluster at ``dask_scheduler``.
    Logs how many segments were reused and why the others were redone, and warns of
    every segment that yields no pairs.
    """
    workers = resolve_workers(workers)
    where = f"on Dask at {dask_scheduler}" if dask_scheduler else f"with {workers} worker(s)"
    logger.info("Ingesting %d segment(s) %s", len(jobs), where)
    start, pairs, results = time.perf_counter(), 0, {}
    progress = tqdm(total=len(jobs), unit="segment", desc="ingestion", disable=None)
    with progress:
        for result in map_unordered(ingest_segment, jobs, workers, dask_scheduler, task_retries):
            results[(result.split, result.segment)] = result
            pairs += result.pairs_written
            progress.update()
            rate = pairs / max(time.perf_counter() - start, 1e-9)
            progress.set_postfix(pairs=pairs, pairs_per_s=f"{rate:.1f}")
            logger.info(
                "%s/%s: %s, %d pair(s), %d quarantined, %s (%d/%d segments, %.1f pairs/s)",
                result.split,
                result.segment,
                result.status,
                result.pairs_written,
                len(result.quarantine),
                "reused" if result.reused else f"redone ({result.redo_reason})",
                len(results),
                len(jobs),
                rate,
            )
            if not result.pairs_written and result.status != "no_label_file":
                _warn_no_pairs(result)
    ordered = [results[(job.split, job.segment)] for job in jobs]
    _log_reuse(ordered)
    unlabelled = [f"{r.split}/{r.segment}" for r in ordered if r.status == "no_label_file"]
    if unlabelled:
        logger.warning(
            "%d segment(s) yield no pairs: they have no %s file (only some Waymo segments "
            "are labelled): %s",
            len(unlabelled),
            CAMERA_SEGMENTATION,
            ", ".join(unlabelled),
        )
    return ordered


def _warn_no_pairs(result: SegmentResult) -> None:
    files = ", ".join(source["path"] for source in result.sources.values()) or "none"
    logger.warning(
        "%s/%s yields no pairs: %s (files: %s)",
        result.split,
        result.segment,
        result.no_pairs_reason or result.status,
        files,
    )


def _log_reuse(results: list[SegmentResult]) -> None:
    """One line: segments reused, segments redone, and why, by kind of reason."""
    why = Counter(r.redo_reason.split(":", 1)[0] for r in results if not r.reused)
    reasons = ", ".join(f"{reason}: {count}" for reason, count in why.most_common())
    logger.info(
        "Ingestion: %d segment(s) reused, %d redone%s",
        len(results) - why.total(),
        why.total(),
        f" ({reasons})" if reasons else "",
    )
