"""Reporting nodes: one chart or picture each, then a page that embeds them all."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from waymo_unet.data.shards import ShardStore
from waymo_unet.models.bundle import SegmentationModel
from waymo_unet.reporting.chart_render import spec_png_bytes
from waymo_unet.reporting.chart_style import AnyChart
from waymo_unet.reporting.class_charts import class_distribution_chart, class_iou_chart
from waymo_unet.reporting.evaluation_charts import (
    camera_iou_chart,
    confusion_chart,
    evaluation_class_iou_chart,
)
from waymo_unet.reporting.evaluation_summary import evaluation_summary
from waymo_unet.reporting.overlays import encode_png
from waymo_unet.reporting.page import ReportSection, report_page
from waymo_unet.reporting.training_charts import training_chart, tuning_chart
from waymo_unet.reporting.validation import validation_overlays


def plot_tuning_trials(trials: pd.DataFrame, tuning_params: dict[str, Any]) -> AnyChart:
    return tuning_chart(trials, list(tuning_params["search_space"]))


def plot_training_history(history: pd.DataFrame) -> AnyChart:
    return training_chart(history)


def plot_class_iou(class_iou: pd.DataFrame) -> AnyChart:
    return class_iou_chart(class_iou)


def plot_class_distribution(label_catalog: pd.DataFrame) -> AnyChart:
    return class_distribution_chart(label_catalog)


def plot_evaluation_confusion(confusion: pd.DataFrame) -> AnyChart:
    return confusion_chart(confusion)


def plot_evaluation_class_iou(class_iou: pd.DataFrame) -> AnyChart:
    return evaluation_class_iou_chart(class_iou)


def plot_evaluation_cameras(camera_iou: pd.DataFrame) -> AnyChart:
    return camera_iou_chart(camera_iou)


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
    evaluation_metrics: dict[str, Any],
    evaluation_metrics_at_training_size: dict[str, Any],
    evaluation_confusion_spec: dict[str, Any],
    evaluation_class_iou_spec: dict[str, Any],
    evaluation_camera_spec: dict[str, Any],
    evaluation_gallery: Image.Image,
) -> str:
    """One self-contained HTML page with every chart, the overlays and the key tables."""
    evaluation = _evaluation_sections(
        evaluation_metrics,
        evaluation_metrics_at_training_size,
        [evaluation_confusion_spec, evaluation_class_iou_spec, evaluation_camera_spec],
        evaluation_gallery,
    )
    sections = [
        *evaluation,
        ReportSection(
            "Training",
            "Loss, validation mIoU and learning rate per epoch.",
            png=_chart_png(training_chart_spec),
            metrics=training_metrics,
            image_scale=2,
        ),
        ReportSection(
            "Per-class IoU",
            "Validation IoU of every trained class after the last epoch.",
            png=_chart_png(class_iou_spec),
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
            png=_chart_png(tuning_chart_spec),
            metrics=_best_trial(tuned_hyperparameters),
            image_scale=2,
        ),
        ReportSection(
            "Classes",
            "Share of labelled pixels per class and split (label catalogue).",
            png=_chart_png(class_distribution_spec),
            image_scale=2,
        ),
        ReportSection(
            "Ingestion",
            "What ingestion read, wrote and quarantined, per segment.",
            table=ingestion_report,
        ),
    ]
    return report_page("waymo-unet report", sections)


def _chart_png(spec: dict[str, Any]) -> bytes:
    return spec_png_bytes(spec, scale_factor=2)


def _evaluation_sections(
    metrics: dict[str, Any],
    at_training_size: dict[str, Any],
    chart_specs: list[dict[str, Any]],
    gallery: Image.Image,
) -> list[ReportSection]:
    """The headline numbers of both evaluations, the three charts and the worst images."""
    confusion, class_iou, cameras = (_chart_png(spec) for spec in chart_specs)
    split = metrics.get("split", "validation")
    return [
        ReportSection(
            "Waymo evaluation",
            f"Waymo's semantic-segmentation metric on the {split} split. At the labels' size: "
            "the raw files, predictions upsampled to each label's full size, every pixel "
            "weighted by 1/num_cameras_covered (a point several cameras see counts once), "
            "UNDEFINED ground truth ignored, mIoU averaged over the classes present in "
            "ground truth or prediction, untrained classes included. At the training size: "
            "the same metric on the validation shards at the resolution the model was "
            "trained at, where no coverage is known (every pixel weighs 1).",
            table=evaluation_summary(metrics, at_training_size),
        ),
        ReportSection(
            "Waymo evaluation: confusion matrix",
            "Share of each ground-truth class's pixels (weighted by 1/num_cameras_covered, "
            "at the labels' size) predicted as each class; each row sums to 100%. Rows "
            "without ground truth and columns never predicted are left out.",
            png=confusion,
            image_scale=2,
        ),
        ReportSection(
            "Waymo evaluation: IoU per class",
            "Weighted (1/num_cameras_covered) and plain IoU per class at the labels' size, "
            "UNDEFINED ignored; only the classes in the mean; untrained classes are faded "
            "and labelled. The dashed line is the weighted mIoU.",
            png=class_iou,
            image_scale=2,
        ),
        ReportSection(
            "Waymo evaluation: mIoU per camera",
            "Weighted (1/num_cameras_covered) and plain mIoU of each camera's images at the "
            "labels' size, UNDEFINED ignored.",
            png=cameras,
            image_scale=2,
        ),
        ReportSection(
            "Waymo evaluation: lowest weighted IoU",
            "The images with the lowest weighted mIoU: image | ground truth | prediction.",
            png=encode_png(np.asarray(gallery.convert("RGB"))),
        ),
    ]


def _best_trial(tuned: dict[str, Any]) -> dict[str, Any]:
    if not tuned:
        return {"best trial": "none complete"}
    return {
        "best trial": tuned["trial"],
        tuned["objective"]: tuned["value"],
        **tuned["hyperparameters"],
    }
