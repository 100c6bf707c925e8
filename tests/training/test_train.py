"""train_model end to end on tiny shards: learning, checkpoints, kill and resume."""

import dataclasses
import math

import pandas as pd
import pytest
import torch

from tests.tiny_shards import LUT, write_tiny_shards
from waymo_unet.devices import Precision, autotune_convolutions
from waymo_unet.models.unet import UNetConfig
from waymo_unet.training.checkpoint import CheckpointStore
from waymo_unet.training.config import TrainConfig
from waymo_unet.training.data import ShardDataset, data_signature
from waymo_unet.training.train import train_model

UNET = UNetConfig(num_classes=3, base_channels=4, depth=2)
# On the CPU on GPU machines too: CUDA's bilinear-upsampling backward is not deterministic,
# and these tests compare resumed runs with unbroken ones exactly.
CONFIG = TrainConfig(
    epochs=3,
    batch_size=4,
    learning_rate=1e-2,
    num_workers=0,
    precision="fp32",
    log_every=2,
    device="cpu",
)
CUDA = pytest.param(
    "cuda",
    marks=[
        pytest.mark.gpu,
        pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
    ],
)
COMPARED = ("epoch", "train_loss", "val_loss", "mean_iou", "pixel_accuracy", "lr")


class SimulatedKillError(RuntimeError):
    """Stands in for a kill between two epochs."""


def datasets(tiny_shards):
    store, index = tiny_shards
    return ShardDataset(store, index, "training", LUT), ShardDataset(
        store, index, "validation", LUT
    )


def run(tiny_shards, checkpoints=None, config=CONFIG, callbacks=(), unet=UNET):
    train, val = datasets(tiny_shards)
    return train_model(config, unet, train, val, [1.0, 1.0, 1.0], 255, checkpoints, callbacks)


def comparable(history):
    return [{key: record[key] for key in COMPARED} for record in history]


def assert_same_history(history, reference):
    assert len(history) == len(reference)
    for mine, theirs in zip(comparable(history), comparable(reference), strict=True):
        assert mine == pytest.approx(theirs, rel=1e-5, abs=1e-7)


def crash_after(epoch: int):
    def callback(record):
        if record["epoch"] == epoch:
            raise SimulatedKillError

    return callback


def test_a_run_learns_and_beats_the_majority_class(tiny_shards):
    result = run(tiny_shards, config=TrainConfig(**{**CONFIG.__dict__, "epochs": 6}))
    assert len(result.history) == 6
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert result.final_metrics.mean_iou > result.baseline_metrics.mean_iou + 0.2
    assert not result.model.training


@pytest.mark.parametrize(
    ("dropout", "num_workers"),
    [(0.0, 0), (0.5, 1)],  # dropout draws from the global RNG, as loader workers' seeds did
)
def test_a_crash_between_epochs_resumes_to_the_unbroken_history(
    tiny_shards, tmp_path, dropout, num_workers
):
    config = dataclasses.replace(CONFIG, num_workers=num_workers)
    unet = dataclasses.replace(UNET, dropout=dropout)
    unbroken = run(tiny_shards, CheckpointStore(str(tmp_path / "unbroken")), config, unet=unet)
    store = CheckpointStore(str(tmp_path / "broken"))
    with pytest.raises(SimulatedKillError):
        run(tiny_shards, store, config, callbacks=[crash_after(2)], unet=unet)
    assert store.load()["epoch"] == 2
    resumed = run(tiny_shards, store, config, unet=unet)

    assert_same_history(resumed.history, unbroken.history)
    for name, tensor in unbroken.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[name], tensor, rtol=1e-5, atol=1e-6)


def test_a_run_saved_without_loss_scaling_resumes_where_it_is_on(
    tiny_shards, tmp_path, monkeypatch
):
    # As a bf16 run on one GPU resumed where "auto" means fp16 with a GradScaler.
    store = CheckpointStore(str(tmp_path))
    with pytest.raises(SimulatedKillError):
        run(tiny_shards, store, callbacks=[crash_after(1)])
    assert store.load()["scaler"] == {}
    monkeypatch.setattr(Precision, "needs_grad_scaler", property(lambda self: True))
    resumed = run(tiny_shards, store)
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3]


def test_a_finished_run_is_not_retrained_unless_asked(tiny_shards, tmp_path):
    store = CheckpointStore(str(tmp_path))
    first = run(tiny_shards, store)
    epochs_run = []
    again = run(tiny_shards, store, callbacks=[epochs_run.append])
    assert epochs_run == []
    assert comparable(again.history) == comparable(first.history)
    assert again.final_metrics.mean_iou == pytest.approx(first.final_metrics.mean_iou)

    retrain = TrainConfig(**{**CONFIG.__dict__, "retrain": True})
    run(tiny_shards, store, config=retrain, callbacks=[epochs_run.append])
    assert [r["epoch"] for r in epochs_run] == [1, 2, 3]


