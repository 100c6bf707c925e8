"""Inference: the eager ``SegmentationModel`` against the exported ``DeployedModel``.

Both segment the same uint8 batch (normalisation, network, argmax). The exported program
must give the eager logits: the largest absolute difference is checked against a stated
tolerance, and the check passes or fails in the report.
"""

from __future__ import annotations

import logging
import statistics
import time
from dataclasses import dataclass
from typing import Any

import torch

from benchmarks.timing import synchronise
from waymo_unet.data.waymo import SEMANTIC_CLASSES
from waymo_unet.models.bundle import SegmentationModel
from waymo_unet.models.export import DeployedModel, deployment_manifest, export_program
from waymo_unet.models.preprocessing import to_model_input
from waymo_unet.models.unet import UNetConfig, build_unet

logger = logging.getLogger(__name__)

COLUMNS = ["model", "size", "batch", "images_per_s", "speedup"]
# fp32 on both sides: the exported graph runs the same kernels, so logits agree to
# rounding; cuDNN may pick other algorithms (and TF32) for the exported graph on a GPU.
TOLERANCE = {"cpu": 1e-4, "cuda": 5e-3}


def waymo_classes(num_classes: int) -> list[dict[str, Any]]:
    """A class map over the first ``num_classes`` Waymo ids after UNDEFINED."""
    return [
        {"index": index, "id": index + 1, "name": SEMANTIC_CLASSES[index + 1]}
        for index in range(num_classes)
    ]


@dataclass(frozen=True)
class InferenceBenchmark:
    """Both models' images/s on one batch, and how far the exported logits are from eager."""

    size: tuple[int, int]
    batch: int
    export_seconds: float
    eager_images_per_s: float
    exported_images_per_s: float
    max_abs_logit_difference: float
    max_abs_logit: float
    argmax_agreement: float  # share of pixels
    tolerance: float
    passed: bool  # the logit difference within tolerance

    def rows(self) -> list[dict[str, Any]]:
        size = f"{self.size[0]}x{self.size[1]}"
        return [
            {
                "model": name,
                "size": size,
                "batch": self.batch,
                "images_per_s": rate,
                "speedup": rate / self.eager_images_per_s,
            }
            for name, rate in (
                ("eager SegmentationModel", self.eager_images_per_s),
                ("exported DeployedModel", self.exported_images_per_s),
            )
        ]

    def notes(self) -> list[str]:
        verdict = "PASS" if self.passed else "FAIL"
        return [
            f"logit check {verdict}: max abs difference {self.max_abs_logit_difference:.3g}"
            f" (tolerance {self.tolerance:g}; largest logit {self.max_abs_logit:.3g}); argmax "
            f"agrees on {100 * self.argmax_agreement:.4f}% of pixels",
            f"export took {self.export_seconds:.1f} s; images/s (median call) include "
            "normalisation and argmax",
        ]


def time_predictions(
    model: SegmentationModel | DeployedModel,
    images: torch.Tensor,
    device: torch.device,
    warmup: int,
    iterations: int,
) -> float:
    """Images/s of ``predict_indices`` on one batch (median call), after ``warmup`` calls."""
    for _ in range(warmup):
        model.predict_indices(images)
    synchronise(device)
    seconds = []
    for _ in range(iterations):
        start = time.perf_counter()
        model.predict_indices(images)
        synchronise(device)
        seconds.append(time.perf_counter() - start)
    return len(images) / statistics.median(seconds)


def run_inference_benchmark(
    unet: UNetConfig,
    height: int,
    width: int,
    batch: int,
    device: torch.device,
    warmup: int = 1,
    iterations: int = 3,
) -> InferenceBenchmark:
    """Throughput of both models and the largest logit difference between them."""
    torch.manual_seed(0)
    model = SegmentationModel(
        build_unet(unet).eval(), unet, waymo_classes(unet.num_classes), (height, width)
    )
    logger.info("Inference: exporting the model at %dx%d", height, width)
    start = time.perf_counter()
    program = export_program(model)
    export_seconds = time.perf_counter() - start
    deployed = DeployedModel(program, deployment_manifest(model)).to(device)
    model.to(device)
    images = torch.randint(0, 256, (batch, height, width, 3), dtype=torch.uint8)
    logger.info("Inference: eager SegmentationModel")
    eager_rate = time_predictions(model, images, device, warmup, iterations)
    logger.info("Inference: exported DeployedModel")
    exported_rate = time_predictions(deployed, images, device, warmup, iterations)
    with torch.inference_mode():
        inputs = to_model_input(images.to(device))
        eager = model.network.eval()(inputs)
        exported = program.module().to(device)(inputs)
        difference = float((eager - exported).abs().max())
        same_argmax = float((eager.argmax(1) == exported.argmax(1)).float().mean())
    tolerance = TOLERANCE.get(device.type, TOLERANCE["cuda"])
    return InferenceBenchmark(
        size=(height, width),
        batch=batch,
        export_seconds=export_seconds,
        eager_images_per_s=eager_rate,
        exported_images_per_s=exported_rate,
        max_abs_logit_difference=difference,
        max_abs_logit=float(eager.abs().max()),
        argmax_agreement=same_argmax,
        tolerance=tolerance,
        passed=difference <= tolerance,
    )
