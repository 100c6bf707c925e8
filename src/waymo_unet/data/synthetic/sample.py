"""The whole sample: its settings, its segments' plans, and rendering and writing them."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from waymo_unet.data.synthetic.drawing import draw_scene
from waymo_unet.data.synthetic.files import image_row, label_row, to_arrow, write_table
from waymo_unet.data.synthetic.scene import FRONT_CAMERAS, sample_layout
from waymo_unet.data.synthetic.segments import SegmentPlan, Shot, sample_ego_motion
from waymo_unet.data.waymo import (
    CAMERA_IMAGE,
    CAMERA_IMAGE_SCHEMA,
    CAMERA_SEGMENTATION,
    CAMERA_SEGMENTATION_SCHEMA,
    CameraName,
)

logger = logging.getLogger(__name__)

# Real files store the cameras of a frame in this order.
CAMERA_ROW_ORDER = (
    CameraName.FRONT,
    CameraName.FRONT_LEFT,
    CameraName.SIDE_LEFT,
    CameraName.FRONT_RIGHT,
    CameraName.SIDE_RIGHT,
)
# Independent random streams of a segment (the last part of its seed key).
PLAN_STREAM, LAYOUT_STREAM, NOISE_STREAM, EGO_STREAM = 0, 1, 2, 3


@dataclass(frozen=True)
class SyntheticConfig:
    """What to generate: segment counts per split, frames, labelled runs, image sizes."""

    seed: int = 0
    training_segments: int = 4  # labelled training segments
    validation_segments: int = 2  # labelled validation segments
    unlabelled_segments: int = 1  # extra training segments: camera_image only
    frames_per_segment: int = 12
    labelled_runs_per_segment: int = 2
    labelled_run_length: int = 3  # consecutive labelled frames in one run
    front_size: tuple[int, int] = (240, 160)  # width, height (1920x1280 scaled)
    side_size: tuple[int, int] = (240, 111)  # width, height (1920x886 scaled)
    rows_per_row_group: int = 20
    jpeg_quality: int = 75

    def __post_init__(self) -> None:
        runs, length = self.labelled_runs_per_segment, self.labelled_run_length
        if runs < 1 or length < 1:
            raise ValueError("need at least one labelled run of at least one frame")
        if self.frames_per_segment < runs * (length + 1):
            raise ValueError(
                f"{self.frames_per_segment} frames cannot hold {runs} separate runs of "
                f"{length} labelled frames and leave unlabelled frames between them"
            )
        if min(*self.front_size, *self.side_size) < 32:
            raise ValueError("images must be at least 32 pixels wide and high")
        if self.rows_per_row_group < 1:
            raise ValueError("rows_per_row_group must be positive")

    def image_size(self, camera: int) -> tuple[int, int]:
        """Width and height of ``camera``'s images."""
        return self.front_size if camera in FRONT_CAMERAS else self.side_size


def _rng(seed: int, *key: int) -> np.random.Generator:
    """An independent generator for one part of the sample, fixed by ``seed`` and ``key``."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def plan_segments(config: SyntheticConfig) -> list[SegmentPlan]:
    """Labelled training, unlabelled training and labelled validation segments."""
    kinds = (
        ("training", True, config.training_segments),
        ("training", False, config.unlabelled_segments),
        ("validation", True, config.validation_segments),
    )
    plans = []
    for kind, (split, labelled, count) in enumerate(kinds):
        for number in range(count):
            key = (kind, number)
            rng = _rng(config.seed, *key, PLAN_STREAM)
            name, start = _segment_name(rng), _start_micros(rng)
            runs = choose_labelled_runs(rng, config) if labelled else ()
            plans.append(SegmentPlan(split, name, start, runs, key))
    return plans


def _segment_name(rng: np.random.Generator) -> str:
    """A name shaped like ``1024360143612057520_3580_000_3600_000``."""
    context = f"{int(rng.integers(1, 10))}{int(rng.integers(0, 10**18)):018d}"
    start = int(rng.integers(0, 9980))
    return f"{context}_{start:04d}_000_{start + 20:04d}_000"


def _start_micros(rng: np.random.Generator) -> int:
    """A microsecond epoch timestamp in the years the dataset was recorded (2017-2019)."""
    return int(rng.integers(1_500_000_000, 1_560_000_000)) * 1_000_000 + int(
        rng.integers(0, 1_000_000)
    )


def choose_labelled_runs(
    rng: np.random.Generator, config: SyntheticConfig
) -> tuple[tuple[int, ...], ...]:
    """Short runs of consecutive labelled frames, one per equal chunk, never touching."""
    chunk = config.frames_per_segment // config.labelled_runs_per_segment
    slack = chunk - config.labelled_run_length  # >= 1, checked by SyntheticConfig
    runs = []
    for run in range(config.labelled_runs_per_segment):
        start = run * chunk + int(rng.integers(0, slack))
        runs.append(tuple(range(start, start + config.labelled_run_length)))
    return tuple(runs)


def render_segment(plan: SegmentPlan, config: SyntheticConfig) -> list[Shot]:
    """All frames x cameras of a segment, in file order (time, then camera row order)."""
    layouts = {
        camera: sample_layout(
            _rng(config.seed, *plan.seed_key, LAYOUT_STREAM, camera),
            *config.image_size(camera),
            camera,
        )
        for camera in CAMERA_ROW_ORDER
    }
    shots = []
    for frame in range(config.frames_per_segment):
        for camera in CAMERA_ROW_ORDER:
            noise = _rng(config.seed, *plan.seed_key, NOISE_STREAM, frame, camera)
            rgb, panoptic = draw_scene(layouts[camera], frame, noise)
            shots.append(Shot(frame, int(camera), rgb, panoptic, layouts[camera]))
    return shots


def write_segment(out_dir: Path, plan: SegmentPlan, config: SyntheticConfig) -> list[Path]:
    """Render a segment and write its camera_image (and camera_segmentation) file."""
    shots = render_segment(plan, config)
    ego = sample_ego_motion(_rng(config.seed, *plan.seed_key, EGO_STREAM))
    split_dir = out_dir / plan.split
    images = [image_row(plan, shot, ego, config.jpeg_quality) for shot in shots]
    path = split_dir / CAMERA_IMAGE / f"{plan.name}.parquet"
    written = [write_table(to_arrow(images, CAMERA_IMAGE_SCHEMA), path, config.rows_per_row_group)]
    if plan.labelled_runs:
        labels = [label_row(plan, shot) for shot in shots if shot.frame in plan.labelled_frames]
        path = split_dir / CAMERA_SEGMENTATION / f"{plan.name}.parquet"
        table = to_arrow(labels, CAMERA_SEGMENTATION_SCHEMA)
        written.append(write_table(table, path, config.rows_per_row_group))
    return written


def generate_sample(out_dir: str | Path, config: SyntheticConfig = SyntheticConfig()) -> list[Path]:
    """Write the whole synthetic sample under ``out_dir`` and return the files written."""
    out = Path(out_dir)
    written: list[Path] = []
    for plan in plan_segments(config):
        written.extend(write_segment(out, plan, config))
        logger.debug("wrote %s segment %s", plan.split, plan.name)
    size = sum(path.stat().st_size for path in written)
    logger.info(
        "wrote %d files, %.2f MiB, under %s (seed %d)", len(written), size / 2**20, out, config.seed
    )
    return written
