"""Decoding of camera JPEGs and panoptic label PNGs into fixed-size uint8 arrays.

JPEGs are decoded with libjpeg's DCT scaling straight to the smallest scale that still
covers the target size (a 1920x1280 frame to 768x512 decodes at half scale), then
resized bilinearly. Panoptic PNGs are decoded by ``png.decode_grey16`` (libdeflate and
a compiled unfilter: about 4x imagecodecs' libpng and 6x OpenCV's on the benchmark's
labels); a label's header is read first, so one of the wrong kind or size is refused
before any pixel is inflated. Labels are resized with exact nearest neighbour *before*
the division by the panoptic divisor: same result, a quarter of the work at half scale.
"""

from __future__ import annotations

import cv2
import numpy as np
import simplejpeg

from waymo_unet.data.png import PngError, decode_grey16, read_png_header
from waymo_unet.data.waymo import CAMERA_IMAGE, CAMERA_SEGMENTATION

# Pixels labelled above this cannot be stored in uint8 label shards.
MAX_SEMANTIC_ID = 255

# cv2.calcHist counts in float32, exact up to 2**24 pixels (a 1920x1280 label is 2.5M).
MAX_EXACT_HISTOGRAM_PIXELS = 2**24


class DecodeError(ValueError):
    """A JPEG or PNG that cannot be decoded, or decodes to something unusable.

    ``component`` says which file the bad bytes came from: "camera_image" or
    "camera_segmentation".
    """

    def __init__(self, message: str, component: str = CAMERA_SEGMENTATION) -> None:
        super().__init__(message)
        self.component = component


def jpeg_size(data: bytes) -> tuple[int, int]:
    """(height, width) of a JPEG from its header, without decoding pixels."""
    try:
        height, width, _, _ = simplejpeg.decode_jpeg_header(data)
    except ValueError as error:
        raise DecodeError(f"corrupt JPEG: {error}", CAMERA_IMAGE) from None
    return height, width


def decode_camera_image(data: bytes, height: int, width: int) -> np.ndarray:
    """RGB uint8 array of shape (height, width, 3) from JPEG bytes."""
    try:
        # min_height/min_width pick the smallest DCT scale (1/8..1) covering the target.
        image = simplejpeg.decode_jpeg(data, colorspace="RGB", min_height=height, min_width=width)
    except ValueError as error:
        raise DecodeError(f"corrupt JPEG: {error}", CAMERA_IMAGE) from None
    if image.shape[:2] != (height, width):
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
    return image


def panoptic_label_size(data: bytes) -> tuple[int, int]:
    """(height, width) of a panoptic label PNG from its header, without inflating it."""
    try:
        header = read_png_header(data)
    except PngError as error:
        raise DecodeError(f"panoptic label: {error}") from None
    return header.height, header.width


def decode_panoptic_label(data: bytes) -> np.ndarray:
    """The uint16 panoptic label (semantic * divisor + instance) from PNG bytes."""
    try:
        return decode_grey16(data)
    except PngError as error:
        raise DecodeError(f"panoptic label: {error}") from None


def resize_label(label: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour resize that picks the same pixels as PIL's NEAREST."""
    if label.shape == (height, width):
        return label
    return cv2.resize(label, (width, height), interpolation=cv2.INTER_NEAREST_EXACT)


def semantic_from_panoptic(panoptic: np.ndarray, divisor: int) -> np.ndarray:
    """Semantic class ids (uint8) of a panoptic label: ``panoptic // divisor``."""
    semantic = panoptic // divisor
    if semantic.size and int(semantic.max()) > MAX_SEMANTIC_ID:
        raise DecodeError(
            f"semantic id {int(semantic.max())} > {MAX_SEMANTIC_ID}: divisor {divisor} "
            "is too small for this label"
        )
    return semantic.astype(np.uint8)


def semantic_histogram(panoptic: np.ndarray, divisor: int) -> np.ndarray:
    """Pixel count per semantic id, at the label's own (full) resolution.

    Counting panoptic values and folding them by the divisor avoids dividing every
    full-resolution pixel; OpenCV counts uint16 values 2.5x faster than ``np.bincount``,
    which first widens every pixel to int64.
    """
    if panoptic.size <= MAX_EXACT_HISTOGRAM_PIXELS:
        counts = cv2.calcHist([panoptic], [0], None, [2**16], [0, 2**16]).ravel()
        counts = counts.astype(np.int64)
    else:
        counts = np.bincount(panoptic.ravel(), minlength=2**16)
    classes = -(-counts.size // divisor)
    counts = np.pad(counts, (0, classes * divisor - counts.size))
    return counts.reshape(classes, divisor).sum(axis=1)
