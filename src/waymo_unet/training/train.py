"""``train_model``: the whole training run, the same in a Kedro node, an Optuna trial and a test.

A run is resumable: after every epoch a checkpoint holds the model, optimiser, schedule,
scaler and history, and each epoch's random draws are seeded from (seed, epoch, rank).
Calling ``train_model`` again with the same settings continues from there; a finished run
is returned as it is unless ``retrain`` is set.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Dataset

from waymo_unet.models.unet import UNetConfig
from waymo_unet.training.checkpoint import CheckpointStore
from waymo_unet.training.config import TrainConfig
from waymo_unet.training.distributed import (
    DistributedContext,
    all_reduce_sum,
    require_same_on_all_ranks,
)
from waymo_unet.training.loop import Evaluation, evaluate, train_one_epoch
from waymo_unet.training.metrics import ConfusionMatrix, SegmentationMetrics, majority_class_metrics
from waymo_unet.training.run_setup import Run, build_run

logger = logging.getLogger(__name__)

EpochCallback = Callable[[dict[str, Any]], None]
"""Called with each epoch's history record plus the run's ``fingerprint`` (the same for a
run and its resumption); raising stops the run (e.g. Optuna pruning)."""


@dataclass
class TrainResult:
    """A finished (or resumed-finished) run: the model in eval mode and what it measured."""

    model: nn.Module
    history: list[dict[str, float]]
    final_metrics: SegmentationMetrics
    baseline_metrics: SegmentationMetrics | None = None
    fingerprint: str = ""  # of the settings and data: the same for a resumed run
    resumed_after_epoch: int = 0  # epochs restored from a checkpoint (all: a reused run)


def train_model(
    config: TrainConfig,
    unet: UNetConfig,
    train_data: Dataset,
    val_data: Dataset,
    class_weights: Sequence[float] | None = None,
    ignore_index: int = 255,
    checkpoints: CheckpointStore | None = None,
    callbacks: Sequence[EpochCallback] = (),
    distributed: DistributedContext | None = None,
) -> TrainResult:
    """Train a U-Net, evaluating on ``val_data`` after every epoch; resumes from a checkpoint.

    Under DDP (``distributed``) every rank calls this: ``config.batch_size`` is the
    global batch, split evenly over the ranks, so the learning rate needs no change;
    losses and confusion matrices are summed over ranks; only rank 0 saves checkpoints.
    """
    torch.manual_seed(config.seed)
    run = build_run(config, unet, train_data, val_data, class_weights, ignore_index, distributed)
    require_same_on_all_ranks(run.fingerprint, "run fingerprint", run.settings.device)
    history = _resume(run, checkpoints, config.retrain)
    resumed_after_epoch = len(history)
    # Ranks that found different checkpoints (a data/ folder not shared) would part ways.
    require_same_on_all_ranks(
        str(len(history)),
        "epoch to resume after",
        run.settings.device,
        hint="every rank must see the same checkpoint folder",
    )
    _log_start(run, config, history, len(train_data), len(val_data), distributed)
    confusion = None
    for epoch in range(len(history), config.epochs):
        record, confusion = _run_epoch(epoch, run, config, unet)
        history.append(record)
        if checkpoints is not None and (distributed is None or distributed.is_main):
            checkpoints.save(_checkpoint(run, history, config, unet))
        for callback in callbacks:
            callback({**record, "fingerprint": run.fingerprint})
    if confusion is None:  # a finished run, restored: measure it again
        confusion = _evaluate(run, unet.num_classes).confusion
    if distributed is not None:
        dist.barrier()  # rank 0's last checkpoint is complete before anyone returns
    run.model.eval()
    return TrainResult(
        run.model,
        history,
        confusion.compute(),
        majority_class_metrics(confusion.matrix),
        run.fingerprint,
        resumed_after_epoch,
    )


def _log_start(run, config, history, train_items, val_items, distributed) -> None:
    if len(history) >= config.epochs:
        logger.info(
            "The run already finished its %d epoch(s): set retrain to redo it", len(history)
        )
        return
    logger.info(
        "Training on %s%s (%s%s): %d train / %d val images, epochs %d to %d",
        run.settings.device,
        f" x {distributed.world_size} ranks" if distributed else "",
        run.settings.precision.name,
        ", channels_last" if run.settings.channels_last else "",
        train_items,
        val_items,
        len(history) + 1,
        config.epochs,
    )


def _evaluate(run: Run, num_classes: int) -> Evaluation:
    """Evaluate this rank's share with the plain network, then sum over ranks."""
    evaluation = evaluate(
        run.model, run.val_loader, run.loss_fn, run.settings, num_classes, run.loss_fn.ignore_index
    )
    loss, cross_entropy, batches = all_reduce_sum(
        [
            evaluation.loss * evaluation.batches,
            evaluation.cross_entropy * evaluation.batches,
            evaluation.batches,
        ],
        run.settings.device,
    )
    evaluation.confusion.all_reduce()
    count = max(batches, 1)
    return Evaluation(loss / count, cross_entropy / count, evaluation.confusion, int(batches))


