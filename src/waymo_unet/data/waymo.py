"""Facts about the Waymo Open Dataset v2 camera parquet files, in one place.

Column names, camera and class enums and the Arrow schemas of the two components this
project reads. Everything else (reader, generator, catalogue) imports them from here.
"""

from __future__ import annotations

from enum import IntEnum

import pyarrow as pa

CAMERA_IMAGE = "camera_image"
CAMERA_SEGMENTATION = "camera_segmentation"
SPLITS = ("training", "validation", "testing")

KEY_SEGMENT = "key.segment_context_name"
KEY_TIMESTAMP = "key.frame_timestamp_micros"
KEY_CAMERA = "key.camera_name"
KEY_COLUMNS = (KEY_SEGMENT, KEY_TIMESTAMP, KEY_CAMERA)

_IMAGE = "[CameraImageComponent]"
_LABEL = "[CameraSegmentationLabelComponent]"
IMAGE_COLUMN = f"{_IMAGE}.image"
PANOPTIC_LABEL_COLUMN = f"{_LABEL}.panoptic_label"
PANOPTIC_DIVISOR_COLUMN = f"{_LABEL}.panoptic_label_divisor"
# An 8-bit PNG: per pixel, how many cameras see the point (1 or 2). Optional.
NUM_CAMERAS_COVERED_COLUMN = f"{_LABEL}.num_cameras_covered"

# Columns ingestion needs; a file lacking one of them is rejected by name.
REQUIRED_COLUMNS = {
    CAMERA_IMAGE: (*KEY_COLUMNS, IMAGE_COLUMN),
    CAMERA_SEGMENTATION: (*KEY_COLUMNS, PANOPTIC_DIVISOR_COLUMN, PANOPTIC_LABEL_COLUMN),
}


class CameraName(IntEnum):
    """``dataset.proto`` CameraName.Name; 0 (UNKNOWN) never appears in camera rows."""

    FRONT = 1
    FRONT_LEFT = 2
    FRONT_RIGHT = 3
    SIDE_LEFT = 4
    SIDE_RIGHT = 5


# CameraSegmentation.Type from camera_segmentation.proto.
SEMANTIC_CLASSES: dict[int, str] = {
    0: "UNDEFINED",
    1: "EGO_VEHICLE",
    2: "CAR",
    3: "TRUCK",
    4: "BUS",
    5: "OTHER_LARGE_VEHICLE",
    6: "BICYCLE",
    7: "MOTORCYCLE",
    8: "TRAILER",
    9: "PEDESTRIAN",
    10: "CYCLIST",
    11: "MOTORCYCLIST",
    12: "BIRD",
    13: "GROUND_ANIMAL",
    14: "CONSTRUCTION_CONE_POLE",
    15: "POLE",
    16: "PEDESTRIAN_OBJECT",
    17: "SIGN",
    18: "TRAFFIC_LIGHT",
    19: "BUILDING",
    20: "ROAD",
    21: "LANE_MARKER",
    22: "ROAD_MARKER",
    23: "SIDEWALK",
    24: "VEGETATION",
    25: "SKY",
    26: "GROUND",
    27: "DYNAMIC",
    28: "STATIC",
}
UNDEFINED = 0
CLASS_ID = {name: class_id for class_id, name in SEMANTIC_CLASSES.items()}

_KEY_FIELDS = [
    pa.field(KEY_SEGMENT, pa.string()),
    pa.field(KEY_TIMESTAMP, pa.int64()),
    pa.field(KEY_CAMERA, pa.int8()),
]
_XYZ = ("x", "y", "z")

CAMERA_IMAGE_SCHEMA = pa.schema(
    [
        *_KEY_FIELDS,
        pa.field(IMAGE_COLUMN, pa.binary()),
        pa.field(f"{_IMAGE}.pose.transform", pa.list_(pa.float64(), 16)),
        *(pa.field(f"{_IMAGE}.velocity.linear_velocity.{a}", pa.float32()) for a in _XYZ),
        *(pa.field(f"{_IMAGE}.velocity.angular_velocity.{a}", pa.float64()) for a in _XYZ),
        pa.field(f"{_IMAGE}.pose_timestamp", pa.float64()),
        *(
            pa.field(f"{_IMAGE}.rolling_shutter_params.{name}", pa.float64())
            for name in ("shutter", "camera_trigger_time", "camera_readout_done_time")
        ),
    ]
)

CAMERA_SEGMENTATION_SCHEMA = pa.schema(
    [
        *_KEY_FIELDS,
        pa.field(PANOPTIC_DIVISOR_COLUMN, pa.int32()),
        pa.field(PANOPTIC_LABEL_COLUMN, pa.binary()),
        *(
            pa.field(f"{_LABEL}.instance_id_to_global_id_mapping.{name}", pa.list_(kind))
            for name, kind in (
                ("local_instance_ids", pa.int32()),
                ("global_instance_ids", pa.int32()),
                ("is_tracked", pa.bool_()),
            )
        ),
        pa.field(f"{_LABEL}.sequence_id", pa.string()),
        pa.field(NUM_CAMERAS_COVERED_COLUMN, pa.binary()),
    ]
)
