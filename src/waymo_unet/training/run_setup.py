"""Set up one training run from its settings: device, precision, model, loaders,
optimiser, schedule and loss, wrapped for DDP and ``torch.compile`` as asked."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset

from waymo_unet.data.parallel import available_cores
from waymo_unet.devices import autotune_convolutions, choose_precision, resolve_device
from waymo_unet.models.unet import UNetConfig, build_unet
from waymo_unet.training.config import TrainConfig, run_fingerprint
from waymo_unet.training.data import data_signature, loader_workers, make_loader
from waymo_unet.training.distributed import DistributedContext, join_process_group
from waymo_unet.training.loop import (
    BatchSettings,
    ModelWithLoss,
    Optimisation,
    make_optimizer,
    warmup_cosine,
)
from waymo_unet.training.loss import SegmentationLoss

logger = logging.getLogger(__name__)


@dataclass
class Run:
    """Everything one training run works with, built once by ``build_run``."""

    model: nn.Module  # the plain network: checkpoints and evaluation use it
    runnable: nn.Module  # what training calls: model and loss, DDP- and/or compile-wrapped
    train_loader: DataLoader
    val_loader: DataLoader
    optimisation: Optimisation
    loss_fn: SegmentationLoss
    settings: BatchSettings
    fingerprint: str
    rank: int = 0


def build_run(
    config: TrainConfig,
    unet: UNetConfig,
    train_data: Dataset,
    val_data: Dataset,
    class_weights: Sequence[float] | None,
    ignore_index: int,
    distributed: DistributedContext | None,
) -> Run:
    """Everything a run of ``config`` on this rank needs, ready to train."""
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
    return Run(
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
