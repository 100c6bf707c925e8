"""All benchmarks on one generated input, in one run: ``python -m benchmarks [--quick]``.

1. ingestion: notebook baseline against the project's ingestion (1 and N workers)
2. training input: DataLoader over the shards against decoding parquet per item
3. model step: fp32 against mixed precision, channels_last (and compile)
4. inference: eager model against the exported deployable model, with a logit check
5. evaluation: Waymo's metric at the labels' full size, ``evaluate_raw_files`` against a
   notebook loop (PIL at full size, one model call per image, ``np.bincount``)
6. full-run estimate: the rates above applied to the real dataset's counts

Prints one table per section, headed by the machine, and writes everything as JSON
(``--json``, default ``benchmarks/results/latest.json``). ``--quick`` keeps the input and
the model runs small (about 5 minutes on 2 cores, under one of it evaluating); without it
the input is a few real-sized segments and the model runs at full size.

The sections that need torch import it when they run: the ingestion workers are spawned
processes that re-import this module, and need no torch.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks import estimate as estimate_section
from benchmarks import ingestion as ingestion_section
from benchmarks.ingestion import RemoteStorage
from benchmarks.input_data import InputConfig, write_input
from benchmarks.machine import describe_machine, format_table, load_average
from waymo_unet.data.parallel import available_cores

if TYPE_CHECKING:
    from benchmarks.evaluation import EvaluationBenchmark

logger = logging.getLogger("benchmarks")

DEFAULT_JSON = Path(__file__).parent / "results" / "latest.json"
WAYMO_CLASSES = 28  # Waymo's semantic classes after UNDEFINED


@dataclass(frozen=True)
class Profile:
    """Sizes and repetitions of every section."""

    name: str
    input: InputConfig
    height: int = 512
    width: int = 768
    workers: tuple[int, ...] = (1,)
    ingestion_repeats: int = 3  # each ingestion case; its row is the median run
    remote_storage: RemoteStorage | None = field(default_factory=RemoteStorage)  # None: skip
    loader_batch: int = 8
    shard_epochs: int = 3
    decode_epochs: int = 1
    step_size: tuple[int, int] = (512, 768)
    step_batch: int = 2
    step_warmup: int = 1
    step_steps: int = 2
    emulated_bf16: str = "shrink"
    compile: bool = False
    inference_size: tuple[int, int] = (512, 768)
    inference_batch: int = 2
    inference_warmup: int = 1
    inference_iterations: int = 2
    evaluation_segments: int = 1  # scores their labelled frames, from the cameras below
    evaluation_batch: int = 4
    evaluation_repeats: int = 3  # each path, alternating; its row is the median run
    evaluation_cameras: tuple[int, ...] = (1, 2, 3, 4, 5)
    base_channels: int = 32
    depth: int = 4
    epochs: int = 20


def make_profile(args: argparse.Namespace, cuda: bool) -> Profile:
    """The --quick or full profile for this machine, with the command line's overrides."""
    cores = available_cores()
    workers = tuple(sorted({1, args.workers or cores}))
    if args.quick:
        profile = Profile(
            "quick",
            InputConfig(
                segments=6,
                frames_per_segment=50,
                labelled_runs=1,
                run_length=5,
                frames_per_row_group=10,
                distinct_frames=2,
            ),
            workers=workers,
            shard_epochs=3,
            step_size=(256, 384),
            step_steps=4,
            emulated_bf16="skip",
            inference_size=(256, 384),
            inference_iterations=3,
            evaluation_repeats=2,
            evaluation_cameras=(1, 4),  # one of each size: 10 images
        )
    else:
        profile = Profile(
            "full",
            InputConfig(
                segments=4,
                frames_per_segment=200,
                labelled_runs=4,
                run_length=5,
                frames_per_row_group=40,
                distinct_frames=4,
            ),
            workers=workers,
            shard_epochs=5,
            decode_epochs=2,
            step_steps=3,
            inference_batch=4,
            inference_iterations=3,
            evaluation_repeats=2,
            evaluation_cameras=(1, 4),  # 40 images at 512x768: about a second each on a CPU
        )
    profile = replace(
        profile, height=args.height, width=args.width, epochs=args.epochs, compile=args.compile
    )
    if cuda:  # the model at the ingestion size: a GPU has the speed for it
        profile = replace(
            profile,
            step_size=(profile.height, profile.width),
            step_batch=16 if not args.quick else 8,
            step_warmup=3,
            step_steps=10 if args.quick else 30,
            inference_size=(profile.height, profile.width),
            inference_batch=16,
            inference_warmup=3,
            inference_iterations=10 if args.quick else 30,
            evaluation_segments=2 if args.quick else 4,
            evaluation_repeats=3,
            evaluation_cameras=(1, 2, 3, 4, 5),
        )
    return profile


