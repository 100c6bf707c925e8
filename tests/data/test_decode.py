import io

import cv2
import numpy as np
import pytest
from PIL import Image

from waymo_unet.data import decode
from waymo_unet.data.decode import (
    DecodeError,
    decode_camera_image,
    decode_panoptic_label,
    jpeg_size,
    resize_label,
    semantic_from_panoptic,
    semantic_histogram,
)
from waymo_unet.data.waymo import CAMERA_IMAGE, CAMERA_SEGMENTATION


def smooth_rgb(height: int, width: int) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return np.stack(
        [255 * x / width, 255 * y / height, 128 + 100 * np.sin(x / 17.0)], axis=-1
    ).astype(np.uint8)


def jpeg_bytes(rgb: np.ndarray, quality: int = 95) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def png_bytes(array: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".png", array)
    assert ok
    return encoded.tobytes()


def test_jpeg_size_reads_the_header():
    assert jpeg_size(jpeg_bytes(smooth_rgb(88, 192))) == (88, 192)


@pytest.mark.parametrize(("height", "width"), [(160, 240), (100, 150), (64, 96), (320, 480)])
def test_decoded_image_has_the_target_size(height, width):
    image = decode_camera_image(jpeg_bytes(smooth_rgb(320, 480)), height, width)
    assert image.shape == (height, width, 3)
    assert image.dtype == np.uint8


def test_reduced_scale_decoding_matches_full_decoding_then_resizing():
    data = jpeg_bytes(smooth_rgb(640, 960))
    full = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR_RGB)
    reference = cv2.resize(full, (240, 160), interpolation=cv2.INTER_AREA)
    reduced = decode_camera_image(data, 160, 240)  # 1/4 DCT scale, no resize at all
    assert np.abs(reduced.astype(int) - reference.astype(int)).mean() < 2.0


def test_decoded_image_is_rgb_not_bgr():
    rgb = np.zeros((64, 96, 3), np.uint8)
    rgb[..., 0] = 250  # pure red
    image = decode_camera_image(jpeg_bytes(rgb), 32, 48)
    assert image[..., 0].mean() > 200
    assert image[..., 2].mean() < 50


def test_corrupt_jpeg_is_a_decode_error_of_the_image():
    with pytest.raises(DecodeError, match="corrupt JPEG") as error:
        decode_camera_image(b"\xff\xd8 not really a jpeg", 32, 48)
    assert error.value.component == CAMERA_IMAGE


def test_panoptic_label_keeps_all_16_bits():
    panoptic = np.array([[0, 1000, 28001], [65535, 25000, 9003]], np.uint16)
    decoded = decode_panoptic_label(png_bytes(panoptic))
    assert decoded.dtype == np.uint16
    np.testing.assert_array_equal(decoded, panoptic)


@pytest.mark.parametrize(
    "bad",
    [
        png_bytes(np.zeros((4, 4), np.uint8)),  # 8-bit: would merge classes
        png_bytes(np.zeros((4, 4, 3), np.uint16)),  # three channels
        png_bytes(np.zeros((40, 40), np.uint16))[:60],  # cut inside the pixel data
        b"garbage",
        b"",
    ],
    ids=["8-bit", "3-channel", "truncated", "garbage", "empty"],
)
def test_unusable_label_png_is_a_decode_error_of_the_label(bad):
    with pytest.raises(DecodeError) as error:
        decode_panoptic_label(bad)
    assert error.value.component == CAMERA_SEGMENTATION


def test_label_resize_picks_the_same_pixels_as_pil_nearest():
    rng = np.random.default_rng(0)
    label = rng.integers(0, 29_000, (886, 1920)).astype(np.uint16)
    ours = resize_label(label, 512, 768)
    pil = np.asarray(Image.fromarray(label).resize((768, 512), Image.Resampling.NEAREST))
    np.testing.assert_array_equal(ours, pil)


def test_semantic_ids_are_the_panoptic_value_divided_by_the_divisor():
    panoptic = np.array([[0, 999, 1000], [25_003, 28_999, 2_001]], np.uint16)
    semantic = semantic_from_panoptic(panoptic, 1000)
    assert semantic.dtype == np.uint8
    np.testing.assert_array_equal(semantic, [[0, 0, 1], [25, 28, 2]])


