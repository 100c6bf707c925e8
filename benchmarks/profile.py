"""What ``python -m benchmarks`` measures, and how much: its options and their profiles.

``--quick`` keeps the input and the model runs small (about 5 minutes on 2 cores);
without it the input is a few real-sized segments and the model runs at full size. On a
GPU the model sections run at the ingestion size with larger batches.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks.input_data import InputConfig
from benchmarks.remote_storage import RemoteStorage
from waymo_unet.data.parallel import available_cores

if TYPE_CHECKING:
    from waymo_unet.models.unet import UNetConfig

DEFAULT_JSON = Path(__file__).parent / "results" / "latest.json"
WAYMO_CLASSES = 28  # Waymo's semantic classes after UNDEFINED


@dataclass(frozen=True)
class Profile:
    """Sizes and repetitions of every section."""

    name: str
    input: InputConfig
    height: int = 512
    width: int = 768
    workers: tuple[int, ...] = (1,)
    ingestion_repeats: int = 3  # each ingestion case; its row is the median run
    remote_storage: RemoteStorage | None = field(default_factory=RemoteStorage)  # None: skip
    loader_batch: int = 8
    shard_epochs: int = 3
    decode_epochs: int = 1
    step_size: tuple[int, int] = (512, 768)
    step_batch: int = 2
    step_warmup: int = 1
    step_steps: int = 2
    emulated_bf16: str = "shrink"
    compile: bool = False
    inference_size: tuple[int, int] = (512, 768)
    inference_batch: int = 2
    inference_warmup: int = 1
    inference_iterations: int = 2
    evaluation_segments: int = 1  # scores their labelled frames, from the cameras below
    evaluation_batch: int = 4
    evaluation_repeats: int = 3  # each path, alternating; its row is the median run
    evaluation_cameras: tuple[int, ...] = (1, 2, 3, 4, 5)
    base_channels: int = 32
    depth: int = 4
    epochs: int = 20

    def unet(self) -> UNetConfig:
        """The U-Net every model section runs: Waymo's classes, the profile's width."""
        from waymo_unet.models.unet import UNetConfig

        return UNetConfig(WAYMO_CLASSES, base_channels=self.base_channels, depth=self.depth)


QUICK = Profile(
    "quick",
    InputConfig(segments=6, distinct_frames=2),  # 50 frames, one labelled run of 5
    shard_epochs=3,
    step_size=(256, 384),
    step_steps=4,
    emulated_bf16="skip",
    inference_size=(256, 384),
    inference_iterations=3,
    evaluation_repeats=2,
    evaluation_cameras=(1, 4),  # one of each size: 10 images
)
FULL = Profile(
    "full",
    InputConfig(
        frames_per_segment=200, labelled_runs=4, frames_per_row_group=40, distinct_frames=4
    ),
    shard_epochs=5,
    decode_epochs=2,
    step_steps=3,
    inference_batch=4,
    inference_iterations=3,
    evaluation_repeats=2,
    evaluation_cameras=(1, 4),  # 40 images at 512x768: about a second each on a CPU
)


def make_profile(args: argparse.Namespace, cuda: bool) -> Profile:
    """The --quick or full profile for this machine, with the command line's overrides."""
    cores = available_cores()
    workers = tuple(sorted({1, args.workers or cores}))
    profile = replace(
        QUICK if args.quick else FULL,
        workers=workers,
        height=args.height,
        width=args.width,
        epochs=args.epochs,
        compile=args.compile,
    )
    if cuda:  # the model at the ingestion size: a GPU has the speed for it
        profile = replace(
            profile,
            step_size=(profile.height, profile.width),
            step_batch=16 if not args.quick else 8,
            step_warmup=3,
            step_steps=10 if args.quick else 30,
            inference_size=(profile.height, profile.width),
            inference_batch=16,
            inference_warmup=3,
            inference_iterations=10 if args.quick else 30,
            evaluation_segments=2 if args.quick else 4,
            evaluation_repeats=3,
            evaluation_cameras=(1, 2, 3, 4, 5),
        )
    return profile


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="All benchmarks on one generated input, in one run.",
    )
    parser.add_argument("--quick", action="store_true", help="small input and model runs")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="results file")
    parser.add_argument(
        "--input-dir", type=Path, help="generate the input here, or reuse it if already there"
    )
    parser.add_argument("--height", type=int, default=512)
    parser.add_argument("--width", type=int, default=768)
    parser.add_argument("--epochs", type=int, default=20, help="epochs of the estimated run")
    parser.add_argument("--workers", type=int, help="N for ingestion (default: all cores)")
    parser.add_argument("--compile", action="store_true", help="also measure torch.compile")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    return parser.parse_args(argv)
