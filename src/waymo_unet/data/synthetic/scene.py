"""One camera's street scene: class ids, palette, scene objects and their random layout."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from waymo_unet.data.waymo import CLASS_ID, CameraName

Colour = tuple[int, int, int]
Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels
ThingSpec = tuple[int, Box, Colour, float, int]  # class id, box, colour, speed, style

PANOPTIC_DIVISOR = 1000
FRONT_CAMERAS = frozenset({CameraName.FRONT, CameraName.FRONT_LEFT, CameraName.FRONT_RIGHT})
# Where the road vanishes in a forward camera, as a fraction of the width.
VANISHING_X = {CameraName.FRONT: 0.5, CameraName.FRONT_LEFT: 0.85, CameraName.FRONT_RIGHT: 0.15}

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


def _jitter(rng: np.random.Generator, colour: Colour, amount: int = 12) -> Colour:
    """``colour`` with each channel moved by up to ``amount``."""
    moved = np.clip(np.asarray(colour) + rng.integers(-amount, amount + 1, 3), 0, 255)
    return (int(moved[0]), int(moved[1]), int(moved[2]))


def _pick(rng: np.random.Generator, colours: Sequence[Colour]) -> Colour:
    """One of ``colours``, jittered."""
    return _jitter(rng, colours[int(rng.integers(len(colours)))])


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
