"""The training pipeline's node on an in-memory catalog, with a tiny model."""

from __future__ import annotations

import pytest
import torch
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

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


@pytest.fixture
def outputs(tiny_shards, tmp_path):
    store, index = tiny_shards
    catalog = DataCatalog(
        {
            "primary_shard_store": MemoryDataset(store, copy_mode="assign"),
            "primary_shard_index": MemoryDataset(index),
            "model_input_label_catalog": MemoryDataset(LABEL_CATALOG),
            "model_input_tuned_hyperparameters": MemoryDataset({}),
            "models_checkpoints": CheckpointStoreDataset(str(tmp_path / "checkpoints")),
            "models_segmentation_model": SegmentationModelDataset(str(tmp_path / "model.pt")),
            "models_deployed_model": MemoryDataset(copy_mode="assign"),
            "params:training": MemoryDataset(PARAMS),
        }
    )
    free = SequentialRunner().run(training.create_pipeline(), catalog)
    return {name: dataset.load() for name, dataset in free.items()} | {"catalog": catalog}


def test_history_class_iou_and_metrics(outputs):
    history = outputs["model_output_training_history"]
    assert list(history["epoch"]) == [1, 2, 3]
    assert {"train_loss", "val_loss", "mean_iou", "pixel_accuracy", "lr", "images_per_s"} <= set(
        history.columns
    )
    iou = outputs["model_output_class_iou"]
    assert list(iou["name"]) == ["CAR", "ROAD", "SKY"]
    metrics = outputs["model_output_training_metrics"]
    assert metrics["epochs"] == 3
    assert metrics["mean_iou"] == pytest.approx(history["mean_iou"].iloc[-1])


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
