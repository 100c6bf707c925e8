"""DDP with gloo on the CPU: 2 ranks against 1 process, and resume after a crash."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from tests.tiny_shards import LUT
from waymo_unet.data.parallel import available_cores
from waymo_unet.devices import Precision
from waymo_unet.digest import content_digest
from waymo_unet.models.unet import UNetConfig
from waymo_unet.training.checkpoint import CheckpointStore
from waymo_unet.training.config import TrainConfig
from waymo_unet.training.data import ShardDataset
from waymo_unet.training.distributed import (
    DistributedContext,
    context_from_environment,
    join_process_group,
    launch,
    leave_process_group,
    require_same_on_all_ranks,
)
from waymo_unet.training.job import TrainingJob, run_training
from waymo_unet.training.loop import ModelWithLoss, gradient_sync
from waymo_unet.training.train import epoch_seed

# Augmentation off, so both runs see the same pixels. On the CPU BatchNorm statistics stay
# per rank (torch's SyncBatchNorm needs GPUs), hence a tolerance and not equality:
# losses within 5 %, mIoU within 0.1.
CONFIG = TrainConfig(
    epochs=3,
    batch_size=4,
    learning_rate=1e-2,
    num_workers=0,
    precision="fp32",
    augment=None,
    device="cpu",  # gloo on the CPU on GPU machines too
)


class CrashAfterEpoch:
    """Picklable callback that fails every rank after the given epoch, like a kill."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def __call__(self, record: dict[str, float]) -> None:
        if record["epoch"] == self.epoch:
            raise RuntimeError("simulated kill")


def job(tiny_shards, checkpoints=None, callbacks=(), config=CONFIG) -> TrainingJob:
    store, index = tiny_shards
    return TrainingJob(
        config,
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


def communication_threads() -> list[str]:
    """This process's threads that belong to torch.distributed (gloo, the TCP store)."""
    names = [(task / "comm").read_text().strip() for task in Path("/proc/self/task").iterdir()]
    return [name for name in names if name.startswith(("pt_gloo", "gloo", "pt_tcpstore"))]


def train_then_leave(training: TrainingJob) -> None:
    training.run(context_from_environment())
    leave_process_group()
    if threads := communication_threads():
        raise RuntimeError(f"threads outlive the process group: {threads}")


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads thread names in /proc")
@pytest.mark.parametrize("precision", ["fp32", "bf16"])  # "auto" takes either, by the CPU
def test_no_communication_thread_outlives_the_process_group(tiny_shards, precision):
    # Threads still running when Python finalises can abort the rank at exit (SIGABRT).
    config = dataclasses.replace(CONFIG, epochs=1, precision=precision)
    launch(train_then_leave, 2, [job(tiny_shards, config=config)])


def train_and_compare_weights(training: TrainingJob) -> None:
    """One rank's run; raises on every rank unless all ranks end with the same weights."""
    result = training.run(context_from_environment())
    weights = content_digest([p.detach().flatten().tolist() for p in result.model.parameters()])
    require_same_on_all_ranks(weights, "weights", torch.device("cpu"))


@pytest.mark.parametrize("accumulation_steps", [1, 2])
def test_every_rank_ends_with_the_same_weights(tiny_shards, accumulation_steps):
    # Replicas whose gradients are not all-reduced drift apart at the first step.
    config = dataclasses.replace(CONFIG, epochs=2, accumulation_steps=accumulation_steps)
    launch(train_and_compare_weights, 2, [job(tiny_shards, config=config)])


def train_from_own_checkpoints(training: TrainingJob, folders: list[str]) -> None:
    rank = context_from_environment().rank
    dataclasses.replace(training, checkpoints=CheckpointStore(folders[rank])).run(
        context_from_environment()
    )


def test_ranks_that_found_different_checkpoints_all_stop(tiny_shards, tmp_path):
    run_training(job(tiny_shards, CheckpointStore(str(tmp_path / "a")), config=CONFIG), 2)
    folders = [str(tmp_path / "a"), str(tmp_path / "b")]  # rank 1 finds no checkpoint
    with pytest.raises(mp.ProcessRaisedException, match="disagree on the epoch to resume after"):
        launch(train_from_own_checkpoints, 2, [job(tiny_shards), folders])


def claim(value_by_rank: list[str]) -> None:
    """One rank's side of the check, with the value given for its rank."""
    context = context_from_environment()
    join_process_group(torch.device("cpu"))
    require_same_on_all_ranks(value_by_rank[context.rank], "test value", torch.device("cpu"))


def test_ranks_that_disagree_all_stop_and_say_so():
    launch(claim, 2, [["a1b2", "a1b2"]])  # the same on both: returns
    with pytest.raises(mp.ProcessRaisedException, match="ranks disagree on the test value"):
        launch(claim, 2, [["a1b2", "c3d4"]])


@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated")  # torch.compile's
def test_gradient_sync_skips_the_reduction_between_optimiser_steps(one_rank_group):
    plain = DistributedDataParallel(nn.Linear(2, 2))
    # As train_model wraps it: compiled around DDP around the model and its loss.
    wrapped = DistributedDataParallel(
        ModelWithLoss(nn.Linear(2, 2), nn.MSELoss(), Precision("cpu"))
    )
    cases = [(plain, plain), (torch.compile(plain), plain), (torch.compile(wrapped), wrapped)]
    for model, ddp in cases:
        with gradient_sync(model, sync=False):
            assert not ddp.require_backward_grad_sync
        with gradient_sync(model, sync=True):
            assert ddp.require_backward_grad_sync
    with gradient_sync(nn.Linear(2, 2), sync=False):  # nothing to skip without DDP
        pass


def test_each_rank_and_epoch_draws_its_own_seed():
    seeds = {epoch_seed(0, epoch, rank) for epoch in range(3) for rank in range(4)}
    assert len(seeds) == 12
    assert epoch_seed(0, 1, 2) == epoch_seed(0, 1, 2)
    assert epoch_seed(0, 1, 2) != epoch_seed(1, 1, 2)
    assert epoch_seed(-1, 1, 2) != epoch_seed(1, 1, 2)  # negative seeds work, as in torch


def test_a_cpu_rank_gets_its_share_of_the_cores():
    threads = torch.get_num_threads()
    try:
        context = DistributedContext(rank=3, world_size=4, local_rank=1, local_world_size=2)
        assert context.claim_device(torch.device("cpu")) == torch.device("cpu")
        assert torch.get_num_threads() == max(1, available_cores() // 2)
    finally:
        torch.set_num_threads(threads)
