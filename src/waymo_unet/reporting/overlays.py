"""Segmentations laid over their camera images, as plain RGB arrays and PNG bytes.

``overlay_panel`` puts the image, the ground truth and the prediction side by side with
titles and a legend of the classes shown, so a reader sees at a glance where the model
is right; ``overlay_grid`` stacks several panels into one picture for a report.
"""

from __future__ import annotations

import io
from collections.abc import Collection, Mapping, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from waymo_unet.data.palette import class_name, colour_lut, colour_of
from waymo_unet.data.waymo import UNDEFINED

PANEL_TITLES = ("image", "ground truth", "prediction")
BACKGROUND = (255, 255, 255)
TEXT_COLOUR = (20, 20, 20)
SWATCH_OUTLINE = (90, 90, 90)
SEPARATOR = 2  # pixels of white between the tiles, painted over their edges
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


def colourise(labels: np.ndarray) -> np.ndarray:
    """(H, W) Waymo ids to their (H, W, 3) uint8 class colours (unknown ids: magenta)."""
    ids = np.asarray(labels)
    if ids.ndim != 2:
        raise ValueError(f"labels must be (H, W), got shape {ids.shape}")
    if ids.dtype != np.uint8:
        if ids.size and (ids.min() < 0 or ids.max() > 255):
            raise ValueError("label ids must lie in 0..255 (Waymo ids, not panoptic values)")
        ids = ids.astype(np.uint8)
    return colour_lut()[ids]


