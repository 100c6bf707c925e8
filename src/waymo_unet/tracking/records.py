"""What a run records in MLflow, as plain data: metric series, headline numbers and tags.

Pure functions of the pipelines' own outputs: the nodes that call them hand the result to
kedro-mlflow's datasets (``MlflowMetricsHistoryDataset`` takes ``{name: [{"step",
"value"}, ...]}``) and to the project's tag and nested-run datasets, so no node talks to
MLflow itself.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Mapping
from typing import Any

import pandas as pd

from waymo_unet.digest import content_digest, table_digest

MetricPoints = list[dict[str, float]]
"""One metric's points, ``[{"step": epoch, "value": v}, ...]``, as kedro-mlflow logs them."""

EPOCH_METRICS = {
    "train_loss": "train_loss",
    "val_loss": "val_loss",
    "val_cross_entropy": "val_cross_entropy",
    "mean_iou": "val_mean_iou",
    "pixel_accuracy": "val_pixel_accuracy",
    "lr": "learning_rate",
    "images_per_s": "images_per_s",
    "seconds": "epoch_seconds",
    "peak_memory_gib": "peak_memory_gib",  # CUDA only
}
"""Training history column -> MLflow metric name (validation ones say so)."""

FINGERPRINT_TAG = "training.fingerprint"
"""The same for every MLflow run that trained, resumed or reused one training run."""

RUN_METRICS = ("majority_class_mean_iou", "majority_class_pixel_accuracy", "train_seconds")
"""Numbers of the training summary that no epoch series already ends with."""


def epoch_metrics(record: Mapping[str, Any]) -> dict[str, float]:
    """One epoch's history record as MLflow metrics: names mapped, non-numbers left out."""
    return {
        name: float(record[column])
        for column, name in EPOCH_METRICS.items()
        if column in record and _is_number(record[column])
    }


def epoch_series(history: pd.DataFrame) -> dict[str, MetricPoints]:
    """Each history column as a metric series with one point per epoch (step = epoch)."""
    series: dict[str, MetricPoints] = {}
    for record in history.to_dict("records"):
        for name, value in epoch_metrics(record).items():
            series.setdefault(name, []).append({"step": int(record["epoch"]), "value": value})
    return series


def single_points(numbers: Mapping[str, Any], step: int = 0) -> dict[str, MetricPoints]:
    """Every number in a nested JSON document as a one-point series, ``a.b`` for nesting.

    Strings, lists, booleans and nulls are left out: they are not measurements.
    """
    return {
        name: [{"step": step, "value": float(value)}]
        for name, value in flat_parameters(numbers).items()
        if _is_number(value)
    }


def training_metrics(history: pd.DataFrame, summary: Mapping[str, Any]) -> dict[str, MetricPoints]:
    """Every epoch's series, and the baseline and duration at the last epoch.

    The epochs a run trains are also logged as each ends (``EpochMetricsLogger``); saving
    this through ``MlflowMetricSeriesDataset`` adds only those the run lacks: restored
    from a checkpoint, or not sent while training.
    """
    last_epoch = int(history["epoch"].iloc[-1]) if len(history) else 0
    headline = {name: summary[name] for name in RUN_METRICS if name in summary}
    return {**epoch_series(history), **single_points(headline, step=last_epoch)}


def training_tags(
    shard_index: pd.DataFrame,
    label_catalog: Mapping[str, Any],
    summary: Mapping[str, Any],
    splits: tuple[str, str],
    tuned: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """What a model was trained on and how the run went, as searchable run tags.

    ``data.*`` says which shards (a digest of their index), how many segments and images
    per split, at which size, and which class mapping (a digest of the label catalogue).
    ``training.fingerprint`` is the same for every ``kedro run`` that trained, resumed or
    reused one training run: filter on it in the MLflow UI to find a crashed run's
    resumption. ``tuned.*`` names the tuning trial whose values replaced the parameters.
    """
    train_split, val_split = splits
    height, width = summary["image_size"]
    tags = {
        "data.shard_index_digest": table_digest(shard_index),
        "data.label_catalog_digest": content_digest(dict(label_catalog)),
        "data.image_size": f"{height}x{width}",
        "data.classes": label_catalog["num_classes"],
        FINGERPRINT_TAG: summary["fingerprint"],
        "training.resumed_after_epoch": summary["resumed_after_epoch"],
        "training.reused_finished_run": summary["resumed_after_epoch"] >= summary["epochs"],
    }
    for split in (train_split, val_split):
        rows = shard_index[shard_index["split"] == split]
        tags[f"data.{split}_segments"] = rows["segment"].nunique()
        tags[f"data.{split}_images"] = len(rows)
    if tuned:
        tags["tuned.trial"] = tuned["trial"]
        tags["tuned.study"] = tuned["study"]
        tags.update({f"tuned.{name}": value for name, value in tuned["hyperparameters"].items()})
    return {name: str(value) for name, value in tags.items()}


def evaluation_metrics(
    at_labels_size: Mapping[str, Any],
    at_training_size: Mapping[str, Any],
    class_iou: pd.DataFrame,
) -> dict[str, MetricPoints]:
    """Waymo's metric at the labels' size, the same at the training size (prefixed), and
    each class's Waymo-weighted IoU (``class_iou.<name>``, classes with pixels only)."""
    per_class = {
        metric_name(row.name): row.weighted_iou
        for row in class_iou.itertuples(index=False)
        if _is_number(row.weighted_iou)
    }
    return {
        **single_points(at_labels_size),
        **single_points({"at_training_size": dict(at_training_size), "class_iou": per_class}),
    }


def metric_name(text: str) -> str:
    """``"Traffic light"`` -> ``"traffic_light"``: what MLflow accepts in a metric name."""
    return re.sub(r"[^0-9a-z]+", "_", text.lower()).strip("_")


def flat_parameters(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"training": {"train": {"epochs": 3}}}`` -> ``{"training.train.epochs": 3}``, as
    kedro-mlflow logs a node's parameters (``dict_params.flatten`` in mlflow.yml) and as
    nested metric names read."""
    flat = {}
    for key, value in params.items():
        if isinstance(value, Mapping):
            flat.update(flat_parameters(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and not math.isnan(value)
