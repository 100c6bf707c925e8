"""Image/label pairs of one segment: which rows pair up, their bytes, their decoding.

Ingestion and evaluation both join a segment's ``camera_image`` and
``camera_segmentation`` rows on (timestamp, camera) with ``match_rows``, read each
pair's bytes with ``read_pair_bytes`` and refuse an unusable pair by its headers with
``check_pair_bytes`` before anything is inflated.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from functools import lru_cache
from itertools import groupby
from operator import attrgetter
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

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
from waymo_unet.data.parquet import (
    INVALID_CAMERA,
    ComponentFile,
    empty_keys,
    read_row_groups,
)
from waymo_unet.data.segment_result import SegmentResult
from waymo_unet.data.waymo import CAMERA_IMAGE, CAMERA_SEGMENTATION, IMAGE_COLUMN

KEYS = ["timestamp", "camera"]


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
