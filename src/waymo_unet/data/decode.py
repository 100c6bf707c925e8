"""Decoding of camera JPEGs and panoptic label PNGs into fixed-size uint8 arrays.

JPEGs are decoded with libjpeg's DCT scaling straight to the smallest scale that still
covers the target size (a 1920x1280 frame to 768x512 decodes at half scale), then
resized bilinearly. Panoptic PNGs are decoded by ``png.decode_grey16`` (libdeflate's
long copies and a compiled unfilter; against libpng and OpenCV: ``python -m benchmarks``,
section 1, "label PNG alone"); a label's header is read first, so one of the wrong kind
or size is refused before any pixel is inflated. Labels are resized with exact nearest
neighbour *before* the division by the panoptic divisor: same result, a quarter of the
work at half scale.
"""

from __future__ import annotations

import functools
import logging

import cv2
import numpy as np
import simplejpeg

try:
    import numba
except ImportError:
    numba = None

from waymo_unet.data.png import PngError, decode_grey16, read_png_header
from waymo_unet.data.waymo import CAMERA_IMAGE, CAMERA_SEGMENTATION

logger = logging.getLogger(__name__)

# Pixels labelled above this cannot be stored in uint8 label shards.
MAX_SEMANTIC_ID = 255
# Whether semantic_histogram counts runs in a numba-compiled loop; numpy where it cannot.
COMPILED = numba is not None


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


def decode_cameras_covered(data: bytes, size: tuple[int, int]) -> np.ndarray:
    """``num_cameras_covered`` (uint8, per pixel) from its 8-bit PNG, checked against the
    label's (height, width)."""
    array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if array is None or array.dtype != np.uint8 or array.ndim != 2:
        raise DecodeError("num_cameras_covered is not an 8-bit single-channel PNG")
    if array.shape != tuple(size):
        raise DecodeError(
            f"num_cameras_covered size {array.shape[1]}x{array.shape[0]} differs from the "
            f"label's {size[1]}x{size[0]}"
        )
    return array


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

    A label is mostly long runs of one value, so a compiled loop counts runs and divides
    only where a run ends (thousands of times in a 1920x1280 label, not millions of
    pixels). Without numba, numpy finds the runs: same counts, slower on a noisy label.
    The result has one entry per id a uint16 value can hold: ``ceil(65536 / divisor)``.
    """
    if not np.can_cast(panoptic.dtype, np.uint16):
        raise TypeError(f"a panoptic label holds uint16 values, not {panoptic.dtype}")
    divisor = int(divisor)
    counts = np.zeros(-(-(2**16) // divisor), np.int64)
    if panoptic.size:
        values = np.ravel(panoptic.astype(np.uint16, copy=False))
        _log_histogram()
        if COMPILED:
            _count_semantic_runs(values, divisor, counts)
        else:
            _count_semantic_runs_with_numpy(values, divisor, counts)
    return counts


@functools.cache
def _log_histogram() -> None:
    """Say once, on the first label, how this process counts semantic ids."""
    if COMPILED:
        logger.debug("semantic histograms: a numba-compiled loop counts runs")
    else:
        logger.info("semantic histograms: numba cannot be imported, so numpy counts runs")


def _count_semantic_runs_with_numpy(values: np.ndarray, divisor: int, counts: np.ndarray) -> None:
    """``_count_semantic_runs`` in numpy: where runs start, how long they are, summed per id."""
    starts = np.flatnonzero(np.concatenate(([True], values[1:] != values[:-1])))
    lengths = np.diff(starts, append=values.size)
    ids = values[starts].astype(np.int64) // divisor
    counts += np.bincount(ids, weights=lengths, minlength=counts.size).astype(np.int64)


def _count_semantic_runs(values: np.ndarray, divisor: int, counts: np.ndarray) -> None:
    """Add each run of equal values to ``counts[value // divisor]``."""
    run_value, run_length = int(values[0]), 0  # an int: a divisor of 65536 fits no uint16
    for value in values:
        if value == run_value:
            run_length += 1
        else:
            counts[run_value // divisor] += run_length
            run_value, run_length = int(value), 1
    counts[run_value // divisor] += run_length


if numba is not None:  # else semantic_histogram counts with numpy
    _count_semantic_runs = numba.njit(cache=True, nogil=True)(_count_semantic_runs)