def print_section(title: str, table: str, notes: list[str] | None = None) -> None:
    """One section of the report on stdout: title, table, notes and the machine's load."""
    print(f"\n== {title} ==")
    print(table)
    for note in [*(notes or []), f"load average (1 min) as this section ended: {load_average()}"]:
        print(f"  - {note}")
    sys.stdout.flush()


def run_ingestion(data: Any, profile: Profile, work_dir: Path) -> tuple[dict[str, Any], Any]:
    section, shards = ingestion_section.run_ingestion_benchmark(
        data,
        profile.height,
        profile.width,
        profile.workers,
        work_dir,
        profile.ingestion_repeats,
        profile.remote_storage,
    )
    agreement, groups = section["agreement"], section["image_row_groups"]
    print_section(
        f"1. Ingestion: labelled pairs to {profile.height}x{profile.width} shards",
        format_table(section["rows"], ingestion_section.COLUMNS),
        [
            "naive: pandas.read_parquet of whole files (all columns), merge, full-size PIL decode "
            "+ convert('RGB'), BILINEAR / NEAREST, // divisor; keeps arrays in memory "
            "(it joins first, so it decodes labelled pairs only)",
            "project: key columns, then the image column of labelled row groups only, "
            "reduced-scale JPEG decode, full-resolution class histogram, writes shards",
            f"naive split: read + merge {section['naive_read_seconds']:.1f} s, decode "
            f"{section['naive_decode_seconds']:.1f} s "
            f"({section['naive_decode_pairs_per_s']:.1f} pairs/s)",
            "steady_pairs_per_s leaves out the process pool's start-up (time inside "
            "ingest_segment, shared among the workers, at least the slowest segment's); "
            "speedup compares steady rates",
            f"each case ran {profile.ingestion_repeats} time(s); its row is the run with the "
            "median steady rate, steady_range spans them all",
            "warm_pairs_per_s leaves out each worker's first segment (in a pool, a fresh "
            "process's one-off costs: codecs, first-touch memory; 1 worker runs in this "
            "process) and takes the wall-clock span of the rest; a real run gives each "
            "worker hundreds of segments",
            scaling_note(section["worker_scaling"]),
            f"decoders alone (decode_pair on pairs already in memory, 1 core): "
            f"{section['decode_only_pairs_per_s']:.1f} pairs/s, the ceiling of one worker "
            f"here; 1 worker reaches "
            f"{100 * section['single_worker_share_of_decode_only']:.0f}% of it (the rest is "
            "reading, BROTLI and writing shards)",
            "label PNG alone, ms each on the same labels: "
            + ", ".join(f"{name} {ms:.1f}" for name, ms in section["label_decode_ms"].items()),
            f"image row groups holding labelled frames: {groups['with_labelled_frames']} of "
            f"{groups['total']} (read_fraction follows from it)",
            f"same pairs as the baseline: {agreement['pairs_matched']}; labels equal on "
            f"{100 * agreement['label_agreement']:.3f}% of pixels; image mean abs difference "
            f"{agreement['image_mean_abs_diff']:.2f} grey levels (reduced-scale decode + cv2 "
            "vs full decode + PIL)",
        ],
    )
    if "remote" in section:
        print_remote_storage(section["remote"], groups)
    return section, shards


def scaling_note(scaling: dict[str, Any]) -> str:
    """How the rate grows from 1 to N workers, steady and warm ("n/a" where not measured)."""
    one, most = scaling["workers"]
    if one == most:
        return "one worker count only: no scaling measured (--workers)"

    def ratio(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.2f}x"

    return (
        f"from {one} to {most} workers: {ratio(scaling['steady'])} steady, "
        f"{ratio(scaling['warm'])} warm"
    )


