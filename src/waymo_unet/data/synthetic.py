"""A small, deterministic synthetic sample in the Waymo Open Dataset v2 camera layout.

Writes ``<out>/<split>/camera_image/<segment>.parquet`` and, for labelled segments,
``<out>/<split>/camera_segmentation/<segment>.parquet`` with exactly the Arrow schemas of
:mod:`waymo_unet.data.waymo`, so the project's readers run on it unchanged. Every image is
a cartoon street scene drawn at once on the RGB image and on its panoptic label, each
class with its own colour or texture, so that a small U-Net can learn it.

Run it with ``python -m waymo_unet.data.synthetic --out data/01_raw [--seed N]``.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image, ImageDraw

from waymo_unet.data.waymo import (
    CAMERA_IMAGE,
    CAMERA_IMAGE_SCHEMA,
    CAMERA_SEGMENTATION,
    CAMERA_SEGMENTATION_SCHEMA,
    CLASS_ID,
    IMAGE_COLUMN,
    KEY_CAMERA,
    KEY_SEGMENT,
    KEY_TIMESTAMP,
    PANOPTIC_DIVISOR_COLUMN,
    PANOPTIC_LABEL_COLUMN,
    UNDEFINED,
    CameraName,
)

logger = logging.getLogger(__name__)

Colour = tuple[int, int, int]
Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels
ThingSpec = tuple[int, Box, Colour, float, int]  # class id, box, colour, speed, style

PANOPTIC_DIVISOR = 1000
FRAME_INTERVAL_MICROS = 100_000
INDEX_COLUMN = "index"
COMPRESSION = "BROTLI"
# Real files store the cameras of a frame in this order.
CAMERA_ROW_ORDER = (
    CameraName.FRONT,
    CameraName.FRONT_LEFT,
    CameraName.SIDE_LEFT,
    CameraName.FRONT_RIGHT,
    CameraName.SIDE_RIGHT,
)
FRONT_CAMERAS = frozenset({CameraName.FRONT, CameraName.FRONT_LEFT, CameraName.FRONT_RIGHT})
# Where the road vanishes in a forward camera, as a fraction of the width.
VANISHING_X = {CameraName.FRONT: 0.5, CameraName.FRONT_LEFT: 0.85, CameraName.FRONT_RIGHT: 0.15}
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
# Independent random streams of a segment (the last part of its seed key).
PLAN_STREAM, LAYOUT_STREAM, NOISE_STREAM, EGO_STREAM = 0, 1, 2, 3

SKY = CLASS_ID["SKY"]
BUILDING = CLASS_ID["BUILDING"]
VEGETATION = CLASS_ID["VEGETATION"]
ROAD = CLASS_ID["ROAD"]
LANE_MARKER = CLASS_ID["LANE_MARKER"]
SIDEWALK = CLASS_ID["SIDEWALK"]
CAR = CLASS_ID["CAR"]
PEDESTRIAN = CLASS_ID["PEDESTRIAN"]
POLE = CLASS_ID["POLE"]
SIGN = CLASS_ID["SIGN"]
TRAFFIC_LIGHT = CLASS_ID["TRAFFIC_LIGHT"]
CONE = CLASS_ID["CONSTRUCTION_CONE_POLE"]
TRACKED_CLASSES = frozenset({CAR, PEDESTRIAN})

SKY_TOP, SKY_HORIZON = (70, 125, 205), (160, 200, 240)
BUILDING_COLOURS: tuple[Colour, ...] = ((150, 140, 130), (125, 100, 80), (170, 160, 150))
WINDOW_DARK, WINDOW_LIT = (55, 65, 85), (205, 195, 140)
TRUNK = (95, 65, 35)
SIDEWALK_COLOUR, SIDEWALK_JOINT = (190, 188, 180), (160, 158, 152)
ROAD_COLOUR = (78, 78, 84)
LANE_COLOUR = (240, 240, 235)
CAR_COLOURS: tuple[Colour, ...] = ((175, 25, 30), (30, 55, 165), (225, 225, 232), (120, 20, 115))
CAR_GLASS, WHEEL = (35, 45, 60), (15, 15, 15)
SKIN, TROUSERS = (225, 180, 140), (40, 40, 95)
SHIRT_COLOURS: tuple[Colour, ...] = ((230, 200, 30), (20, 160, 170), (200, 90, 160))
POLE_COLOUR = (40, 40, 46)
SIGN_COLOURS: tuple[Colour, ...] = ((205, 20, 20), (20, 70, 190), (240, 200, 0))
LIGHT_BOX, LAMPS = (25, 25, 20), ((255, 40, 40), (255, 190, 0), (40, 255, 90))
CONE_ORANGE, CONE_STRIPE = (250, 120, 20), (245, 245, 245)
CLUTTER_COLOURS: tuple[Colour, ...] = ((110, 95, 60), (90, 110, 70), (140, 80, 50))


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
class Thing:
    """One countable object: class, instance ids, box at frame 0, colour and motion."""

    class_id: int
    instance_id: int  # local id within the image, 1..N
    global_id: int  # id of the object across the segment
    box: Box
    colour: Colour
    speed: float = 0.0  # pixels per frame on top of the background's motion
    style: int = 0  # sign shape, lit lamp

    @property
    def panoptic(self) -> int:
        """The label value of this object's pixels."""
        return self.class_id * PANOPTIC_DIVISOR + self.instance_id


