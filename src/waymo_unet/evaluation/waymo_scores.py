"""Waymo's semantic-segmentation metric, the scoring: IoU and mIoU of its 29x29 matrices.

The mean IoU runs over classes 1..28 whose union is not empty: UNDEFINED (0) is never a
class scored, and a class absent from both ground truth and prediction is not averaged.
The matrices come from ``waymo_confusion``.

``training.metrics.metrics_from_matrix`` serves for per-class IoU and pixel accuracy (it
works in float64); only the mean is redone, to leave UNDEFINED out.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from waymo_unet.data.waymo import SEMANTIC_CLASSES, UNDEFINED
from waymo_unet.evaluation.waymo_confusion import NUM_WAYMO_IDS
from waymo_unet.training.metrics import metrics_from_matrix

__all__ = [
    "EVALUATED_CLASSES",
    "WaymoScores",
    "image_mean_iou",
    "untrained_classes",
    "waymo_scores",
]

EVALUATED_CLASSES = tuple(sorted(c for c in SEMANTIC_CLASSES if c != UNDEFINED))


def image_mean_iou(matrices: Tensor) -> Tensor:
    """Mean IoU of each of N 29x29 matrices (N, 29, 29), float64 (N,), on their device.

    The mean of ``waymo_scores``, without a host read: over ids 1..28 whose union is
    not empty; NaN for an image with no labelled pixel.
    """
    values = matrices.to(torch.float64)
    hits = values.diagonal(dim1=1, dim2=2)
    union = values.sum(dim=2) + values.sum(dim=1) - hits
    iou = hits / union  # NaN where the union is empty (0 / 0)
    return iou[:, list(EVALUATED_CLASSES)].nanmean(dim=1)


@dataclass(frozen=True)
class WaymoScores:
    """Scores of one 29x29 Waymo matrix, weighted or plain, indexed by Waymo id.

    * ``per_class_iou[c]``: ``TP / (TP + FP + FN)``; NaN where the union is empty, and
      always NaN for UNDEFINED, which is not a class scored.
    * ``mean_iou``: mean over ``averaged_classes``, the ids 1..28 whose union is not empty.
    * ``ground_truth_pixels`` / ``predicted_pixels``: row and column sums; the UNDEFINED
      column holds the misses predicted as UNDEFINED or as an id outside 0..28.
    * ``pixel_accuracy``: diagonal over ``pixels``, the labelled pixels' total weight.
    """

    mean_iou: float
    pixel_accuracy: float
    per_class_iou: tuple[float, ...]
    ground_truth_pixels: tuple[float, ...]
    predicted_pixels: tuple[float, ...]
    averaged_classes: tuple[int, ...]
    pixels: float

    def per_class(self) -> list[dict[str, Any]]:
        """One row per evaluated class: class_id, name, iou, ground-truth, predicted pixels."""
        return [
            {
                "class_id": class_id,
                "name": SEMANTIC_CLASSES[class_id],
                "iou": self.per_class_iou[class_id],
                "ground_truth_pixels": self.ground_truth_pixels[class_id],
                "predicted_pixels": self.predicted_pixels[class_id],
            }
            for class_id in EVALUATED_CLASSES
        ]


def waymo_scores(matrix: Tensor) -> WaymoScores:
    """Waymo's scores of a 29x29 matrix (rows ground truth, columns prediction)."""
    if tuple(matrix.shape) != (NUM_WAYMO_IDS, NUM_WAYMO_IDS):
        raise ValueError(
            f"a Waymo matrix is {NUM_WAYMO_IDS}x{NUM_WAYMO_IDS}, got {tuple(matrix.shape)}"
        )
    # IoU per class and pixel accuracy as the training metric computes them; its mean
    # would take UNDEFINED's column of misses for a class, so the mean is redone here.
    base = metrics_from_matrix(matrix)
    per_class_iou = list(base.per_class_iou)
    per_class_iou[UNDEFINED] = math.nan
    averaged = tuple(c for c in EVALUATED_CLASSES if not math.isnan(per_class_iou[c]))
    mean_iou = (
        math.fsum(per_class_iou[c] for c in averaged) / len(averaged) if averaged else math.nan
    )
    values = matrix.detach().to("cpu", torch.float64)
    return WaymoScores(
        mean_iou=mean_iou,
        pixel_accuracy=base.pixel_accuracy,
        per_class_iou=tuple(per_class_iou),
        ground_truth_pixels=tuple(values.sum(dim=1).tolist()),
        predicted_pixels=tuple(values.sum(dim=0).tolist()),
        averaged_classes=averaged,
        pixels=float(values.sum().item()),
    )


def untrained_classes(scores: WaymoScores, trained_ids: Iterable[int]) -> tuple[int, ...]:
    """The averaged classes the model was never trained on: each scores 0 in the mean.

    ``trained_ids`` are Waymo ids (the label catalogue's trained classes), not training
    indices; an id outside 0..28 is refused, as it cannot be a Waymo class.
    """
    trained = {int(c) for c in trained_ids}
    outside = sorted(c for c in trained if not 0 <= c < NUM_WAYMO_IDS)
    if outside:
        raise ValueError(f"trained ids {outside} are not Waymo semantic ids 0..28")
    return tuple(c for c in scores.averaged_classes if c not in trained)