def print_remote_storage(remote: dict[str, Any], groups: dict[str, int]) -> None:
    print_section(
        f"1b. Ingestion from modelled remote storage ({remote['model']})",
        format_table(remote["rows"], ingestion_section.REMOTE_COLUMNS),
        [
            "the same files and cases, read through fsspec like gcsfs with its cache off "
            "(benchmarks.ingestion.RemoteFile; gcsfs's default adaptive prefetcher is not "
            "modelled), each request waiting as a ranged GET from an object store would (a "
            "sleep: the CPU is free meanwhile); GCS itself cannot be reached from here",
            "reads: requests made; read_mib_per_pair: bytes fetched; storage_wait_s: what "
            "the requests would wait in all if nothing overlapped them",
            "read_ahead 1 reads the next image row group on a thread while the current "
            "one decodes; a segment's first read cannot be hidden, so the gain grows with "
            f"the labelled row groups per segment ({groups['with_labelled_frames']} over "
            "all segments here)",
            "the last row runs twice as many worker processes as the one before (by "
            "default the cores): while some wait for bytes, the others decode; each process "
            "gets its own bandwidth here (a shared network limit is not modelled)",
            "pairs_per_s is wall-clock, with the process pool's start-up",
        ],
    )


def run_training_input(data: Any, shards: Any, profile: Profile) -> dict[str, Any]:
    from benchmarks import training_input

    section = training_input.run_training_input_benchmark(
        data, shards, profile.loader_batch, profile.shard_epochs, profile.decode_epochs
    )
    print_section(
        f"2. Training input: images/s delivered at {profile.height}x{profile.width} "
        f"({section['items']} items)",
        format_table(section["rows"], training_input.COLUMNS),
        [
            "make_loader with the training default of min(4, cores) workers, except the row "
            "in the training process (num_workers=0: no batch crosses processes); no model runs",
            "ShardDataset fetches a whole batch per call (__getitems__), one copy per item",
            "parquet row per item: each item decompresses its row group (one column) and "
            "decodes at full size with PIL; timing starts at the first batch",
            "shards were just written, so they are in the page cache",
        ],
    )
    return section


def run_model_step(profile: Profile, device: Any) -> dict[str, Any]:
    from benchmarks import model_step
    from waymo_unet.models.unet import UNetConfig

    unet = UNetConfig(WAYMO_CLASSES, base_channels=profile.base_channels, depth=profile.depth)
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
    flops = model_step.count_flops(unet, profile.height, profile.width)
    section["train_flop_per_image_target"] = flops
    notes = [
        *section["notes"],
        f"U-Net base {profile.base_channels}, depth {profile.depth}, {WAYMO_CLASSES} classes; "
        f"{section['steps']} timed steps after {section['warmup']} warm-up",
        f"training FLOPs per image at {profile.height}x{profile.width} (FlopCounterMode, "
        f"forward + backward, convolutions and matmuls): {flops / 1e12:.3f} TFLOP",
        "images/s from the median step",
    ]
    if (profile.height, profile.width) == (512, 768):
        transposed = model_step.count_flops(replace(unet, bilinear=False), 512, 768)
        notes.append(
            "the issue's 0.44 TFLOP per image matches the transposed-convolution U-Net "
            f"(bilinear=False: {transposed / 1e12:.3f} counted), not the default bilinear one"
        )
    if device.type != "cuda":
        notes.append("MFU is for GPUs (peak table in benchmarks.machine); n/a on the CPU")
    print_section(
        "3. Model step: optimiser steps on a batch already on the device",
        format_table(section["rows"], model_step.COLUMNS),
        notes,
    )
    return section