@dataclass(frozen=True)
class Patch:
    """A coloured box of stuff (a building, a crown blob or an unlabelled object)."""

    box: Box
    colour: Colour
    style: int = 0


@dataclass(frozen=True)
class Tree:
    """A tree: trunk and a crown of overlapping green blobs, all VEGETATION."""

    trunk: Box
    crown: tuple[Patch, ...]


@dataclass(frozen=True)
class ViewGeometry:
    """Where sky, sidewalk and road lie in one camera's view, and how the view moves."""

    width: int
    height: int
    camera: int
    horizon: float  # y where the ground starts
    road_top: float  # y where the road starts (side cameras)
    vanishing_x: float | None  # forward cameras: where the road converges; None: side view
    pan: float  # pixels per frame the static world moves

    @property
    def period(self) -> float:
        """Width of the world strip that wraps around as the scene moves."""
        return 1.5 * self.width

    def moved(self, box: Box, shift: float) -> list[Box]:
        """The visible copies of ``box`` moved by ``shift`` pixels; side views wrap around."""
        if self.vanishing_x is None:
            pad = 0.25 * self.width
            x0 = (box[0] + pad + shift) % self.period - pad
            starts = [x0, x0 - self.period]
        else:
            starts = [box[0] + shift]
        copies = [(x, box[1], x + box[2] - box[0], box[3]) for x in starts]
        return [copy for copy in copies if copy[2] >= 0 and copy[0] < self.width]


@dataclass(frozen=True)
class SceneLayout:
    """Everything in one camera's view of a segment; its frames differ only by motion."""

    view: ViewGeometry
    buildings: tuple[Patch, ...]
    trees: tuple[Tree, ...]
    things: tuple[Thing, ...]  # in drawing order, far to near
    clutter: Patch | None  # an object nobody labelled: UNDEFINED pixels


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


class Canvas:
    """An RGB image and its panoptic label, drawn on together."""

    def __init__(self, width: int, height: int) -> None:
        self.rgb = Image.new("RGB", (width, height))
        self.label = Image.new("I", (width, height), UNDEFINED)
        self._rgb = ImageDraw.Draw(self.rgb)
        self._label = ImageDraw.Draw(self.label)

    def paste(self, rgb: np.ndarray, panoptic: int) -> None:
        """Cover the whole canvas with the image ``rgb``, labelled ``panoptic``."""
        self.rgb.paste(Image.fromarray(rgb))
        self._label.rectangle((0, 0, *self.label.size), fill=panoptic)

    def rectangle(self, box: Box, colour: Colour, panoptic: int | None = None) -> None:
        """Fill ``box``; ``panoptic=None`` paints the image only (texture, details)."""
        box = (box[0], box[1], max(box[0], box[2]), max(box[1], box[3]))
        self._rgb.rectangle(box, fill=colour)
        if panoptic is not None:
            self._label.rectangle(box, fill=panoptic)

    def ellipse(self, box: Box, colour: Colour, panoptic: int | None = None) -> None:
        """Fill the ellipse inscribed in ``box``."""
        box = (box[0], box[1], max(box[0], box[2]), max(box[1], box[3]))
        self._rgb.ellipse(box, fill=colour)
        if panoptic is not None:
            self._label.ellipse(box, fill=panoptic)

    def polygon(
        self, points: Sequence[tuple[float, float]], colour: Colour, panoptic: int | None = None
    ) -> None:
        """Fill the polygon through ``points``."""
        self._rgb.polygon(list(points), fill=colour)
        if panoptic is not None:
            self._label.polygon(list(points), fill=panoptic)


