import itertools
import struct
import threading
import zlib

import cv2
import imagecodecs
import numpy as np
import pytest

from waymo_unet.data import png
from waymo_unet.data.png import PngError, decode_grey16, read_png_header, zlib_stream

NONE, SUB, UP, AVERAGE, PAETH = range(5)


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def filter_row(row: np.ndarray, above: np.ndarray, filter_type: int) -> np.ndarray:
    """PNG row filter (spec section 9) of one row of bytes, 2 bytes per pixel."""
    a = np.concatenate([[0, 0], row[:-2]]).astype(np.int32)  # left
    b = above.astype(np.int32)
    c = np.concatenate([[0, 0], above[:-2]]).astype(np.int32)  # upper left
    x = row.astype(np.int32)
    if filter_type == NONE:
        predicted = np.zeros_like(x)
    elif filter_type == SUB:
        predicted = a
    elif filter_type == UP:
        predicted = b
    elif filter_type == AVERAGE:
        predicted = (a + b) // 2
    else:
        p = a + b - c
        pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
        predicted = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
    return ((x - predicted) % 256).astype(np.uint8)


ADAM7_PASSES = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2)]
ADAM7_PASSES += [(0, 1, 1, 2)]  # (first column, first row, column step, row step)


def grey16_png(pixels: np.ndarray, filter_types: list[int], idat_chunks: int = 1) -> bytes:
    """A 16-bit greyscale PNG of ``pixels`` whose rows use the given filter types."""
    height, width = pixels.shape
    rows = pixels.astype(">u2").view(np.uint8).reshape(height, 2 * width)
    above = np.zeros(2 * width, np.uint8)
    filtered = b""
    for row, filter_type in zip(rows, filter_types, strict=True):
        filtered += bytes([filter_type]) + filter_row(row, above, filter_type).tobytes()
        above = row
    return assemble_png(width, height, filtered, idat_chunks=idat_chunks)


def interlaced_grey16_png(pixels: np.ndarray) -> bytes:
    """An Adam7-interlaced 16-bit greyscale PNG of ``pixels``, rows unfiltered."""
    passes = [pixels[y::dy, x::dx] for x, y, dx, dy in ADAM7_PASSES]
    raw = b"".join(b"\0" + row.astype(">u2").tobytes() for sub in passes if sub.size for row in sub)
    return assemble_png(pixels.shape[1], pixels.shape[0], raw, interlace=1)


def assemble_png(
    width: int, height: int, raw: bytes, idat_chunks: int = 1, interlace: int = 0
) -> bytes:
    stream = zlib.compress(raw, 6)
    cuts = np.linspace(0, len(stream), idat_chunks + 1).astype(int)
    header = struct.pack(">IIBBBBB", width, height, 16, 0, 0, 0, interlace)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + b"".join(chunk(b"IDAT", stream[i:j]) for i, j in itertools.pairwise(cuts))
        + chunk(b"IEND", b"")
    )