def run_inference(profile: Profile, device: Any) -> dict[str, Any]:
    from benchmarks import inference
    from waymo_unet.models.unet import UNetConfig

    unet = UNetConfig(WAYMO_CLASSES, base_channels=profile.base_channels, depth=profile.depth)
    section = inference.run_inference_benchmark(
        unet,
        *profile.inference_size,
        profile.inference_batch,
        device,
        profile.inference_warmup,
        profile.inference_iterations,
    )
    verdict = "PASS" if section["passed"] else "FAIL"
    print_section(
        "4. Inference: eager SegmentationModel against exported DeployedModel (fp32)",
        format_table(section["rows"], inference.COLUMNS),
        [
            f"logit check {verdict}: max abs difference {section['max_abs_logit_difference']:.3g}"
            f" (tolerance {section['tolerance']:g}; largest logit "
            f"{section['max_abs_logit']:.3g}); argmax agrees on "
            f"{100 * section['argmax_agreement']:.4f}% of pixels",
            f"export took {section['export_seconds']:.1f} s; images/s (median call) include "
            "normalisation and argmax",
        ],
    )
    return section


def run_evaluation(data: Any, profile: Profile, device: Any) -> EvaluationBenchmark:
    """The evaluation section, printed; its typed results."""
    from benchmarks import evaluation
    from waymo_unet.models.unet import UNetConfig

    unet = UNetConfig(WAYMO_CLASSES, base_channels=profile.base_channels, depth=profile.depth)
    section = evaluation.run_evaluation_benchmark(
        data,
        unet,
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


def scaled_rate(rate: float, measured_flops: float, target_flops: float) -> float:
    """A rate measured at another size, moved to the target size by FLOPs."""
    return rate * measured_flops / target_flops


def run_estimate(
    profile: Profile,
    machine: dict[str, Any],
    device: Any,
    ingestion: dict[str, Any],
    loader: dict[str, Any],
    step: dict[str, Any],
    infer: dict[str, Any],
) -> dict[str, Any]:
    from benchmarks.model_step import count_flops
    from waymo_unet.models.unet import UNetConfig

    unet = UNetConfig(WAYMO_CLASSES, base_channels=profile.base_channels, depth=profile.depth)
    target = (profile.height, profile.width)
    train_target = count_flops(unet, *target)
    notes = []
    best, best_rate = None, 0.0
    for row in step["rows"]:
        rate = scaled_rate(row["images_per_s"], row["train_flop_per_image"], train_target)
        if rate > best_rate:
            best, best_rate = row, rate
    if best is not None and (best["height"], best["width"]) != target:
        notes.append(
            f"training rate measured at {best['size']} and scaled to {target[0]}x{target[1]} "
            "by FLOPs"
        )
    forward_measured = count_flops(unet, *infer["size"], backward=False)
    eval_rate = scaled_rate(
        infer["rows"][0]["images_per_s"],
        forward_measured,
        count_flops(unet, *target, backward=False),
    )
    if tuple(infer["size"]) != target:
        notes.append(
            f"validation rate: eager inference at {infer['size'][0]}x{infer['size'][1]}, "
            "scaled by FLOPs"
        )
    rows = {row["source"]: row for row in loader["rows"]}
    loader_only = next(r for name, r in rows.items() if name.startswith("shards: "))
    with_prepare = next(r for name, r in rows.items() if "prepare_batch" in name)
    notebook = next(r for name, r in rows.items() if name.startswith("parquet row"))
    # On a GPU prepare_batch runs on the device; on the CPU it competes with the model.
    input_row = loader_only if device.type == "cuda" else with_prepare
    project_rows = [r for r in ingestion["rows"] if r["method"].startswith("project")]
    fastest = max(project_rows, key=lambda r: r["steady_pairs_per_s"])
    ingestion_rate = fastest["steady_pairs_per_s"]
    rates = estimate_section.Rates(
        machine=str(machine["device"]) if device.type == "cuda" else f"CPU: {machine['cpu']}",
        ingestion_pairs_per_s=ingestion_rate,
        train_images_per_s=best_rate,
        eval_images_per_s=eval_rate,
        input_images_per_s=input_row["images_per_s"],
        notebook_input_images_per_s=notebook["images_per_s"],
        train_case=(
            f"{best['precision']}{', channels_last' if best['channels_last'] else ''}"
            f"{', compile' if best['compile'] else ''}"
            if best
            else ""
        ),
    )
    section = estimate_section.estimate_full_run(rates, profile.epochs)
    counts = estimate_section.DatasetCounts()
    read_fraction = max(r["read_fraction"] for r in project_rows)
    notes += [
        f"counts: {counts.train_images:,} training images ({counts.train_frames:,} frames x 5 "
        f"cameras, {counts.train_segments} segments), {counts.val_images:,} validation images",
        f"training case: {rates.train_case}; ingestion: project, {fastest['workers']} "
        "worker(s) (the faster), steady rate",
        f"input pipeline: {input_row['source']}",
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
        + ", ".join(f"{k} {v:.0%}" for k, v in section["share_of_total"].items()),
    ]
    section["notes"] = notes
    columns = estimate_section.COLUMNS
    print_section(
        f"6. Full-run estimate on {rates.machine}: ingestion once + {profile.epochs} epochs at "
        f"{target[0]}x{target[1]}",
        format_table(section["rows"], columns),
        notes,
    )
    return section


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="small input and model runs")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="results file")
    parser.add_argument(
        "--input-dir", type=Path, help="generate the input here, or reuse it if already there"
    )
    parser.add_argument("--height", type=int, default=512)
    parser.add_argument("--width", type=int, default=768)
    parser.add_argument("--epochs", type=int, default=20, help="epochs of the estimated run")
    parser.add_argument("--workers", type=int, help="N for ingestion (default: all cores)")
    parser.add_argument("--compile", action="store_true", help="also measure torch.compile")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    return parser.parse_args(argv)


