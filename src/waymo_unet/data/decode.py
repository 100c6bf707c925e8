"""Decoding of camera JPEGs and panoptic label PNGs into fixed-size uint8 arrays.

JPEGs are decoded with libjpeg's DCT scaling straight to the smallest scale that still
covers the target size (a 1920x1280 frame to 768x512 decodes at half scale), then
resized bilinearly. Labels are resized with exact nearest neighbour *before* the
division by the panoptic divisor: same result, a quarter of the work at half scale.
"""

from __future__ import annotations

import cv2
import numpy as np
import simplejpeg

from waymo_unet.data.waymo import CAMERA_IMAGE, CAMERA_SEGMENTATION

# Pixels labelled above this cannot be stored in uint8 label shards.
MAX_SEMANTIC_ID = 255


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


def decode_panoptic_label(data: bytes) -> np.ndarray:
    """The uint16 panoptic label (semantic * divisor + instance) from PNG bytes."""
    buffer = np.frombuffer(data, dtype=np.uint8)
    label = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED) if buffer.size else None
    if label is None:
        raise DecodeError("corrupt PNG: cannot be decoded")
    if label.ndim != 2 or label.dtype != np.uint16:
        raise DecodeError(
            f"panoptic label PNG must be single-channel 16-bit, got {label.dtype} "
            f"with shape {label.shape}"
        )
    return label


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
    full-resolution pixel.
    """
    counts = np.bincount(panoptic.ravel(), minlength=1)
    classes = -(-counts.size // divisor)
    counts = np.pad(counts, (0, classes * divisor - counts.size))
    return counts.reshape(classes, divisor).sum(axis=1)
