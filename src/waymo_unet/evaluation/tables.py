"""An evaluation as plain outputs: a metrics dict and tidy tables, ready for CSV and charts."""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable
from typing import Any

import pandas as pd
import torch

from waymo_unet.data.waymo import SEMANTIC_CLASSES, CameraName
from waymo_unet.evaluation.evaluate import WaymoEvaluation
from waymo_unet.evaluation.waymo_confusion import NUM_WAYMO_IDS
from waymo_unet.evaluation.waymo_scores import untrained_classes, waymo_scores

GROUP_SCORES = ["images", "pixels", "weighted_miou", "miou", "weighted_pixel_accuracy"]
READ_COUNTS = [
    "status",
    "image_rows",
    "label_rows",
    "pairs_written",
    "unlabelled_images",
    "other_camera_rows",
    "quarantined_rows",
    "no_pairs_reason",
]


def evaluation_metrics(
    evaluation: WaymoEvaluation, trained_ids: Iterable[int], split: str
) -> dict[str, Any]:
    """The headline numbers: Waymo's coverage-weighted mIoU, the plain one, and what
    they were computed over (NaN, for no image, is written as null)."""
    confusion = evaluation.confusion
    weighted, plain = waymo_scores(confusion.weighted), waymo_scores(confusion.counts)
    trained = [int(c) for c in trained_ids if 0 <= int(c) < NUM_WAYMO_IDS]
    untrained = untrained_classes(weighted, trained)
    images = len(evaluation.images)
    metrics = {
        "split": split,
        "waymo_weighted_miou": weighted.mean_iou,
        "miou": plain.mean_iou,
        "weighted_pixel_accuracy": weighted.pixel_accuracy,
        "pixel_accuracy": plain.pixel_accuracy,
        "images": images,
        "segments": int(evaluation.images["segment"].nunique()),
        "pixels": int(plain.pixels),
        "weighted_pixels": weighted.pixels,
        "undefined_pixels": confusion.undefined_pixels,
        "invalid_pixels": confusion.invalid_pixels,
        "images_without_coverage": confusion.images_without_coverage,
        "quarantined_rows": evaluation.quarantined_rows,
        "averaged_classes": [SEMANTIC_CLASSES[c] for c in weighted.averaged_classes],
        "untrained_classes": [SEMANTIC_CLASSES[c] for c in untrained],
        "device": evaluation.device,
        "precision": evaluation.precision,
        "seconds": round(evaluation.seconds, 3),
        "images_per_s": round(images / evaluation.seconds, 3) if evaluation.seconds else None,
    }
    return {name: _json_number(value) for name, value in metrics.items()}


def _json_number(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def class_table(evaluation: WaymoEvaluation, trained_ids: Iterable[int]) -> pd.DataFrame:
    """One row per Waymo class 1..28: weighted and plain IoU, pixels, whether trained."""
    trained = {int(c) for c in trained_ids}
    weighted = waymo_scores(evaluation.confusion.weighted).per_class()
    plain = waymo_scores(evaluation.confusion.counts).per_class()
    return pd.DataFrame(
        [
            {
                "class_id": w["class_id"],
                "name": w["name"],
                "trained": w["class_id"] in trained,
                "weighted_iou": w["iou"],
                "iou": p["iou"],
                "ground_truth_pixels": int(p["ground_truth_pixels"]),
                "predicted_pixels": int(p["predicted_pixels"]),
                "weighted_ground_truth_pixels": w["ground_truth_pixels"],
                "weighted_predicted_pixels": w["predicted_pixels"],
            }
            for w, p in zip(weighted, plain, strict=True)
        ]
    )


def camera_table(evaluation: WaymoEvaluation) -> pd.DataFrame:
    """Scores per camera, front first."""
    table = _group_table(evaluation.confusion.by_camera, evaluation.images, "camera")
    table.insert(1, "camera_name", [CameraName(c).name for c in table["camera"]])
    return table.sort_values("camera", ignore_index=True)


def segment_table(evaluation: WaymoEvaluation) -> pd.DataFrame:
    """Per segment: what was read (rows, pairs scored, quarantined) and its scores.

    Segments without a scored image (a missing file, every pair quarantined) are listed
    with empty scores and the reason.
    """
    scores = _group_table(evaluation.confusion.by_segment, evaluation.images, "segment")
    read = pd.DataFrame(
        [
            {
                "segment": r.segment,
                **{name: getattr(r, name) for name in READ_COUNTS if hasattr(r, name)},
                "quarantined_rows": len(r.quarantine),
            }
            for r in evaluation.segments
        ],
        columns=["segment", *READ_COUNTS],
    )
    read = read.rename(columns={"pairs_written": "images_scored"})
    return read.merge(scores, on="segment", how="outer").sort_values("segment", ignore_index=True)


def _group_table(
    groups: dict[Hashable, tuple[torch.Tensor, torch.Tensor]], images: pd.DataFrame, key: str
) -> pd.DataFrame:
    per_group = images.groupby(key).size()
    rows = []
    for name, (weighted, counts) in groups.items():
        weighted_scores, plain_scores = waymo_scores(weighted), waymo_scores(counts)
        rows.append(
            {
                key: name,
                "images": int(per_group.get(name, 0)),
                "pixels": int(plain_scores.pixels),
                "weighted_miou": weighted_scores.mean_iou,
                "miou": plain_scores.mean_iou,
                "weighted_pixel_accuracy": weighted_scores.pixel_accuracy,
            }
        )
    return pd.DataFrame(rows, columns=[key, *GROUP_SCORES])


def confusion_table(evaluation: WaymoEvaluation) -> pd.DataFrame:
    """Both 29x29 matrices as one tidy table: a row per (ground truth, prediction) cell."""
    weighted = evaluation.confusion.weighted.cpu()
    counts = evaluation.confusion.counts.cpu()
    ids = range(NUM_WAYMO_IDS)
    return pd.DataFrame(
        [
            {
                "ground_truth_id": truth,
                "ground_truth": SEMANTIC_CLASSES[truth],
                "predicted_id": predicted,
                "predicted": SEMANTIC_CLASSES[predicted],
                "weighted": float(weighted[truth, predicted]),
                "pixels": int(counts[truth, predicted]),
            }
            for truth in ids
            for predicted in ids
        ]
    )


def quarantine_table(evaluation: WaymoEvaluation) -> pd.DataFrame:
    """Every row pair left out, with its file and reason."""
    rows = [
        {"segment": result.segment, **row}
        for result in evaluation.segments
        for row in result.quarantine
    ]
    return pd.DataFrame(rows, columns=["segment", "file", "timestamp", "camera", "reason"])
