"""``train_model``: the whole training run, the same in a Kedro node, an Optuna trial and a test.

A run is resumable: after every epoch a checkpoint holds the model, optimiser, schedule,
scaler and history, and each epoch's random draws are seeded from (seed, epoch, rank).
Calling ``train_model`` again with the same settings continues from there; a finished run
is returned as it is unless ``retrain`` is set.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset

from waymo_unet.config import config_from_params
from waymo_unet.data.parallel import available_cores
from waymo_unet.devices import autotune_convolutions, choose_precision, resolve_device
from waymo_unet.digest import content_digest
from waymo_unet.models.unet import UNetConfig, build_unet
from waymo_unet.training.checkpoint import CheckpointStore
from waymo_unet.training.data import AugmentConfig, data_signature, loader_workers, make_loader
from waymo_unet.training.distributed import (
    DistributedContext,
    all_reduce_sum,
    join_process_group,
    require_same_on_all_ranks,
)
from waymo_unet.training.loop import (
    BatchSettings,
    Evaluation,
    ModelWithLoss,
    Optimisation,
    evaluate,
    make_optimizer,
    train_one_epoch,
    warmup_cosine,
)
from waymo_unet.training.loss import SegmentationLoss
from waymo_unet.training.metrics import ConfusionMatrix, SegmentationMetrics, majority_class_metrics

logger = logging.getLogger(__name__)

EpochCallback = Callable[[dict[str, float]], None]
"""Called with each epoch's history record; raising stops the run (e.g. Optuna pruning)."""

PARAMETERS_FILE = "parameters_training.yml"

