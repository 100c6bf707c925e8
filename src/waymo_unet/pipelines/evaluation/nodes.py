"""Evaluation nodes: Waymo's metric on the raw files, on the shards, and the worst images."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
from PIL import Image

from waymo_unet.data.ingest import SourceTree
from waymo_unet.data.shards import ShardStore
from waymo_unet.evaluation import tables
from waymo_unet.evaluation.evaluate import (
    EvaluationConfig,
    evaluate_batches,
    evaluate_raw_files,
    shard_batches,
)
from waymo_unet.evaluation.gallery import worst_images_gallery
from waymo_unet.evaluation.reading import plan_evaluation
from waymo_unet.models.bundle import Segmenter
from waymo_unet.tracking import records

logger = logging.getLogger(__name__)


def evaluate_on_raw_files(
    model: Segmenter,
    camera_images: SourceTree,
    camera_segmentation: SourceTree,
    params: dict[str, Any],
) -> tuple[
    dict[str, Any],
    pd.DataFrame,
    pd.DataFrame,
    pd.DataFrame,
    pd.DataFrame,
    pd.DataFrame,
    pd.DataFrame,
]:
    """Waymo's metric over every labelled image of the split, at the labels' size.

    Returns the metrics, the per-class, per-camera and per-segment tables, the confusion
    matrices, the per-image scores and the quarantined rows.
    """
    config = EvaluationConfig.from_params(params)
    segments = plan_evaluation(
        camera_images, camera_segmentation, config.split, config.max_segments
    )
    evaluation = evaluate_raw_files(model, segments, config)
    trained = model.waymo_ids.tolist()
    metrics = tables.evaluation_metrics(evaluation, trained, config.split)
    logger.info(
        "Waymo-weighted mIoU %s (plain %s) over %d image(s) of %s at the labels' size",
        _rounded(metrics["waymo_weighted_miou"]),
        _rounded(metrics["miou"]),
        metrics["images"],
        config.split,
    )
    if metrics["untrained_classes"]:
        logger.warning(
            "Classes in %s the model was never trained on (each scores 0): %s",
            config.split,
            ", ".join(metrics["untrained_classes"]),
        )
    return (
        metrics,
        tables.class_table(evaluation, trained),
        tables.camera_table(evaluation),
        tables.segment_table(evaluation),
        tables.confusion_table(evaluation),
        evaluation.images,
        tables.quarantine_table(evaluation),
    )


def evaluate_on_shards(
    model: Segmenter, shard_store: ShardStore, shard_index: pd.DataFrame, params: dict[str, Any]
) -> dict[str, Any]:
    """The same metric on the split's shards, at the training size and without coverage:
    set beside the full-size number, it shows what the low resolution costs."""
    config = EvaluationConfig.from_params(params)
    batches = shard_batches(shard_store, shard_index, config.split, config.batch_size)
    evaluation = evaluate_batches(model, batches, config.device, config.precision)
    return tables.evaluation_metrics(evaluation, model.waymo_ids.tolist(), config.split)


def draw_worst_images(
    model: Segmenter,
    camera_images: SourceTree,
    camera_segmentation: SourceTree,
    images: pd.DataFrame,
    params: dict[str, Any],
) -> Image.Image:
    """Image | ground truth | prediction for the images with the lowest weighted IoU."""
    config = EvaluationConfig.from_params(params)
    segments = plan_evaluation(
        camera_images, camera_segmentation, config.split, config.max_segments
    )
    grid = worst_images_gallery(
        model,
        segments,
        images,
        config.gallery_images,
        config.gallery_width,
        config.device,
        config.precision,
    )
    return Image.fromarray(grid)


def record_evaluation(
    metrics: dict[str, Any], metrics_at_training_size: dict[str, Any], class_iou: pd.DataFrame
) -> dict[str, list[dict[str, float]]]:
    """The evaluation's numbers as MLflow metrics, Waymo-weighted IoU per class included."""
    return records.evaluation_metrics(metrics, metrics_at_training_size, class_iou)


def _rounded(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"
