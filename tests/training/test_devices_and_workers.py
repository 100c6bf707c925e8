"""What a rank claims: its GPU, its process group binding and its DataLoader workers."""

from __future__ import annotations

import datetime
import inspect
from types import SimpleNamespace

import pytest
import torch
import torch.distributed as dist

from tests.tiny_shards import LUT
from waymo_unet.models.unet import UNetConfig
from waymo_unet.training import distributed as distributed_module
from waymo_unet.training import run_setup
from waymo_unet.training.config import TrainConfig
from waymo_unet.training.data import ShardDataset, loader_workers, make_loader
from waymo_unet.training.distributed import DistributedContext, join_process_group
from waymo_unet.training.run_setup import build_run


@pytest.fixture
def gpus(monkeypatch):
    """Pretend this process sees ``gpus.count`` GPUs; records the devices set current."""

    state = SimpleNamespace(count=0, current=[])
    monkeypatch.setattr(torch.cuda, "device_count", lambda: state.count)
    monkeypatch.setattr(torch.cuda, "set_device", state.current.append)
    return state


def test_a_rank_that_sees_one_gpu_takes_it_whatever_its_local_rank(gpus):
    # SLURM-style: each of the 4 ranks of a machine sees only its own GPU, as cuda:0.
    gpus.count = 1
    for local_rank in range(4):
        context = DistributedContext(4 + local_rank, 8, local_rank, local_world_size=4)
        assert context.claim_device(torch.device("cuda")) == torch.device("cuda", 0)
    assert gpus.current == [torch.device("cuda", 0)] * 4


@pytest.mark.parametrize("count", [4, 8])
def test_a_rank_that_sees_all_gpus_takes_the_one_of_its_local_rank(gpus, count):
    gpus.count = count
    context = DistributedContext(rank=7, world_size=8, local_rank=3, local_world_size=4)
    assert context.claim_device(torch.device("cuda")) == torch.device("cuda", 3)
    assert gpus.current == [torch.device("cuda", 3)]


@pytest.mark.parametrize("count", [0, 2, 3])
def test_too_few_gpus_stop_every_rank_and_say_how_many(gpus, count):
    gpus.count = count
    for local_rank in range(4):  # every rank of the machine, not only those without one
        context = DistributedContext(local_rank, 4, local_rank, local_world_size=4)
        with pytest.raises(RuntimeError, match=f"sees {count} GPUs and this machine runs 4 ranks"):
            context.claim_device(torch.device("cuda"))
    assert gpus.current == []


@pytest.fixture
def joins(monkeypatch):
    """Records ``init_process_group`` calls, checked against its real signature."""
    calls: list[inspect.BoundArguments] = []
    signature = inspect.signature(dist.init_process_group)
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(
        dist, "init_process_group", lambda *a, **k: calls.append(signature.bind(*a, **k))
    )
    monkeypatch.setattr(dist, "get_rank", lambda: 0)
    monkeypatch.setattr(dist, "get_world_size", lambda: 2)
    monkeypatch.setattr(dist, "get_backend", lambda: "recorded")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    return calls


def test_a_gpu_rank_binds_the_process_group_to_its_gpu(joins):
    join_process_group(torch.device("cuda", 3))
    (call,) = joins
    assert call.arguments["device_id"] == torch.device("cuda", 3)
    assert call.arguments["backend"] == "cpu:gloo,cuda:nccl"
    assert call.arguments["timeout"] == datetime.timedelta(minutes=30)


def test_a_cpu_rank_on_a_gpu_machine_binds_the_process_group_to_no_gpu(joins):
    # With a device_id, NCCL would form a communicator on a GPU this rank does not use.
    join_process_group(torch.device("cpu"))
    (call,) = joins
    assert call.arguments["device_id"] is None


@pytest.mark.parametrize(
    ("cores", "expected"),
    [(1, 0), (2, 2), (3, 3), (4, 4), (16, 4)],
)
def test_loader_workers_follow_the_cores_of_a_rank(cores, expected):
    assert loader_workers(cores) == expected


@pytest.mark.filterwarnings("ignore:This DataLoader will create")  # 16 cores, mocked
@pytest.mark.parametrize(
    ("local_world_size", "workers"),
    [(1, 4), (4, 4), (8, 2), (16, 0)],  # 16 cores
)
def test_each_rank_starts_workers_for_its_share_of_the_cores(
    tiny_shards, monkeypatch, local_world_size, workers, one_rank_group
):
    monkeypatch.setattr(distributed_module, "available_cores", lambda: 16)
    monkeypatch.setattr(run_setup, "available_cores", lambda: 16)
    store, index = tiny_shards
    train = ShardDataset(store, index, "training", LUT)
    val = ShardDataset(store, index, "validation", LUT)
    config = TrainConfig(batch_size=4, precision="fp32", device="cpu")  # num_workers: default
    unet = UNetConfig(num_classes=3, base_channels=4, depth=2)
    # The world as a rank on a 16-core machine of local_world_size ranks sees it.
    context = DistributedContext(0, 1, 0, local_world_size) if local_world_size > 1 else None
    run = build_run(config, unet, train, val, None, 255, context)
    assert run.train_loader.num_workers == run.val_loader.num_workers == workers
    assert run.train_loader.persistent_workers == (workers > 0)
    assert not run.val_loader.persistent_workers


@pytest.mark.parametrize("workers", [0, 2])
def test_only_training_workers_persist_across_epochs(tiny_shards, workers):
    store, index = tiny_shards
    dataset = ShardDataset(store, index, "training", LUT)
    train = make_loader(dataset, 4, True, 0, num_workers=workers, pin_memory=False)
    val = make_loader(dataset, 4, False, 0, num_workers=workers, pin_memory=False)
    assert train.persistent_workers == (workers > 0)
    assert not val.persistent_workers
