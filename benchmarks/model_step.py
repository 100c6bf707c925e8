"""Training-step throughput of the U-Net: fp32 against mixed precision, channels_last,
torch.compile, cross-entropy alone against cross-entropy plus Dice.

    python -m benchmarks.model_step --height 256 --width 384 --batch-size 4
    python -m benchmarks.model_step --device cuda --height 512 --width 768 --batch-size 16 \\
        --precisions bf16,fp32 --dice-weights 0,0.5 --compile

Measures full optimiser steps (forward, loss, backward, AdamW) on a fixed random batch
already on the device, so it times the model alone, not the input pipeline. Without
``--precisions`` the cases compare channels_last layouts (and fp16 on CUDA); with it,
each precision runs as training runs it (channels_last whenever mixed).

MFU (model FLOP utilisation) = FLOPs per image x images/s / the GPU's peak FLOP/s. The
FLOPs per image are counted by ``torch.utils.flop_counter.FlopCounterMode`` over one
forward and backward pass of the model on the meta device (costs nothing; within 1% of
the count over a real step, a test checks): convolutions and matmuls only, so the loss,
Dice and AdamW add time but next to no counted FLOPs, and Dice shows as a lower MFU.
The peak is the dense tensor-core one of the precision the convolutions run in:
bf16/fp16 from ``benchmarks.machine.GPU_PEAK_TFLOPS``; for fp32, TF32 (cuDNN's default
for convolutions on Ampere and later) or, with ``torch.backends.cudnn.allow_tf32`` off,
the CUDA cores' fp32 (``benchmarks.machine.FP32_PEAK_TFLOPS``). Each row names the peak it
used. The step itself is built and timed in ``benchmarks.step_timer``.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch

from benchmarks.machine import describe_machine, format_table
from benchmarks.step_cases import StepCase, cases_for_this_machine, default_cases, grid_cases
from benchmarks.step_timer import (
    add_flop_rates,
    case_fields,
    measure_step,
    row_label,
    run_cases,
)
from waymo_unet.devices import PRECISIONS, resolve_device
from waymo_unet.models.unet import UNetConfig

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
# The command line's table: also the loss, the peak MFU divides by, the first step
# (cuDNN's algorithm search, and compiling) and each failed or skipped case.
STEP_COLUMNS = [
    "precision",
    "channels_last",
    "compile",
    "dice_weight",
    "size",
    "batch",
    "images_per_s",
    "speedup",
    "tflop_per_s",
    "peak",
    "mfu",
    "first_step_s",
    "peak_memory_mib",
    "status",
]


@dataclass(frozen=True)
class ModelStepBenchmark:
    """The section's results: a row per measured case (``benchmarks.step_timer``'s dicts,
    which ``benchmarks.ddp_step`` extends), one per failed or skipped case, and notes."""

    device: str
    unet: dict[str, Any]
    size: tuple[int, int]
    batch: int
    warmup: int
    steps: int
    train_flop_per_image: dict[str, float]  # by "HxW"
    rows: list[dict[str, Any]]
    failed: list[dict[str, Any]]
    notes: list[str]

    def fastest_at(self, target_flops: float) -> tuple[dict[str, Any] | None, float]:
        """The row with the highest images/s once moved by FLOPs to a size whose training
        step costs ``target_flops`` per image; and that rate (None and 0 with no rows)."""
        best, best_rate = None, 0.0
        for row in self.rows:
            rate = row["images_per_s"] * row["train_flop_per_image"] / target_flops
            if rate > best_rate:
                best, best_rate = row, rate
        return best, best_rate


def add_speedups(rows: list[dict[str, Any]]) -> None:
    """images/s over that of fp32, eager, no channels_last, at the same size and loss."""
    baseline: dict[tuple[Any, ...], float] = {}
    for row in rows:
        if row["precision"] == "fp32" and not row["channels_last"] and not row["compile"]:
            key = (row["height"], row["width"], row.get("dice_weight", 0.0))
            baseline.setdefault(key, row["images_per_s"])
    for row in rows:
        reference = baseline.get((row["height"], row["width"], row.get("dice_weight", 0.0)))
        row["speedup"] = row["images_per_s"] / reference if reference else "n/a"


def dice_costs(rows: list[dict[str, Any]]) -> list[str]:
    """One line per case with Dice: its images/s against the same case without Dice."""
    without = {
        (r["precision"], r["channels_last"], r["compile"], r["size"]): r["images_per_s"]
        for r in rows
        if not r.get("dice_weight")
    }
    lines = []
    for row in rows:
        key = (row["precision"], row["channels_last"], row["compile"], row["size"])
        if row.get("dice_weight") and key in without:
            layout = " channels_last" if row["channels_last"] else ""
            mode = "compiled" if row["compile"] else "eager"
            lines.append(
                f"Dice {row['dice_weight']:g}, {row['precision']}{layout} {mode} at {row['size']}: "
                f"{row['images_per_s'] / without[key]:.2f}x the images/s of cross-entropy alone"
            )
    return lines


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
    cases: Sequence[StepCase] | None = None,
    budget_s: float | None = None,
) -> ModelStepBenchmark:
    """Every case at one size: ``cases`` as given, or the defaults as this machine can run
    them (``emulated_bf16`` and ``shrunk_size``: see ``cases_for_this_machine``)."""
    notes: list[str] = []
    if cases is None:
        cases, notes = cases_for_this_machine(
            device, with_compile, (height, width), emulated_bf16, shrunk_size
        )
    rows, failed = run_cases(
        cases,
        lambda case: measure_step(case, unet, batch, (height, width), device, warmup, steps),
        lambda case: case_fields(case, batch, height, width, device),
        device,
        budget_s,
    )
    notes += [f"{row_label(row)}: {row['status']}" for row in failed]
    flops = add_flop_rates(rows, unet, device)
    add_speedups(rows)
    notes += dice_costs(rows)
    if device.type == "cuda" and any(row["mfu"] == "n/a" for row in rows):
        notes.append("MFU n/a: this GPU is not in the peak tables (benchmarks.machine)")
    return ModelStepBenchmark(
        device=str(device),
        unet=unet.to_dict(),
        size=(height, width),
        batch=batch,
        warmup=warmup,
        steps=steps,
        train_flop_per_image={f"{h}x{w}": f for (h, w), f in flops.items()},
        rows=rows,
        failed=failed,
        notes=notes,
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    device = resolve_device(args.device)
    unet = UNetConfig(num_classes=args.classes, base_channels=args.base_channels, depth=args.depth)
    if args.precisions:
        cases = grid_cases(args.precisions, args.dice_weights, args.compile)
    else:
        cases = [
            replace(case, dice_weight=weight)
            for case in default_cases(device, args.compile)
            for weight in args.dice_weights
        ]
    section = run_model_step_benchmark(
        unet,
        device,
        args.batch_size,
        args.height,
        args.width,
        args.warmup,
        args.steps,
        cases=cases,
        budget_s=args.budget_s,
    )
    return {
        "machine": describe_machine(),
        "settings": {k: v for k, v in vars(args).items() if k != "json"},
        "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
        "cases": [asdict(case) for case in cases],
        "model_step": section.rows,
        "failed": section.failed,
        "train_flop_per_image": section.train_flop_per_image,
        "notes": section.notes,
    }


def comma_list(kind: Callable[[str], Any]) -> Callable[[str], list[Any]]:
    """An argparse type: a comma-separated list of ``kind``."""
    return lambda text: [kind(item) for item in text.split(",") if item]


def precision_name(text: str) -> str:
    if text not in PRECISIONS:
        raise argparse.ArgumentTypeError(f"precision must be one of {PRECISIONS}, got {text!r}")
    return text


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
    parser.add_argument(
        "--precisions",
        type=comma_list(precision_name),
        help="e.g. bf16,fp32: these, channels_last when mixed, instead of the layout cases",
    )
    parser.add_argument(
        "--dice-weights",
        type=comma_list(float),
        default=[0.0],
        help="e.g. 0,0.5: every case with each dice_weight of the loss",
    )
    parser.add_argument(
        "--budget-s",
        type=float,
        help="start no case after this many seconds; the ones left are reported skipped",
    )
    parser.add_argument("--json", help="also write the results to this JSON file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = parse_args(argv)
    results = run(args)
    machine = results["machine"]
    logger.info("machine: %s", ", ".join(f"{k}={v}" for k, v in machine.items()))
    logger.info(
        "U-Net base %d depth %d, %d classes, batch %d at %dx%d:\n%s",
        args.base_channels,
        args.depth,
        args.classes,
        args.batch_size,
        args.height,
        args.width,
        format_table(results["model_step"] + results["failed"], STEP_COLUMNS),
    )
    flops = ", ".join(f"{k} {v / 1e12:.4g}" for k, v in results["train_flop_per_image"].items())
    notes = [
        f"training TFLOP per image (FlopCounterMode, forward + backward): {flops}",
        "MFU: those FLOPs x images/s / the peak named in its row (dense; fp32 runs its "
        f"convolutions in TF32 while torch.backends.cudnn.allow_tf32, now "
        f"{results['cudnn_allow_tf32']})",
        f"images/s of the median of {args.steps} steps after {args.warmup} warm-up; "
        "first_step_s includes cuDNN's algorithm search and compiling",
        *results["notes"],
    ]
    logger.info("\n".join(f"- {note}" for note in notes))
    if args.json:
        with open(args.json, "w") as file:
            json.dump(results, file, indent=1)


if __name__ == "__main__":
    main()
