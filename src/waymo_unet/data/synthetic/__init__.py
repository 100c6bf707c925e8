"""A small, deterministic synthetic sample in the Waymo Open Dataset v2 camera layout.

Writes ``<out>/<split>/camera_image/<segment>.parquet`` and, for labelled segments,
``<out>/<split>/camera_segmentation/<segment>.parquet`` with exactly the Arrow schemas of
:mod:`waymo_unet.data.waymo`, so the project's readers run on it unchanged. Every image is
a cartoon street scene drawn at once on the RGB image and on its panoptic label, each
class with its own colour or texture, so that a small U-Net can learn it.

``scene`` lays out one camera's view and ``drawing`` draws it; ``segments`` holds a
segment's plan, drive and shots, ``files`` turns shots into rows and parquet files, and
``sample`` plans the whole sample and writes it.

Run it with ``python -m waymo_unet.data.synthetic --out data/01_raw [--seed N]``.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from waymo_unet.data.synthetic.drawing import draw_scene, render_scene
from waymo_unet.data.synthetic.files import image_row, label_row, to_arrow, write_table
from waymo_unet.data.synthetic.sample import (
    CAMERA_ROW_ORDER,
    SyntheticConfig,
    generate_sample,
    plan_segments,
)
from waymo_unet.data.synthetic.scene import SceneLayout, sample_layout
from waymo_unet.data.synthetic.segments import SegmentPlan, Shot, sample_ego_motion

__all__ = [
    "CAMERA_ROW_ORDER",
    "SceneLayout",
    "SegmentPlan",
    "Shot",
    "SyntheticConfig",
    "draw_scene",
    "generate_sample",
    "image_row",
    "label_row",
    "main",
    "plan_segments",
    "render_scene",
    "sample_ego_motion",
    "sample_layout",
    "to_arrow",
    "write_table",
]


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: ``python -m waymo_unet.data.synthetic --out data/01_raw``."""
    parser = argparse.ArgumentParser(
        prog="python -m waymo_unet.data.synthetic",
        description="Write a synthetic Waymo v2 camera sample.",
    )
    parser.add_argument("--out", type=Path, default=Path("data/01_raw"), help="root folder")
    parser.add_argument("--seed", type=int, default=SyntheticConfig.seed, help="random seed")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    generate_sample(args.out, SyntheticConfig(seed=args.seed))
