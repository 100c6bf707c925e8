"""Where numba cannot be imported (it trails new Python and NumPy releases), labels still
decode to the same pixels and count to the same histograms, in a process that never had it.
"""

import subprocess
import sys

import cv2
import numpy as np
import pytest

from tests.data.test_png import AVERAGE, NONE, PAETH, SUB, UP, grey16_png, panoptic_like
from waymo_unet.data.decode import semantic_histogram
from waymo_unet.data.png import decode_grey16

pytest.importorskip("numba", reason="compares with the numba path")

DIVISORS = (1000, 7, 65_536)

# Runs in a fresh interpreter: `import numba` fails there, as where it is not installed.
WITHOUT_NUMBA = """
import logging
import sys

sys.modules["numba"] = None
logging.basicConfig(level=logging.DEBUG, format="%(name)s: %(message)s")

import numpy as np

from waymo_unet.data import decode, png

assert not png.COMPILED and not decode.COMPILED
labels, results = np.load(sys.argv[1]), {}
for name in labels.files:
    pixels = results[name] = png.decode_grey16(labels[name].tobytes())
    for divisor in map(int, sys.argv[3:]):
        results[f"{name}, divisor {divisor}"] = decode.semantic_histogram(pixels, divisor)
np.savez(sys.argv[2], **results)
"""


def labels() -> dict[str, bytes]:
    """Flat, noisy and label-like PNGs, each row filter type, as libpng and OpenCV write."""
    flat = np.full((30, 40), 25_003, np.uint16)
    noise = np.random.default_rng(6).integers(0, 65_536, (30, 40)).astype(np.uint16)
    label = panoptic_like(48, 64, seed=7)
    filters = {"none": NONE, "sub": SUB, "up": UP, "average": AVERAGE, "paeth": PAETH}
    encoded = {f"label, {name}": grey16_png(label, [f] * 48) for name, f in filters.items()}
    encoded["label, mixed"] = grey16_png(label, [i % 5 for i in range(48)], idat_chunks=3)
    encoded["flat, paeth"] = grey16_png(flat, [PAETH] * 30)
    encoded["noise, paeth"] = grey16_png(noise, [PAETH] * 30)
    encoded["label, opencv"] = cv2.imencode(".png", label)[1].tobytes()
    return encoded


def test_labels_decode_and_count_the_same_without_numba(tmp_path):
    encoded = labels()
    np.savez(tmp_path / "labels.npz", **{k: np.frombuffer(v, np.uint8) for k, v in encoded.items()})
    run = subprocess.run(
        [sys.executable, "-c", WITHOUT_NUMBA, tmp_path / "labels.npz", tmp_path / "out.npz"]
        + [str(divisor) for divisor in DIVISORS],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    results = np.load(tmp_path / "out.npz")
    for name, data in encoded.items():
        pixels = decode_grey16(data)  # numba's
        np.testing.assert_array_equal(results[name], pixels, err_msg=name)
        for divisor in DIVISORS:
            key = f"{name}, divisor {divisor}"
            np.testing.assert_array_equal(
                results[key], semantic_histogram(pixels, divisor), err_msg=key
            )
    # Said once per process, not once per label.
    assert run.stderr.count("numba cannot be imported, so libpng decodes") == 1
    assert run.stderr.count("numba cannot be imported, so numpy counts") == 1
