"""A training run as one picklable object, so every DDP rank can rebuild and run it."""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from waymo_unet.models.unet import UNetConfig, build_unet
from waymo_unet.training.checkpoint import CheckpointStore
from waymo_unet.training.config import TrainConfig
from waymo_unet.training.data import ShardDataset
from waymo_unet.training.distributed import DistributedContext, context_from_environment, launch
from waymo_unet.training.metrics import SegmentationMetrics
from waymo_unet.training.train import EpochCallback, TrainResult, train_model


@dataclass
class TrainingJob:
    """The arguments of ``train_model``, small enough to pickle (datasets are shard handles)."""

    config: TrainConfig
    unet: UNetConfig
    train_data: ShardDataset
    val_data: ShardDataset
    class_weights: Sequence[float] | None
    ignore_index: int
    checkpoints: CheckpointStore | None = None
    callbacks: Sequence[EpochCallback] = ()  # called on every rank

    def run(self, distributed: DistributedContext | None = None) -> TrainResult:
        return train_model(
            self.config,
            self.unet,
            self.train_data,
            self.val_data,
            self.class_weights,
            self.ignore_index,
            self.checkpoints,
            self.callbacks,
            distributed,
        )


def run_training(job: TrainingJob, nproc_per_node: int = 1) -> TrainResult:
    """Run in this process, or as ``nproc_per_node`` DDP ranks (gloo on CPU, NCCL on GPUs).

    The ranks are child processes; rank 0 hands its result back through a file.
    """
    if nproc_per_node <= 1:
        return job.run()
    with tempfile.TemporaryDirectory() as folder:
        result_path = Path(folder) / "result.pt"
        launch(_run_rank, nproc_per_node, (job, str(result_path)))
        saved = torch.load(result_path, weights_only=True)
    model = build_unet(job.unet)
    model.load_state_dict(saved["state_dict"])
    return TrainResult(
        model.eval(),
        saved["history"],
        SegmentationMetrics(**saved["final_metrics"]),
        SegmentationMetrics(**saved["baseline_metrics"]),
        saved["fingerprint"],
        saved["resumed_after_epoch"],
    )


def _run_rank(job: TrainingJob, result_path: str) -> None:
    context = context_from_environment()
    result = job.run(context)
    if context is None or context.is_main:
        torch.save(
            {
                "state_dict": {k: v.cpu() for k, v in result.model.state_dict().items()},
                "history": result.history,
                "final_metrics": dataclasses.asdict(result.final_metrics),
                "baseline_metrics": dataclasses.asdict(result.baseline_metrics),
                "fingerprint": result.fingerprint,
                "resumed_after_epoch": result.resumed_after_epoch,
            },
            result_path,
        )
