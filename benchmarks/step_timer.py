"""One training step as training runs it, timed; the cases that fail are reported, not fatal.

``benchmarks.model_step`` runs its cases through these on one process, and
``benchmarks.ddp_step`` on every rank. A row is a dict: the case's fields, its rates and,
after ``add_flop_rates``, its FLOPs and MFU (``benchmarks.model_step`` says how counted).
"""

from __future__ import annotations

import gc
import logging
import statistics
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.machine import conv_peak
from benchmarks.step_cases import StepCase
from benchmarks.timing import synchronise
from waymo_unet.devices import Precision, autotune_convolutions, choose_precision
from waymo_unet.models.unet import UNetConfig, build_unet
from waymo_unet.training.loop import (
    ModelWithLoss,
    Optimisation,
    make_optimizer,
    optimizer_step,
)
from waymo_unet.training.loss import SegmentationLoss

logger = logging.getLogger(__name__)


def count_flops(unet: UNetConfig, height: int, width: int, backward: bool = True) -> float:
    """FLOPs per image of a forward (and backward) pass, counted on the meta device."""
    model = build_unet(unet).to("meta")
    inputs = torch.empty(1, unet.in_channels, height, width, device="meta")
    with FlopCounterMode(display=False) as counter:
        logits = model(inputs)
        if backward:
            logits.sum().backward()
    return float(counter.get_total_flops())


def build_step(
    case: StepCase,
    unet: UNetConfig,
    batch: int,
    height: int,
    width: int,
    device: torch.device,
    distributed: bool = False,
) -> Callable[[], None]:
    """One optimiser step on a fixed random batch on ``device``, set up as training sets it
    up: the project's ``ModelWithLoss`` (compiled, when the case asks, with the loss in the
    graph), AdamW and ``optimizer_step``; under ``distributed``, SyncBatchNorm (when the
    case asks, on GPUs) and DistributedDataParallel around model and loss."""
    torch.manual_seed(0)
    precision: Precision = choose_precision(case.precision, device)
    autotune_convolutions(device)  # as training does
    model = build_unet(unet)
    if distributed and case.sync_batchnorm and device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    memory_format = torch.channels_last if case.channels_last else torch.contiguous_format
    model = model.to(device, memory_format=memory_format)
    inputs = torch.randn(batch, 3, height, width, device=device).to(memory_format=memory_format)
    targets = torch.randint(0, unet.num_classes, (batch, height, width), device=device)
    optimizer = make_optimizer(model, 1e-3, 1e-4, device)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    optimisation = Optimisation(optimizer, scheduler, precision.grad_scaler(), grad_clip=1.0)
    loss_fn = SegmentationLoss(dice_weight=case.dice_weight).to(device)
    runnable: nn.Module = ModelWithLoss(model, loss_fn, precision)
    if distributed:
        runnable = DistributedDataParallel(
            runnable, device_ids=[device.index] if device.type == "cuda" else None
        )
    runnable = torch.compile(runnable) if case.compile else runnable

    def step() -> None:
        optimisation.scaler.scale(runnable(inputs, targets)).backward()
        optimizer_step(model, optimisation)

    return step


def time_steps(
    step: Callable[[], None], device: torch.device, warmup: int, steps: int
) -> tuple[float | None, list[float]]:
    """Seconds of the first warm-up step (cuDNN's search, compiling) and of each timed one."""
    first = None
    for index in range(warmup):
        start = time.perf_counter()
        step()
        synchronise(device)
        if index == 0:
            first = time.perf_counter() - start
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    seconds = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        synchronise(device)
        seconds.append(time.perf_counter() - start)
    return first, seconds


def measure_step(
    case: StepCase,
    unet: UNetConfig,
    batch: int,
    size: tuple[int, int],
    device: torch.device,
    warmup: int,
    steps: int,
) -> dict[str, object]:
    """images/s (of the median step: robust to other work on the machine) and peak memory
    of ``steps`` optimiser steps after ``warmup`` ones, at the case's size or ``size``."""
    height, width = case.height or size[0], case.width or size[1]
    step = build_step(case, unet, batch, height, width, device)
    first, seconds = time_steps(step, device, warmup, steps)
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return {
        **case_fields(case, batch, height, width, device),
        "images_per_s": batch / statistics.median(seconds),
        "first_step_s": first,
        "step_seconds": seconds,
        "peak_memory_mib": peak if peak is not None else "n/a (CPU)",
        "status": "ok",
    }


