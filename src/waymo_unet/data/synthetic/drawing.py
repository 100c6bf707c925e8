"""Drawing a scene layout at once on an RGB image and on its panoptic label."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image, ImageDraw

from waymo_unet.data.synthetic.scene import (
    BUILDING,
    CAR,
    CAR_GLASS,
    CONE,
    CONE_STRIPE,
    LAMPS,
    LANE_COLOUR,
    LANE_MARKER,
    PANOPTIC_DIVISOR,
    PEDESTRIAN,
    POLE,
    ROAD,
    ROAD_COLOUR,
    SIDEWALK,
    SIDEWALK_COLOUR,
    SIDEWALK_JOINT,
    SIGN,
    SKIN,
    SKY,
    SKY_HORIZON,
    SKY_TOP,
    TRAFFIC_LIGHT,
    TROUSERS,
    TRUNK,
    VEGETATION,
    WHEEL,
    WINDOW_DARK,
    WINDOW_LIT,
    Box,
    Colour,
    Patch,
    SceneLayout,
    Thing,
    Tree,
    ViewGeometry,
    _road_half_width,
    sample_layout,
)
from waymo_unet.data.waymo import UNDEFINED


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