# Settings that change how fast a run goes, not what it computes.
_RUNTIME_ONLY = ("num_workers", "log_every", "retrain", "device", "compile", "sync_batchnorm")


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters and run settings of one training run.

    The defaults are those of ``training.train`` in ``conf/base/parameters_training.yml``
    (a test keeps them equal), for callers that build a config in code.
    """

    epochs: int = 12
    batch_size: int = 8
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    warmup_epochs: float = 1.0
    min_lr_ratio: float = 0.01
    grad_clip: float | None = 1.0
    accumulation_steps: int = 1
    dice_weight: float = 0.0
    class_weight_power: float = 1.0  # loss weights = catalogue weights ** power (0: unweighted)
    augment: AugmentConfig | None = field(default_factory=AugmentConfig)
    # auto: bf16 on GPUs from Ampere on and CPUs with native bf16, fp16 + scaler on older GPUs
    precision: str = "auto"
    channels_last: bool | None = None  # None: when the precision is mixed
    compile: bool = False
    sync_batchnorm: bool = False  # under DDP on GPUs: batch statistics of the global batch
    device: str = "auto"
    seed: int = 0
    num_workers: int | None = None  # None: see loader_workers
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
        """From ``training.train``; an unknown key or a wrong type is a ValueError naming it."""
        values = dict(params)
        augment = values.pop("augment", {})
        if augment is not None:  # null: no augmentation
            section = "training.train.augment"
            augment = config_from_params(AugmentConfig, augment, section, PARAMETERS_FILE)
        values["augment"] = augment
        return config_from_params(cls, values, "training.train", PARAMETERS_FILE)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class TrainResult:
    """A finished (or resumed-finished) run: the model in eval mode and what it measured."""

    model: nn.Module
    history: list[dict[str, float]]
    final_metrics: SegmentationMetrics
    baseline_metrics: SegmentationMetrics | None = None


def run_fingerprint(config: TrainConfig, unet: UNetConfig, data_signature: dict[str, Any]) -> str:
    """Identifies what a run computes; a checkpoint of another fingerprint is not resumed."""
    return content_digest([outcome_settings(config.to_dict()), unet.to_dict(), data_signature])


def outcome_settings(train_params: dict[str, Any]) -> dict[str, Any]:
    """The training settings that change what a run computes: all but how it is run."""
    return {k: v for k, v in train_params.items() if k not in _RUNTIME_ONLY}


@dataclass
class _Run:
    """Everything one training run works with, built once by ``_build_run``."""

    model: nn.Module  # the plain network: checkpoints and evaluation use it
    runnable: nn.Module  # what training calls: model and loss, DDP- and/or compile-wrapped
    train_loader: DataLoader
    val_loader: DataLoader
    optimisation: Optimisation
    loss_fn: SegmentationLoss
    settings: BatchSettings
    fingerprint: str
    rank: int = 0


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
    run = _build_run(config, unet, train_data, val_data, class_weights, ignore_index, distributed)
    require_same_on_all_ranks(run.fingerprint, "run fingerprint", run.settings.device)
    history = _resume(run, checkpoints, config.retrain)
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
            callback(record)
    if confusion is None:  # a finished run, restored: measure it again
        confusion = _evaluate(run, unet.num_classes).confusion
    if distributed is not None:
        dist.barrier()  # rank 0's last checkpoint is complete before anyone returns
    run.model.eval()
    return TrainResult(
        run.model, history, confusion.compute(), majority_class_metrics(confusion.matrix)
    )


def _build_run(
    config: TrainConfig,
    unet: UNetConfig,
    train_data: Dataset,
    val_data: Dataset,
    class_weights: Sequence[float] | None,
    ignore_index: int,
    distributed: DistributedContext | None,
) -> _Run:
    rank, world = (distributed.rank, distributed.world_size) if distributed else (0, 1)
    if config.batch_size % world:
        raise ValueError(f"batch_size {config.batch_size} is not divisible by {world} ranks")
    device = resolve_device(config.device)
    if distributed:
        device = distributed.claim_device(device)
        join_process_group(device)
    elif device.type == "cuda" and device.index is not None:
        torch.cuda.set_device(device)  # pinned memory and precision checks use the current GPU
    autotune_convolutions(device)
    precision = choose_precision(config.precision, device)
    channels_last = (
        config.channels_last if config.channels_last is not None else precision.dtype is not None
    )
    model = build_unet(unet)
    # torch's SyncBatchNorm runs on GPUs only: CPU ranks keep per-rank statistics.
    sync_batchnorm = distributed is not None and config.sync_batchnorm and device.type == "cuda"
    if sync_batchnorm:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model = model.to(device, memory_format=torch.channels_last if channels_last else None)
    cores = distributed.cores() if distributed else available_cores()
    workers = config.num_workers if config.num_workers is not None else loader_workers(cores)
    loaders = [
        make_loader(
            data,
            config.batch_size // world,
            train,
            config.seed,
            workers,
            device.type == "cuda",
            rank,
            world,
        )
        for data, train in ((train_data, True), (val_data, False))
    ]
    optimisation = _optimisation(model, config, device, len(loaders[0]), precision)
    weights = None
    if class_weights is not None and config.class_weight_power:
        weights = torch.tensor(class_weights, dtype=torch.float32) ** config.class_weight_power
    loss_fn = SegmentationLoss(weights, ignore_index, config.dice_weight).to(device)
    # DDP around model and loss, and torch.compile around DDP: compile then sees both in
    # one graph (with DDP inside, it would stop at DDP's forward and compile them apart).
    runnable = ModelWithLoss(model, loss_fn, precision)
    if distributed:
        runnable = DistributedDataParallel(
            runnable, device_ids=[device.index] if device.type == "cuda" else None
        )
    if config.compile and sync_batchnorm and rank == 0:
        logger.warning(
            "torch.compile splits the graph at each SyncBatchNorm layer, which costs part of "
            "its gain: set training.sync_batchnorm=false to compile the whole network"
        )
    runnable = torch.compile(runnable) if config.compile else runnable
    signature = {
        "train": data_signature(train_data),
        "val": data_signature(val_data),
        "weights": class_weights,
    }
    return _Run(
        model=model,
        runnable=runnable,
        train_loader=loaders[0],
        val_loader=loaders[1],
        optimisation=optimisation,
        loss_fn=loss_fn,
        settings=BatchSettings(device, precision, channels_last, config.augment, config.log_every),
        fingerprint=run_fingerprint(config, unet, signature),
        rank=rank,
    )


def _optimisation(
    model: nn.Module, config: TrainConfig, device: torch.device, batches: int, precision
) -> Optimisation:
    steps_per_epoch = math.ceil(batches / config.accumulation_steps)
    optimizer = make_optimizer(model, config.learning_rate, config.weight_decay, device)
    return Optimisation(
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


def _evaluate(run: _Run, num_classes: int) -> Evaluation:
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
    epoch: int, run: _Run, config: TrainConfig, unet: UNetConfig
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
    run: _Run, history: list[dict[str, float]], config: TrainConfig, unet: UNetConfig
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


def _resume(
    run: _Run, checkpoints: CheckpointStore | None, retrain: bool
) -> list[dict[str, float]]:
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
