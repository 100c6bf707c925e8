"""Ingestion of one Waymo v2 segment: parquet in, a uint8 training shard out.

``ingest_segment`` is the one function that touches pixels. It is pure in the sense
that matters for scaling out: everything it needs travels in a small picklable
``SegmentJob``, it opens its files itself through fsspec, and it returns a
``SegmentResult`` of counts, quarantined rows and class histograms. The same function
runs serially, in a process pool and on a Dask worker (``waymo_unet.data.ingest``).

A committed shard is reused only while it is still what ingestion would write now: the
same settings (``IngestionConfig.fingerprint``) and the same raw files, by the identity
their listing gave (size and modification time, or a checksum or generation on an
object store). Otherwise the segment is redone, and its result says why.
"""

from __future__ import annotations

import time
from collections import Counter
from contextlib import closing, nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from waymo_unet.data.decode import DecodeError
from waymo_unet.data.ingestion_config import IngestionConfig
from waymo_unet.data.pairs import decode_pair, match_rows, read_pair_bytes
from waymo_unet.data.parallel import worker_name
from waymo_unet.data.parquet import ComponentFile, ParquetSource
from waymo_unet.data.segment_result import SegmentResult
from waymo_unet.data.shards import IMAGES_FILE, ShardStore
from waymo_unet.data.waymo import (
    CAMERA_IMAGE,
    CAMERA_SEGMENTATION,
    PANOPTIC_DIVISOR_COLUMN,
    PANOPTIC_LABEL_COLUMN,
)

# Why a segment is ingested again rather than reused: the part of ``redo_reason``
# before any ": detail".
NEW = "new"
UNFINISHED = "previous attempt did not finish"
SETTINGS_CHANGED = "settings changed"
RAW_FILE_CHANGED = "raw file changed"
IDENTITY_UNKNOWN = "raw file identity unknown"


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
