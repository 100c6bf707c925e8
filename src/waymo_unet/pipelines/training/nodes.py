"""Training node: shards + label catalogue -> trained model, history and per-class IoU."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import pandas as pd

from waymo_unet.data.label_catalog import id_to_index_lut
from waymo_unet.data.shards import ShardStore
from waymo_unet.models.bundle import SegmentationModel
from waymo_unet.models.export import DeployedModel, deployment_manifest, export_program
from waymo_unet.models.unet import UNetConfig
from waymo_unet.tracking import records
from waymo_unet.tracking.epoch_logger import EpochMetricsLogger
from waymo_unet.training.checkpoint import CheckpointStore
from waymo_unet.training.config import TrainConfig, TrainingRunConfig
from waymo_unet.training.data import ShardDataset
from waymo_unet.training.job import TrainingJob, run_training
from waymo_unet.training.train import EpochCallback, TrainResult
from waymo_unet.tuning.search_space import apply_hyperparameters

logger = logging.getLogger(__name__)


def applied_tuning(params: dict[str, Any], tuned: dict[str, Any]) -> dict[str, Any] | None:
    """The study's best trial when training takes it (``use_tuned`` and a trial), else None."""
    return tuned if tuned and TrainingRunConfig.from_params(params).use_tuned else None


def tuned_parameters(params: dict[str, Any], tuned: dict[str, Any]) -> dict[str, Any]:
    """``params`` with the best trial's values put in, when training takes them."""
    applied = applied_tuning(params, tuned)
    return apply_hyperparameters(params, applied["hyperparameters"]) if applied else params


def with_tuned_hyperparameters(params: dict[str, Any], tuned: dict[str, Any]) -> dict[str, Any]:
    """The training parameters, overridden by the tuning study's best trial when asked.

    Kedro has already merged ``--params`` into ``params``, so a tuned value also replaces
    one given on the command line: the log line names each value replaced.
    """
    merged = tuned_parameters(params, tuned)
    if merged is params:
        return params
    replaced = [
        f"training.{group}.{name} {params[group].get(name, '(default)')!r} -> {value!r}"
        for name, value in tuned["hyperparameters"].items()
        for group in ("model", "train")
        if name in merged[group] and params[group].get(name) != value
    ]
    logger.info(
        "Using the hyper-parameters of tuning trial %d (%s %.4f), replacing: %s "
        "(training.use_tuned=false keeps the parameters as given)",
        tuned["trial"],
        tuned["objective"],
        tuned["value"],
        ", ".join(replaced) or "nothing",
    )
    return merged


def warn_if_tuned_on_other_images(tuned: dict[str, Any], train_data: ShardDataset) -> None:
    """Say so when the tuned values come from trials on images of another size.

    The training pipeline re-runs ingestion but not tuning, so shards re-ingested at
    another size still meet the values tuned on the old ones.
    """
    tuned_shape = tuned.get("image_shape")
    if tuned_shape is not None and list(tuned_shape) != list(train_data.image_shape):
        logger.warning(
            "The tuned hyper-parameters come from trials on %s images; training is on %s: "
            "run the tuning pipeline again, or set training.use_tuned=false",
            "x".join(map(str, tuned_shape[:2])),
            "x".join(map(str, train_data.image_shape[:2])),
        )


def training_job(
    shard_store: ShardStore,
    shard_index: pd.DataFrame,
    label_catalog: dict[str, Any],
    tuned_hyperparameters: dict[str, Any],
    checkpoints: CheckpointStore,
    epoch_logger: EpochCallback | None,
    params: dict[str, Any],
) -> TrainingJob:
    """The run the ``training`` parameters (and the best tuning trial) describe.

    ``epoch_logger`` (from the catalog: MLflow, when tracking is on) sees each epoch as it
    ends.
    """
    run = TrainingRunConfig.from_params(with_tuned_hyperparameters(params, tuned_hyperparameters))
    lut = id_to_index_lut(label_catalog)
    train_data = ShardDataset(shard_store, shard_index, run.train_split, lut)
    if run.use_tuned:
        warn_if_tuned_on_other_images(tuned_hyperparameters, train_data)
    return TrainingJob(
        config=TrainConfig.from_params(run.train),
        unet=UNetConfig.from_params(run.model, label_catalog["num_classes"]),
        train_data=train_data,
        val_data=ShardDataset(shard_store, shard_index, run.val_split, lut),
        class_weights=[c["weight"] for c in label_catalog["classes"]],
        ignore_index=label_catalog["ignore_index"],
        checkpoints=dataclasses.replace(
            checkpoints, run_info={"classes": label_catalog["classes"]}
        ),
        callbacks=[epoch_logger] if epoch_logger is not None else [],
    )


