"""The training step under DDP, SyncBatchNorm on and off; run it under torchrun.

    torchrun --standalone --nproc_per_node=2 -m benchmarks.ddp_step --device cuda \\
        --height 512 --width 768 --base-channels 32 --batch-size 16 --compile

Every rank runs ``benchmarks.step_timer``'s step (the project's U-Net, loss, AdamW and
``optimizer_step``) on its share of ``--batch-size``, the global batch as in training,
wrapped as training wraps it: SyncBatchNorm when asked (on GPUs only, as in training),
then DistributedDataParallel; the process group is the project's
(``join_process_group``). A step lasts as long as its slowest rank, so images/s is
the global batch over the largest median step time of the ranks, and MFU divides by the
peak of all the ranks' GPUs together (``benchmarks.model_step`` says how).

A case that fails on every rank alike (out of memory, a compile error) is reported and
the next one runs. One that fails on some ranks only leaves the others waiting in a
collective: ``benchmarks/gpu_check.sh`` runs this under a time limit.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
from typing import Any

import torch
import torch.distributed as dist

from benchmarks.machine import describe_machine, format_table
from benchmarks.model_step import precision_name
from benchmarks.step_cases import StepCase
from benchmarks.step_timer import (
    Outcome,
    add_flop_rates,
    build_step,
    case_fields,
    run_cases,
    time_steps,
)
from waymo_unet.devices import resolve_device
from waymo_unet.models.unet import UNetConfig
from waymo_unet.training.distributed import (
    DistributedContext,
    context_from_environment,
    join_process_group,
    leave_process_group,
)

logger = logging.getLogger(__name__)
COLUMNS = [
    "precision",
    "compile",
    "sync_batchnorm",
    "ranks",
    "size",
    "batch",
    "images_per_s",
    "vs_sync_on",
    "tflop_per_s",
    "peak",
    "mfu",
    "first_step_s",
    "peak_memory_mib",
    "status",
]


def ddp_cases(
    precision: str, dice_weight: float, with_compile: bool, device: torch.device
) -> list[StepCase]:
    """SyncBatchNorm on and off (on GPUs: the CPU has no SyncBatchNorm), eager then compiled."""
    syncs = (True, False) if device.type == "cuda" else (False,)
    modes = (False, True) if with_compile else (False,)
    return [
        StepCase(
            precision, precision != "fp32", compiled, dice_weight=dice_weight, sync_batchnorm=sync
        )
        for compiled in modes
        for sync in syncs
    ]


def run_ddp_benchmark(
    unet: UNetConfig,
    context: DistributedContext,
    device: torch.device,
    batch: int,
    height: int,
    width: int,
    cases: list[StepCase],
    warmup: int,
    steps: int,
) -> dict[str, Any]:
    """Every case on every rank; the rows (the same on every rank) and the failed cases."""
    world = context.world_size
    if batch % world:
        raise ValueError(f"batch {batch} is not divisible by {world} ranks")

    def describe(case: StepCase) -> dict[str, Any]:
        fields = case_fields(case, batch, height, width, device)
        return {**fields, "sync_batchnorm": case.sync_batchnorm, "ranks": world}

    def measure(case: StepCase) -> dict[str, Any]:
        step = build_step(case, unet, batch // world, height, width, device, distributed=True)
        first, seconds = time_steps(step, device, warmup, steps)
        peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else 0.0
        return {
            **describe(case),
            "median_step_s": statistics.median(seconds),
            "first_step_s": first or 0.0,
            "peak_memory_mib": peak,
            "status": "ok",
        }

    def agree(outcome: Outcome) -> Outcome:
        """Every rank's worst: a failure anywhere fails the case on all of them."""
        row, failure = outcome
        keys = ("median_step_s", "first_step_s", "peak_memory_mib")
        local = [float(failure is not None), *(float(row[k]) if row else 0.0 for k in keys)]
        worst = torch.tensor(local, dtype=torch.float64)  # a CPU tensor: gloo under either backend
        dist.all_reduce(worst, op=dist.ReduceOp.MAX)
        if worst[0] or row is None:
            return None, failure or "failed on another rank"
        row.update(zip(keys, worst[1:].tolist(), strict=True))
        row["images_per_s"] = batch / row["median_step_s"]
        if device.type != "cuda":
            row["peak_memory_mib"] = "n/a (CPU)"
        return row, None

    rows, failed = run_cases(cases, measure, describe, device, agree=agree)
    add_flop_rates(rows, unet, device, gpus=world)
    notes = []
    for row in rows:
        with_sync = next(
            (
                r["images_per_s"]
                for r in rows
                if r["sync_batchnorm"] and r["compile"] == row["compile"]
            ),
            None,
        )
        row["vs_sync_on"] = row["images_per_s"] / with_sync if with_sync else "n/a"
    if device.type != "cuda":
        notes.append("no SyncBatchNorm case: it runs on GPUs only (training skips it on CPUs)")
    return {
        "ranks": world,
        "batch": batch,
        "batch_per_rank": batch // world,
        "size": [height, width],
        "rows": rows,
        "failed": failed,
        "notes": notes,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--width", type=int, default=384)
    parser.add_argument("--batch-size", type=int, default=8, help="global, split over ranks")
    parser.add_argument("--base-channels", type=int, default=32)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--classes", type=int, default=20)
    parser.add_argument("--precision", type=precision_name, default="auto")
    parser.add_argument("--dice-weight", type=float, default=0.0)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--compile", action="store_true", help="also measure torch.compile")
    parser.add_argument("--json", help="rank 0 also writes the results to this JSON file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    context = context_from_environment()
    rank = context.rank if context else 0
    logging.basicConfig(
        level=logging.INFO if rank == 0 else logging.WARNING,
        format=f"[rank {rank}] %(message)s",
    )
    if context is None:
        raise SystemExit(
            "benchmarks.ddp_step needs 2 or more ranks: "
            "torchrun --standalone --nproc_per_node=2 -m benchmarks.ddp_step ..."
        )
    device = context.claim_device(resolve_device(args.device))
    join_process_group(device)
    unet = UNetConfig(num_classes=args.classes, base_channels=args.base_channels, depth=args.depth)
    cases = ddp_cases(args.precision, args.dice_weight, args.compile, device)
    section = run_ddp_benchmark(
        unet,
        context,
        device,
        args.batch_size,
        args.height,
        args.width,
        cases,
        args.warmup,
        args.steps,
    )
    if context.is_main:
        machine = describe_machine()
        logger.info("machine: %s", ", ".join(f"{k}={v}" for k, v in machine.items()))
        logger.info(
            "DDP over %d ranks, U-Net base %d depth %d, %d classes, global batch %d at %dx%d:\n%s",
            context.world_size,
            args.base_channels,
            args.depth,
            args.classes,
            args.batch_size,
            args.height,
            args.width,
            format_table(section["rows"] + section["failed"], COLUMNS),
        )
        notes = [
            f"images/s: the global batch over the slowest rank's median of {args.steps} steps",
            "MFU against the peak of all the ranks' GPUs (benchmarks.model_step)",
            *section["notes"],
        ]
        logger.info("\n".join(f"- {note}" for note in notes))
        if args.json:
            results = {"machine": machine, "settings": vars(args), "ddp_step": section}
            with open(args.json, "w") as file:
                json.dump(results, file, indent=1)
    leave_process_group()


if __name__ == "__main__":
    main()
