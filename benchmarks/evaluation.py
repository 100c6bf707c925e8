"""Evaluation: Waymo's metric on the raw files at the labels' size, against a notebook loop.

Both paths score the same labelled images with the same deployed model (run at its own
size) and count coverage-weighted 29x29 confusion matrices at the labels' full size
(1920x1280 and 1920x886):

* project: ``evaluate_raw_files``: key columns first, labelled row groups only, the JPEG
  decoded at the model's size (DCT scaling) on a thread pool while the model runs,
  batches, logits upsampled bilinearly, matrices counted on the device;
* notebook: pyarrow reads whole files, pandas merges on the keys, PIL decodes the JPEG
  and both PNGs at full size, PIL resizes the image to the model's size, one model call
  per image, its logits upsampled to the label's size with ``F.interpolate`` and their
  ``argmax`` (the same prediction as the project's), and ``np.bincount`` counts each
  image's matrices.

They shrink the image differently (DCT-scaled decode + cv2 against PIL's full decode +
BILINEAR), so the model sees slightly different pixels: the predicted side of the
matrices differs a little, and by how much is reported. The ground-truth side (row sums,
weighted and plain) must be equal. The benchmark input has a training split only; the
evaluation reads any split the same way, so it scores that one.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.evaluation_notebook import NaiveRun, naive_evaluate
from benchmarks.evaluation_results import Agreement, EvaluationBenchmark, PathResult
from benchmarks.inference import waymo_classes
from benchmarks.input_data import SPLIT, BenchmarkInput
from benchmarks.timing import median_run, synchronise
from waymo_unet.data.waymo import (
    CAMERA_IMAGE,
    CAMERA_SEGMENTATION,
    CameraName,
)
from waymo_unet.datasets import WaymoComponentDataset
from waymo_unet.devices import Precision, choose_precision, resolve_device
from waymo_unet.evaluation.evaluate import (
    EvaluationConfig,
    WaymoEvaluation,
    evaluate_raw_files,
)
from waymo_unet.evaluation.reading import EvaluationSegment, plan_evaluation
from waymo_unet.evaluation.waymo_scores import waymo_scores
from waymo_unet.models.bundle import SegmentationModel
from waymo_unet.models.export import DeployedModel, deployment_manifest, export_program
from waymo_unet.models.prediction import predict_waymo_ids
from waymo_unet.models.unet import UNetConfig, build_unet

logger = logging.getLogger(__name__)

COLUMNS = [
    "method",
    "precision",
    "batch",
    "images",
    "images_per_s",
    "range",
    "speedup",
    "weighted_miou",
    "miou",
]
NAIVE = "notebook: whole files, merge, PIL, F.interpolate, np.bincount"
PROJECT = "project: evaluate_raw_files"
ALL_CAMERAS = tuple(int(c) for c in CameraName)


def deployed_model(unet: UNetConfig, size: tuple[int, int]) -> tuple[DeployedModel, float]:
    """An untrained U-Net over the first Waymo classes, exported; and the export's seconds."""
    torch.manual_seed(0)
    model = SegmentationModel(build_unet(unet).eval(), unet, waymo_classes(unet.num_classes), size)
    start = time.perf_counter()
    program = export_program(model)
    return DeployedModel(program, deployment_manifest(model)), time.perf_counter() - start


def evaluation_segments(data: BenchmarkInput, segments: int) -> list[EvaluationSegment]:
    """The first ``segments`` of the input by name, found as the pipeline's catalog does."""
    names = {s.segment for s in data.segments}
    trees = []
    for component in (CAMERA_IMAGE, CAMERA_SEGMENTATION):
        tree = WaymoComponentDataset(data.root, component).load()
        trees.append({SPLIT: {k: v for k, v in tree[SPLIT].items() if k in names}})
    return plan_evaluation(*trees, SPLIT, max_segments=segments)


def compare(naive: NaiveRun, project: WaymoEvaluation) -> Agreement:
    """The project's matrices against the notebook's."""
    weighted = project.confusion.weighted.cpu().numpy()
    counts = project.confusion.counts.cpu().numpy()
    ground_truth_equal = np.array_equal(naive.counts.sum(1), counts.sum(1)) and np.array_equal(
        naive.weighted.sum(1), weighted.sum(1)
    )
    pixels = max(int(counts.sum()), 1)
    return Agreement(
        same_images=naive.images == len(project.images),
        ground_truth_equal=bool(ground_truth_equal),
        differing_pixel_share=float(np.abs(naive.counts - counts).sum() / 2 / pixels),
        miou_difference=_miou(counts) - _miou(naive.counts),
        weighted_miou_difference=_miou(weighted) - _miou(naive.weighted),
    )


def _miou(matrix: np.ndarray | torch.Tensor) -> float:
    return waymo_scores(torch.as_tensor(matrix)).mean_iou


def warm_up(model: DeployedModel, batch_size: int, precisions: list[Precision]) -> None:
    """One untimed model call per batch shape and precision: the CPU's first call of a
    shape builds its convolution kernels, which would otherwise land in one path's run."""
    height, width = model.image_size
    for precision in precisions:
        for batch in sorted({1, batch_size}):
            with precision.autocast():
                model.predict_logits(torch.zeros((batch, height, width, 3), dtype=torch.uint8))


