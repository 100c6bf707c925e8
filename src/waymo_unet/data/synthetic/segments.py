"""A segment's plan, the vehicle's drive through it and its rendered camera shots."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np

from waymo_unet.data.synthetic.scene import SceneLayout

FRAME_INTERVAL_MICROS = 100_000


@dataclass(frozen=True)
class SegmentPlan:
    """One segment to write: split, real-looking name, start time and labelled runs."""

    split: str
    name: str
    start_micros: int
    labelled_runs: tuple[tuple[int, ...], ...]  # empty: no camera_segmentation file
    seed_key: tuple[int, ...]

    @property
    def labelled_frames(self) -> frozenset[int]:
        """Indices of the frames that carry labels."""
        return frozenset(frame for run in self.labelled_runs for frame in run)

    def timestamp(self, frame: int) -> int:
        """The frame's timestamp in microseconds since the epoch."""
        return self.start_micros + frame * FRAME_INTERVAL_MICROS

    def sequence_id(self, frame: int) -> str:
        """A stable id shared by the frames of one labelled run."""
        run = next(i for i, frames in enumerate(self.labelled_runs) if frame in frames)
        return hashlib.sha1(f"{self.name}/{run}".encode()).hexdigest()[:24]


@dataclass(frozen=True)
class EgoMotion:
    """The vehicle's drive through a segment: start pose, speed and turn rate."""

    origin: tuple[float, float, float]
    heading: float  # radians
    speed: float  # metres per second
    yaw_rate: float  # radians per second
    shutter: float  # exposure in seconds

    def pose(self, elapsed: float) -> list[float]:
        """Row-major 4x4 vehicle-to-world transform ``elapsed`` seconds in."""
        yaw = self.heading + self.yaw_rate * elapsed
        mid = self.heading + self.yaw_rate * elapsed / 2
        x = self.origin[0] + self.speed * elapsed * math.cos(mid)
        y = self.origin[1] + self.speed * elapsed * math.sin(mid)
        cos, sin = math.cos(yaw), math.sin(yaw)
        return [
            cos,
            -sin,
            0.0,
            x,
            sin,
            cos,
            0.0,
            y,
            0.0,
            0.0,
            1.0,
            self.origin[2],
            0.0,
            0.0,
            0.0,
            1.0,
        ]

    def velocity(self, elapsed: float) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Linear (m/s, world frame) and angular (rad/s) velocity ``elapsed`` seconds in."""
        yaw = self.heading + self.yaw_rate * elapsed
        linear = (self.speed * math.cos(yaw), self.speed * math.sin(yaw), 0.01)
        return linear, (0.001, -0.002, self.yaw_rate)


@dataclass(frozen=True)
class Shot:
    """One rendered camera image of one frame, with its label and layout."""

    frame: int
    camera: int
    rgb: np.ndarray
    panoptic: np.ndarray
    layout: SceneLayout


def sample_ego_motion(rng: np.random.Generator) -> EgoMotion:
    """A plausible drive: somewhere in a city-sized map, 3-15 m/s, gently turning."""
    origin = (rng.uniform(-8000, 8000), rng.uniform(-8000, 8000), rng.uniform(-5, 60))
    return EgoMotion(
        origin=origin,
        heading=rng.uniform(-math.pi, math.pi),
        speed=rng.uniform(3.0, 15.0),
        yaw_rate=rng.uniform(-0.05, 0.05),
        shutter=rng.uniform(0.0008, 0.008),
    )