def _run_epoch(
    epoch: int, run: Run, config: TrainConfig, unet: UNetConfig
) -> tuple[dict[str, float], ConfusionMatrix]:
    """Train and evaluate once; the history record and the validation confusion matrix."""
    start = time.perf_counter()
    run.train_loader.sampler.set_epoch(epoch)
    seed = epoch_seed(config.seed, epoch, run.rank)
    torch.manual_seed(seed)  # dropout, on the CPU and every GPU
    generator = torch.Generator().manual_seed(seed)  # augmentation
    device = run.settings.device
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    stats = train_one_epoch(
        run.runnable, run.train_loader, run.optimisation, run.settings, generator
    )
    loss_sum, batches, images = all_reduce_sum(
        [stats["train_loss"] * stats["batches"], stats["batches"], stats["images"]], device
    )
    evaluation = _evaluate(run, unet.num_classes)
    metrics = evaluation.confusion.compute()
    record = {
        "epoch": epoch + 1,
        "train_loss": loss_sum / max(batches, 1),
        "val_loss": evaluation.loss,
        "val_cross_entropy": evaluation.cross_entropy,
        "mean_iou": metrics.mean_iou,
        "pixel_accuracy": metrics.pixel_accuracy,
        "lr": stats["lr"],
        "images_per_s": images / stats["train_seconds"] if stats["train_seconds"] else 0.0,
        "seconds": time.perf_counter() - start,
    }
    if device.type == "cuda":
        record["peak_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    logger.info(
        "epoch %d/%d: train loss %.4f, val loss %.4f, mIoU %.3f, pixel acc %.3f, %.1f images/s",
        epoch + 1,
        config.epochs,
        record["train_loss"],
        evaluation.loss,
        metrics.mean_iou,
        metrics.pixel_accuracy,
        record["images_per_s"],
    )
    return record, evaluation.confusion


def _checkpoint(
    run: Run, history: list[dict[str, float]], config: TrainConfig, unet: UNetConfig
) -> dict[str, Any]:
    return {
        "fingerprint": run.fingerprint,
        "epoch": len(history),
        "model": run.model.state_dict(),
        "optimizer": run.optimisation.optimizer.state_dict(),
        "scheduler": run.optimisation.scheduler.state_dict(),
        "scaler": run.optimisation.scaler.state_dict(),
        "history": history,
        "train_config": config.to_dict(),
        "unet_config": unet.to_dict(),
    }


def _resume(run: Run, checkpoints: CheckpointStore | None, retrain: bool) -> list[dict[str, float]]:
    """Restore the last checkpoint of the same run; returns the history so far."""
    checkpoint = checkpoints.load() if checkpoints is not None and not retrain else None
    if checkpoint is None:
        return []
    if checkpoint["fingerprint"] != run.fingerprint:
        logger.warning(
            "Checkpoint %s is of another run (settings or data changed): training from scratch",
            checkpoints.path,
        )
        return []
    run.model.load_state_dict(checkpoint["model"])
    run.optimisation.optimizer.load_state_dict(checkpoint["optimizer"])
    run.optimisation.scheduler.load_state_dict(checkpoint["scheduler"])
    if checkpoint["scaler"]:  # empty where fp16 was not used: bf16, fp32 or another GPU
        run.optimisation.scaler.load_state_dict(checkpoint["scaler"])
    logger.info("Resuming from %s after epoch %d", checkpoints.path, checkpoint["epoch"])
    return list(checkpoint["history"])


def epoch_seed(seed: int, epoch: int, rank: int) -> int:
    """The seed of one rank's epoch.

    Ranks and epochs draw different augmentations and dropout masks, and a resumed run
    draws what an unbroken one would, without carrying random states in checkpoints.
    """
    # SeedSequence takes no negative numbers; torch.manual_seed maps them alike.
    return int(np.random.SeedSequence([seed % 2**64, epoch, rank]).generate_state(1)[0])
