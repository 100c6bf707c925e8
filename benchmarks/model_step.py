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
the CUDA cores' fp32 (``FP32_PEAK_TFLOPS`` below). Each row names the peak it used.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import re
import statistics
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.machine import describe_machine, format_table, peak_tflops
from waymo_unet.devices import (
    PRECISIONS,
    Precision,
    autotune_convolutions,
    choose_precision,
    cpu_has_native_bf16,
    resolve_device,
)
from waymo_unet.models.unet import UNetConfig, build_unet
from waymo_unet.training.loop import (
    ModelWithLoss,
    Optimisation,
    make_optimizer,
    optimizer_step,
)
from waymo_unet.training.loss import SegmentationLoss

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

# Dense fp32 peaks, TFLOP/s: (CUDA cores, TF32 tensor cores), by whole words of the GPU's
# name, matched as benchmarks.machine matches its bf16/fp16 table; the first match wins.
# Source: NVIDIA's data sheets (H100/H200 "Tensor Core GPU", A100, A10, L40S, L40, L4,
# V100, T4), which print tensor-core rates "with sparsity": halved here to dense. Their
# dense bf16 peaks, H100 SXM 989, are those of benchmarks.machine. V100 and T4 have no TF32.
FP32_PEAK_TFLOPS: tuple[tuple[str, float, float | None], ...] = (
    ("H100 PCIe", 51.0, 378.0),
    ("H100 NVL", 60.0, 417.5),
    ("H200", 67.0, 494.7),
    ("H100", 67.0, 494.7),  # SXM5
    ("A100", 19.5, 156.0),
    ("A10", 31.2, 62.5),
    ("L40S", 91.6, 183.0),
    ("L40", 90.5, 90.5),
    ("L4", 30.3, 60.0),
    ("V100", 15.7, None),
    ("T4", 8.1, None),
)


@dataclass(frozen=True)
class StepCase:
    precision: str
    channels_last: bool
    compile: bool = False
    height: int | None = None  # None: the benchmark's size
    width: int | None = None
    dice_weight: float = 0.0
    sync_batchnorm: bool = False  # under DDP on GPUs only, as in training

    @property
    def mixed(self) -> bool:
        return self.precision != "fp32"

    def label(self) -> str:
        layout = ", channels_last" if self.channels_last else ""
        mode = "compiled" if self.compile else "eager"
        sync = ", SyncBatchNorm" if self.sync_batchnorm else ""
        return f"{self.precision}{layout}, {mode}, dice {self.dice_weight:g}{sync}"


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


def grid_cases(
    precisions: Sequence[str], dice_weights: Sequence[float], with_compile: bool
) -> list[StepCase]:
    """Every precision and Dice weight as training runs them (channels_last when mixed):
    eager first, then compiled, so a spent time budget cuts the slow compiled cases."""
    modes = (False, True) if with_compile else (False,)
    return [
        StepCase(precision, precision != "fp32", compiled, dice_weight=weight)
        for compiled in modes
        for precision in precisions
        for weight in dice_weights
    ]


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
        _synchronise(device)
        if index == 0:
            first = time.perf_counter() - start
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    seconds = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        _synchronise(device)
        seconds.append(time.perf_counter() - start)
    return first, seconds


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


def _synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


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


def conv_peak(precision: str, device_name: str) -> tuple[str, float | None]:
    """The dense peak (name, TFLOP/s) the convolutions of ``precision`` can reach on a GPU."""
    if precision != "fp32":
        return f"{precision} dense", peak_tflops(device_name)
    fp32, tf32 = None, None
    for words, cuda_cores, tensor_cores in FP32_PEAK_TFLOPS:
        if re.search(rf"\b{re.escape(words)}\b", device_name, re.IGNORECASE):
            fp32, tf32 = cuda_cores, tensor_cores
            break
    if tf32 is not None and torch.backends.cudnn.allow_tf32:
        return "tf32 dense", tf32
    return "fp32", fp32


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
) -> dict[str, Any]:
    """Every case at one size; ``emulated_bf16`` says what to do with bf16 on CPUs without it.

    ``"skip"`` leaves the bf16 cases out, ``"shrink"`` runs them at ``shrunk_size`` (they
    are about 25x slower than fp32 there), ``"run"`` runs them as they are. ``cases``, when
    given, are run as they are instead of the default ones.
    """
    notes = []
    emulated = device.type == "cpu" and not cpu_has_native_bf16()
    if cases is None:
        cases = default_cases(
            device, with_compile, with_mixed=not (emulated and emulated_bf16 == "skip")
        )
        if emulated and emulated_bf16 == "skip":
            notes.append(
                "bf16 cases skipped: this CPU has no native bf16 (AVX512-BF16 / AMX) and "
                "emulates it about 25x slower than fp32"
            )
        if emulated and emulated_bf16 == "shrink":
            shrunk = [replace(c, height=shrunk_size[0], width=shrunk_size[1]) for c in cases]
            cases = [c for c in cases if not c.mixed]
            if shrunk_size != (height, width):  # an fp32 baseline at the bf16 cases' size
                cases.append(StepCase("fp32", False, False, *shrunk_size))
            cases += [c for c in shrunk if c.mixed]
            notes.append(
                f"bf16 cases at {shrunk_size[0]}x{shrunk_size[1]}: this CPU emulates bf16 "
                "(no AVX512-BF16 / AMX), about 25x slower than fp32"
            )
    rows, failed = run_cases(
        cases,
        lambda case: measure_step(case, unet, batch, height, width, device, warmup, steps),
        lambda case: case_fields(case, batch, height, width, device),
        device,
        budget_s,
    )
    notes += [f"{row_label(row)}: {row['status']}" for row in failed]
    flops = add_flop_rates(rows, unet, device)
    add_speedups(rows)
    notes += dice_costs(rows)
    if device.type == "cuda" and any(row["mfu"] == "n/a" for row in rows):
        notes.append("MFU n/a: this GPU is not in the peak tables (benchmarks.machine, here)")
    return {
        "device": str(device),
        "unet": unet.to_dict(),
        "size": [height, width],
        "batch": batch,
        "warmup": warmup,
        "steps": steps,
        "train_flop_per_image": {f"{h}x{w}": f for (h, w), f in flops.items()},
        "rows": rows,
        "failed": failed,
        "notes": notes,
    }


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
        "model_step": section["rows"],
        "failed": section["failed"],
        "train_flop_per_image": section["train_flop_per_image"],
        "notes": section["notes"],
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
