"""Waymo v2 rows of a shot (JPEG, panoptic PNG, pose, timing) and their parquet files."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from waymo_unet.data.synthetic.scene import CAR, PANOPTIC_DIVISOR, PEDESTRIAN
from waymo_unet.data.synthetic.segments import EgoMotion, SegmentPlan, Shot
from waymo_unet.data.waymo import (
    CAMERA_IMAGE_SCHEMA,
    CAMERA_SEGMENTATION_SCHEMA,
    IMAGE_COLUMN,
    KEY_CAMERA,
    KEY_SEGMENT,
    KEY_TIMESTAMP,
    PANOPTIC_DIVISOR_COLUMN,
    PANOPTIC_LABEL_COLUMN,
    CameraName,
)

INDEX_COLUMN = "index"
COMPRESSION = "BROTLI"
# Which image edges (left, right) a camera shares with a neighbouring camera.
OVERLAPPING_EDGES = {
    CameraName.FRONT: (True, True),
    CameraName.FRONT_LEFT: (True, True),
    CameraName.FRONT_RIGHT: (True, True),
    CameraName.SIDE_LEFT: (False, True),
    CameraName.SIDE_RIGHT: (True, False),
}
CAMERA_TRIGGER_DELAY_S = {1: 0.030, 2: 0.018, 3: 0.042, 4: 0.006, 5: 0.054}
READOUT_DURATION_S = 0.024
TRACKED_CLASSES = frozenset({CAR, PEDESTRIAN})


def encode_jpeg(rgb: np.ndarray, quality: int) -> bytes:
    """JPEG bytes of an RGB uint8 image."""
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=quality, optimize=True)
    return buffer.getvalue()


def encode_png(array: np.ndarray) -> bytes:
    """Single-channel PNG bytes (8- or 16-bit, from the array's dtype)."""
    ok, buffer = cv2.imencode(".png", array, [cv2.IMWRITE_PNG_COMPRESSION, 6])
    if not ok:
        raise ValueError(f"could not encode a {array.dtype} {array.shape} array as PNG")
    return buffer.tobytes()


def cameras_covered(width: int, height: int, camera: int) -> np.ndarray:
    """Per pixel, how many cameras see it: 2 along edges shared with a neighbour, else 1."""
    covered = np.ones((height, width), dtype=np.uint8)
    overlap = max(1, round(0.08 * width))
    left, right = OVERLAPPING_EDGES[CameraName(camera)]
    if left:
        covered[:, :overlap] = 2
    if right:
        covered[:, -overlap:] = 2
    return covered


def _column(schema: pa.Schema, suffix: str) -> str:
    """The one column of ``schema`` whose name ends with ``suffix``."""
    matches = [name for name in schema.names if name.endswith(suffix)]
    if len(matches) != 1:
        raise KeyError(f"{len(matches)} columns end with {suffix!r}")
    return matches[0]


def _keys(plan: SegmentPlan, shot: Shot) -> dict[str, object]:
    """The three join keys of a row."""
    return {
        KEY_SEGMENT: plan.name,
        KEY_TIMESTAMP: plan.timestamp(shot.frame),
        KEY_CAMERA: shot.camera,
    }


def image_row(
    plan: SegmentPlan, shot: Shot, ego: EgoMotion, jpeg_quality: int
) -> dict[str, object]:
    """A camera_image row: JPEG, vehicle pose, velocities and rolling-shutter timing."""
    trigger = plan.timestamp(shot.frame) / 1e6 + CAMERA_TRIGGER_DELAY_S[shot.camera]
    readout_done = trigger + ego.shutter + READOUT_DURATION_S
    pose_time = (trigger + readout_done) / 2
    elapsed = pose_time - plan.start_micros / 1e6
    linear, angular = ego.velocity(elapsed)
    values: dict[str, object] = {
        "pose.transform": ego.pose(elapsed),
        "pose_timestamp": pose_time,
        "rolling_shutter_params.shutter": ego.shutter,
        "rolling_shutter_params.camera_trigger_time": trigger,
        "rolling_shutter_params.camera_readout_done_time": readout_done,
    }
    for axis, linear_value, angular_value in zip("xyz", linear, angular, strict=True):
        values[f"linear_velocity.{axis}"] = linear_value
        values[f"angular_velocity.{axis}"] = angular_value
    row = {_column(CAMERA_IMAGE_SCHEMA, suffix): value for suffix, value in values.items()}
    return {**_keys(plan, shot), IMAGE_COLUMN: encode_jpeg(shot.rgb, jpeg_quality), **row}


def label_row(plan: SegmentPlan, shot: Shot) -> dict[str, object]:
    """A camera_segmentation row: panoptic PNG, instance mapping, sequence and coverage."""
    present = np.unique(shot.panoptic % PANOPTIC_DIVISOR)
    things = {thing.instance_id: thing for thing in shot.layout.things}
    local_ids = [int(i) for i in present if i != 0]
    height, width = shot.panoptic.shape
    values: dict[str, object] = {
        "local_instance_ids": local_ids,
        "global_instance_ids": [things[i].global_id for i in local_ids],
        "is_tracked": [things[i].class_id in TRACKED_CLASSES for i in local_ids],
        "sequence_id": plan.sequence_id(shot.frame),
        "num_cameras_covered": encode_png(cameras_covered(width, height, shot.camera)),
    }
    row = {_column(CAMERA_SEGMENTATION_SCHEMA, suffix): value for suffix, value in values.items()}
    label = {
        PANOPTIC_DIVISOR_COLUMN: PANOPTIC_DIVISOR,
        PANOPTIC_LABEL_COLUMN: encode_png(shot.panoptic),
    }
    return {**_keys(plan, shot), **label, **row}


def to_arrow(rows: list[dict[str, object]], schema: pa.Schema) -> pa.Table:
    """Rows as a table with exactly ``schema`` plus the pandas string index ``index``."""
    index = pd.Index(
        [f"{row[KEY_SEGMENT]};{row[KEY_TIMESTAMP]}" for row in rows], name=INDEX_COLUMN
    )
    frame = pd.DataFrame(rows, index=index, columns=schema.names)
    target = schema.append(pa.field(INDEX_COLUMN, pa.string()))
    return pa.Table.from_pandas(frame, schema=target, preserve_index=True)


def write_table(table: pa.Table, path: Path, rows_per_row_group: int) -> Path:
    """Write BROTLI parquet in several row groups, via a temporary name, like the release."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    pq.write_table(table, partial, compression=COMPRESSION, row_group_size=rows_per_row_group)
    partial.replace(path)
    return path