def test_a_checkpoint_of_other_settings_is_not_resumed(tiny_shards, tmp_path):
    store = CheckpointStore(str(tmp_path))
    with pytest.raises(SimulatedKillError):
        run(tiny_shards, store, callbacks=[crash_after(1)])
    other = TrainConfig(**{**CONFIG.__dict__, "learning_rate": 5e-3})
    epochs_run = []
    run(tiny_shards, store, config=other, callbacks=[epochs_run.append])
    assert [r["epoch"] for r in epochs_run] == [1, 2, 3]


def test_a_finished_run_on_shards_of_another_size_is_not_reused(tmp_path):
    store = CheckpointStore(str(tmp_path / "checkpoints"))
    run(write_tiny_shards(tmp_path / "small"), store)
    epochs_run = []
    run(write_tiny_shards(tmp_path / "large", 24, 32), store, callbacks=[epochs_run.append])
    assert [r["epoch"] for r in epochs_run] == [1, 2, 3]  # re-ingested larger: trained again


def test_data_signature_names_size_shape_and_items(tiny_shards):
    store, index = tiny_shards
    index = index.assign(timestamp=range(len(index)), camera=1)
    signature = data_signature(ShardDataset(store, index, "training", LUT))
    assert signature["items"] == 24
    assert signature["image_shape"] == [16, 24, 3]

    def digest(rows) -> str:
        return ShardDataset(store, rows, "training", LUT).items_digest()

    assert digest(index.sample(frac=1, random_state=0)) == signature["items_digest"]  # order
    assert digest(index.assign(camera=2)) != signature["items_digest"]  # other frames
    other_items = index[index["item"] != 0]
    assert digest(pd.concat([other_items, other_items.head(2)])) != signature["items_digest"]
    remade = index.assign(fingerprint=index["fingerprint"].where(index["segment"] != "a", "x"))
    assert digest(remade) != signature["items_digest"]  # shards made at other settings


def test_items_digest_reads_committed_results_for_an_index_without_fingerprints(tiny_shards):
    store, index = tiny_shards
    older_index = index.drop(columns="fingerprint")  # as ingestion wrote it before

    def digest(rows) -> str:
        return ShardDataset(store, rows, "training", LUT).items_digest()

    assert digest(older_index) == digest(index)  # the committed results say "test" too
    store.commit("training", "a", {**store.read_result("training", "a"), "fingerprint": "x"})
    assert digest(older_index) != digest(index)


def test_bf16_autocast_trains_on_the_cpu(tiny_shards):
    result = run(tiny_shards, config=TrainConfig(**{**CONFIG.__dict__, "precision": "bf16"}))
    assert all(math.isfinite(r["train_loss"]) for r in result.history)
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]


def _train_slowly(shard_root: str, checkpoint_root: str, index_path: str) -> None:
    """Child process body: the same run, one second per epoch slower, until it is killed."""
    import time

    import pandas as pd

    from waymo_unet.data.shards import ShardStore

    shards = (ShardStore(shard_root), pd.read_parquet(index_path))
    run(shards, CheckpointStore(checkpoint_root), callbacks=[lambda _: time.sleep(1.0)])


def test_a_process_killed_mid_run_resumes_to_the_unbroken_history(tiny_shards, tmp_path):
    import multiprocessing
    import time

    store, index = tiny_shards
    index_path = tmp_path / "index.parquet"
    index.to_parquet(index_path)
    checkpoints = CheckpointStore(str(tmp_path / "killed"))
    child = multiprocessing.get_context("spawn").Process(
        target=_train_slowly, args=(store.root, checkpoints.root, str(index_path))
    )
    child.start()
    deadline = time.monotonic() + 120
    while (checkpoints.load() or {}).get("epoch", 0) < 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    child.kill()  # SIGKILL: no clean-up, no final save
    child.join()
    assert child.exitcode == -9
    assert 1 <= checkpoints.load()["epoch"] < CONFIG.epochs

    resumed = run(tiny_shards, checkpoints)
    unbroken = run(tiny_shards)
    assert_same_history(resumed.history, unbroken.history)


@pytest.mark.parametrize(("device", "tuned"), [("cpu", False), ("cuda", True), ("cuda:1", True)])
def test_convolution_autotuning_is_turned_on_for_cuda_only(device, tuned, monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    autotune_convolutions(torch.device(device))
    assert torch.backends.cudnn.benchmark is tuned


@pytest.mark.parametrize("device", ["cpu", CUDA])
def test_a_run_on_each_device_learns_and_resumes_from_its_checkpoint(tiny_shards, tmp_path, device):
    # On CUDA "auto" is bf16 or fp16 with pinned memory, fused AdamW and cuDNN autotuning.
    config = TrainConfig(**{**CONFIG.__dict__, "device": device, "precision": "auto"})
    store = CheckpointStore(str(tmp_path))
    first = run(tiny_shards, store, config=config)
    losses = [record["train_loss"] for record in first.history]
    assert all(math.isfinite(loss) for loss in losses)
    assert losses[-1] < losses[0]
    assert store.load()["epoch"] == config.epochs
    epochs_run = []
    again = run(tiny_shards, store, config=config, callbacks=[epochs_run.append])
    assert epochs_run == []
    assert comparable(again.history) == comparable(first.history)
