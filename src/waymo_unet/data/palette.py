"""One fixed colour per Waymo semantic class, kept beside the class table it colours.

Overlays, charts and the exported model's manifest all read it here. The palette follows
Cityscapes where a class has a Cityscapes twin (road purple-grey, sky blue, vegetation
green, car dark blue, person red), so the images read like the figures people already
know; the colours never change, so every report of every run agrees.
"""

from __future__ import annotations

import numpy as np

from waymo_unet.data.waymo import SEMANTIC_CLASSES

Colour = tuple[int, int, int]

WAYMO_COLOURS: dict[int, Colour] = {
    0: (0, 0, 0),  # UNDEFINED
    1: (64, 0, 64),  # EGO_VEHICLE
    2: (0, 0, 142),  # CAR
    3: (0, 0, 70),  # TRUCK
    4: (0, 60, 100),  # BUS
    5: (0, 80, 100),  # OTHER_LARGE_VEHICLE
    6: (119, 11, 32),  # BICYCLE
    7: (0, 0, 230),  # MOTORCYCLE
    8: (0, 0, 110),  # TRAILER
    9: (220, 20, 60),  # PEDESTRIAN
    10: (255, 0, 0),  # CYCLIST
    11: (200, 0, 100),  # MOTORCYCLIST
    12: (165, 42, 42),  # BIRD
    13: (0, 192, 0),  # GROUND_ANIMAL
    14: (255, 128, 0),  # CONSTRUCTION_CONE_POLE
    15: (153, 153, 153),  # POLE
    16: (250, 170, 160),  # PEDESTRIAN_OBJECT
    17: (220, 220, 0),  # SIGN
    18: (250, 170, 30),  # TRAFFIC_LIGHT
    19: (70, 70, 70),  # BUILDING
    20: (128, 64, 128),  # ROAD
    21: (240, 240, 240),  # LANE_MARKER
    22: (230, 230, 150),  # ROAD_MARKER
    23: (244, 35, 232),  # SIDEWALK
    24: (107, 142, 35),  # VEGETATION
    25: (70, 130, 180),  # SKY
    26: (152, 251, 152),  # GROUND
    27: (111, 74, 0),  # DYNAMIC
    28: (190, 153, 153),  # STATIC
}
# Any id that is not a Waymo class (a label decoded wrongly) shows up in loud magenta.
UNKNOWN_COLOUR: Colour = (255, 0, 255)

if set(WAYMO_COLOURS) != set(SEMANTIC_CLASSES):  # pragma: no cover - a coding error
    raise RuntimeError("WAYMO_COLOURS must cover exactly the Waymo semantic classes")


def colour_lut() -> np.ndarray:
    """A uint8 (256, 3) table from any uint8 label id to its RGB colour (unknown: magenta)."""
    lut = np.empty((256, 3), dtype=np.uint8)
    lut[:] = UNKNOWN_COLOUR
    for class_id, colour in WAYMO_COLOURS.items():
        lut[class_id] = colour
    return lut


def colour_of(class_id: int) -> Colour:
    """The RGB colour of a semantic id; ids that are not Waymo classes get magenta."""
    return WAYMO_COLOURS.get(int(class_id), UNKNOWN_COLOUR)


def hex_colour(class_id: int) -> str:
    """The class colour as ``#rrggbb``, the form Vega-Lite scales take."""
    red, green, blue = colour_of(class_id)
    return f"#{red:02x}{green:02x}{blue:02x}"


def class_name(class_id: int) -> str:
    """The Waymo name of an id, or ``UNKNOWN_<id>`` as the label catalogue names it."""
    return SEMANTIC_CLASSES.get(int(class_id), f"UNKNOWN_{int(class_id)}")
