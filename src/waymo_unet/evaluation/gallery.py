"""The images a model does worst on: image | ground truth | prediction, for the report.

The evaluation keeps per-image scores, not pixels (a real validation split has tens of
thousands of images); the few worst are read again from the raw files by key, segmented
by the same ``predict_waymo_ids`` and drawn at a tile width fit for a page.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from waymo_unet.data.decode import decode_camera_image, resize_label
from waymo_unet.data.segment_result import SegmentResult
from waymo_unet.devices import choose_precision, resolve_device
from waymo_unet.evaluation.reading import (
    EvaluationSegment,
    decode_labelled_image,
    read_encoded_pairs,
)
from waymo_unet.models.bundle import Segmenter
from waymo_unet.models.prediction import predict_waymo_ids
from waymo_unet.reporting.overlays import overlay_grid, overlay_panel


def lowest_scoring(images: pd.DataFrame, count: int) -> pd.DataFrame:
    """The ``count`` scored images with the lowest weighted mIoU (ties: fewer pixels first)."""
    scored = images.dropna(subset=["weighted_miou"])
    return scored.sort_values(["weighted_miou", "pixels"], kind="stable").head(count)


def worst_images_gallery(
    model: Segmenter,
    segments: Sequence[EvaluationSegment],
    images: pd.DataFrame,
    count: int = 6,
    tile_width: int = 480,
    device: str = "auto",
    precision: str = "auto",
) -> np.ndarray:
    """One RGB picture: a panel per worst image, worst first, each with its legend."""
    worst = lowest_scoring(images, count)
    if worst.empty:
        raise ValueError("no scored image to draw: the evaluation scored none")
    keys: dict[str, set[tuple[int, int]]] = {}
    for row in worst.itertuples(index=False):
        keys.setdefault(row.segment, set()).add((int(row.timestamp), int(row.camera)))
    chosen = [s for s in segments if s.segment in keys]
    target = resolve_device(device)
    autocast = choose_precision(precision, target)
    model.to(target)
    panels: dict[tuple[str, int, int], np.ndarray] = {}
    results: dict[str, SegmentResult] = {}
    for encoded in read_encoded_pairs(chosen, range(1, 6), results, keys=keys):
        item = decode_labelled_image(encoded, model.image_size)
        with autocast.autocast():
            (predicted,) = predict_waymo_ids(
                model, torch.from_numpy(item.image[None]).to(target), [item.label_size]
            )
        width = min(tile_width, item.label_size[1])  # never enlarged: pixels stay honest
        height = max(1, round(item.label_size[0] * width / item.label_size[1]))
        panels[(item.segment, item.timestamp, item.camera)] = overlay_panel(
            decode_camera_image(encoded.jpeg, height, width),
            resize_label(item.label, height, width),
            resize_label(predicted.cpu().numpy(), height, width),
        )
    ordered = [
        panels[key]
        for key in zip(worst["segment"], worst["timestamp"], worst["camera"], strict=True)
        if key in panels
    ]
    return overlay_grid(ordered)
