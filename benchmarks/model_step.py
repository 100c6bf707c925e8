"""Training-step throughput of the U-Net: fp32 against mixed precision, channels_last, compile.

    python -m benchmarks.model_step --height 256 --width 384 --batch-size 4

Measures full optimiser steps (forward, loss, backward, AdamW) on a fixed random batch
already on the device, so it times the model alone, not the input pipeline. FLOPs per
image are counted by ``torch.utils.flop_counter.FlopCounterMode`` (matmuls and
convolutions, forward and backward) on the meta device, so counting costs nothing; on
CUDA, model FLOP utilisation (MFU) divides the achieved FLOP/s by the GPU's dense
bf16/fp16 peak.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.machine import describe_machine, format_table, peak_tflops
from waymo_unet.models.unet import UNetConfig, build_unet
from waymo_unet.training.loop import BatchSettings, Optimisation, make_optimizer, optimizer_step
from waymo_unet.training.loss import SegmentationLoss
from waymo_unet.training.precision import Precision, choose_precision, cpu_has_native_bf16
from waymo_unet.training.train import autotune_convolutions

logger = logging.getLogger(__name__)
COLUMNS = [
    "precision",
    "channels_last",
    "compile",
    "size",
    "batch",
    "images_per_s",
    "speedup",
    "tflop_per_s",
    "mfu",
    "peak_memory_mib",
]


@dataclass(frozen=True)
class StepCase:
    precision: str
    channels_last: bool
    compile: bool = False
    height: int | None = None  # None: the benchmark's size
    width: int | None = None

    @property
    def mixed(self) -> bool:
        return self.precision != "fp32"


def default_cases(
    device: torch.device, with_compile: bool, with_mixed: bool = True
) -> list[StepCase]:
    mixed = "bf16" if device.type == "cpu" else "auto"
    cases = [StepCase("fp32", False), StepCase("fp32", True)]
    if with_mixed:
        cases += [StepCase(mixed, False), StepCase(mixed, True)]
        if device.type == "cuda":
            cases.append(StepCase("fp16", True))
    if with_compile:
        cases.append(StepCase(mixed if with_mixed else "fp32", True, compile=True))
    return cases


def count_flops(unet: UNetConfig, height: int, width: int, backward: bool = True) -> float:
    """FLOPs per image of a forward (and backward) pass, counted on the meta device."""
    model = build_unet(unet).to("meta")
    inputs = torch.empty(1, unet.in_channels, height, width, device="meta")
    with FlopCounterMode(display=False) as counter:
        logits = model(inputs)
        if backward:
            logits.sum().backward()
    return float(counter.get_total_flops())


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
    """images/s (of the median step: robust to other work on the machine) and peak memory
    of ``steps`` optimiser steps after ``warmup`` ones."""
    height, width = case.height or height, case.width or width
    torch.manual_seed(0)
    precision: Precision = choose_precision(case.precision, device)
    autotune_convolutions(device)  # as training does
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
    seconds = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        _synchronise(device)
        seconds.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return {
        "precision": precision.name,
        "channels_last": case.channels_last,
        "compile": case.compile,
        "size": f"{height}x{width}",
        "height": height,
        "width": width,
        "batch": batch,
        "images_per_s": batch / statistics.median(seconds),
        "step_seconds": seconds,
        "peak_memory_mib": peak if peak is not None else "n/a (CPU)",
    }


def _synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def add_flop_rates(
    rows: list[dict[str, Any]], unet: UNetConfig, device: torch.device
) -> dict[tuple[int, int], float]:
    """Achieved TFLOP/s per row and, on a GPU with a known peak, MFU; FLOPs per size."""
    peak = peak_tflops(torch.cuda.get_device_name(device)) if device.type == "cuda" else None
    flops: dict[tuple[int, int], float] = {}
    for row in rows:
        size = (int(row["height"]), int(row["width"]))
        if size not in flops:
            flops[size] = count_flops(unet, *size)
        row["train_flop_per_image"] = flops[size]
        row["tflop_per_s"] = flops[size] * float(row["images_per_s"]) / 1e12
        row["mfu"] = row["tflop_per_s"] / peak if peak else "n/a"
    return flops


def run_model_step_benchmark(
    unet: UNetConfig,
    device: torch.device,
    batch: int,
    height: int,
    width: int,
    warmup: int,
    steps: int,
    with_compile: bool = False,
    emulated_bf16: str = "skip",
    shrunk_size: tuple[int, int] = (128, 192),
) -> dict[str, Any]:
    """Every case at one size; ``emulated_bf16`` says what to do with bf16 on CPUs without it.

    ``"skip"`` leaves the bf16 cases out, ``"shrink"`` runs them at ``shrunk_size`` (they
    are about 25x slower than fp32 there), ``"run"`` runs them as they are.
    """
    notes = []
    emulated = device.type == "cpu" and not cpu_has_native_bf16()
    cases = default_cases(
        device, with_compile, with_mixed=not (emulated and emulated_bf16 == "skip")
    )
    if emulated and emulated_bf16 == "skip":
        notes.append(
            "bf16 cases skipped: this CPU has no native bf16 (AVX512-BF16 / AMX) and "
            "emulates it about 25x slower than fp32"
        )
    if emulated and emulated_bf16 == "shrink":
        shrunk = [StepCase(c.precision, c.channels_last, c.compile, *shrunk_size) for c in cases]
        cases = [c for c in cases if not c.mixed]
        if shrunk_size != (height, width):  # an fp32 baseline at the bf16 cases' size
            cases.append(StepCase("fp32", False, False, *shrunk_size))
        cases += [c for c in shrunk if c.mixed]
        notes.append(
            f"bf16 cases at {shrunk_size[0]}x{shrunk_size[1]}: this CPU emulates bf16 "
            "(no AVX512-BF16 / AMX), about 25x slower than fp32"
        )
    rows = []
    for case in cases:
        logger.info("Model step: %s", case)
        try:
            rows.append(measure_step(case, unet, batch, height, width, device, warmup, steps))
        except torch.OutOfMemoryError:
            notes.append(f"{case}: out of memory at batch {batch}")
            torch.cuda.empty_cache()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    flops = add_flop_rates(rows, unet, device)
    baseline: dict[tuple[int, int], float] = {}
    for row in rows:
        if row["precision"] == "fp32" and not row["channels_last"] and not row["compile"]:
            baseline.setdefault((row["height"], row["width"]), row["images_per_s"])
    for row in rows:
        reference = baseline.get((row["height"], row["width"]))
        row["speedup"] = row["images_per_s"] / reference if reference else "n/a"
    if device.type == "cuda" and peak_tflops(torch.cuda.get_device_name(device)) is None:
        notes.append("MFU n/a: this GPU is not in the peak table (benchmarks.machine)")
    return {
        "device": str(device),
        "unet": unet.to_dict(),
        "size": [height, width],
        "batch": batch,
        "warmup": warmup,
        "steps": steps,
        "train_flop_per_image": {f"{h}x{w}": f for (h, w), f in flops.items()},
        "rows": rows,
        "notes": notes,
    }


def run(args: argparse.Namespace) -> dict[str, object]:
    device = torch.device(
        args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    )
    unet = UNetConfig(num_classes=args.classes, base_channels=args.base_channels, depth=args.depth)
    section = run_model_step_benchmark(
        unet,
        device,
        args.batch_size,
        args.height,
        args.width,
        args.warmup,
        args.steps,
        args.compile,
        emulated_bf16="run",
    )
    return {
        "machine": describe_machine(),
        "settings": {k: v for k, v in vars(args).items() if k != "json"},
        "model_step": section["rows"],
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
