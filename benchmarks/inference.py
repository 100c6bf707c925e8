"""Inference: the eager ``SegmentationModel`` against the exported ``DeployedModel``.

Both segment the same uint8 batch (normalisation, network, argmax). The exported program
must give the eager logits: the largest absolute difference is checked against a stated
tolerance, and the check passes or fails in the report.
"""

from __future__ import annotations

import logging
import statistics
import time
from typing import Any

import torch

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
    _synchronise(device)
    seconds = []
    for _ in range(iterations):
        start = time.perf_counter()
        model.predict_indices(images)
        _synchronise(device)
        seconds.append(time.perf_counter() - start)
    return len(images) / statistics.median(seconds)


def _synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_inference_benchmark(
    unet: UNetConfig,
    height: int,
    width: int,
    batch: int,
    device: torch.device,
    warmup: int = 1,
    iterations: int = 3,
) -> dict[str, Any]:
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
    rows = []
    for name, runnable in (
        ("eager SegmentationModel", model),
        ("exported DeployedModel", deployed),
    ):
        logger.info("Inference: %s", name)
        rate = time_predictions(runnable, images, device, warmup, iterations)
        rows.append(
            {"model": name, "size": f"{height}x{width}", "batch": batch, "images_per_s": rate}
        )
    for row in rows:
        row["speedup"] = row["images_per_s"] / rows[0]["images_per_s"]
    with torch.inference_mode():
        inputs = to_model_input(images.to(device))
        eager = model.network.eval()(inputs)
        exported = program.module().to(device)(inputs)
        difference = float((eager - exported).abs().max())
        same_argmax = float((eager.argmax(1) == exported.argmax(1)).float().mean())
    tolerance = TOLERANCE.get(device.type, TOLERANCE["cuda"])
    return {
        "size": [height, width],
        "batch": batch,
        "export_seconds": export_seconds,
        "rows": rows,
        "max_abs_logit_difference": difference,
        "max_abs_logit": float(eager.abs().max()),
        "argmax_agreement": same_argmax,
        "tolerance": tolerance,
        "passed": difference <= tolerance,
    }
