"""16-bit greyscale PNG decoding for panoptic labels: libdeflate inflates, numba unfilters.

A panoptic label is mostly large flat regions, so inflating it is mostly long copies,
which libdeflate (through imagecodecs) makes far faster than zlib; reversing the row
filters (PNG spec, section 9) in a compiled loop takes most of the rest, and a Paeth row
under a flat row needs no arithmetic. How much faster than libpng and OpenCV, with
identical pixels: ``python -m benchmarks``, section 1, "label PNG alone". Chunk CRCs are
not checked; the zlib stream's Adler-32 is.

Interlaced PNGs (never seen in Waymo labels) are handed to libpng, and so is every PNG
where numba cannot be imported (it trails new Python and NumPy releases): same pixels,
slower.
"""

from __future__ import annotations

import functools
import logging
import struct
import threading
from dataclasses import dataclass

import imagecodecs
import numpy as np

try:
    import numba
except ImportError:
    numba = None

logger = logging.getLogger(__name__)

# Whether decode_grey16 unfilters in numba-compiled loops; libpng decodes where it cannot.
COMPILED = numba is not None

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_GREYSCALE = 0  # IHDR colour type of a single-channel image
PNG_COLOUR_TYPES = {0: "greyscale", 2: "RGB", 3: "palette", 4: "greyscale+alpha", 6: "RGBA"}
CHUNK_OVERHEAD = 12  # length, type and CRC around each chunk's data
IHDR_LENGTH = 13
MAX_PIXELS = 2**26  # 27x a 1920x1280 label: refuse larger headers before allocating

# Inflated rows are reused between calls of a thread: a fresh 5 MB buffer per label
# costs about as much in page faults as decoding it. Larger ones are not kept.
_scratch = threading.local()
MAX_SCRATCH_BYTES = 2**24


class PngError(ValueError):
    """Bytes that are not a decodable PNG; the message says why."""


@dataclass(frozen=True)
class PngHeader:
    """What a PNG's IHDR chunk says about its pixels."""

    height: int
    width: int
    bit_depth: int
    colour_type: int
    interlaced: bool

    @property
    def kind(self) -> str:
        colour = PNG_COLOUR_TYPES.get(self.colour_type, f"colour type {self.colour_type}")
        return f"{self.bit_depth}-bit {colour}"


def read_png_header(data: bytes) -> PngHeader:
    """The IHDR chunk of a PNG, without inflating anything."""
    if len(data) < 33 or not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        raise PngError("corrupt PNG: no PNG signature and IHDR header")
    (length,) = struct.unpack(">I", data[8:12])
    width, height, bit_depth, colour_type, compression, filtering, interlace = struct.unpack(
        ">IIBBBBB", data[16:29]
    )
    if length != IHDR_LENGTH or compression or filtering or interlace > 1:
        raise PngError("corrupt PNG: invalid IHDR header")
    if not 0 < width * height <= MAX_PIXELS:
        raise PngError(f"corrupt PNG: {width}x{height} pixels (at most {MAX_PIXELS} accepted)")
    return PngHeader(height, width, bit_depth, colour_type, interlaced=interlace == 1)


def zlib_stream(data: bytes) -> bytes:
    """The zlib stream of a PNG: its IDAT chunks, joined."""
    parts, position = [], len(PNG_SIGNATURE)
    while position + CHUNK_OVERHEAD <= len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        end = position + 8 + length
        if end + 4 > len(data):
            raise PngError(f"corrupt PNG: {kind!r} chunk at byte {position} is cut short")
        if kind == b"IDAT":
            parts.append(data[position + 8 : end])
        elif kind == b"IEND":
            break
        position = end + 4
    if not parts:
        raise PngError("corrupt PNG: no image data (IDAT)")
    return b"".join(parts)


def decode_grey16(data: bytes) -> np.ndarray:
    """The (height, width) uint16 pixels of a single-channel 16-bit PNG."""
    header = read_png_header(data)
    if header.bit_depth != 16 or header.colour_type != PNG_GREYSCALE:
        raise PngError(f"not a single-channel 16-bit PNG: {header.kind}")
    _log_decoder()
    if header.interlaced or not COMPILED:
        return _decode_with_libpng(data)
    stride = 2 * header.width
    rows = _inflate(zlib_stream(data), header.height * (1 + stride))
    pixels = np.empty((header.height, header.width), np.uint16)
    bad_row = _unfilter_grey16(rows.reshape(header.height, 1 + stride), pixels)
    if bad_row >= 0:
        raise PngError(
            f"corrupt PNG: row {bad_row} has unknown filter type {rows[bad_row * (1 + stride)]}"
        )
    return pixels


