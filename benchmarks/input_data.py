"""Benchmark input in the real Waymo v2 shape, made with the project's synthetic generator.

Full-size JPEGs (1920x1280 for cameras 1-3, 1920x886 for cameras 4-5) and uint16 panoptic
PNGs, BROTLI, several row groups per file, frames in time order, labels on short runs of
consecutive frames (about one frame in ten, like real training segments).

Rendering a full-size scene takes about a second per frame of five cameras, so each
camera renders a few distinct frames and the others are shifted copies of them (rolled
sideways by a step that is not a multiple of 8, so every JPEG's bytes differ and neither
parquet dictionaries nor BROTLI can share them between rows).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import numpy as np

from waymo_unet.data.parallel import map_unordered, resolve_workers
from waymo_unet.data.synthetic import (
    CAMERA_ROW_ORDER,
    SceneLayout,
    SegmentPlan,
    Shot,
    SyntheticConfig,
    draw_scene,
    image_row,
    label_row,
    plan_segments,
    sample_ego_motion,
    sample_layout,
    to_arrow,
    write_table,
)
from waymo_unet.data.waymo import (
    CAMERA_IMAGE,
    CAMERA_IMAGE_SCHEMA,
    CAMERA_SEGMENTATION,
    CAMERA_SEGMENTATION_SCHEMA,
    IMAGE_COLUMN,
    PANOPTIC_LABEL_COLUMN,
)

logger = logging.getLogger(__name__)

SPLIT = "training"
MANIFEST = "benchmark_input.json"
SHIFT_STEP = 37  # pixels a reused frame moves sideways per reuse; not a multiple of 8


@dataclass(frozen=True)
class InputConfig:
    """How much input to generate and in which layout."""

    segments: int = 4
    frames_per_segment: int = 50
    labelled_runs: int = 1  # runs of consecutive labelled frames per segment
    run_length: int = 5
    frames_per_row_group: int = 10
    distinct_frames: int = 3  # rendered frames per camera and segment; the rest are shifted
    front_size: tuple[int, int] = (1920, 1280)  # width, height of cameras 1-3
    side_size: tuple[int, int] = (1920, 886)  # width, height of cameras 4-5
    jpeg_quality: int = 90  # about 390 KB a JPEG on average, like the real files
    seed: int = 0

    def __post_init__(self) -> None:
        if self.segments < 1 or self.distinct_frames < 1 or self.frames_per_row_group < 1:
            raise ValueError("segments, distinct_frames and frames_per_row_group must be >= 1")

    def synthetic(self) -> SyntheticConfig:
        """The project generator's settings for these segments (all labelled, training)."""
        return SyntheticConfig(
            seed=self.seed,
            training_segments=self.segments,
            validation_segments=0,
            unlabelled_segments=0,
            frames_per_segment=self.frames_per_segment,
            labelled_runs_per_segment=self.labelled_runs,
            labelled_run_length=self.run_length,
            front_size=self.front_size,
            side_size=self.side_size,
            rows_per_row_group=self.frames_per_row_group * len(CAMERA_ROW_ORDER),
            jpeg_quality=self.jpeg_quality,
        )


@dataclass(frozen=True)
class SegmentFiles:
    """One generated segment: its two files and what they hold."""

    segment: str
    image_path: str
    label_path: str
    image_rows: int
    label_rows: int
    row_groups: int
    labelled_frames: tuple[int, ...]
    jpeg_bytes: int  # sum of the JPEG values
    png_bytes: int  # sum of the panoptic PNG values

    @property
    def file_bytes(self) -> int:
        return Path(self.image_path).stat().st_size + Path(self.label_path).stat().st_size


@dataclass(frozen=True)
class BenchmarkInput:
    """The generated input: root folder, settings and its segments."""

    root: str
    config: InputConfig
    segments: tuple[SegmentFiles, ...]
    seconds: float = 0.0
    reused: bool = False

    @property
    def labelled_pairs(self) -> int:
        return sum(s.label_rows for s in self.segments)

    def summary(self) -> dict[str, object]:
        """Counts and sizes for the report."""
        image_rows = sum(s.image_rows for s in self.segments)
        labelled = self.labelled_pairs
        image_file_bytes = sum(Path(s.image_path).stat().st_size for s in self.segments)
        return {
            "segments": len(self.segments),
            "frames_per_segment": self.config.frames_per_segment,
            "image_rows": image_rows,
            "labelled_pairs": labelled,
            "labelled_frame_fraction": labelled / image_rows if image_rows else 0.0,
            "row_groups_per_file": self.segments[0].row_groups,
            "mean_jpeg_kib": sum(s.jpeg_bytes for s in self.segments) / image_rows / 1024,
            "mean_png_kib": sum(s.png_bytes for s in self.segments) / max(labelled, 1) / 1024,
            "camera_image_mib": image_file_bytes / 2**20,
            "all_files_mib": sum(s.file_bytes for s in self.segments) / 2**20,
            "seconds": self.seconds,
            "reused": self.reused,
        }


