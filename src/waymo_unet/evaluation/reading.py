"""Labelled camera images straight from the raw parquet files, labels at their own size.

Reading reuses ingestion's steps: key columns first, rows joined on (timestamp, camera)
with invalid and duplicated rows quarantined (``match_rows``), then only the row groups
holding a labelled image (``read_pair_bytes``). Where ingestion shrinks both sides, the
evaluation decodes the JPEG at the model's size (the same DCT-scaled decode that made the
training shards) and the label and ``num_cameras_covered`` at full size. A pair that
does not decode is quarantined in its segment's ``SegmentResult``, never dropped silently.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack, closing
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from waymo_unet.data.decode import (
    DecodeError,
    decode_camera_image,
    decode_cameras_covered,
    decode_panoptic_label,
    semantic_from_panoptic,
)
from waymo_unet.data.ingest import SourceTree
from waymo_unet.data.pairs import check_pair_bytes, match_rows, read_pair_bytes
from waymo_unet.data.parquet import ComponentFile, ParquetSource
from waymo_unet.data.segment_result import SegmentResult
from waymo_unet.data.waymo import (
    CAMERA_IMAGE,
    CAMERA_SEGMENTATION,
    NUM_CAMERAS_COVERED_COLUMN,
    PANOPTIC_DIVISOR_COLUMN,
    PANOPTIC_LABEL_COLUMN,
)

EVALUATED = "evaluated"  # a segment's status unless a file is missing or no pair is usable


@dataclass(frozen=True)
class EvaluationSegment:
    """One segment's two raw files (either may be missing: the report then says so)."""

    split: str
    segment: str
    images: ParquetSource | None
    labels: ParquetSource | None


def plan_evaluation(
    images: SourceTree, labels: SourceTree, split: str, max_segments: int | None = None
) -> list[EvaluationSegment]:
    """The segments of ``split`` to evaluate, in name order.

    ``max_segments`` caps the segments with both files; those lacking one are listed
    too, so that the evaluation report counts them rather than leaving them out.
    """
    if split not in images:
        found = ", ".join(sorted(images)) or "none"
        raise ValueError(f"split {split!r} has no camera_image files (splits found: {found})")
    image_files, label_files = images[split], labels.get(split, {})
    labelled = sorted(image_files.keys() & label_files.keys())[:max_segments]
    incomplete = sorted(image_files.keys() ^ label_files.keys())
    return [
        EvaluationSegment(split, name, image_files.get(name), label_files.get(name))
        for name in (*labelled, *incomplete)
    ]


@dataclass(frozen=True)
class EncodedPair:
    """One matched row pair's bytes, as read from the files, before any decoding."""

    segment: str
    pair: Any  # the ``match_rows`` row: timestamp, camera, row groups, Index
    jpeg: bytes | None
    label_row: dict[str, Any]


@dataclass
class LabelledImage:
    """An image at the model's size with its label (and coverage) at the label's size."""

    segment: str
    timestamp: int
    camera: int
    image: np.ndarray  # uint8 (h, w, 3) RGB at the model's size
    label: np.ndarray  # uint8 (H, W) Waymo semantic ids
    coverage: np.ndarray | None  # uint8 (H, W) num_cameras_covered; None if the file has none

    @property
    def label_size(self) -> tuple[int, int]:
        return self.label.shape[0], self.label.shape[1]


def read_encoded_pairs(
    segments: Sequence[EvaluationSegment],
    cameras: Sequence[int],
    results: dict[str, SegmentResult],
    keys: dict[str, set[tuple[int, int]]] | None = None,
    read_ahead: int = 1,
) -> Iterator[EncodedPair]:
    """Every labelled image pair of ``segments``, one segment after another.

    Each segment's counts and quarantined rows go into ``results[segment]`` (created
    here). ``keys``, if given, keeps only the (timestamp, camera) pairs listed per segment
    (the gallery re-reads a few images this way).
    """
    for segment in segments:
        result = SegmentResult(
            segment.split, segment.segment, status=EVALUATED, sources=_sources(segment)
        )
        results[segment.segment] = result
        wanted = None if keys is None else keys.get(segment.segment, set())
        if wanted is not None and not wanted:
            continue
        with ExitStack() as files:
            image_file = _open(files, segment.images, CAMERA_IMAGE)
            label_file = _open(files, segment.labels, CAMERA_SEGMENTATION)
            pairs = match_rows(image_file, label_file, tuple(cameras), result)
            if wanted is not None:
                chosen = [
                    key in wanted for key in zip(pairs["timestamp"], pairs["camera"], strict=True)
                ]
                pairs = pairs[np.array(chosen, dtype=bool)]
            if pairs.empty or image_file is None or label_file is None:
                continue
            columns = [PANOPTIC_DIVISOR_COLUMN, PANOPTIC_LABEL_COLUMN]
            if NUM_CAMERAS_COVERED_COLUMN in label_file.parquet.schema_arrow.names:
                columns.append(NUM_CAMERAS_COVERED_COLUMN)
            rows = read_pair_bytes(image_file, label_file, pairs, columns, read_ahead)
            with closing(rows):
                for pair, jpeg, label_row in rows:
                    yield EncodedPair(segment.segment, pair, jpeg, label_row)


def _sources(segment: EvaluationSegment) -> dict[str, dict[str, Any]]:
    files = ((CAMERA_IMAGE, segment.images), (CAMERA_SEGMENTATION, segment.labels))
    return {component: file.describe() for component, file in files if file is not None}


def _open(files: ExitStack, source: ParquetSource | None, component: str) -> ComponentFile | None:
    return None if source is None else files.enter_context(ComponentFile(source, component))


def decode_labelled_image(encoded: EncodedPair, image_size: tuple[int, int]) -> LabelledImage:
    """The image at ``image_size`` (height, width), the label and coverage at full size.

    Raises ``DecodeError`` (whose ``component`` names the bad file) for a pair that
    cannot be used; an empty or absent ``num_cameras_covered`` gives ``coverage=None``.
    """
    row = encoded.label_row
    png, divisor = row[PANOPTIC_LABEL_COLUMN], row[PANOPTIC_DIVISOR_COLUMN]
    label_size = check_pair_bytes(encoded.jpeg, png, divisor)
    label = semantic_from_panoptic(decode_panoptic_label(png), divisor)
    covered = row.get(NUM_CAMERAS_COVERED_COLUMN)
    return LabelledImage(
        segment=encoded.segment,
        timestamp=int(encoded.pair.timestamp),
        camera=int(encoded.pair.camera),
        image=decode_camera_image(encoded.jpeg, *image_size),
        label=label,
        coverage=decode_cameras_covered(covered, label_size) if covered else None,
    )


def quarantine_pair(
    result: SegmentResult, segment: EvaluationSegment, encoded: EncodedPair, error: DecodeError
) -> None:
    """Record a pair that did not decode against the file its bad bytes came from."""
    source = segment.images if error.component == CAMERA_IMAGE else segment.labels
    path = source.path if source is not None else "?"
    result.add_quarantine(path, pd.DataFrame([encoded.pair]), str(error))
