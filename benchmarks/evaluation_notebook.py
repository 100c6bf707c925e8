"""The notebook's evaluation loop, the baseline of the evaluation section.

pyarrow reads whole files, pandas merges on the keys, PIL decodes the JPEG and both PNGs
at full size and resizes the image to the model's size, one model call per image, its
logits upsampled to the label's size with ``F.interpolate`` and their ``argmax``, and
``np.bincount`` counts each image's coverage-weighted 29x29 confusion matrices.
"""

from __future__ import annotations

import io
import time
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import torch
import torch.nn.functional as F  # noqa: N812
from PIL import Image

from benchmarks.input_data import SegmentFiles
from waymo_unet.data.waymo import (
    IMAGE_COLUMN,
    KEY_CAMERA,
    KEY_COLUMNS,
    KEY_TIMESTAMP,
    NUM_CAMERAS_COVERED_COLUMN,
    PANOPTIC_DIVISOR_COLUMN,
    PANOPTIC_LABEL_COLUMN,
)
from waymo_unet.evaluation.waymo_confusion import NUM_WAYMO_IDS
from waymo_unet.models.export import DeployedModel


@dataclass
class NaiveRun:
    """The notebook loop's matrices and costs."""

    weighted: np.ndarray  # (29, 29) float64
    counts: np.ndarray  # (29, 29) int64
    images: int
    seconds: float
    stage_seconds: dict[str, float]

    @property
    def rate(self) -> float:
        return self.images / self.seconds


class Stopwatch:
    """Seconds spent per named stage, added up over a loop."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.seconds[stage] += now - self._last
        self._last = now


def naive_matrices(
    semantic: np.ndarray, predicted: np.ndarray, covered: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """One image's weighted and plain 29x29 matrices by ``np.bincount``.

    Ground truth UNDEFINED (0) is left out; weights are ``1 / num_cameras_covered``.
    """
    labelled = (semantic > 0) & (semantic < NUM_WAYMO_IDS)
    predicted = np.where(predicted < NUM_WAYMO_IDS, predicted, 0)  # a miss, as Waymo counts
    index = semantic[labelled].astype(np.int64) * NUM_WAYMO_IDS + predicted[labelled]
    weights = 1.0 / np.maximum(covered[labelled], 1)
    cells = NUM_WAYMO_IDS * NUM_WAYMO_IDS
    side = (NUM_WAYMO_IDS, NUM_WAYMO_IDS)
    weighted = np.bincount(index, weights=weights, minlength=cells).reshape(side)
    return weighted, np.bincount(index, minlength=cells).reshape(side)


def naive_evaluate(
    model: DeployedModel,
    files: list[SegmentFiles],
    cameras: tuple[int, ...],
    device: torch.device,
) -> NaiveRun:
    """Every labelled image of ``cameras`` in ``files``, scored the way a notebook would."""
    height, width = model.image_size
    lookup = model.waymo_ids
    weighted = np.zeros((NUM_WAYMO_IDS, NUM_WAYMO_IDS))
    counts = np.zeros((NUM_WAYMO_IDS, NUM_WAYMO_IDS), dtype=np.int64)
    images = 0
    start = time.perf_counter()
    watch = Stopwatch()
    for segment in files:
        pairs = pd.merge(
            pq.read_table(segment.image_path).to_pandas(),
            pq.read_table(segment.label_path).to_pandas(),
            on=list(KEY_COLUMNS),
        ).sort_values([KEY_TIMESTAMP, KEY_CAMERA])
        pairs = pairs[pairs[KEY_CAMERA].isin(cameras)]
        watch.lap("read + merge")
        for _, row in pairs.iterrows():
            image = Image.open(io.BytesIO(row[IMAGE_COLUMN])).convert("RGB")
            panoptic = np.asarray(Image.open(io.BytesIO(row[PANOPTIC_LABEL_COLUMN])))
            semantic = panoptic // int(row[PANOPTIC_DIVISOR_COLUMN])
            covered = np.asarray(Image.open(io.BytesIO(row[NUM_CAMERAS_COVERED_COLUMN])))
            watch.lap("decode")
            small = np.asarray(image.resize((width, height), Image.Resampling.BILINEAR))
            watch.lap("resize image")
            batch = torch.from_numpy(small.copy()).unsqueeze(0).to(device)
            logits = model.predict_logits(batch)
            watch.lap("model")
            upsampled = F.interpolate(
                logits.float(), size=semantic.shape, mode="bilinear", align_corners=False
            )
            predicted = lookup[upsampled.argmax(dim=1)[0].cpu().numpy()]
            watch.lap("upsample logits")
            one_weighted, one_counts = naive_matrices(semantic, predicted, covered)
            weighted += one_weighted
            counts += one_counts
            images += 1
            watch.lap("confusion")
    seconds = time.perf_counter() - start
    per_image = {stage: s / max(images, 1) for stage, s in watch.seconds.items()}
    return NaiveRun(weighted, counts, images, seconds, per_image)