def training_outputs(
    job: TrainingJob, result: TrainResult, label_catalog: dict[str, Any]
) -> tuple[SegmentationModel, pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """The model packaged for inference, the history, per-class IoU and the summary."""
    for callback in job.callbacks:
        if isinstance(callback, EpochMetricsLogger):
            callback.flush()  # its epochs reach the run before the record adds what is missing
    image_size = job.train_data.image_shape[:2]
    model = SegmentationModel(result.model.cpu(), job.unet, label_catalog["classes"], image_size)
    history = pd.DataFrame(result.history)
    return model, history, class_iou_table(result, label_catalog), summary(result, image_size)


def train_segmentation_model(
    shard_store: ShardStore,
    shard_index: pd.DataFrame,
    label_catalog: dict[str, Any],
    tuned_hyperparameters: dict[str, Any],
    checkpoints: CheckpointStore,
    epoch_logger: EpochCallback | None,
    params: dict[str, Any],
) -> tuple[SegmentationModel, pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Train (or resume, or reuse a finished run), on ``nproc_per_node`` DDP ranks if > 1."""
    job = training_job(
        shard_store,
        shard_index,
        label_catalog,
        tuned_hyperparameters,
        checkpoints,
        epoch_logger,
        params,
    )
    result = run_training(job, TrainingRunConfig.from_params(params).nproc_per_node)
    return training_outputs(job, result, label_catalog)


def class_iou_table(result: TrainResult, label_catalog: dict[str, Any]) -> pd.DataFrame:
    """Final validation IoU and accuracy per trained class, with Waymo ids and names."""
    metrics = result.final_metrics
    return pd.DataFrame(
        {
            "index": [c["index"] for c in label_catalog["classes"]],
            "class_id": [c["id"] for c in label_catalog["classes"]],
            "name": [c["name"] for c in label_catalog["classes"]],
            "iou": metrics.per_class_iou,
            "accuracy": metrics.per_class_accuracy,
        }
    )


def summary(result: TrainResult, image_size: tuple[int, int]) -> dict[str, Any]:
    """Headline numbers of the run, with the majority-class baseline to compare against,
    and which run it was: its fingerprint, image size and how many epochs it resumed after.
    """
    last = result.history[-1]
    numbers = {
        "epochs": int(last["epoch"]),
        "mean_iou": result.final_metrics.mean_iou,
        "pixel_accuracy": result.final_metrics.pixel_accuracy,
        "val_loss": last["val_loss"],
        "train_seconds": sum(r["seconds"] for r in result.history),
    }
    if result.baseline_metrics is not None:
        numbers["majority_class_mean_iou"] = result.baseline_metrics.mean_iou
        numbers["majority_class_pixel_accuracy"] = result.baseline_metrics.pixel_accuracy
    logger.info("Training result: %s", numbers)
    return {
        **numbers,
        "image_size": list(image_size),
        "fingerprint": result.fingerprint,
        "resumed_after_epoch": result.resumed_after_epoch,
    }


def record_training_run(
    shard_index: pd.DataFrame,
    label_catalog: dict[str, Any],
    tuned_hyperparameters: dict[str, Any],
    history: pd.DataFrame,
    metrics: dict[str, Any],
    params: dict[str, Any],
) -> tuple[dict[str, list[dict[str, float]]], dict[str, str], dict[str, Any]]:
    """The run's metric series (one point per epoch), tags (data, fingerprint, tuning) and
    the settings it trained with (``trained.*``: the parameters, tuned values applied)."""
    run = TrainingRunConfig.from_params(params)
    tuned = applied_tuning(params, tuned_hyperparameters)
    trained = TrainingRunConfig.from_params(tuned_parameters(params, tuned_hyperparameters))
    settings = {
        "train": TrainConfig.from_params(trained.train).to_dict(),
        "model": UNetConfig.from_params(trained.model, label_catalog["num_classes"]).to_dict(),
    }
    return (
        records.training_metrics(history, metrics),
        records.training_tags(
            shard_index, label_catalog, metrics, (run.train_split, run.val_split), tuned
        ),
        records.flat_parameters({"trained": settings}),
    )


def export_deployable_model(model: SegmentationModel) -> DeployedModel:
    """The trained model as a ``torch.export`` program with its manifest, for deployment."""
    return DeployedModel(export_program(model), deployment_manifest(model))