def _rng(seed: int, *key: int) -> np.random.Generator:
    """An independent generator for one part of the sample, fixed by ``seed`` and ``key``."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def _jitter(rng: np.random.Generator, colour: Colour, amount: int = 12) -> Colour:
    """``colour`` with each channel moved by up to ``amount``."""
    moved = np.clip(np.asarray(colour) + rng.integers(-amount, amount + 1, 3), 0, 255)
    return (int(moved[0]), int(moved[1]), int(moved[2]))


def _pick(rng: np.random.Generator, colours: Sequence[Colour]) -> Colour:
    """One of ``colours``, jittered."""
    return _jitter(rng, colours[int(rng.integers(len(colours)))])


# Scene layout -------------------------------------------------------------------------


def sample_layout(rng: np.random.Generator, width: int, height: int, camera: int) -> SceneLayout:
    """Lay out one camera's street scene: skyline, trees, ground and objects."""
    view = sample_view(rng, width, height, camera)
    return SceneLayout(
        view=view,
        buildings=_sample_buildings(rng, view),
        trees=tuple(_sample_tree(rng, view) for _ in range(int(rng.integers(1, 4)))),
        things=_sample_things(rng, view),
        clutter=_sample_clutter(rng, view) if rng.random() < 0.5 else None,
    )


def sample_view(rng: np.random.Generator, width: int, height: int, camera: int) -> ViewGeometry:
    """Horizon and road for ``camera``: perspective ahead, bands and panning to the side."""
    horizon = height * rng.uniform(0.42, 0.5)
    if camera in FRONT_CAMERAS:
        vanishing_x = width * (VANISHING_X[CameraName(camera)] + rng.uniform(-0.05, 0.05))
        return ViewGeometry(width, height, camera, horizon, horizon, vanishing_x, 0.0)
    road_top = horizon + (height - horizon) * rng.uniform(0.35, 0.5)
    speed = rng.uniform(1.0, 2.5) * width / 240
    pan = -speed if camera == CameraName.SIDE_LEFT else speed
    return ViewGeometry(width, height, camera, horizon, road_top, None, pan)


def _sample_buildings(rng: np.random.Generator, view: ViewGeometry) -> tuple[Patch, ...]:
    """Blocks that tile the wrapped world strip, with gaps of sky between some."""
    x, end = -0.25 * view.width, 1.25 * view.width
    blocks = []
    while x < end - 1:
        block_width = min(rng.uniform(0.12, 0.3) * view.width, end - x)
        top = view.horizon * rng.uniform(0.05, 0.75)
        colour, style = _pick(rng, BUILDING_COLOURS), int(rng.integers(7))
        if rng.random() > 0.12:
            blocks.append(Patch((x, top, x + block_width, view.horizon + 1), colour, style))
        x += block_width
    return tuple(blocks)


def _sample_tree(rng: np.random.Generator, view: ViewGeometry) -> Tree:
    """A trunk on the ground line and a crown of several green blobs."""
    x = rng.uniform(-0.25, 1.25) * view.width
    radius = rng.uniform(0.05, 0.1) * view.width
    top = view.horizon * rng.uniform(0.15, 0.5)
    trunk = (
        x - max(1.0, 0.15 * radius),
        top + radius,
        x + max(1.0, 0.15 * radius),
        view.horizon + 1,
    )
    crown = []
    for _ in range(int(rng.integers(4, 8))):
        cx, cy = x + rng.uniform(-1, 1) * radius, top + radius + rng.uniform(-0.6, 0.6) * radius
        r = radius * rng.uniform(0.45, 0.8)
        green = (int(rng.integers(30, 90)), int(rng.integers(105, 165)), int(rng.integers(25, 70)))
        crown.append(Patch((cx - r, cy - r, cx + r, cy + r), green))
    return Tree(trunk, tuple(crown))


def _road_half_width(view: ViewGeometry, y: float) -> float:
    """Half the road's width at row ``y`` in a forward camera."""
    depth = (y - view.horizon) / (view.height - view.horizon)
    return view.width * (0.04 + 0.71 * depth)