def _decode_with_libpng(data: bytes) -> np.ndarray:
    """libpng's decode of a 16-bit greyscale PNG, its errors as ``PngError``."""
    try:
        return imagecodecs.png_decode(data)
    except imagecodecs.PngError as error:
        raise PngError(f"corrupt PNG: {error}") from None


@functools.cache
def _log_decoder() -> None:
    """Say once, on the first label, which decoder this process uses."""
    if COMPILED:
        logger.debug("label PNGs: libdeflate inflates, numba-compiled loops unfilter")
    else:
        logger.info("label PNGs: numba cannot be imported, so libpng decodes them (slower)")


def _inflate(stream: bytes, size: int) -> np.ndarray:
    """Exactly ``size`` inflated bytes, in this thread's reused buffer if not too big."""
    buffer = getattr(_scratch, "rows", None)
    if buffer is None or buffer.size < size:
        buffer = np.empty(size, np.uint8)
        if size <= MAX_SCRATCH_BYTES:
            _scratch.rows = buffer
    inflated = buffer[:size]
    try:
        written = imagecodecs.deflate_decode(stream, out=inflated)
    except imagecodecs.DeflateError as error:  # also when it inflates to more than size
        raise PngError(f"corrupt PNG: image data does not inflate: {error}") from None
    if len(written) != size:
        raise PngError(f"corrupt PNG: image data inflates to {len(written)} bytes, not {size}")
    return inflated


def _unfilter_grey16(rows: np.ndarray, pixels: np.ndarray) -> int:
    """Reverse each row's filter in place and write big-endian pixels as native uint16.

    ``rows`` is (height, 1 + 2 * width): a filter type byte, then the filtered bytes.
    Returns -1, or the first row whose filter type is unknown. Sub, Average and Paeth
    chain each byte to the one two bytes left (one pixel), so those loops keep the left
    pixel's two bytes in registers rather than reading back what they just stored.
    """
    height, width = pixels.shape
    for y in range(height):
        filter_type = rows[y, 0]
        current = rows[y, 1:]
        above = rows[y - 1, 1:] if y > 0 else np.zeros_like(current)
        if filter_type == 1:  # Sub: add the left pixel
            left_high, left_low = np.int32(0), np.int32(0)
            for x in range(0, current.size, 2):
                left_high = (np.int32(current[x]) + left_high) & 0xFF
                left_low = (np.int32(current[x + 1]) + left_low) & 0xFF
                current[x], current[x + 1] = left_high, left_low
        elif filter_type == 2:  # Up: add the pixel above
            for x in range(current.size):
                current[x] = (np.int32(current[x]) + above[x]) & 0xFF
        elif filter_type == 3:  # Average: add the mean of the left and above pixels
            left_high, left_low = np.int32(0), np.int32(0)
            for x in range(0, current.size, 2):
                left_high = (np.int32(current[x]) + ((left_high + above[x]) >> 1)) & 0xFF
                left_low = (np.int32(current[x + 1]) + ((left_low + above[x + 1]) >> 1)) & 0xFF
                current[x], current[x + 1] = left_high, left_low
        elif filter_type == 4:  # Paeth: add the left, above or above-left pixel
            left_high, left_low = np.int32(0), np.int32(0)
            corner_high, corner_low = np.int32(0), np.int32(0)
            for x in range(0, current.size, 2):
                up_high, up_low = np.int32(above[x]), np.int32(above[x + 1])
                raw_high, raw_low = np.int32(current[x]), np.int32(current[x + 1])
                # Where the row above is flat (above == above-left) Paeth picks the left
                # pixel; with nothing added the pixel repeats it. Labels are mostly that.
                if raw_high | raw_low or up_high != corner_high or up_low != corner_low:
                    left_high = (raw_high + _paeth(left_high, up_high, corner_high)) & 0xFF
                    left_low = (raw_low + _paeth(left_low, up_low, corner_low)) & 0xFF
                current[x], current[x + 1] = left_high, left_low
                corner_high, corner_low = up_high, up_low
        elif filter_type != 0:
            return y
        for x in range(width):
            pixels[y, x] = (np.uint16(current[2 * x]) << 8) | np.uint16(current[2 * x + 1])
    return -1


def _paeth(left: int, up: int, corner: int) -> int:
    """The PNG Paeth predictor: of the three bytes, the nearest to left + up - corner."""
    to_left, to_up, to_corner = abs(up - corner), abs(left - corner), abs(left + up - 2 * corner)
    if to_left <= to_up and to_left <= to_corner:
        return left
    return up if to_up <= to_corner else corner


if numba is not None:  # else decode_grey16 hands every PNG to libpng
    _paeth = numba.njit(cache=True, nogil=True, inline="always")(_paeth)
    _unfilter_grey16 = numba.njit(cache=True, nogil=True)(_unfilter_grey16)