def run(profile: Profile, device: Any, work_dir: Path, input_dir: Path | None) -> dict[str, Any]:
    """Every section on one generated input; returns what the JSON file holds."""
    start = time.perf_counter()
    machine = describe_machine()
    print(
        "Benchmarks (" + profile.name + ") on: " + ", ".join(f"{k}={v}" for k, v in machine.items())
    )
    data = write_input(input_dir or work_dir / "input", profile.input)
    summary = data.summary()
    print_section(
        "Input: synthetic Waymo v2 files at full size (waymo_unet.data.synthetic)",
        format_table(
            [{"quantity": k, "value": v} for k, v in summary.items()], ["quantity", "value"]
        ),
        [
            "cameras 1-3 1920x1280, 4-5 1920x886 JPEG; uint16 panoptic PNG; BROTLI; frames "
            f"in order; labelled runs of {profile.input.run_length} frames",
            f"{profile.input.distinct_frames} rendered frames per camera and segment; the "
            "others are shifted copies, so every JPEG differs",
        ],
    )
    results: dict[str, Any] = {"machine": machine, "profile": asdict(profile), "input": summary}
    results["ingestion"], shards = run_ingestion(data, profile, work_dir)
    results["training_input"] = run_training_input(data, shards, profile)
    results["model_step"] = run_model_step(profile, device)
    results["inference"] = run_inference(profile, device)
    evaluation = run_evaluation(data, profile, device)
    results["evaluation"] = asdict(evaluation)
    results["estimate"] = run_estimate(
        profile,
        machine,
        device,
        results["ingestion"],
        results["training_input"],
        results["model_step"],
        results["inference"],
    )
    results["load_average_1m_at_end"] = load_average()
    results["wall_seconds"] = time.perf_counter() - start
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr
    )
    import torch

    if args.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(args.device)
    profile = make_profile(args, device.type == "cuda")
    with tempfile.TemporaryDirectory(prefix="waymo_unet_benchmarks_") as work_dir:
        results = run(profile, device, Path(work_dir), args.input_dir)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=1, default=str))
    load = results["machine"]["load_average_1m"]
    print(
        f"\nTotal wall time {results['wall_seconds']:.0f} s; load average {load} at the start, "
        f"{results['load_average_1m_at_end']} at the end ({results['machine']['cores']} cores); "
        f"results in {args.json}"
    )
    if not results["inference"]["passed"]:
        logger.error("The exported model's logits differ from the eager model's beyond tolerance")
        return 1
    agreement = results["evaluation"]["agreement"]
    if not (agreement["ground_truth_equal"] and agreement["same_images"]):
        logger.error("The evaluation's two paths scored different images or ground truth")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
