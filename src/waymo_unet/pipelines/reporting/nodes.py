"""Reporting nodes: one chart or picture each, then a page that embeds them all."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from waymo_unet.data.shards import ShardStore
from waymo_unet.models.bundle import SegmentationModel
from waymo_unet.reporting.charts import (
    AnyChart,
    class_distribution_chart,
    class_iou_chart,
    spec_png_bytes,
    training_chart,
    tuning_chart,
)
from waymo_unet.reporting.overlays import encode_png
from waymo_unet.reporting.page import ReportSection, report_page
from waymo_unet.reporting.validation import validation_overlays


def plot_tuning_trials(trials: pd.DataFrame, tuning_params: dict[str, Any]) -> AnyChart:
    return tuning_chart(trials, list(tuning_params["search_space"]))


def plot_training_history(history: pd.DataFrame) -> AnyChart:
    return training_chart(history)


def plot_class_iou(class_iou: pd.DataFrame) -> AnyChart:
    return class_iou_chart(class_iou)


def plot_class_distribution(label_catalog: pd.DataFrame) -> AnyChart:
    return class_distribution_chart(label_catalog)


def render_validation_overlays(
    model: SegmentationModel,
    shard_store: ShardStore,
    shard_index: pd.DataFrame,
    params: dict[str, Any],
) -> Image.Image:
    """RGB | ground truth | prediction for a few validation images, with legends."""
    grid = validation_overlays(
        model, shard_store, shard_index, params["split"], params["samples"], params["scale"]
    )
    return Image.fromarray(grid)


def build_report_page(
    tuning_chart_spec: dict[str, Any],
    training_chart_spec: dict[str, Any],
    class_iou_spec: dict[str, Any],
    class_distribution_spec: dict[str, Any],
    overlays: Image.Image,
    training_metrics: dict[str, float],
    tuned_hyperparameters: dict[str, Any],
    ingestion_report: pd.DataFrame,
) -> str:
    """One self-contained HTML page with every chart, the overlays and the key tables."""

    def chart(spec: dict[str, Any]) -> bytes:
        return spec_png_bytes(spec, scale_factor=2)

    sections = [
        ReportSection(
            "Training",
            "Loss, validation mIoU and learning rate per epoch.",
            png=chart(training_chart_spec),
            metrics=training_metrics,
            image_scale=2,
        ),
        ReportSection(
            "Per-class IoU",
            "Validation IoU of every trained class after the last epoch.",
            png=chart(class_iou_spec),
            image_scale=2,
        ),
        ReportSection(
            "Validation overlays",
            "Image, ground truth over the image, prediction over it.",
            png=encode_png(np.asarray(overlays.convert("RGB"))),
        ),
        ReportSection(
            "Hyper-parameter search",
            "Validation cross-entropy per trial and per value.",
            png=chart(tuning_chart_spec),
            metrics=_best_trial(tuned_hyperparameters),
            image_scale=2,
        ),
        ReportSection(
            "Classes",
            "Share of labelled pixels per class and split (label catalogue).",
            png=chart(class_distribution_spec),
            image_scale=2,
        ),
        ReportSection(
            "Ingestion",
            "What ingestion read, wrote and quarantined, per segment.",
            table=ingestion_report,
        ),
    ]
    return report_page("waymo-unet report", sections)


def _best_trial(tuned: dict[str, Any]) -> dict[str, Any]:
    if not tuned:
        return {"best trial": "none complete"}
    return {
        "best trial": tuned["trial"],
        tuned["objective"]: tuned["value"],
        **tuned["hyperparameters"],
    }
