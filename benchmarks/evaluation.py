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
import io
import json
import logging
import sys
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import torch
import torch.nn.functional as F  # noqa: N812
from PIL import Image

from benchmarks.inference import waymo_classes
from benchmarks.ingestion import median_run
from benchmarks.input_data import SPLIT, BenchmarkInput, SegmentFiles
from waymo_unet.data.waymo import (
    CAMERA_IMAGE,
    CAMERA_SEGMENTATION,
    IMAGE_COLUMN,
    KEY_CAMERA,
    KEY_COLUMNS,
    KEY_TIMESTAMP,
    NUM_CAMERAS_COVERED_COLUMN,
    PANOPTIC_DIVISOR_COLUMN,
    PANOPTIC_LABEL_COLUMN,
    CameraName,
)
from waymo_unet.datasets import WaymoComponentDataset
from waymo_unet.devices import Precision, choose_precision
from waymo_unet.evaluation.evaluate import (
    EvaluationConfig,
    WaymoEvaluation,
    evaluate_raw_files,
)
from waymo_unet.evaluation.reading import EvaluationSegment, plan_evaluation
from waymo_unet.evaluation.waymo_metric import NUM_WAYMO_IDS, waymo_scores
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


@dataclass(frozen=True)
class PathResult:
    """One way of evaluating: images scored, rates of every run, scores of the last."""

    method: str
    precision: str
    batch: int
    images: int
    images_per_s: float  # the median run's (the lower middle one of an even count)
    rates: tuple[float, ...]  # every run's, in the order run
    weighted_miou: float
    miou: float


@dataclass(frozen=True)
class Agreement:
    """How the notebook's matrices compare with the project's at the same precision.

    ``ground_truth_equal``: every class's weighted and plain ground-truth pixels (row
    sums) are the same. ``differing_pixel_share``: half the L1 distance between the plain
    matrices over the pixels, a lower bound on the share of pixels predicted differently.
    """

    same_images: bool
    ground_truth_equal: bool
    differing_pixel_share: float
    miou_difference: float  # project minus notebook
    weighted_miou_difference: float


@dataclass(frozen=True)
class EvaluationBenchmark:
    """The section's results, as ``__main__`` prints them and writes them to JSON.

    ``paths`` holds the notebook first, then the project in fp32 (the notebook's
    precision: ``speedup`` and ``agreement`` compare these two), then the project at the
    pipeline's ``precision: auto`` where that is not fp32.
    """

    model_size: tuple[int, int]
    label_sizes: tuple[tuple[int, int], ...]
    unet: dict[str, Any]
    device: str
    segments: int
    cameras: tuple[int, ...]
    repeats: int
    export_seconds: float
    paths: tuple[PathResult, ...]
    speedup: float  # the project's fp32 images/s over the notebook's (median runs)
    agreement: Agreement
    naive_stage_ms: dict[str, float]  # the median notebook run, per image
    project_upsample_ms: float  # what predict_waymo_ids adds per image of label_sizes[0]

    @property
    def naive(self) -> PathResult:
        return self.paths[0]

    @property
    def project(self) -> PathResult:
        return self.paths[1]

    def rows(self) -> list[dict[str, Any]]:
        """The table: one row per path."""
        return [
            {
                "method": result.method,
                "precision": result.precision,
                "batch": result.batch,
                "images": result.images,
                "images_per_s": result.images_per_s,
                "range": f"{min(result.rates):.2f}-{max(result.rates):.2f}",
                "speedup": result.images_per_s / self.naive.images_per_s,
                "weighted_miou": result.weighted_miou,
                "miou": result.miou,
            }
            for result in self.paths
        ]

    def title(self) -> str:
        height, width = self.model_size
        labels = " and ".join(f"{w}x{h}" for h, w in self.label_sizes)
        return (
            f"Evaluation: images/s scored at the labels' size ({labels}), model at {height}x{width}"
        )

    def notes(self) -> list[str]:
        agreement = self.agreement
        stages = ", ".join(f"{k} {v:.0f}" for k, v in self.naive_stage_ms.items())
        verdict = "equal" if agreement.ground_truth_equal else "NOT EQUAL"
        return [
            f"the same {self.project.images} labelled images ({self.segments} segment(s), "
            f"cameras {', '.join(map(str, self.cameras))}) and "
            f"the same deployed model (untrained U-Net base {self.unet['base_channels']}, "
            f"depth {self.unet['depth']}; exported in {self.export_seconds:.1f} s) on "
            f"{self.device}; the last row, if any, is the pipeline's precision: auto",
            f"each path ran {self.repeats} time(s), alternating, after a warm-up model call; "
            "images/s from the median run, range over all; wall-clock from the listed "
            "files to the matrices",
            f"notebook, ms per image (median run): {stages}; it reads whole files, "
            "whichever frames and cameras are scored",
            f"project: predict_waymo_ids' upsampling of the logits to "
            f"{self.label_sizes[0][1]}x{self.label_sizes[0][0]} and their argmax add "
            f"{self.project_upsample_ms:.0f} ms per image to the model call (fp32, one "
            "image; an untrained model's noisy classes are its slowest case)",
            f"ground-truth pixels per class (weighted and plain): {verdict}; fp32 rows: "
            f"predicted classes differ on at least {100 * agreement.differing_pixel_share:.2f}%"
            f" of pixels, mIoU by {agreement.miou_difference:+.2g} (weighted "
            f"{agreement.weighted_miou_difference:+.2g}), project minus notebook, from the "
            "image's shrinking: DCT-scaled decode + cv2 against PIL's full decode + BILINEAR",
        ]


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


