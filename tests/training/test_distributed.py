"""DDP with gloo on the CPU: 2 ranks against 1 process, and resume after a crash."""

from __future__ import annotations

import pytest
import torch
import torch.multiprocessing as mp

from tests.tiny_shards import LUT
from waymo_unet.models.unet import UNetConfig
from waymo_unet.training.checkpoint import CheckpointStore
from waymo_unet.training.data import ShardDataset
from waymo_unet.training.distributed import (
    context_from_environment,
    launch,
    require_same_on_all_ranks,
)
from waymo_unet.training.job import TrainingJob, run_training
from waymo_unet.training.train import TrainConfig

# Augmentation off, so both runs see the same pixels. On the CPU BatchNorm statistics stay
# per rank (torch's SyncBatchNorm needs GPUs), hence a tolerance and not equality:
# losses within 5 %, mIoU within 0.1.
CONFIG = TrainConfig(
    epochs=3, batch_size=4, learning_rate=1e-2, num_workers=0, precision="fp32", augment=None
)


class CrashAfterEpoch:
    """Picklable callback that fails every rank after the given epoch, like a kill."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def __call__(self, record: dict[str, float]) -> None:
        if record["epoch"] == self.epoch:
            raise RuntimeError("simulated kill")


def job(tiny_shards, checkpoints=None, callbacks=()) -> TrainingJob:
    store, index = tiny_shards
    return TrainingJob(
        CONFIG,
        UNetConfig(num_classes=3, base_channels=4, depth=2),
        ShardDataset(store, index, "training", LUT),
        ShardDataset(store, index, "validation", LUT),
        [1.0, 2.0, 1.0],
        255,
        checkpoints,
        callbacks,
    )


def assert_close_histories(history, reference):
    assert [r["epoch"] for r in history] == [r["epoch"] for r in reference]
    for mine, theirs in zip(history, reference, strict=True):
        assert mine["lr"] == pytest.approx(theirs["lr"])
        assert mine["train_loss"] == pytest.approx(theirs["train_loss"], rel=0.05)
        assert mine["val_loss"] == pytest.approx(theirs["val_loss"], rel=0.05)
        assert mine["mean_iou"] == pytest.approx(theirs["mean_iou"], abs=0.1)


def test_two_ranks_follow_the_single_process_history(tiny_shards):
    single = run_training(job(tiny_shards), 1)
    ranks = run_training(job(tiny_shards), 2)
    assert_close_histories(ranks.history, single.history)
    assert ranks.final_metrics.pixels == single.final_metrics.pixels  # every pixel once


def test_two_ranks_resume_after_a_crash(tiny_shards, tmp_path):
    unbroken = run_training(job(tiny_shards, CheckpointStore(str(tmp_path / "a"))), 2)
    store = CheckpointStore(str(tmp_path / "b"))
    with pytest.raises(mp.ProcessRaisedException, match="simulated kill"):
        run_training(job(tiny_shards, store, [CrashAfterEpoch(2)]), 2)
    assert store.load()["epoch"] == 2
    resumed = run_training(job(tiny_shards, store), 2)
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3]
    for mine, theirs in zip(resumed.history, unbroken.history, strict=True):
        for key in ("train_loss", "val_loss", "mean_iou", "lr"):
            assert mine[key] == pytest.approx(theirs[key], rel=1e-5, abs=1e-7), key


def claim(value_by_rank: list[str]) -> None:
    """One rank's side of the check, with the value given for its rank."""
    context = context_from_environment()
    require_same_on_all_ranks(value_by_rank[context.rank], "test value", torch.device("cpu"))


def test_ranks_that_disagree_all_stop_and_say_so():
    launch(claim, 2, [["a1b2", "a1b2"]])  # the same on both: returns
    with pytest.raises(mp.ProcessRaisedException, match="ranks disagree on the test value"):
        launch(claim, 2, [["a1b2", "c3d4"]])
