"""Each section of ``python -m benchmarks``: run on the profile, printed, its typed result.

The sections that need torch import it when they run: the ingestion workers are spawned
processes that re-import ``__main__``, and need no torch.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks import ingestion, ingestion_results
from benchmarks.estimate import COLUMNS as ESTIMATE_COLUMNS
from benchmarks.estimate import FullRunEstimate, Rates, estimate_full_run
from benchmarks.ingestion_results import IngestionBenchmark
from benchmarks.ingestion_runs import ProjectRun
from benchmarks.input_data import BenchmarkInput
from benchmarks.machine import format_table, load_average
from benchmarks.profile import WAYMO_CLASSES, Profile

if TYPE_CHECKING:
    from benchmarks.evaluation import EvaluationBenchmark
    from benchmarks.inference import InferenceBenchmark
    from benchmarks.model_step import ModelStepBenchmark
    from benchmarks.training_input import TrainingInputBenchmark


def print_section(title: str, table: str, notes: list[str] | tuple[str, ...] = ()) -> None:
    """One section of the report on stdout: title, table, notes and the machine's load."""
    print(f"\n== {title} ==")
    print(table)
    for note in [*notes, f"load average (1 min) as this section ended: {load_average()}"]:
        print(f"  - {note}")
    sys.stdout.flush()


def run_ingestion(
    data: BenchmarkInput, profile: Profile, work_dir: Path
) -> tuple[IngestionBenchmark, ProjectRun]:
    """Section 1 (and 1b, remote storage); also a one-worker run, whose shards feed 2."""
    section, shards = ingestion.run_ingestion_benchmark(
        data,
        profile.height,
        profile.width,
        profile.workers,
        work_dir,
        profile.ingestion_repeats,
        profile.remote_storage,
    )
    table = format_table(section.table_rows(), ingestion_results.COLUMNS)
    print_section(section.title(), table, section.notes())
    if section.remote is not None:
        remote = section.remote
        table = format_table(remote.table_rows(), ingestion_results.REMOTE_COLUMNS)
        print_section(remote.title(), table, remote.notes(section.image_row_groups))
    return section, shards


def run_training_input(
    data: BenchmarkInput, shards: ProjectRun, profile: Profile
) -> TrainingInputBenchmark:
    from benchmarks import training_input

    section = training_input.run_training_input_benchmark(
        data, shards, profile.loader_batch, profile.shard_epochs, profile.decode_epochs
    )
    table = format_table(section.rows(), training_input.COLUMNS)
    print_section(section.title(), table, section.notes())
    return section


def run_model_step(profile: Profile, device: Any) -> ModelStepBenchmark:
    from benchmarks import model_step
    from benchmarks.step_timer import count_flops

    unet = profile.unet()
    section = model_step.run_model_step_benchmark(
        unet,
        device,
        profile.step_batch,
        *profile.step_size,
        profile.step_warmup,
        profile.step_steps,
        profile.compile,
        profile.emulated_bf16,
    )
    flops = count_flops(unet, profile.height, profile.width)
    section.train_flop_per_image.setdefault(f"{profile.height}x{profile.width}", flops)  # JSON
    notes = [
        *section.notes,
        f"U-Net base {profile.base_channels}, depth {profile.depth}, {WAYMO_CLASSES} classes; "
        f"{section.steps} timed steps after {section.warmup} warm-up",
        f"training FLOPs per image at {profile.height}x{profile.width} (FlopCounterMode, "
        f"forward + backward, convolutions and matmuls): {flops / 1e12:.3f} TFLOP",
        "images/s from the median step",
    ]
    if (profile.height, profile.width) == (512, 768):
        transposed = count_flops(replace(unet, bilinear=False), 512, 768)
        notes.append(
            "the issue's 0.44 TFLOP per image matches the transposed-convolution U-Net "
            f"(bilinear=False: {transposed / 1e12:.3f} counted), not the default bilinear one"
        )
    if device.type != "cuda":
        notes.append("MFU is for GPUs (peak table in benchmarks.machine); n/a on the CPU")
    print_section(
        "3. Model step: optimiser steps on a batch already on the device",
        format_table(section.rows, model_step.COLUMNS),
        notes,
    )
    return section


