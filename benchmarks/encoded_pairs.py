"""The labelled pairs of the benchmark input: where their rows are and their encoded bytes.

Torch-free, so the ingestion section (whose worker processes import it) can use it too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks.input_data import SPLIT, BenchmarkInput
from waymo_unet.data.pairs import match_rows
from waymo_unet.data.parquet import ComponentFile, ParquetSource
from waymo_unet.data.segment_result import SegmentResult
from waymo_unet.data.waymo import (
    CAMERA_IMAGE,
    CAMERA_SEGMENTATION,
    IMAGE_COLUMN,
    PANOPTIC_DIVISOR_COLUMN,
    PANOPTIC_LABEL_COLUMN,
    CameraName,
)

LABEL_COLUMNS = [PANOPTIC_LABEL_COLUMN, PANOPTIC_DIVISOR_COLUMN]

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
            where.label_group, columns=LABEL_COLUMNS
        )
        return _pair(images, where.image_row, labels, where.label_row)

    def read_all(self, locations: list[RowLocation]) -> list[EncodedPair]:
        """The pairs at ``locations``, in order, each row group decompressed once while its
        pairs follow one another (not once a pair). At most four row groups are held.

        For setting a benchmark up (the timed per-item path uses ``read``).
        """
        groups: dict[tuple[str, int, tuple[str, ...]], pa.Table] = {}

        def group(path: str, index: int, columns: list[str]) -> pa.Table:
            key = (path, index, tuple(columns))
            if key not in groups:
                if len(groups) == 4:
                    del groups[next(iter(groups))]  # the oldest
                groups[key] = self._file(path).read_row_group(index, columns=columns)
            return groups[key]

        pairs = []
        for where in locations:
            images = group(where.image_path, where.image_group, [IMAGE_COLUMN])
            labels = group(where.label_path, where.label_group, LABEL_COLUMNS)
            pairs.append(_pair(images, where.image_row, labels, where.label_row))
        return pairs

    def close(self) -> None:
        """Forget the open files (they close when collected)."""
        self._files.clear()

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_files": {}}


def _pair(images: pa.Table, image_row: int, labels: pa.Table, label_row: int) -> EncodedPair:
    return (
        images[IMAGE_COLUMN][image_row].as_py(),
        labels[PANOPTIC_LABEL_COLUMN][label_row].as_py(),
        labels[PANOPTIC_DIVISOR_COLUMN][label_row].as_py(),
    )
