"""The decoders alone, on pairs already in memory: the ceiling of one ingestion worker.

``decode_pair`` on one core with no parquet and no shards, and each label PNG decoder on
the same labels, which shows what the project's PNG decoder buys.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import cv2
import imagecodecs
import numpy as np

from benchmarks.encoded_pairs import EncodedPairReader, pair_locations
from benchmarks.ingestion_runs import opencv_threads
from benchmarks.input_data import BenchmarkInput
from waymo_unet.data.pairs import decode_pair
from waymo_unet.data.png import decode_grey16


def _opencv_png_decode(data: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)


LABEL_DECODERS: dict[str, Callable[[bytes], np.ndarray]] = {
    "waymo_unet.data.png (libdeflate + numba)": decode_grey16,
    "imagecodecs.png_decode (libpng)": imagecodecs.png_decode,
    "cv2.imdecode": _opencv_png_decode,
}


def time_decoders_alone(
    data: BenchmarkInput, height: int, width: int, limit: int = 100
) -> tuple[float, dict[str, float]]:
    """Pairs/s of ``decode_pair`` alone on one core, and ms per label PNG of each decoder
    in ``LABEL_DECODERS``, on the input's first ``limit`` pairs."""
    pairs = EncodedPairReader().read_all(pair_locations(data)[:limit])
    with opencv_threads(1):
        decode_pair(*pairs[0], height, width)  # first call loads the codecs
        start = time.perf_counter()
        for jpeg, png, divisor in pairs:
            decode_pair(jpeg, png, divisor, height, width)
        seconds = time.perf_counter() - start
        labels = [png for _, png, _ in pairs]
        label_ms = {name: _ms_per_call(decode, labels) for name, decode in LABEL_DECODERS.items()}
    return (len(pairs) / seconds if seconds else 0.0), label_ms


def _ms_per_call(function: Callable[[bytes], object], inputs: list[bytes]) -> float:
    """Milliseconds per call over ``inputs``, the fastest of 3 passes after a warm-up call."""
    function(inputs[0])
    passes = []
    for _ in range(3):
        start = time.perf_counter()
        for item in inputs:
            function(item)
        passes.append((time.perf_counter() - start) / len(inputs))
    return 1000 * min(passes)