# The notebook way ---------------------------------------------------------------------


@dataclass
class NaiveRun:
    """The notebook loop's matrices and costs."""

    weighted: np.ndarray  # (29, 29) float64
    counts: np.ndarray  # (29, 29) int64
    images: int
    seconds: float
    stage_seconds: dict[str, float]


class Stopwatch:
    """Seconds spent per named stage, added up over a loop."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.seconds[stage] += now - self._last
        self._last = now


def naive_matrices(
    semantic: np.ndarray, predicted: np.ndarray, covered: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """One image's weighted and plain 29x29 matrices by ``np.bincount``.

    Ground truth UNDEFINED (0) is left out; weights are ``1 / num_cameras_covered``.
    """
    labelled = (semantic > 0) & (semantic < NUM_WAYMO_IDS)
    predicted = np.where(predicted < NUM_WAYMO_IDS, predicted, 0)  # a miss, as Waymo counts
    index = semantic[labelled].astype(np.int64) * NUM_WAYMO_IDS + predicted[labelled]
    weights = 1.0 / np.maximum(covered[labelled], 1)
    cells = NUM_WAYMO_IDS * NUM_WAYMO_IDS
    side = (NUM_WAYMO_IDS, NUM_WAYMO_IDS)
    weighted = np.bincount(index, weights=weights, minlength=cells).reshape(side)
    return weighted, np.bincount(index, minlength=cells).reshape(side)


def naive_evaluate(
    model: DeployedModel,
    files: list[SegmentFiles],
    cameras: tuple[int, ...],
    device: torch.device,
) -> NaiveRun:
    """Every labelled image of ``cameras`` in ``files``, scored the way a notebook would."""
    height, width = model.image_size
    lookup = model.waymo_ids
    weighted = np.zeros((NUM_WAYMO_IDS, NUM_WAYMO_IDS))
    counts = np.zeros((NUM_WAYMO_IDS, NUM_WAYMO_IDS), dtype=np.int64)
    images = 0
    start = time.perf_counter()
    watch = Stopwatch()
    for segment in files:
        pairs = pd.merge(
            pq.read_table(segment.image_path).to_pandas(),
            pq.read_table(segment.label_path).to_pandas(),
            on=list(KEY_COLUMNS),
        ).sort_values([KEY_TIMESTAMP, KEY_CAMERA])
        pairs = pairs[pairs[KEY_CAMERA].isin(cameras)]
        watch.lap("read + merge")
        for _, row in pairs.iterrows():
            image = Image.open(io.BytesIO(row[IMAGE_COLUMN])).convert("RGB")
            panoptic = np.asarray(Image.open(io.BytesIO(row[PANOPTIC_LABEL_COLUMN])))
            semantic = panoptic // int(row[PANOPTIC_DIVISOR_COLUMN])
            covered = np.asarray(Image.open(io.BytesIO(row[NUM_CAMERAS_COVERED_COLUMN])))
            watch.lap("decode")
            small = np.asarray(image.resize((width, height), Image.Resampling.BILINEAR))
            watch.lap("resize image")
            batch = torch.from_numpy(small.copy()).unsqueeze(0).to(device)
            logits = model.predict_logits(batch)
            watch.lap("model")
            upsampled = F.interpolate(
                logits.float(), size=semantic.shape, mode="bilinear", align_corners=False
            )
            predicted = lookup[upsampled.argmax(dim=1)[0].cpu().numpy()]
            watch.lap("upsample logits")
            one_weighted, one_counts = naive_matrices(semantic, predicted, covered)
            weighted += one_weighted
            counts += one_counts
            images += 1
            watch.lap("confusion")
    seconds = time.perf_counter() - start
    per_image = {stage: s / max(images, 1) for stage, s in watch.seconds.items()}
    return NaiveRun(weighted, counts, images, seconds, per_image)


# Comparison and the section ------------------------------------------------------------


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
            if device.type == "cuda":
                torch.cuda.synchronize(device)
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
    naive = median_run(naive_runs, naive_rate)
    paths = [
        PathResult(
            NAIVE,
            "fp32",
            1,
            naive.images,
            naive_rate(naive),
            tuple(naive_rate(run) for run in naive_runs),
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


def naive_rate(run: NaiveRun) -> float:
    return run.images / run.seconds


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

    from benchmarks.__main__ import make_profile, run_evaluation
    from benchmarks.__main__ import parse_args as benchmark_args
    from benchmarks.input_data import write_input
    from benchmarks.machine import describe_machine

    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr
    )
    cuda = torch.cuda.is_available() if args.device == "auto" else args.device == "cuda"
    device = torch.device("cuda" if cuda else "cpu")
    profile = make_profile(benchmark_args(["--quick"] if args.quick else []), cuda)
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