def run_inference(profile: Profile, device: Any) -> InferenceBenchmark:
    from benchmarks import inference

    section = inference.run_inference_benchmark(
        profile.unet(),
        *profile.inference_size,
        profile.inference_batch,
        device,
        profile.inference_warmup,
        profile.inference_iterations,
    )
    print_section(
        "4. Inference: eager SegmentationModel against exported DeployedModel (fp32)",
        format_table(section.rows(), inference.COLUMNS),
        section.notes(),
    )
    return section


def run_evaluation(data: BenchmarkInput, profile: Profile, device: Any) -> EvaluationBenchmark:
    from benchmarks import evaluation

    section = evaluation.run_evaluation_benchmark(
        data,
        profile.unet(),
        profile.inference_size,
        device,
        profile.evaluation_segments,
        profile.evaluation_batch,
        profile.evaluation_repeats,
        profile.evaluation_cameras,
    )
    print_section(
        f"5. {section.title()}",
        format_table(section.rows(), evaluation.COLUMNS),
        section.notes(),
    )
    return section


def run_estimate(
    profile: Profile,
    machine: dict[str, Any],
    device: Any,
    ingested: IngestionBenchmark,
    loader: TrainingInputBenchmark,
    step: ModelStepBenchmark,
    infer: InferenceBenchmark,
) -> FullRunEstimate:
    """Section 6: the rates of sections 1-4, moved by FLOPs to the target size where
    measured at another, applied to the real dataset's counts."""
    from benchmarks.step_timer import count_flops

    unet = profile.unet()
    target = (profile.height, profile.width)
    train_target = count_flops(unet, *target)
    best, train_rate = step.fastest_at(train_target)
    notes = []
    if best is not None and (best["height"], best["width"]) != target:
        notes.append(
            f"training rate measured at {best['size']} and scaled to {target[0]}x{target[1]} "
            "by FLOPs"
        )
    forward_measured = count_flops(unet, *infer.size, backward=False)
    eval_rate = (
        infer.eager_images_per_s * forward_measured / count_flops(unet, *target, backward=False)
    )
    if tuple(infer.size) != target:
        notes.append(
            f"validation rate: eager inference at {infer.size[0]}x{infer.size[1]}, scaled by FLOPs"
        )
    # On a GPU prepare_batch runs on the device; on the CPU it competes with the model.
    input_case = loader.shards if device.type == "cuda" else loader.prepared
    fastest = ingested.fastest_project
    rates = Rates(
        machine=str(machine["device"]) if device.type == "cuda" else f"CPU: {machine['cpu']}",
        ingestion_pairs_per_s=fastest.steady_pairs_per_s,
        train_images_per_s=train_rate,
        eval_images_per_s=eval_rate,
        input_images_per_s=input_case.images_per_s,
        notebook_input_images_per_s=loader.notebook.images_per_s,
        train_case=(
            f"{best['precision']}{', channels_last' if best['channels_last'] else ''}"
            f"{', compile' if best['compile'] else ''}"
            if best
            else ""
        ),
    )
    section = estimate_full_run(rates, profile.epochs)
    counts = section.counts
    read_fraction = max(row.read_fraction for row in ingested.project)
    notes += [
        f"counts: {counts.train_images:,} training images ({counts.train_frames:,} frames x 5 "
        f"cameras, {counts.train_segments} segments), {counts.val_images:,} validation images",
        f"training case: {rates.train_case}; ingestion: project, {fastest.workers} "
        "worker(s) (the faster), steady rate",
        f"input pipeline: {input_case.source}",
        f"ingestion reads {read_fraction:.0%} of the files on this input's layout: "
        f"{read_fraction * counts.camera_image_bytes / 1e9:,.0f} GB of the "
        f"{counts.camera_image_bytes / 1e9:,.0f} GB of camera_image parquet (it depends on how "
        "many row groups hold a labelled run; the notebook reads it all)",
        f"training FLOPs per image: {train_target / 1e12:.3f} TFLOP counted"
        + (
            f", {counts.issue_train_flop_per_image / 1e12:.2f} in the issue"
            if target == (512, 768)
            else ""
        ),
        "share of the full run's time: "
        + ", ".join(f"{k} {v:.0%}" for k, v in section.share_of_total.items()),
    ]
    section = replace(section, notes=tuple(notes))
    print_section(
        f"6. Full-run estimate on {rates.machine}: ingestion once + {profile.epochs} epochs at "
        f"{target[0]}x{target[1]}",
        format_table(section.table_rows(), ESTIMATE_COLUMNS),
        section.notes,
    )
    return section