def test_semantic_ids_that_do_not_fit_uint8_are_rejected():
    with pytest.raises(DecodeError, match="divisor 10 is too small"):
        semantic_from_panoptic(np.array([[30_000]], np.uint16), 10)


def test_label_png_kind_is_named_in_the_error():
    with pytest.raises(DecodeError, match="not a single-channel 16-bit PNG: 8-bit RGB"):
        decode_panoptic_label(png_bytes(np.zeros((4, 4, 3), np.uint8)))


def random_runs(shape: tuple[int, int], seed: int) -> np.ndarray:
    """uint16 values in runs of random length (1 to 300), as in a label, any value."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 300, shape[0] * shape[1])
    values = np.repeat(rng.integers(0, 65_536, lengths.size), lengths)
    return values[: shape[0] * shape[1]].astype(np.uint16).reshape(shape)


@pytest.fixture(params=["compiled", "python", "numpy"])
def counter(request, monkeypatch):
    """Each way semantic_histogram can count: numba-compiled runs, the same loop as Python
    (as under NUMBA_DISABLE_JIT=1, so coverage sees it), numpy (where numba cannot be
    imported)."""
    if request.param == "compiled" and not decode.COMPILED:
        pytest.skip("numba cannot be imported")
    if request.param == "python":
        loop = decode._count_semantic_runs
        monkeypatch.setattr(decode, "COMPILED", True)
        monkeypatch.setattr(decode, "_count_semantic_runs", getattr(loop, "py_func", loop))
    if request.param == "numpy":
        monkeypatch.setattr(decode, "COMPILED", False)
    return request.param


@pytest.mark.usefixtures("counter")
@pytest.mark.parametrize("divisor", [1000, 7, 256, 65_535, 65_536])
@pytest.mark.parametrize("kind", ["noise", "runs", "one value", "one pixel"])
def test_histogram_counts_semantic_ids(divisor, kind):
    rng = np.random.default_rng(1)
    panoptic = {
        "noise": rng.integers(0, 65_536, (50, 70)).astype(np.uint16),
        "runs": random_runs((320, 480), seed=2),
        "one value": np.full((20, 30), 65_535, np.uint16),
        "one pixel": np.array([[4_001]], np.uint16),
    }[kind]
    expected = np.bincount((panoptic.astype(np.int64) // divisor).ravel())
    counts = semantic_histogram(panoptic, divisor)
    assert counts.size == -(-65_536 // divisor)
    np.testing.assert_array_equal(counts[: expected.size], expected)
    assert counts[expected.size :].sum() == 0


@pytest.mark.usefixtures("counter")
def test_histogram_refuses_values_a_label_cannot_hold():
    with pytest.raises(TypeError, match="uint16 values, not int64"):
        semantic_histogram(np.array([[70_000, 1_000]], np.int64), 1000)
    counts = semantic_histogram(np.array([[25_000, 1_000]], np.uint16), np.uint64(1000))
    assert (counts[1], counts[25]) == (1, 1)


@pytest.mark.usefixtures("counter")
def test_histogram_of_a_view_or_an_empty_label():
    panoptic = random_runs((100, 120), seed=3)
    view = panoptic[::3, 5:70]  # not contiguous
    expected = np.bincount((view.astype(np.int64) // 1000).ravel(), minlength=66)
    np.testing.assert_array_equal(semantic_histogram(view, 1000), expected)
    assert semantic_histogram(np.zeros((0, 5), np.uint16), 1000).sum() == 0


@pytest.mark.usefixtures("counter")
def test_histogram_counts_small_classes_that_resizing_would_lose():
    panoptic = np.full((1280, 1920), 25_000, np.uint16)  # sky
    panoptic[600, 900] = 4_001  # one pixel of a bus
    assert 4 not in semantic_from_panoptic(resize_label(panoptic, 128, 192), 1000)
    assert semantic_histogram(panoptic, 1000)[4] == 1
