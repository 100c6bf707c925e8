"""The training pipeline's node on an in-memory catalog, with a tiny model."""

from __future__ import annotations

import pytest
import torch
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from kedro_datasets.json import JSONDataset
from kedro_datasets.pandas import CSVDataset

from tests.tiny_shards import LABEL_CATALOG, LUT
from waymo_unet.datasets import CheckpointStoreDataset, SegmentationModelDataset
from waymo_unet.models.bundle import SegmentationModel
from waymo_unet.pipelines import training
from waymo_unet.pipelines.training.nodes import (
    warn_if_tuned_on_other_images,
    with_tuned_hyperparameters,
)
from waymo_unet.training.data import ShardDataset

PARAMS = {
    "train_split": "training",
    "val_split": "validation",
    "model": {"base_channels": 4, "depth": 2},
    "train": {"epochs": 3, "batch_size": 4, "num_workers": 0, "precision": "fp32"},
}


def training_catalog(tiny_shards, tmp_path, epoch_logger) -> DataCatalog:
    store, index = tiny_shards
    return DataCatalog(
        {
            "primary_shard_store": MemoryDataset(store, copy_mode="assign"),
            "primary_shard_index": MemoryDataset(index),
            "model_input_label_catalog": MemoryDataset(LABEL_CATALOG),
            "model_input_tuned_hyperparameters": MemoryDataset({}),
            "models_checkpoints": CheckpointStoreDataset(str(tmp_path / "checkpoints")),
            "models_segmentation_model": SegmentationModelDataset(str(tmp_path / "model.pt")),
            "models_deployed_model": MemoryDataset(copy_mode="assign"),
            "params:training": MemoryDataset(PARAMS),
            # Read again by the node recording the run, then released from memory.
            "model_output_training_history": CSVDataset(filepath=str(tmp_path / "history.csv")),
            "model_output_training_metrics": JSONDataset(filepath=str(tmp_path / "metrics.json")),
            "tracking_epoch_logger": MemoryDataset(epoch_logger, copy_mode="assign"),
        }
    )


@pytest.fixture
def logged_epochs() -> list[dict]:
    return []


@pytest.fixture
def outputs(tiny_shards, tmp_path, logged_epochs):
    catalog = training_catalog(tiny_shards, tmp_path, logged_epochs.append)
    free = SequentialRunner().run(training.create_pipeline(), catalog)
    return {name: dataset.load() for name, dataset in free.items()} | {"catalog": catalog}


def test_history_class_iou_and_metrics(outputs):
    history = outputs["catalog"].load("model_output_training_history")
    assert list(history["epoch"]) == [1, 2, 3]
    assert {"train_loss", "val_loss", "mean_iou", "pixel_accuracy", "lr", "images_per_s"} <= set(
        history.columns
    )
    iou = outputs["model_output_class_iou"]
    assert list(iou["name"]) == ["CAR", "ROAD", "SKY"]
    metrics = outputs["catalog"].load("model_output_training_metrics")
    assert metrics["epochs"] == 3
    assert metrics["mean_iou"] == pytest.approx(history["mean_iou"].iloc[-1])
    assert (metrics["image_size"], metrics["resumed_after_epoch"]) == ([16, 24], 0)


def test_each_epoch_goes_to_the_epoch_logger_and_the_record_holds_them_all(outputs, logged_epochs):
    history = outputs["catalog"].load("model_output_training_history")
    series = outputs["tracking_training_metrics"]
    tags = outputs["tracking_training_tags"]
    assert [record["epoch"] for record in logged_epochs] == [1, 2, 3]  # as each ended
    assert [r["train_loss"] for r in logged_epochs] == pytest.approx(list(history["train_loss"]))
    assert [p["step"] for p in series["val_mean_iou"]] == [1, 2, 3]  # all, to fill gaps
    assert series["majority_class_mean_iou"][0]["step"] == 3
    assert tags["data.image_size"] == "16x24"
    assert tags["training.resumed_after_epoch"] == "0"
    settings = outputs["tracking_trained_settings"]  # no study: the parameters as written
    assert settings["trained.model.base_channels"] == 4
    assert settings["trained.train.epochs"] == 3
    assert settings["trained.train.learning_rate"] == pytest.approx(3e-3)  # a default
    fingerprint = outputs["catalog"].load("models_checkpoints").load()["fingerprint"]
    assert tags["training.fingerprint"] == fingerprint