def _sample_ground_point(
    rng: np.random.Generator, view: ViewGeometry, on_road: bool
) -> tuple[float, float, float]:
    """A ground contact point (x, y) on the road or the sidewalk, and its scale (0..1]."""
    if view.vanishing_x is None:
        low, high = (view.road_top, view.height) if on_road else (view.horizon, view.road_top)
        y = rng.uniform(low + 0.3 * (high - low), high)
        return rng.uniform(-0.25, 1.25) * view.width, y, 1.0
    depth = rng.uniform(0.15, 0.9)
    y = view.horizon + depth * (view.height - view.horizon)
    half = _road_half_width(view, y)
    if on_road:
        return view.vanishing_x + rng.uniform(-0.8, 0.8) * half, y, depth
    side = 1 if rng.random() < 0.5 else -1
    return view.vanishing_x + side * (half + rng.uniform(0.02, 0.15) * view.width), y, depth


def _sample_things(rng: np.random.Generator, view: ViewGeometry) -> tuple[Thing, ...]:
    """Cars, pedestrians, poles with signs or lights and cones, numbered far to near."""
    groups: list[list[ThingSpec]] = []
    for _ in range(int(rng.integers(1, 4))):
        groups.append([_sample_car(rng, view)])
    for _ in range(int(rng.integers(1, 4))):
        groups.append([_sample_pedestrian(rng, view)])
    for _ in range(int(rng.integers(1, 3))):
        groups.append(_sample_pole(rng, view))
    for _ in range(int(rng.integers(0, 3))):
        groups.append([_sample_cone(rng, view)])
    groups.sort(key=lambda group: group[0][1][3])
    parts = [part for group in groups for part in group]
    return tuple(
        Thing(class_id, local, int(view.camera) * 1000 + local, box, colour, speed, style)
        for local, (class_id, box, colour, speed, style) in enumerate(parts, start=1)
    )


def _standing_box(x: float, y: float, width: float, height: float) -> Box:
    """A box standing on the ground point (x, y), centred on x."""
    return (x - width / 2, y - height, x + width / 2, y)


def _sample_car(rng: np.random.Generator, view: ViewGeometry) -> ThingSpec:
    """A car on the road: seen from behind in forward cameras, from the side otherwise."""
    x, y, scale = _sample_ground_point(rng, view, on_road=True)
    if view.vanishing_x is None:
        height = view.height * rng.uniform(0.26, 0.36)
        width, speed = height * rng.uniform(2.2, 2.8), rng.uniform(-2.0, 2.0)
    else:
        height = max(4.0, scale * 0.45 * view.height)
        width, speed = height * rng.uniform(1.4, 1.7), rng.uniform(-0.4, 0.4)
    return CAR, _standing_box(x, y, width, height), _pick(rng, CAR_COLOURS), speed, 0


def _sample_pedestrian(rng: np.random.Generator, view: ViewGeometry) -> ThingSpec:
    """A person on the sidewalk, walking slowly."""
    x, y, scale = _sample_ground_point(rng, view, on_road=False)
    height = view.height * (rng.uniform(0.3, 0.42) if view.vanishing_x is None else 0.55 * scale)
    height = max(6.0, height)
    box = _standing_box(x, y, max(2.0, 0.3 * height), height)
    return PEDESTRIAN, box, _pick(rng, SHIRT_COLOURS), rng.uniform(-0.8, 0.8), 0


def _sample_pole(rng: np.random.Generator, view: ViewGeometry) -> list[ThingSpec]:
    """A pole on the sidewalk, bare or carrying a sign or a traffic light."""
    x, y, scale = _sample_ground_point(rng, view, on_road=False)
    height = view.height * (rng.uniform(0.55, 0.75) if view.vanishing_x is None else 1.2 * scale)
    width = max(1.5, 0.015 * view.width * (1.0 if view.vanishing_x is None else 2 * scale))
    pole = _standing_box(x, y, width, height)
    parts = [(POLE, pole, _jitter(rng, POLE_COLOUR, 6), 0.0, 0)]
    size = max(4.0, 0.22 * height)
    choice = rng.random()
    if choice < 0.45:
        box = (x - size / 2, pole[1], x + size / 2, pole[1] + size)
        style = int(rng.integers(len(SIGN_COLOURS)))
        parts.append((SIGN, box, _jitter(rng, SIGN_COLOURS[style], 8), 0.0, style))
    elif choice < 0.8:
        box = (x - size / 4, pole[1], x + size / 4, pole[1] + 1.3 * size)
        parts.append((TRAFFIC_LIGHT, box, LIGHT_BOX, 0.0, int(rng.integers(len(LAMPS)))))
    return parts