def panoptic_like(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Flat regions of a few panoptic values, with noise on some rows, like a label."""
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 65_536, 6).astype(np.uint16)
    regions = (
        np.arange(width)[None, :] * 3 // width + np.arange(height)[:, None] * 2 // height
    ) % 6
    pixels = values[regions]
    pixels[::3] = rng.integers(0, 65_536, (len(pixels[::3]), width))
    return pixels


def python_body(function):
    """The Python function numba compiled: what runs under NUMBA_DISABLE_JIT=1."""
    return getattr(function, "py_func", function)


@pytest.fixture(params=["compiled", "python", "libpng"])
def decoder(request, monkeypatch):
    """Each way decode_grey16 can decode: numba-compiled unfilter, the same loops as Python
    (so coverage sees them), libpng (where numba cannot be imported)."""
    if request.param == "compiled" and not png.COMPILED:
        pytest.skip("numba cannot be imported")
    if request.param == "python":
        monkeypatch.setattr(png, "COMPILED", True)
        monkeypatch.setattr(png, "_unfilter_grey16", python_body(png._unfilter_grey16))
        monkeypatch.setattr(png, "_paeth", python_body(png._paeth))
    if request.param == "libpng":
        monkeypatch.setattr(png, "COMPILED", False)
    return request.param


@pytest.mark.usefixtures("decoder")
@pytest.mark.parametrize("filter_type", [NONE, SUB, UP, AVERAGE, PAETH])
def test_every_filter_type_decodes_to_the_original_pixels(filter_type):
    pixels = panoptic_like(9, 13)
    decoded = decode_grey16(grey16_png(pixels, [filter_type] * 9))
    assert decoded.dtype == np.uint16
    np.testing.assert_array_equal(decoded, pixels)


def paeth_cases() -> dict[str, np.ndarray]:
    """Flat stretches (the decoder's shortcut) next to edges, in the row and above it."""
    constant = np.full((6, 10), 25_003, np.uint16)
    stripes = np.tile(np.array([7, 7, 7, 40_000, 40_000, 1], np.uint16), (5, 2))
    one_pixel = constant.copy()
    one_pixel[3, 4] = 999  # flat above, one change in the row (and the next row sees it)
    diagonal = np.where(np.add.outer(np.arange(8), -np.arange(12)) > 0, 4_001, 65_535)
    high_byte_only = np.full((4, 9), 0x1200, np.uint16)
    high_byte_only[:, 5:] = 0x3400  # the low bytes stay flat where the high ones step
    return {
        "constant": constant,
        "stripes": stripes,
        "one pixel": one_pixel,
        "diagonal": diagonal.astype(np.uint16),
        "high byte only": high_byte_only,
    }


@pytest.mark.usefixtures("decoder")
@pytest.mark.parametrize("name", list(paeth_cases()))
def test_paeth_rows_with_flat_stretches_decode_like_libpng(name):
    pixels = paeth_cases()[name]
    data = grey16_png(pixels, [PAETH] * len(pixels))
    np.testing.assert_array_equal(decode_grey16(data), pixels)
    np.testing.assert_array_equal(decode_grey16(data), imagecodecs.png_decode(data))


@pytest.mark.usefixtures("decoder")
def test_mixed_filters_and_split_zlib_stream_decode_like_libpng():
    pixels = panoptic_like(40, 33, seed=1)
    filters = np.random.default_rng(2).integers(0, 5, 40).tolist()
    data = grey16_png(pixels, filters, idat_chunks=4)
    np.testing.assert_array_equal(decode_grey16(data), pixels)
    np.testing.assert_array_equal(decode_grey16(data), imagecodecs.png_decode(data))


@pytest.mark.usefixtures("decoder")
@pytest.mark.parametrize(("height", "width"), [(1, 1), (1, 7), (7, 1), (128, 192)])
def test_labels_written_by_common_encoders_decode_like_libpng(height, width):
    pixels = panoptic_like(height, width, seed=3)
    ok, opencv = cv2.imencode(".png", pixels, [cv2.IMWRITE_PNG_COMPRESSION, 6])
    assert ok
    for data in (opencv.tobytes(), imagecodecs.png_encode(pixels, level=9)):
        np.testing.assert_array_equal(decode_grey16(data), pixels)


@pytest.mark.usefixtures("decoder")
def test_buffers_reused_between_calls_do_not_leak_into_results():
    big, small = panoptic_like(64, 96, seed=4), panoptic_like(8, 12, seed=5)
    first = decode_grey16(grey16_png(big, [PAETH] * 64))
    second = decode_grey16(grey16_png(small, [UP] * 8))
    np.testing.assert_array_equal(first, big)
    np.testing.assert_array_equal(second, small)


def test_interlaced_pngs_are_decoded_by_libpng(monkeypatch):
    pixels = panoptic_like(21, 30)
    data = interlaced_grey16_png(pixels)
    assert read_png_header(data).interlaced
    np.testing.assert_array_equal(decode_grey16(data), pixels)
    with pytest.raises(PngError, match="corrupt PNG"):
        decode_grey16(data[:-30] + data[-12:])  # cut inside the image data


def test_header_is_read_without_inflating(monkeypatch):
    monkeypatch.setattr(png, "_inflate", lambda *_: pytest.fail("inflated"))
    header = read_png_header(grey16_png(panoptic_like(5, 7), [NONE] * 5))
    assert (header.height, header.width, header.bit_depth, header.colour_type) == (5, 7, 16, 0)
    assert header.kind == "16-bit greyscale"


def flip_checksum(data: bytes) -> bytes:
    """The PNG with one bit of its zlib stream's Adler-32 flipped (chunk CRCs are not checked)."""
    stream = bytearray(zlib_stream(data))
    stream[-1] ^= 1
    return data[:33] + chunk(b"IDAT", bytes(stream)) + chunk(b"IEND", b"")


@pytest.mark.parametrize(
    ("corrupt", "reason"),
    [
        (lambda data: data[:45], "cut short"),
        (lambda data: data[:33] + chunk(b"IEND", b""), "no image data"),
        (lambda data: data.replace(b"IDAT", b"IDAX"), "no image data"),
        (lambda data: data[:12] + b"XXXX" + data[16:], "no PNG signature"),
        (flip_checksum, "does not inflate"),
    ],
    ids=["truncated", "no-idat", "renamed-idat", "no-ihdr", "adler32"],
)
def test_corrupt_pngs_say_what_is_wrong(corrupt, reason):
    data = grey16_png(panoptic_like(20, 20), [UP] * 20)
    with pytest.raises(PngError, match=reason):
        decode_grey16(corrupt(data))


def test_zlib_stream_of_the_wrong_size_is_refused():
    pixels = panoptic_like(6, 6)
    data = grey16_png(pixels, [NONE] * 6)
    taller = data[:16] + struct.pack(">I", 6) + struct.pack(">I", 7) + data[24:]
    with pytest.raises(PngError, match="inflate"):
        decode_grey16(taller)
    shorter = data[:16] + struct.pack(">I", 6) + struct.pack(">I", 5) + data[24:]
    with pytest.raises(PngError, match="inflate"):
        decode_grey16(shorter)


@pytest.mark.parametrize("decoder", ["compiled", "python"], indirect=True)
def test_unknown_filter_type_names_the_row(decoder):
    data = grey16_png(panoptic_like(4, 4), [NONE] * 4)
    stream = bytearray(zlib.decompress(zlib_stream(data)))
    stream[2 * (1 + 8)] = 7  # row 2's filter type
    bad = data[:33] + chunk(b"IDAT", zlib.compress(bytes(stream))) + chunk(b"IEND", b"")
    with pytest.raises(PngError, match="row 2 has unknown filter type 7"):
        decode_grey16(bad)


def test_only_16_bit_greyscale_is_accepted():
    _ok, rgb = cv2.imencode(".png", np.zeros((4, 4, 3), np.uint16))
    with pytest.raises(PngError, match="not a single-channel 16-bit PNG: 16-bit RGB"):
        decode_grey16(rgb.tobytes())


def with_header(data: bytes, header: bytes) -> bytes:
    return data[:8] + chunk(b"IHDR", header) + data[33:]


@pytest.mark.parametrize(
    ("width", "height", "reason"),
    [(2**31, 20, "2147483648x20 pixels"), (2**32 - 1, 2**32 - 1, "at most"), (0, 5, "0x5")],
)
def test_headers_declaring_too_many_pixels_are_refused_before_allocating(width, height, reason):
    data = grey16_png(panoptic_like(5, 7), [NONE] * 5)
    bad = with_header(data, struct.pack(">IIBBBBB", width, height, 16, 0, 0, 0, 0))
    with pytest.raises(PngError, match=reason):
        decode_grey16(bad)


@pytest.mark.parametrize(
    "fields",
    [(16, 0, 1, 0, 0), (16, 0, 0, 1, 0), (16, 0, 0, 0, 2)],
    ids=["compression", "filter", "interlace"],
)
def test_invalid_ihdr_methods_are_refused(fields):
    data = grey16_png(panoptic_like(5, 7), [NONE] * 5)
    with pytest.raises(PngError, match="invalid IHDR"):
        read_png_header(with_header(data, struct.pack(">II", 7, 5) + bytes(fields)))


def test_a_short_ihdr_is_refused():
    data = grey16_png(panoptic_like(5, 7), [NONE] * 5)
    short = data[:8] + struct.pack(">I", 5) + data[12:]
    with pytest.raises(PngError, match="invalid IHDR"):
        read_png_header(short)


def test_large_images_do_not_stay_in_the_reused_buffer(monkeypatch):
    monkeypatch.setattr(png, "MAX_SCRATCH_BYTES", 100)
    monkeypatch.setattr(png, "_scratch", threading.local())
    pixels = panoptic_like(30, 40)
    np.testing.assert_array_equal(decode_grey16(grey16_png(pixels, [PAETH] * 30)), pixels)
    assert getattr(png._scratch, "rows", None) is None
    tiny = panoptic_like(3, 4)
    np.testing.assert_array_equal(decode_grey16(grey16_png(tiny, [SUB] * 3)), tiny)
    assert png._scratch.rows.size == 3 * (1 + 8)


def test_threads_decoding_at_once_get_their_own_pixels():
    images = [panoptic_like(20 + i, 30 - i, seed=i) for i in range(8)]
    encoded = [grey16_png(p, [i % 5] * len(p)) for i, p in enumerate(images)]
    mismatches = []

    def decode_many(index: int) -> None:
        for _ in range(50):
            if not np.array_equal(decode_grey16(encoded[index]), images[index]):
                mismatches.append(index)

    threads = [threading.Thread(target=decode_many, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not mismatches