def test_the_saved_model_loads_alone_and_predicts_waymo_ids(outputs, tiny_shards):
    model = outputs["catalog"].load("models_segmentation_model")
    assert isinstance(model, SegmentationModel)
    assert model.image_size == (16, 24)
    store, _ = tiny_shards
    images, _ = store.open_segment("validation", "c")
    predicted = model.predict_waymo_ids(torch.from_numpy(images[:2].copy()))
    assert predicted.shape == (2, 16, 24)
    assert set(predicted.ravel().tolist()) <= {2, 20, 25}


def test_the_checkpoint_names_its_classes(outputs):
    checkpoint = outputs["catalog"].load("models_checkpoints").load()
    assert checkpoint["epoch"] == 3
    assert [(c["index"], c["id"], c["name"]) for c in checkpoint["classes"]] == [
        (0, 2, "CAR"),
        (1, 20, "ROAD"),
        (2, 25, "SKY"),
    ]


TUNED = {
    "trial": 3,
    "objective": "val_loss",
    "value": 0.5,
    "hyperparameters": {"batch_size": 8, "base_channels": 4},
}


def test_tuned_values_replace_the_parameters_and_say_so(caplog):
    with caplog.at_level("INFO"):
        merged = with_tuned_hyperparameters(PARAMS, TUNED)
    assert merged["train"]["batch_size"] == 8
    assert merged["model"]["base_channels"] == 4
    assert PARAMS["train"]["batch_size"] == 4  # the given parameters are left as they were
    (message,) = [r.getMessage() for r in caplog.records if "tuning trial" in r.getMessage()]
    # base_channels is the same: not listed
    assert "trial 3 (val_loss 0.5000), replacing: training.train.batch_size 4 -> 8 (" in message


def test_use_tuned_false_keeps_the_parameters_as_given():
    assert with_tuned_hyperparameters({**PARAMS, "use_tuned": False}, TUNED) == {
        **PARAMS,
        "use_tuned": False,
    }


def test_values_tuned_on_images_of_another_size_are_flagged(tiny_shards, caplog):
    store, index = tiny_shards
    train_data = ShardDataset(store, index, "training", LUT)
    with caplog.at_level("WARNING"):
        warn_if_tuned_on_other_images({**TUNED, "image_shape": [16, 24, 3]}, train_data)
        assert not caplog.records  # tuned on these shards' size
        warn_if_tuned_on_other_images({**TUNED, "image_shape": [512, 768, 3]}, train_data)
    (record,) = caplog.records
    assert "trials on 512x768 images; training is on 16x24" in record.getMessage()


class SimulatedCrashError(RuntimeError):
    pass


def test_a_resumed_run_records_the_epochs_it_restored(tiny_shards, tmp_path):
    crashed: list[dict] = []

    def crash_after_two(record: dict) -> None:
        crashed.append(record)
        if record["epoch"] == 2:  # its checkpoint is saved: the next run resumes after it
            raise SimulatedCrashError

    with pytest.raises(SimulatedCrashError):
        SequentialRunner().run(
            training.create_pipeline(), training_catalog(tiny_shards, tmp_path, crash_after_two)
        )
    logged: list[dict] = []
    free = SequentialRunner().run(
        training.create_pipeline(), training_catalog(tiny_shards, tmp_path, logged.append)
    )

    series = free["tracking_training_metrics"].load()
    assert [record["epoch"] for record in logged] == [3]  # the epoch this run trained
    fingerprint = free["tracking_training_tags"].load()["training.fingerprint"]
    assert {r["fingerprint"] for r in crashed + logged} == {fingerprint}  # links the two runs
    assert [point["step"] for point in series["val_mean_iou"]] == [1, 2, 3]  # restored too
    assert free["tracking_training_tags"].load()["training.resumed_after_epoch"] == "2"