def _sample_cone(rng: np.random.Generator, view: ViewGeometry) -> ThingSpec:
    """An orange construction cone on the road."""
    x, y, scale = _sample_ground_point(rng, view, on_road=True)
    height = max(5.0, view.height * (0.12 if view.vanishing_x is None else 0.16 * scale))
    return CONE, _standing_box(x, y, 0.65 * height, height), _jitter(rng, CONE_ORANGE, 8), 0.0, 0


def _sample_clutter(rng: np.random.Generator, view: ViewGeometry) -> Patch:
    """A box on the sidewalk that no class covers: its pixels stay UNDEFINED."""
    x, y, scale = _sample_ground_point(rng, view, on_road=False)
    size = max(4.0, view.height * (0.15 if view.vanishing_x is None else 0.2 * scale))
    return Patch(_standing_box(x, y, 1.4 * size, size), _pick(rng, CLUTTER_COLOURS))


# Drawing ---------------------------------------------------------------------------


def draw_scene(
    layout: SceneLayout, frame: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``frame`` of ``layout``: RGB uint8 HxWx3 with sensor noise, panoptic uint16 HxW."""
    view = layout.view
    canvas = Canvas(view.width, view.height)
    shift = view.pan * frame
    _draw_sky(canvas, view)
    for building in layout.buildings:
        for box in view.moved(building.box, shift):
            _draw_building(canvas, Patch(box, building.colour, building.style))
    for tree in layout.trees:
        _draw_tree(canvas, view, tree, shift)
    _draw_ground(canvas, view, frame)
    if layout.clutter is not None:
        for box in view.moved(layout.clutter.box, shift):
            canvas.rectangle(box, layout.clutter.colour, UNDEFINED)
    for thing in layout.things:
        painter = THING_PAINTERS[thing.class_id]
        for box in view.moved(thing.box, shift + thing.speed * frame):
            painter(canvas, thing, box)
    rgb = _add_sensor_noise(np.asarray(canvas.rgb), rng)
    return rgb, np.asarray(canvas.label).astype(np.uint16)


def render_scene(
    rng: np.random.Generator, width: int, height: int, camera: int
) -> tuple[np.ndarray, np.ndarray]:
    """A fresh street scene as RGB uint8 HxWx3 and panoptic uint16 HxW (class*1000+instance)."""
    return draw_scene(sample_layout(rng, width, height, camera), 0, rng)


def _draw_sky(canvas: Canvas, view: ViewGeometry) -> None:
    """A blue gradient, darker at the top, over the whole image (label SKY)."""
    rows = np.clip(np.arange(view.height, dtype=np.float32) / view.horizon, 0.0, 1.0)
    column = np.asarray(SKY_TOP) + rows[:, None] * (np.asarray(SKY_HORIZON) - SKY_TOP)
    gradient = np.broadcast_to(column[:, None, :], (view.height, view.width, 3))
    canvas.paste(gradient.astype(np.uint8), SKY * PANOPTIC_DIVISOR)


def _draw_building(canvas: Canvas, block: Patch) -> None:
    """A block with a grid of dark (some lit) windows."""
    canvas.rectangle(block.box, block.colour, BUILDING * PANOPTIC_DIVISOR)
    x0, y0, x1, y1 = block.box
    cell = max(4.0, (x1 - x0) / 6)
    for row, y in enumerate(np.arange(y0 + cell / 2, y1 - cell, cell)):
        for column, x in enumerate(np.arange(x0 + cell / 3, x1 - cell / 2, cell)):
            lit = (row * 3 + column * 5 + block.style) % 7 == 0
            window = (x, y, x + cell / 2, y + cell / 2)
            canvas.rectangle(window, WINDOW_LIT if lit else WINDOW_DARK)


def _draw_tree(canvas: Canvas, view: ViewGeometry, tree: Tree, shift: float) -> None:
    """Trunk and crown blobs, all VEGETATION."""
    label = VEGETATION * PANOPTIC_DIVISOR
    for box in view.moved(tree.trunk, shift):
        canvas.rectangle(box, TRUNK, label)
    for blob in tree.crown:
        for box in view.moved(blob.box, shift):
            canvas.ellipse(box, blob.colour, label)


def _draw_ground(canvas: Canvas, view: ViewGeometry, frame: int) -> None:
    """Sidewalk, road and lane markers, in perspective for forward cameras."""
    if view.vanishing_x is None:
        _draw_side_ground(canvas, view, view.pan * frame)
    else:
        _draw_forward_ground(canvas, view, frame)


def _draw_side_ground(canvas: Canvas, view: ViewGeometry, shift: float) -> None:
    """Horizontal bands seen from the side: tiled sidewalk, road, dashed lane line."""
    w, h = view.width, view.height
    canvas.rectangle(
        (0, view.horizon, w, view.road_top), SIDEWALK_COLOUR, SIDEWALK * PANOPTIC_DIVISOR
    )
    tile = 0.08 * w
    for x in np.arange(shift % tile - tile, w, tile):
        canvas.rectangle((x, view.horizon, x, view.road_top), SIDEWALK_JOINT)
    canvas.rectangle((0, view.road_top, w, h), ROAD_COLOUR, ROAD * PANOPTIC_DIVISOR)
    y = view.road_top + 0.55 * (h - view.road_top)
    thickness, period = max(1.0, 0.035 * h), 0.25 * w
    for x in np.arange(shift % period - period, w, period):
        box = (x, y, x + 0.12 * w, y + thickness)
        canvas.rectangle(box, LANE_COLOUR, LANE_MARKER * PANOPTIC_DIVISOR)


def _draw_forward_ground(canvas: Canvas, view: ViewGeometry, frame: int) -> None:
    """Sidewalk either side of a road that narrows towards the vanishing point."""
    w, h, top, vx = view.width, view.height, view.horizon, view.vanishing_x or 0.0
    canvas.rectangle((0, top, w, h), SIDEWALK_COLOUR, SIDEWALK * PANOPTIC_DIVISOR)
    for depth in np.linspace(0.1, 1.0, 6) ** 2:
        y = top + depth * (h - top)
        canvas.rectangle((0, y, w, y), SIDEWALK_JOINT)
    near = _road_half_width(view, h)
    road = [(vx - 0.04 * w, top), (vx + 0.04 * w, top), (vx + near, h), (vx - near, h)]
    canvas.polygon(road, ROAD_COLOUR, ROAD * PANOPTIC_DIVISOR)
    for lane_x in (-0.42 * near, 0.42 * near):
        _draw_lane_dashes(canvas, view, lane_x, phase=(frame * 0.3) % 1.0)


def _draw_lane_dashes(canvas: Canvas, view: ViewGeometry, lane_x: float, phase: float) -> None:
    """Dashes along the line from the vanishing point to ``lane_x`` off it at the bottom."""
    top, h, vx = view.horizon, view.height, view.vanishing_x or 0.0
    count = 5
    for k in range(count + 1):
        near_end = min(1.0, (k + phase) / count) ** 2
        far_end = min(1.0, (k + phase + 0.5) / count) ** 2
        quad = []
        for t, side in ((near_end, -1), (near_end, 1), (far_end, 1), (far_end, -1)):
            half = max(0.6, 0.012 * view.width * t)
            quad.append((vx + lane_x * t + side * half, top + t * (h - top)))
        if far_end > near_end:
            canvas.polygon(quad, LANE_COLOUR, LANE_MARKER * PANOPTIC_DIVISOR)


def _paint_car(canvas: Canvas, car: Thing, box: Box) -> None:
    """Body, narrower cabin with dark glass, and black wheels (all CAR)."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    body_top, wheel = y0 + 0.45 * h, max(1.5, 0.22 * h)
    cabin = [
        (x0 + 0.2 * w, y0),
        (x1 - 0.2 * w, y0),
        (x1 - 0.05 * w, body_top),
        (x0 + 0.05 * w, body_top),
    ]
    canvas.polygon(cabin, car.colour, car.panoptic)
    glass = [
        (x0 + 0.25 * w, y0 + 0.12 * h),
        (x1 - 0.25 * w, y0 + 0.12 * h),
        (x1 - 0.12 * w, body_top),
        (x0 + 0.12 * w, body_top),
    ]
    canvas.polygon(glass, CAR_GLASS)
    canvas.rectangle((x0, body_top, x1, y1 - 0.5 * wheel), car.colour, car.panoptic)
    for wx in (x0 + 0.08 * w, x1 - 0.08 * w - 1.6 * wheel):
        canvas.ellipse((wx, y1 - 1.4 * wheel, wx + 1.6 * wheel, y1), WHEEL, car.panoptic)


def _paint_pedestrian(canvas: Canvas, person: Thing, box: Box) -> None:
    """Head, shirt and dark legs of an upright figure (all PEDESTRIAN)."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    head = 0.16 * h
    canvas.ellipse((x0 + 0.2 * w, y0, x1 - 0.2 * w, y0 + head), SKIN, person.panoptic)
    canvas.rectangle((x0, y0 + head, x1, y0 + 0.55 * h), person.colour, person.panoptic)
    canvas.rectangle((x0 + 0.1 * w, y0 + 0.55 * h, x1 - 0.1 * w, y1), TROUSERS, person.panoptic)


def _paint_pole(canvas: Canvas, pole: Thing, box: Box) -> None:
    """A thin dark vertical (POLE)."""
    canvas.rectangle(box, pole.colour, pole.panoptic)


def _paint_sign(canvas: Canvas, sign: Thing, box: Box) -> None:
    """A red octagon, blue square or yellow diamond with a white rim (SIGN)."""
    x0, y0, x1, y1 = box
    cx, cy, r = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2
    corners = {0: 8, 1: 4, 2: 4}[sign.style]
    turn = {0: math.pi / 8, 1: math.pi / 4, 2: 0.0}[sign.style]
    for radius, colour, label in (
        (r, (245, 245, 245), sign.panoptic),
        (0.75 * r, sign.colour, None),
    ):
        points = [
            (
                cx + radius * math.cos(turn + 2 * math.pi * i / corners),
                cy + radius * math.sin(turn + 2 * math.pi * i / corners),
            )
            for i in range(corners)
        ]
        canvas.polygon(points, colour, label)


def _paint_traffic_light(canvas: Canvas, light: Thing, box: Box) -> None:
    """A dark box with three lamps, one of them lit (TRAFFIC_LIGHT)."""
    x0, y0, x1, y1 = box
    canvas.rectangle(box, light.colour, light.panoptic)
    step = (y1 - y0) / 3
    for lamp, colour in enumerate(LAMPS):
        shown = colour if lamp == light.style else tuple(c // 4 for c in colour)
        inset = 0.2 * (x1 - x0)
        canvas.ellipse(
            (x0 + inset, y0 + lamp * step + inset, x1 - inset, y0 + (lamp + 1) * step - inset),
            shown,
        )


def _paint_cone(canvas: Canvas, cone: Thing, box: Box) -> None:
    """An orange triangle with a white band (CONSTRUCTION_CONE_POLE)."""
    x0, y0, x1, y1 = box
    cx, h = (x0 + x1) / 2, y1 - y0
    canvas.polygon([(cx, y0), (x1, y1), (x0, y1)], cone.colour, cone.panoptic)
    band = [(cx - 0.18 * (x1 - x0), y0 + 0.4 * h), (cx + 0.18 * (x1 - x0), y0 + 0.4 * h)]
    band += [(cx + 0.26 * (x1 - x0), y0 + 0.6 * h), (cx - 0.26 * (x1 - x0), y0 + 0.6 * h)]
    canvas.polygon(band, CONE_STRIPE)


THING_PAINTERS: dict[int, Callable[[Canvas, Thing, Box], None]] = {
    CAR: _paint_car,
    PEDESTRIAN: _paint_pedestrian,
    POLE: _paint_pole,
    SIGN: _paint_sign,
    TRAFFIC_LIGHT: _paint_traffic_light,
    CONE: _paint_cone,
}


def _add_sensor_noise(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Mild exposure change and grain, so the task is not a mere colour lookup."""
    grain = rng.standard_normal((*rgb.shape[:2], 1), dtype=np.float32) * 3.0
    noisy = rgb.astype(np.float32) * np.float32(rng.uniform(0.9, 1.1)) + grain
    return np.clip(noisy + 0.5, 0, 255).astype(np.uint8)


# Encoding and rows -----------------------------------------------------------------


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


# Segments and the sample ------------------------------------------------------------


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


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: ``python -m waymo_unet.data.synthetic --out data/01_raw``."""
    parser = argparse.ArgumentParser(description="Write a synthetic Waymo v2 camera sample.")
    parser.add_argument("--out", type=Path, default=Path("data/01_raw"), help="root folder")
    parser.add_argument("--seed", type=int, default=SyntheticConfig.seed, help="random seed")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    generate_sample(args.out, SyntheticConfig(seed=args.seed))


if __name__ == "__main__":
    main()