def overlay(
    image: np.ndarray,
    labels: np.ndarray,
    alpha: float = 0.5,
    ignore_ids: Collection[int] = (UNDEFINED,),
) -> np.ndarray:
    """Blend the class colours over an RGB image; ignored (UNDEFINED) pixels stay as they were."""
    _check_image(image)
    if np.shape(labels) != image.shape[:2]:
        raise ValueError(f"labels {np.shape(labels)} do not match image {image.shape[:2]}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    colours = colourise(labels).astype(np.float32)
    blended = image.astype(np.float32) * (1.0 - alpha) + colours * alpha
    result = np.rint(blended).astype(np.uint8)
    keep = np.isin(labels, list(ignore_ids))
    result[keep] = image[keep]
    return result


def legend_entries(
    truth_ids: np.ndarray,
    predicted_ids: np.ndarray,
    class_names: Mapping[int, str] | None = None,
    ignore_ids: Collection[int] = (UNDEFINED,),
) -> list[tuple[int, str]]:
    """(id, name) of every class drawn in the truth or the prediction, sorted by id."""
    present = np.union1d(np.unique(truth_ids), np.unique(predicted_ids))
    names = class_names or {}
    return [
        (int(i), names.get(int(i), class_name(int(i))))
        for i in present
        if int(i) not in set(ignore_ids)
    ]


def overlay_panel(
    image: np.ndarray,
    truth_ids: np.ndarray,
    predicted_ids: np.ndarray,
    class_names: Mapping[int, str] | None = None,
    scale: int = 1,
) -> np.ndarray:
    """Image | truth over image | prediction over image, titled, with a class legend below.

    The tiles are enlarged ``scale`` times (nearest neighbour) so small model inputs stay
    legible; the panel is exactly ``3 * W * scale`` pixels wide.
    """
    if scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale}")
    tiles = [image, overlay(image, truth_ids), overlay(image, predicted_ids)]
    strip = np.concatenate([_enlarge(tile, scale) for tile in tiles], axis=1)
    tile_width = strip.shape[1] // 3
    for edge in (tile_width, 2 * tile_width):  # a thin white line between the tiles
        strip[:, edge - SEPARATOR // 2 : edge + (SEPARATOR + 1) // 2] = BACKGROUND
    font = _font(_font_size(tile_width))
    header = _title_bar(PANEL_TITLES, tile_width, font)
    entries = legend_entries(truth_ids, predicted_ids, class_names)
    legend = _legend_strip(entries, strip.shape[1], font)
    return np.concatenate([header, strip, legend], axis=0)


def overlay_grid(panels: Sequence[np.ndarray], gap: int = 6) -> np.ndarray:
    """Stack panels top to bottom, padding narrower ones on the right with white."""
    if not panels:
        raise ValueError("overlay_grid needs at least one panel")
    width = max(panel.shape[1] for panel in panels)
    rows: list[np.ndarray] = []
    for index, panel in enumerate(panels):
        _check_image(panel)
        if index:
            rows.append(_blank(gap, width))
        padding = _blank(panel.shape[0], width - panel.shape[1])
        rows.append(np.concatenate([panel, padding], axis=1))
    return np.concatenate(rows, axis=0)


def encode_png(rgb: np.ndarray) -> bytes:
    """PNG bytes of an (H, W, 3) uint8 image, for a catalog dataset or an HTML page."""
    _check_image(rgb)
    buffer = io.BytesIO()
    Image.fromarray(rgb, mode="RGB").save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _check_image(image: np.ndarray) -> None:
    """Raise unless ``image`` is an (H, W, 3) uint8 array."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got {image.dtype} {image.shape}")


def _enlarge(tile: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour enlargement by an integer factor (keeps label edges crisp)."""
    return tile if scale == 1 else np.repeat(np.repeat(tile, scale, axis=0), scale, axis=1)


def _blank(height: int, width: int) -> np.ndarray:
    """A white (height, width, 3) uint8 block."""
    return np.full((height, width, 3), BACKGROUND, dtype=np.uint8)


def _font_size(tile_width: int) -> int:
    """Text size that suits a tile: readable on small tiles, not shouting on big ones."""
    return int(np.clip(round(tile_width / 17), 11, 22))


def _font(size: int) -> Font:
    """PIL's bundled font at ``size`` (a fixed bitmap font where FreeType is missing)."""
    return ImageFont.load_default(size=size)


def _title_bar(titles: Sequence[str], tile_width: int, font: Font) -> np.ndarray:
    """A white bar with each title centred over its tile."""
    line = _line_height(font)
    canvas = Image.new("RGB", (tile_width * len(titles), line + line // 2), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    for index, title in enumerate(titles):
        left = index * tile_width + (tile_width - draw.textlength(title, font=font)) / 2
        draw.text((max(left, index * tile_width), line // 4), title, fill=TEXT_COLOUR, font=font)
    return np.asarray(canvas)


def _legend_strip(entries: Sequence[tuple[int, str]], width: int, font: Font) -> np.ndarray:
    """Colour swatch and name of each class, flowing over as many rows as needed."""
    line = _line_height(font)
    positions, rows = _legend_layout(entries, width, font, line)
    canvas = Image.new("RGB", (width, rows * line + line // 2), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    swatch = line - 4
    for (class_id, name), (left, top) in zip(entries, positions, strict=True):
        box = (left, top + 2, left + swatch, top + 2 + swatch)
        draw.rectangle(box, fill=colour_of(class_id), outline=SWATCH_OUTLINE)
        draw.text((left + swatch + line // 3, top + 1), name, fill=TEXT_COLOUR, font=font)
    if not entries:
        draw.text((line // 2, line // 4), "no labelled pixels", fill=TEXT_COLOUR, font=font)
    return np.asarray(canvas)


def _legend_layout(
    entries: Sequence[tuple[int, str]], width: int, font: Font, line: int
) -> tuple[list[tuple[int, int]], int]:
    """Top-left corner of each legend entry, wrapping at ``width``, and the row count."""
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    margin, spacing = line // 2, line
    left, row, positions = margin, 0, []
    for _, name in entries:
        entry = (line - 4) + line // 3 + int(measure.textlength(name, font=font))
        if left > margin and left + entry > width - margin:
            left, row = margin, row + 1
        positions.append((left, line // 4 + row * line))
        left += entry + spacing
    return positions, row + 1


def _line_height(font: Font) -> int:
    """Height of one line of text in ``font``, with a little air."""
    return int(font.getbbox("Ag")[3]) + 6