def time_full_size_prediction(
    model: DeployedModel, size: tuple[int, int], device: torch.device
) -> float:
    """Milliseconds that ``predict_waymo_ids`` adds to the model call for one image of
    ``size`` (fp32): its logits upsampled bilinearly and their argmax (best of 2)."""
    height, width = model.image_size
    image = torch.randint(0, 256, (1, height, width, 3), dtype=torch.uint8)

    def best_of_two(predict: Any) -> float:
        seconds = []
        for _ in range(2):
            start = time.perf_counter()
            predict()
            synchronise(device)
            seconds.append(time.perf_counter() - start)
        return min(seconds)

    full = best_of_two(lambda: predict_waymo_ids(model, image, [size]))
    return 1000 * (full - best_of_two(lambda: model.predict_logits(image)))


def run_evaluation_benchmark(
    data: BenchmarkInput,
    unet: UNetConfig,
    size: tuple[int, int],
    device: torch.device,
    segments: int = 1,
    batch_size: int = 4,
    repeats: int = 3,
    cameras: tuple[int, ...] = ALL_CAMERAS,
) -> EvaluationBenchmark:
    """Every path ``repeats`` times, alternating, on the first ``segments`` of ``data``."""
    model, export_seconds = deployed_model(unet, size)
    model.to(device)
    planned = evaluation_segments(data, segments)
    by_name = {s.segment: s for s in data.segments}
    files = [by_name[s.segment] for s in planned]
    precisions = ["fp32"]
    if choose_precision("auto", device).dtype is not None:
        precisions.append("auto")
    configs = [
        EvaluationConfig(
            split=SPLIT,
            max_segments=segments,
            batch_size=batch_size,
            device=str(device),
            precision=precision,
            cameras=cameras,
        )
        for precision in precisions
    ]
    warm_up(model, batch_size, [choose_precision(p, device) for p in precisions])
    upsample_ms = time_full_size_prediction(model, label_sizes(data, cameras)[0], device)
    naive_runs: list[NaiveRun] = []
    project_runs: list[list[tuple[WaymoEvaluation, float]]] = [[] for _ in configs]
    for attempt in range(repeats):
        logger.info("Evaluation: notebook loop, run %d of %d", attempt + 1, repeats)
        naive_runs.append(naive_evaluate(model, files, cameras, device))
        for config, runs in zip(configs, project_runs, strict=True):
            logger.info(
                "Evaluation: evaluate_raw_files (%s), run %d of %d",
                config.precision,
                attempt + 1,
                repeats,
            )
            start = time.perf_counter()
            evaluation = evaluate_raw_files(model, planned, config)
            runs.append((evaluation, time.perf_counter() - start))
    naive = median_run(naive_runs, lambda run: run.rate)
    paths = [
        PathResult(
            NAIVE,
            "fp32",
            1,
            naive.images,
            naive.rate,
            tuple(run.rate for run in naive_runs),
            _miou(naive.weighted),
            _miou(naive.counts),
        )
    ]
    for runs in project_runs:
        evaluation, seconds = median_run(runs, project_rate)
        paths.append(
            PathResult(
                PROJECT,
                evaluation.precision,
                batch_size,
                len(evaluation.images),
                len(evaluation.images) / seconds,
                tuple(project_rate(run) for run in runs),
                _miou(evaluation.confusion.weighted),
                _miou(evaluation.confusion.counts),
            )
        )
    return EvaluationBenchmark(
        model_size=size,
        label_sizes=label_sizes(data, cameras),
        unet=unet.to_dict(),
        device=str(device),
        segments=len(files),
        cameras=cameras,
        repeats=repeats,
        export_seconds=export_seconds,
        paths=tuple(paths),
        speedup=paths[1].images_per_s / paths[0].images_per_s,
        agreement=compare(naive, project_runs[0][-1][0]),
        naive_stage_ms={stage: 1000 * s for stage, s in naive.stage_seconds.items()},
        project_upsample_ms=upsample_ms,
    )


def project_rate(run: tuple[WaymoEvaluation, float]) -> float:
    evaluation, seconds = run
    return len(evaluation.images) / seconds


def label_sizes(data: BenchmarkInput, cameras: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
    """(height, width) of the labels scored: the front cameras' (1-3), the side ones' (4-5)."""
    sizes = []
    for (width, height), group in (
        (data.config.front_size, {1, 2, 3}),
        (data.config.side_size, {4, 5}),
    ):
        if group & set(cameras):
            sizes.append((height, width))
    return tuple(sizes)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.evaluation", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="the --quick profile's sizes")
    parser.add_argument("--input-dir", type=Path, help="generate the input here, or reuse it")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """This section alone, on the input and sizes of ``python -m benchmarks``'s profile."""
    import tempfile

    from benchmarks.input_data import write_input
    from benchmarks.machine import describe_machine
    from benchmarks.profile import make_profile
    from benchmarks.profile import parse_args as benchmark_args
    from benchmarks.sections import run_evaluation

    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr
    )
    device = resolve_device(args.device)
    profile = make_profile(benchmark_args(["--quick"] if args.quick else []), device.type == "cuda")
    machine = describe_machine()
    print("Evaluation benchmark on: " + ", ".join(f"{k}={v}" for k, v in machine.items()))
    with tempfile.TemporaryDirectory(prefix="waymo_unet_benchmarks_") as work_dir:
        data = write_input(args.input_dir or Path(work_dir) / "input", profile.input)
        section = run_evaluation(data, profile, device)
    if args.json:
        args.json.write_text(
            json.dumps({"machine": machine, "evaluation": asdict(section)}, indent=1)
        )
    return 0 if section.agreement.ground_truth_equal and section.agreement.same_images else 1


if __name__ == "__main__":
    sys.exit(main())