def case_fields(
    case: StepCase, batch: int, height: int, width: int, device: torch.device
) -> dict[str, Any]:
    """What identifies a case's row, measured or failed."""
    height, width = case.height or height, case.width or width
    try:
        precision = choose_precision(case.precision, device).name
    except ValueError:  # fp16 on a CPU: reported as asked, the case itself failed
        precision = case.precision
    return {
        "precision": precision,
        "channels_last": case.channels_last,
        "compile": case.compile,
        "dice_weight": case.dice_weight,
        "size": f"{height}x{width}",
        "height": height,
        "width": width,
        "batch": batch,
    }


def row_label(row: dict[str, Any]) -> str:
    layout = ", channels_last" if row["channels_last"] else ""
    mode = "compiled" if row["compile"] else "eager"
    return (
        f"{row['precision']}{layout}, {mode}, dice {row['dice_weight']:g} at {row['size']}, "
        f"batch {row['batch']}"
    )


def release_memory(device: torch.device, compiled: bool = False) -> None:
    """Free what the last case left: compiled graphs, reference cycles, cached GPU blocks."""
    if compiled:
        torch.compiler.reset()  # the compiled code holds the case's model and batch
    gc.collect()  # models, optimisers and schedulers can sit in reference cycles
    if device.type == "cuda":
        torch.cuda.empty_cache()


Outcome = tuple[dict[str, Any] | None, str | None]


def run_cases(
    cases: Sequence[StepCase],
    measure: Callable[[StepCase], dict[str, Any]],
    describe: Callable[[StepCase], dict[str, Any]],
    device: torch.device,
    budget_s: float | None = None,
    agree: Callable[[Outcome], Outcome] | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Measure each case; one that fails (out of memory, a compile error) is reported with
    ``describe``'s fields and a status, and the next one runs. Once ``budget_s`` seconds
    have passed, the cases left are reported as skipped. ``agree`` turns this process's
    outcome into all ranks' under DDP. Returns the measured rows and the failed ones.

    Memory is released after the ``except`` clause, not in it: until the clause ends, the
    exception's traceback keeps the failed case's frames, and with them its model,
    optimiser state and batch, alive, and the next case would run out of memory too.
    """
    rows: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    start = time.perf_counter()
    for case in cases:
        if budget_s is not None and time.perf_counter() - start > budget_s:
            status = f"skipped: the {budget_s:.0f} s time budget was spent"
            failed.append({**describe(case), "status": status})
            logger.warning("%s: %s", case.label(), status)
            continue
        logger.info("Model step: %s", case.label())
        row: dict[str, Any] | None = None
        failure: str | None = None
        try:
            row = measure(case)
        except torch.OutOfMemoryError:
            failure = "out of memory"
        except Exception as error:  # any error (compiling has many kinds) fails one case
            message = (str(error).strip().splitlines() or [""])[0][:160]
            failure = f"failed: {type(error).__name__}: {message}"
            # Formatted here, not logged with exc_info: a log record kept by a handler
            # would hold the traceback, and the failed case's tensors, for ever.
            logger.warning("%s %s\n%s", case.label(), failure, traceback.format_exc())
        release_memory(device, compiled=case.compile)
        if agree is not None:
            row, failure = agree((row, failure))
        if failure is None and row is not None:
            rows.append(row)
            logger.info("  %.1f images/s", row["images_per_s"])
        else:
            failed.append({**describe(case), "status": failure})
            logger.warning("%s: %s", case.label(), failure)
    return rows, failed


def add_flop_rates(
    rows: list[dict[str, Any]], unet: UNetConfig, device: torch.device, gpus: int = 1
) -> dict[tuple[int, int], float]:
    """Achieved TFLOP/s per row and, on a GPU with a known peak, MFU; FLOPs per size.

    ``gpus``: how many GPUs (DDP ranks) the rows' images/s come from."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    flops: dict[tuple[int, int], float] = {}
    for row in rows:
        size = (int(row["height"]), int(row["width"]))
        if size not in flops:
            flops[size] = count_flops(unet, *size)
        row["train_flop_per_image"] = flops[size]
        row["tflop_per_s"] = flops[size] * float(row["images_per_s"]) / 1e12
        peak_name, peak = conv_peak(row["precision"], name) if name else ("n/a", None)
        row["peak"] = f"{peak_name} {peak:g}" if peak else "n/a"
        row["peak_tflops"] = peak * gpus if peak else None
        row["mfu"] = row["tflop_per_s"] / (peak * gpus) if peak else "n/a"
    return flops
