"""Training-step throughput of the U-Net: fp32 against mixed precision, channels_last, compile.

    python -m benchmarks.model_step --height 256 --width 384 --batch-size 4

Measures full optimiser steps (forward, loss, backward, AdamW) on a fixed random batch
already on the device, so it times the model alone, not the input pipeline.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import dataclass

import torch

from benchmarks.machine import describe_machine, format_table
from waymo_unet.models.unet import UNetConfig, build_unet
from waymo_unet.training.loop import BatchSettings, Optimisation, make_optimizer, optimizer_step
from waymo_unet.training.loss import SegmentationLoss
from waymo_unet.training.precision import Precision, choose_precision

logger = logging.getLogger(__name__)
COLUMNS = ["precision", "channels_last", "compile", "images_per_s", "peak_memory_mib", "speedup"]


@dataclass(frozen=True)
class StepCase:
    precision: str
    channels_last: bool
    compile: bool = False


def default_cases(device: torch.device, with_compile: bool) -> list[StepCase]:
    mixed = "bf16" if device.type == "cpu" else "auto"
    cases = [StepCase("fp32", False), StepCase("fp32", True), StepCase(mixed, False)]
    cases.append(StepCase(mixed, True))
    if device.type == "cuda":
        cases.append(StepCase("fp16", True))
    if with_compile:
        cases.append(StepCase(mixed, True, compile=True))
    return cases


def measure_step(
    case: StepCase,
    unet: UNetConfig,
    batch: int,
    height: int,
    width: int,
    device: torch.device,
    warmup: int,
    steps: int,
) -> dict[str, object]:
    """images/s and peak memory of ``steps`` optimiser steps after ``warmup`` ones."""
    torch.manual_seed(0)
    precision: Precision = choose_precision(case.precision, device)
    model = build_unet(unet).to(device)
    memory_format = torch.channels_last if case.channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    runnable = torch.compile(model) if case.compile else model
    inputs = torch.randn(batch, 3, height, width, device=device).to(memory_format=memory_format)
    targets = torch.randint(0, unet.num_classes, (batch, height, width), device=device)
    optimizer = make_optimizer(model, 1e-3, 1e-4, device)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    optimisation = Optimisation(optimizer, scheduler, precision.grad_scaler(), grad_clip=1.0)
    loss_fn = SegmentationLoss().to(device)
    settings = BatchSettings(device, precision, case.channels_last)

    def step() -> None:
        with settings.precision.autocast():
            logits = runnable(inputs)
        optimisation.scaler.scale(loss_fn(logits, targets)).backward()
        optimizer_step(model, optimisation)

    for _ in range(warmup):
        step()
    _synchronise(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    _synchronise(device)
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return {
        "precision": precision.name,
        "channels_last": case.channels_last,
        "compile": case.compile,
        "images_per_s": batch * steps / seconds,
        "peak_memory_mib": peak if peak is not None else "n/a (CPU)",
    }


def _synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run(args: argparse.Namespace) -> dict[str, object]:
    device = torch.device(
        args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    )
    unet = UNetConfig(num_classes=args.classes, base_channels=args.base_channels, depth=args.depth)
    rows = []
    for case in default_cases(device, args.compile):
        logger.info("measuring %s", case)
        rows.append(
            measure_step(
                case,
                unet,
                args.batch_size,
                args.height,
                args.width,
                device,
                args.warmup,
                args.steps,
            )
        )
    baseline = rows[0]["images_per_s"]
    for row in rows:
        row["speedup"] = row["images_per_s"] / baseline
    return {
        "machine": describe_machine(),
        "settings": {k: v for k, v in vars(args).items() if k != "json"},
        "model_step": rows,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--width", type=int, default=384)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--base-channels", type=int, default=32)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--classes", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--compile", action="store_true", help="also measure torch.compile")
    parser.add_argument("--json", help="also write the results to this JSON file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = parse_args(argv)
    results = run(args)
    machine = results["machine"]
    logger.info("machine: %s", ", ".join(f"{k}={v}" for k, v in machine.items()))
    logger.info(
        "U-Net base %d depth %d, batch %d at %dx%d:\n%s",
        args.base_channels,
        args.depth,
        args.batch_size,
        args.height,
        args.width,
        format_table(results["model_step"], COLUMNS),
    )
    if args.json:
        with open(args.json, "w") as file:
            json.dump(results, file, indent=1)


if __name__ == "__main__":
    main()
