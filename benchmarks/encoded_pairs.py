"""The labelled pairs of the benchmark input: where their rows are and their encoded bytes.

Torch-free, so the ingestion section (whose worker processes import it) can use it too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow.parquet as pq

from benchmarks.input_data import SPLIT, BenchmarkInput
from waymo_unet.data.ingest import SegmentResult, match_rows
from waymo_unet.data.parquet import ComponentFile, ParquetSource
from waymo_unet.data.waymo import (
    CAMERA_IMAGE,
    CAMERA_SEGMENTATION,
    IMAGE_COLUMN,
    PANOPTIC_DIVISOR_COLUMN,
    PANOPTIC_LABEL_COLUMN,
    CameraName,
)

EncodedPair = tuple[bytes, bytes, int]
"""JPEG bytes, panoptic PNG bytes and the panoptic divisor of one labelled pair."""


@dataclass(frozen=True)
class RowLocation:
    """Where one labelled pair's rows are: file, row group and row within it, per side."""

    image_path: str
    image_group: int
    image_row: int
    label_path: str
    label_group: int
    label_row: int


def pair_locations(data: BenchmarkInput) -> list[RowLocation]:
    """Every labelled pair of the input, found the project's way (key columns, then join)."""
    locations = []
    cameras = tuple(int(c) for c in CameraName)
    for segment in data.segments:
        with (
            ComponentFile(ParquetSource(segment.image_path), CAMERA_IMAGE) as images,
            ComponentFile(ParquetSource(segment.label_path), CAMERA_SEGMENTATION) as labels,
        ):
            pairs = match_rows(images, labels, cameras, SegmentResult(SPLIT, segment.segment))
        locations += [
            RowLocation(
                segment.image_path,
                int(p.row_group_image),
                int(p.row_in_group_image),
                segment.label_path,
                int(p.row_group_label),
                int(p.row_in_group_label),
            )
            for p in pairs.itertuples(index=False)
        ]
    return locations


class EncodedPairReader:
    """Reads one pair's rows from parquet; reading a row decompresses its row group.

    Files stay open between calls (per process: they are not pickled).
    """

    def __init__(self) -> None:
        self._files: dict[str, pq.ParquetFile] = {}

    def _file(self, path: str) -> pq.ParquetFile:
        if path not in self._files:
            self._files[path] = pq.ParquetFile(path)
        return self._files[path]

    def read(self, where: RowLocation) -> EncodedPair:
        """The JPEG bytes, PNG bytes and divisor of the pair at ``where``."""
        images = self._file(where.image_path).read_row_group(
            where.image_group, columns=[IMAGE_COLUMN]
        )
        labels = self._file(where.label_path).read_row_group(
            where.label_group, columns=[PANOPTIC_LABEL_COLUMN, PANOPTIC_DIVISOR_COLUMN]
        )
        return (
            images[IMAGE_COLUMN][where.image_row].as_py(),
            labels[PANOPTIC_LABEL_COLUMN][where.label_row].as_py(),
            labels[PANOPTIC_DIVISOR_COLUMN][where.label_row].as_py(),
        )

    def close(self) -> None:
        """Forget the open files (they close when collected)."""
        self._files.clear()

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_files": {}}
