"""Overlays in the class colours, panels and grids."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from waymo_unet.data.palette import UNKNOWN_COLOUR, WAYMO_COLOURS
from waymo_unet.data.synthetic import render_scene
from waymo_unet.data.waymo import CLASS_ID, UNDEFINED
from waymo_unet.reporting import (
    colourise,
    encode_png,
    legend_entries,
    overlay,
    overlay_grid,
    overlay_panel,
)

ROAD, CAR, PEDESTRIAN, SKY, VEGETATION = (
    CLASS_ID[n] for n in ("ROAD", "CAR", "PEDESTRIAN", "SKY", "VEGETATION")
)


@pytest.fixture
def scene() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A grey image, truth with ROAD and CAR, a prediction with CAR and PEDESTRIAN."""
    image = np.full((40, 60, 3), 128, dtype=np.uint8)
    truth = np.zeros((40, 60), dtype=np.uint8)
    truth[20:, :] = ROAD
    truth[25:35, 10:30] = CAR
    predicted = truth.copy()
    predicted[predicted == ROAD] = UNDEFINED
    predicted[5:15, 40:45] = PEDESTRIAN
    return image, truth, predicted


def test_colourise_uses_the_class_colours() -> None:
    labels = np.array([[ROAD, SKY], [UNDEFINED, 200]], dtype=np.uint8)
    rgb = colourise(labels)
    assert rgb.shape == (2, 2, 3)
    assert rgb.dtype == np.uint8
    assert tuple(rgb[0, 0]) == WAYMO_COLOURS[ROAD]
    assert tuple(rgb[0, 1]) == WAYMO_COLOURS[SKY]
    assert tuple(rgb[1, 0]) == WAYMO_COLOURS[UNDEFINED]
    assert tuple(rgb[1, 1]) == UNKNOWN_COLOUR
    assert np.array_equal(colourise(labels.astype(np.int64)), rgb)


def test_colourise_refuses_panoptic_values() -> None:
    with pytest.raises(ValueError, match=r"0\.\.255"):
        colourise(np.array([[20_001]], dtype=np.uint16))


def test_overlay_blends_and_leaves_undefined_alone(scene) -> None:
    image, truth, _ = scene
    image = image.copy()
    image[..., 0] = np.arange(60, dtype=np.uint8)[None, :] * 4  # not a flat colour
    result = overlay(image, truth, alpha=0.5)
    undefined = truth == UNDEFINED
    assert np.array_equal(result[undefined], image[undefined])
    road = truth == ROAD
    colour = np.array(WAYMO_COLOURS[ROAD])
    low, high = np.minimum(image[road], colour), np.maximum(image[road], colour)
    assert np.all((result[road] >= low) & (result[road] <= high))
    assert not np.array_equal(result[road], image[road])
    assert np.array_equal(overlay(image, truth, alpha=0.0), image)
    assert tuple(overlay(image, truth, alpha=1.0)[30, 50]) == WAYMO_COLOURS[ROAD]


def test_overlay_rejects_mismatched_shapes(scene) -> None:
    image, truth, _ = scene
    with pytest.raises(ValueError, match="do not match"):
        overlay(image, truth[:-1])


def test_legend_lists_exactly_the_drawn_classes(scene) -> None:
    _, truth, predicted = scene
    assert legend_entries(truth, predicted) == [
        (CAR, "CAR"),
        (PEDESTRIAN, "PEDESTRIAN"),
        (ROAD, "ROAD"),
    ]
    assert legend_entries(truth, predicted, {CAR: "car"})[0] == (CAR, "car")
    assert legend_entries(np.array([[37]]), np.array([[0]])) == [(37, "UNKNOWN_37")]


@pytest.mark.parametrize("scale", [1, 2])
def test_panel_size_and_legend_swatches(scene, scale: int) -> None:
    image, truth, predicted = scene
    panel = overlay_panel(image, truth, predicted, scale=scale)
    assert panel.dtype == np.uint8
    assert panel.shape[1] == 3 * image.shape[1] * scale
    assert panel.shape[0] > image.shape[0] * scale
    pixels = {tuple(p) for p in panel.reshape(-1, 3)}
    for class_id in (ROAD, CAR, PEDESTRIAN):  # pure colours appear only in swatches
        assert WAYMO_COLOURS[class_id] in pixels
    for class_id in (SKY, VEGETATION):
        assert WAYMO_COLOURS[class_id] not in pixels


def test_panel_on_a_synthetic_scene() -> None:
    rgb, panoptic = render_scene(np.random.default_rng(0), 240, 160, 1)
    truth = (panoptic // 1000).astype(np.uint8)
    predicted = truth.copy()
    predicted[:20, :40] = CAR
    panel = overlay_panel(rgb, truth, predicted)
    assert panel.shape[1] == 720
    # the left tile is the plain image, below the title bar
    assert any(np.array_equal(panel[top : top + 160, :200], rgb[:, :200]) for top in range(60))
    assert len(legend_entries(truth, predicted)) == len(set(np.unique(truth)) - {UNDEFINED})


def test_grid_stacks_and_pads(scene) -> None:
    image, truth, predicted = scene
    small = overlay_panel(image, truth, predicted)
    large = overlay_panel(image, truth, predicted, scale=2)
    grid = overlay_grid([large, small], gap=6)
    assert grid.shape == (large.shape[0] + 6 + small.shape[0], large.shape[1], 3)
    assert np.all(grid[large.shape[0] + 6 :, small.shape[1] :] == 255)
    with pytest.raises(ValueError, match="at least one"):
        overlay_grid([])


def test_encode_png_round_trips(scene) -> None:
    rgb = colourise(scene[1])
    with Image.open(io.BytesIO(encode_png(rgb))) as decoded:
        assert np.array_equal(np.asarray(decoded.convert("RGB")), rgb)
