"""Hand-built Waymo v2 component files for tests that need exact, odd or broken rows."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from waymo_unet.data import waymo

SEGMENT = "1000000000000000001_1000_000_1020_000"
FRAME_0 = 1_550_000_000_000_000


def camera_jpeg(height: int, width: int, seed: int = 0) -> bytes:
    """A JPEG with smooth random colours, so decoding is exercised for real."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    rgb = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def panoptic_png(height: int, width: int, top_class: int = 25, bottom_class: int = 20) -> bytes:
    """A 16-bit label: ``top_class`` above the middle row, ``bottom_class`` below."""
    panoptic = np.full((height, width), bottom_class * 1000, np.uint16)
    panoptic[: height // 2] = top_class * 1000
    ok, encoded = cv2.imencode(".png", panoptic)
    assert ok
    return encoded.tobytes()


def image_row(frame: int, camera: int | str, height: int = 32, width: int = 48) -> dict[str, Any]:
    return {
        waymo.KEY_SEGMENT: SEGMENT,
        waymo.KEY_TIMESTAMP: FRAME_0 + frame * 100_000,
        waymo.KEY_CAMERA: camera,
        waymo.IMAGE_COLUMN: camera_jpeg(
            height, width, seed=frame * 10 + (camera if isinstance(camera, int) else len(camera))
        ),
    }


def label_row(frame: int, camera: int | str, height: int = 32, width: int = 48) -> dict[str, Any]:
    return {
        waymo.KEY_SEGMENT: SEGMENT,
        waymo.KEY_TIMESTAMP: FRAME_0 + frame * 100_000,
        waymo.KEY_CAMERA: camera,
        waymo.PANOPTIC_DIVISOR_COLUMN: 1000,
        waymo.PANOPTIC_LABEL_COLUMN: panoptic_png(height, width),
    }


def write_component(
    path: Path,
    rows: list[dict[str, Any]],
    schema: pa.Schema,
    row_group_size: int | None = None,
) -> Path:
    """Write rows with the component's exact schema (absent columns null).

    A string camera column (the enum's name, as some public files have) is kept.
    """
    if rows and isinstance(rows[0][waymo.KEY_CAMERA], str):
        index = schema.get_field_index(waymo.KEY_CAMERA)
        schema = schema.set(index, pa.field(waymo.KEY_CAMERA, pa.string()))
    table = pa.Table.from_pylist(rows, schema=schema)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="BROTLI", row_group_size=row_group_size)
    return path


def write_segment(
    root: Path,
    image_rows: list[dict[str, Any]],
    label_rows: list[dict[str, Any]] | None,
    split: str = "training",
    segment: str = SEGMENT,
    row_group_size: int | None = None,
) -> tuple[Path, Path | None]:
    """Write a segment's camera_image file and, unless None, its camera_segmentation file."""
    image_path = write_component(
        root / split / waymo.CAMERA_IMAGE / f"{segment}.parquet",
        image_rows,
        waymo.CAMERA_IMAGE_SCHEMA,
        row_group_size,
    )
    label_path = None
    if label_rows is not None:
        label_path = write_component(
            root / split / waymo.CAMERA_SEGMENTATION / f"{segment}.parquet",
            label_rows,
            waymo.CAMERA_SEGMENTATION_SCHEMA,
            row_group_size,
        )
    return image_path, label_path
