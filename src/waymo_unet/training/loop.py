"""One epoch of training, one pass of evaluation, and the pieces they share.

The loss is summed on the device and read back only every ``log_every`` steps and at
the end of the epoch: a ``.item()`` per step would stall the GPU on every batch.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from waymo_unet.devices import Precision
from waymo_unet.training.data import AugmentConfig, prepare_batch
from waymo_unet.training.metrics import ConfusionMatrix

logger = logging.getLogger(__name__)


@dataclass
class Optimisation:
    """What one optimiser step needs: optimiser, schedule, scaler and their settings."""

    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    grad_clip: float | None = None
    accumulation_steps: int = 1


@dataclass(frozen=True)
class BatchSettings:
    """How raw uint8 batches become model input."""

    device: torch.device
    precision: Precision
    channels_last: bool = False
    augment: AugmentConfig | None = None
    log_every: int = 50


def make_optimizer(
    model: nn.Module, learning_rate: float, weight_decay: float, device: torch.device
) -> torch.optim.AdamW:
    """AdamW with decay on conv weights only (not on biases or norms), fused on CUDA."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=learning_rate, fused=device.type == "cuda")


def warmup_cosine(
    optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int, min_ratio: float = 0.01
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up to the base rate, then cosine decay to ``min_ratio`` of it."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def optimizer_step(model: nn.Module, optimisation: Optimisation) -> None:
    """Unscale, clip, step, update the scaler and the schedule, clear gradients."""
    scaler, optimizer = optimisation.scaler, optimisation.optimizer
    if optimisation.grad_clip:
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(model.parameters(), optimisation.grad_clip)
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=True)
    optimisation.scheduler.step()


class ModelWithLoss(nn.Module):
    """``loss_fn(model(inputs), targets)``: the model under autocast, the loss after it.

    One module, so that ``torch.compile`` compiles the loss together with the model: left
    outside, the cross-entropy of channels_last logits makes contiguous fp32 copies of
    them on CUDA. The loss runs outside autocast and casts the logits to fp32 itself.
    """

    def __init__(self, model: nn.Module, loss_fn: nn.Module, precision: Precision) -> None:
        super().__init__()
        self.model, self.loss_fn, self.precision = model, loss_fn, precision

    def forward(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        with self.precision.autocast():
            logits = self.model(inputs)
        return self.loss_fn(logits, targets)


def train_one_epoch(
    model_with_loss: nn.Module,
    loader: DataLoader,
    optimisation: Optimisation,
    settings: BatchSettings,
    generator: torch.Generator,
) -> dict[str, float]:
    """Train over the loader once; returns mean loss, seconds, batches, images and last lr.

    ``model_with_loss`` is a ``ModelWithLoss``, possibly DDP- and compile-wrapped.
    """
    model_with_loss.train()
    total_loss = torch.zeros((), device=settings.device)
    batches = images_seen = 0
    start = time.perf_counter()
    accumulation = optimisation.accumulation_steps
    for step, (images, labels) in enumerate(loader, start=1):
        inputs, targets = prepare_batch(
            images, labels, settings.device, settings.channels_last, settings.augment, generator
        )
        # Each step takes the mean over its group of micro-batches; the epoch's last group
        # may be shorter than ``accumulation``, and is divided by its own size.
        group_start = (step - 1) // accumulation * accumulation
        group_size = min(accumulation, len(loader) - group_start)
        steps_optimiser = step == group_start + group_size
        with gradient_sync(model_with_loss, steps_optimiser):
            loss = model_with_loss(inputs, targets)
            optimisation.scaler.scale(loss / group_size).backward()
        if steps_optimiser:
            optimizer_step(model_with_loss, optimisation)
        total_loss += loss.detach()
        batches, images_seen = batches + 1, images_seen + len(images)
        if step % settings.log_every == 0:
            mean_loss = total_loss.item() / batches  # waits for the GPU: time after it
            rate = images_seen / (time.perf_counter() - start)
            logger.info("step %d/%d: loss %.4f, %.1f images/s", step, len(loader), mean_loss, rate)
    mean_loss = total_loss.item() / max(batches, 1)
    return {
        "train_loss": mean_loss,
        "train_seconds": time.perf_counter() - start,
        "lr": optimisation.optimizer.param_groups[0]["lr"],
        "batches": batches,
        "images": images_seen,
    }


def gradient_sync(model: nn.Module, sync: bool) -> contextlib.AbstractContextManager:
    """Under DDP, all-reduce gradients only in the backward pass before an optimiser step.

    DDP reduces in every backward pass unless told not to. Gradients add up, so with
    gradient accumulation one reduction at the last micro-batch does the work of all.
    """
    # Found among the submodules: torch.compile's wrapper holds DDP as one, so no private
    # attribute (``_orig_mod``) is needed to look through it.
    ddp = next((m for m in model.modules() if isinstance(m, DistributedDataParallel)), None)
    if sync or ddp is None:
        return contextlib.nullcontext()
    return ddp.no_sync()


@dataclass
class Evaluation:
    """Validation results: the training loss, plain cross-entropy and confusion matrix.

    ``cross_entropy`` (unweighted, no Dice) compares runs whose losses are weighted
    differently, as the trials of a hyper-parameter search are.
    """

    loss: float
    cross_entropy: float
    confusion: ConfusionMatrix
    batches: int


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    loader: DataLoader,
    loss_fn: nn.Module,
    settings: BatchSettings,
    num_classes: int,
    ignore_index: int,
) -> Evaluation:
    """Mean validation losses (per batch) and the confusion matrix over the loader."""
    model.eval()
    confusion = ConfusionMatrix(num_classes, ignore_index, device=settings.device)
    total_loss = torch.zeros((), device=settings.device)
    total_ce = torch.zeros((), device=settings.device)
    batches = 0
    for images, labels in loader:
        inputs, targets = prepare_batch(images, labels, settings.device, settings.channels_last)
        with settings.precision.autocast():
            logits = model(inputs)
        total_loss += loss_fn(logits, targets)
        total_ce += F.cross_entropy(logits.float(), targets, ignore_index=ignore_index)
        confusion.update(logits.argmax(dim=1), targets)
        batches += 1
    count = max(batches, 1)
    return Evaluation(total_loss.item() / count, total_ce.item() / count, confusion, batches)