def write_input(
    root: str | Path, config: InputConfig, workers: int | None = None
) -> BenchmarkInput:
    """Generate the input under ``root`` (or reuse it if made there with the same config)."""
    root = Path(root)
    manifest = root / MANIFEST
    if manifest.exists():
        saved = json.loads(manifest.read_text())
        if saved["config"] == json.loads(json.dumps(asdict(config))):
            segments = tuple(
                SegmentFiles(**{**s, "labelled_frames": tuple(s["labelled_frames"])})
                for s in saved["segments"]
            )
            if all(Path(s.image_path).exists() and Path(s.label_path).exists() for s in segments):
                logger.info("Reusing the benchmark input under %s", root)
                return BenchmarkInput(str(root), config, segments, saved["seconds"], reused=True)
    plans = plan_segments(config.synthetic())
    workers = min(resolve_workers(workers), len(plans))
    logger.info(
        "Generating %d segment(s) x %d frames x 5 cameras at full size under %s (%d process(es))",
        len(plans),
        config.frames_per_segment,
        root,
        workers,
    )
    start = time.perf_counter()
    write = partial(write_input_segment, root=str(root), config=config)
    by_name = {s.segment: s for s in map_unordered(write, plans, workers)}
    segments = tuple(by_name[plan.name] for plan in plans)
    seconds = time.perf_counter() - start
    manifest.write_text(
        json.dumps(
            {
                "config": asdict(config),
                "segments": [asdict(s) for s in segments],
                "seconds": seconds,
            },
            indent=1,
        )
    )
    return BenchmarkInput(str(root), config, segments, seconds)


Base = tuple[SceneLayout, np.ndarray, np.ndarray]  # layout, RGB, panoptic


def render_bases(plan: SegmentPlan, config: InputConfig) -> dict[int, list[Base]]:
    """Per camera, ``distinct_frames`` rendered (layout, rgb, panoptic) frames of one scene."""
    synthetic = config.synthetic()
    rng = np.random.default_rng([config.seed, *plan.seed_key])
    bases = {}
    for camera in CAMERA_ROW_ORDER:
        layout = sample_layout(rng, *synthetic.image_size(camera), int(camera))
        bases[int(camera)] = [
            (layout, *draw_scene(layout, 5 * k, rng)) for k in range(config.distinct_frames)
        ]
    return bases


def frame_shot(bases: dict[int, list[Base]], frame: int, camera: int) -> Shot:
    """Frame ``frame`` of ``camera``: a rendered base frame, shifted when reused."""
    distinct = len(bases[camera])
    layout, rgb, panoptic = bases[camera][frame % distinct]
    shift = (frame // distinct) * SHIFT_STEP % rgb.shape[1]
    if shift:
        rgb, panoptic = np.roll(rgb, shift, axis=1), np.roll(panoptic, shift, axis=1)
    return Shot(frame, camera, rgb, panoptic, layout)


def write_input_segment(plan: SegmentPlan, root: str, config: InputConfig) -> SegmentFiles:
    """Render and write one segment's camera_image and camera_segmentation files."""
    synthetic = config.synthetic()
    bases = render_bases(plan, config)
    ego = sample_ego_motion(np.random.default_rng([config.seed, *plan.seed_key, 1]))
    images, labels = [], []
    for frame in range(config.frames_per_segment):
        for camera in CAMERA_ROW_ORDER:
            shot = frame_shot(bases, frame, int(camera))
            images.append(image_row(plan, shot, ego, config.jpeg_quality))
            if frame in plan.labelled_frames:
                labels.append(label_row(plan, shot))
    split_dir = Path(root) / SPLIT
    image_path = write_table(
        to_arrow(images, CAMERA_IMAGE_SCHEMA),
        split_dir / CAMERA_IMAGE / f"{plan.name}.parquet",
        synthetic.rows_per_row_group,
    )
    label_path = write_table(
        to_arrow(labels, CAMERA_SEGMENTATION_SCHEMA),
        split_dir / CAMERA_SEGMENTATION / f"{plan.name}.parquet",
        synthetic.rows_per_row_group,
    )
    rows_per_group = synthetic.rows_per_row_group
    return SegmentFiles(
        segment=plan.name,
        image_path=str(image_path),
        label_path=str(label_path),
        image_rows=len(images),
        label_rows=len(labels),
        row_groups=-(-len(images) // rows_per_group),
        labelled_frames=tuple(sorted(plan.labelled_frames)),
        jpeg_bytes=sum(len(row[IMAGE_COLUMN]) for row in images),
        png_bytes=sum(len(row[PANOPTIC_LABEL_COLUMN]) for row in labels),
    )
