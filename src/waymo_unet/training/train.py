"""``train_model``: the whole training run, the same in a Kedro node, an Optuna trial and a test.

A run is resumable: after every epoch a checkpoint holds the model, optimiser, schedule,
scaler, RNG state and history. Calling ``train_model`` again with the same settings
continues from there; a finished run is returned as it is unless ``retrain`` is set.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from waymo_unet.data.parallel import available_cores
from waymo_unet.models.unet import UNetConfig, build_unet
from waymo_unet.training.checkpoint import CheckpointStore
from waymo_unet.training.data import AugmentConfig, make_loader
from waymo_unet.training.loop import (
    BatchSettings,
    Optimisation,
    evaluate,
    make_optimizer,
    train_one_epoch,
    warmup_cosine,
)
from waymo_unet.training.loss import SegmentationLoss
from waymo_unet.training.metrics import ConfusionMatrix, SegmentationMetrics, majority_class_metrics
from waymo_unet.training.precision import choose_precision

logger = logging.getLogger(__name__)

EpochCallback = Callable[[dict[str, float]], None]
"""Called with each epoch's history record; raising stops the run (e.g. Optuna pruning)."""

# Settings that change how fast a run goes, not what it computes.
_RUNTIME_ONLY = ("num_workers", "log_every", "retrain", "device", "compile")


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters and run settings of one training run."""

    epochs: int = 20
    batch_size: int = 8
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    warmup_epochs: float = 1.0
    min_lr_ratio: float = 0.01
    grad_clip: float | None = 1.0
    accumulation_steps: int = 1
    dice_weight: float = 0.0
    class_weight_power: float = 1.0  # loss weights = catalogue weights ** power (0: unweighted)
    augment: AugmentConfig | None = field(default_factory=AugmentConfig)
    precision: str = (
        "auto"  # auto: bf16 on CUDA (fp16 + scaler if unsupported) and on CPUs with native bf16
    )
    channels_last: bool | None = None  # None: when the precision is mixed
    compile: bool = False
    device: str = "auto"
    seed: int = 0
    num_workers: int | None = None  # None: one per core, at most 4
    log_every: int = 50
    retrain: bool = False

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "accumulation_steps", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> TrainConfig:
        values = dict(params)
        augment = values.pop("augment", {})
        values["augment"] = AugmentConfig(**augment) if augment is not None else None
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class TrainResult:
    """A finished (or resumed-finished) run: the model in eval mode and what it measured."""

    model: nn.Module
    history: list[dict[str, float]]
    final_metrics: SegmentationMetrics
    baseline_metrics: SegmentationMetrics | None = None


def resolve_device(requested: str) -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def run_fingerprint(config: TrainConfig, unet: UNetConfig, data_signature: dict[str, Any]) -> str:
    """Identifies what a run computes; a checkpoint of another fingerprint is not resumed."""
    settings = {k: v for k, v in config.to_dict().items() if k not in _RUNTIME_ONLY}
    content = json.dumps([settings, unet.to_dict(), data_signature], sort_keys=True, default=str)
    return hashlib.sha256(content.encode()).hexdigest()[:16]


def train_model(
    config: TrainConfig,
    unet: UNetConfig,
    train_data: Dataset,
    val_data: Dataset,
    class_weights: Sequence[float] | None = None,
    ignore_index: int = 255,
    checkpoints: CheckpointStore | None = None,
    callbacks: Sequence[EpochCallback] = (),
) -> TrainResult:
    """Train a U-Net, evaluating on ``val_data`` after every epoch; resumes from a checkpoint."""
    torch.manual_seed(config.seed)
    device = resolve_device(config.device)
    precision = choose_precision(config.precision, device)
    channels_last = (
        config.channels_last if config.channels_last is not None else precision.dtype is not None
    )
    workers = config.num_workers if config.num_workers is not None else min(4, available_cores())
    model = build_unet(unet).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    train_loader = make_loader(
        train_data, config.batch_size, True, config.seed, workers, device.type == "cuda"
    )
    val_loader = make_loader(
        val_data, config.batch_size, False, config.seed, workers, device.type == "cuda"
    )
    steps_per_epoch = math.ceil(len(train_loader) / config.accumulation_steps)
    optimizer = make_optimizer(model, config.learning_rate, config.weight_decay, device)
    optimisation = Optimisation(
        optimizer=optimizer,
        scheduler=warmup_cosine(
            optimizer,
            total_steps=steps_per_epoch * config.epochs,
            warmup_steps=max(1, round(config.warmup_epochs * steps_per_epoch)),
            min_ratio=config.min_lr_ratio,
        ),
        scaler=precision.grad_scaler(),
        grad_clip=config.grad_clip,
        accumulation_steps=config.accumulation_steps,
    )
    weights = None
    if class_weights is not None and config.class_weight_power:
        weights = torch.tensor(class_weights, dtype=torch.float32) ** config.class_weight_power
    loss_fn = SegmentationLoss(weights, ignore_index, config.dice_weight).to(device)
    fingerprint = run_fingerprint(
        config, unet, {"train": len(train_data), "val": len(val_data), "weights": class_weights}
    )
    history = _resume(model, optimisation, checkpoints, fingerprint, config.retrain)
    settings = BatchSettings(device, precision, channels_last, config.augment, config.log_every)
    runnable = torch.compile(model) if config.compile else model
    if len(history) >= config.epochs:
        logger.info(
            "The run already finished its %d epoch(s): set retrain to redo it", len(history)
        )
    else:
        logger.info(
            "Training on %s (%s%s): %d train / %d val images, epochs %d to %d",
            device,
            precision.name,
            ", channels_last" if channels_last else "",
            len(train_data),
            len(val_data),
            len(history) + 1,
            config.epochs,
        )
    confusion = None
    for epoch in range(len(history), config.epochs):
        record, confusion = _run_epoch(
            epoch, runnable, train_loader, val_loader, loss_fn, optimisation, settings, config, unet
        )
        history.append(record)
        if checkpoints is not None:
            checkpoints.save(_checkpoint(model, optimisation, history, fingerprint, config, unet))
        for callback in callbacks:
            callback(record)
    if confusion is None:  # a finished run, restored: measure it again
        evaluation = evaluate(model, val_loader, loss_fn, settings, unet.num_classes, ignore_index)
        confusion = evaluation.confusion
    model.eval()
    return TrainResult(
        model, history, confusion.compute(), majority_class_metrics(confusion.matrix)
    )


def _run_epoch(
    epoch: int,
    model: nn.Module,
    train_loader,
    val_loader,
    loss_fn: nn.Module,
    optimisation: Optimisation,
    settings: BatchSettings,
    config: TrainConfig,
    unet: UNetConfig,
) -> tuple[dict[str, float], ConfusionMatrix]:
    """Train and evaluate once; the history record and the validation confusion matrix."""
    start = time.perf_counter()
    train_loader.sampler.set_epoch(epoch)
    generator = torch.Generator().manual_seed(config.seed * 100_003 + epoch)
    if settings.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(settings.device)
    stats = train_one_epoch(model, train_loader, loss_fn, optimisation, settings, generator)
    evaluation = evaluate(
        model, val_loader, loss_fn, settings, unet.num_classes, loss_fn.ignore_index
    )
    metrics = evaluation.confusion.compute()
    record = {
        "epoch": epoch + 1,
        "train_loss": stats["train_loss"],
        "val_loss": evaluation.loss,
        "val_cross_entropy": evaluation.cross_entropy,
        "mean_iou": metrics.mean_iou,
        "pixel_accuracy": metrics.pixel_accuracy,
        "lr": stats["lr"],
        "images_per_s": stats["images_per_s"],
        "seconds": time.perf_counter() - start,
    }
    if settings.device.type == "cuda":
        record["peak_memory_gib"] = torch.cuda.max_memory_allocated(settings.device) / 2**30
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
    model: nn.Module,
    optimisation: Optimisation,
    history: list[dict[str, float]],
    fingerprint: str,
    config: TrainConfig,
    unet: UNetConfig,
) -> dict[str, Any]:
    return {
        "fingerprint": fingerprint,
        "epoch": len(history),
        "model": model.state_dict(),
        "optimizer": optimisation.optimizer.state_dict(),
        "scheduler": optimisation.scheduler.state_dict(),
        "scaler": optimisation.scaler.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "history": history,
        "train_config": config.to_dict(),
        "unet_config": unet.to_dict(),
    }


def _resume(
    model: nn.Module,
    optimisation: Optimisation,
    checkpoints: CheckpointStore | None,
    fingerprint: str,
    retrain: bool,
) -> list[dict[str, float]]:
    """Restore the last checkpoint of the same run; returns the history so far."""
    checkpoint = checkpoints.load() if checkpoints is not None and not retrain else None
    if checkpoint is None:
        return []
    if checkpoint["fingerprint"] != fingerprint:
        logger.warning(
            "Checkpoint %s is of another run (settings or data changed): training from scratch",
            checkpoints.path,
        )
        return []
    model.load_state_dict(checkpoint["model"])
    optimisation.optimizer.load_state_dict(checkpoint["optimizer"])
    optimisation.scheduler.load_state_dict(checkpoint["scheduler"])
    optimisation.scaler.load_state_dict(checkpoint["scaler"])
    torch.set_rng_state(checkpoint["torch_rng"])
    if checkpoint["cuda_rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(checkpoint["cuda_rng"])
    logger.info("Resuming from %s after epoch %d", checkpoints.path, checkpoint["epoch"])
    return list(checkpoint["history"])
