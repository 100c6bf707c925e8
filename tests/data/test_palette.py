"""The class palette: one distinct colour per Waymo class, loud magenta for anything else."""

from __future__ import annotations

import numpy as np

from waymo_unet.data.palette import (
    UNKNOWN_COLOUR,
    WAYMO_COLOURS,
    class_name,
    colour_lut,
    colour_of,
    hex_colour,
)
from waymo_unet.data.waymo import CLASS_ID, SEMANTIC_CLASSES, UNDEFINED

ROAD = CLASS_ID["ROAD"]


def test_palette_covers_every_class_with_distinct_colours() -> None:
    assert set(WAYMO_COLOURS) == set(SEMANTIC_CLASSES)
    assert len(set(WAYMO_COLOURS.values())) == len(SEMANTIC_CLASSES) == 29
    assert WAYMO_COLOURS[UNDEFINED] == (0, 0, 0)
    assert UNKNOWN_COLOUR not in WAYMO_COLOURS.values()


def test_lut_maps_known_and_unknown_ids() -> None:
    lut = colour_lut()
    assert lut.shape == (256, 3)
    assert lut.dtype == np.uint8
    for class_id, colour in WAYMO_COLOURS.items():
        assert tuple(lut[class_id]) == colour
    assert tuple(lut[37]) == UNKNOWN_COLOUR
    assert tuple(lut[255]) == UNKNOWN_COLOUR
    assert hex_colour(ROAD) == "#{:02x}{:02x}{:02x}".format(*WAYMO_COLOURS[ROAD])


def test_colour_and_name_of_an_unknown_id() -> None:
    assert colour_of(ROAD) == WAYMO_COLOURS[ROAD]
    assert colour_of(37) == UNKNOWN_COLOUR
    assert class_name(ROAD) == "ROAD"
    assert class_name(37) == "UNKNOWN_37"
