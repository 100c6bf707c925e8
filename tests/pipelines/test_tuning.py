"""Tuning then training on an in-memory catalog: the best trial's values reach training."""

from __future__ import annotations

import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from tests.tiny_shards import LABEL_CATALOG
from waymo_unet.datasets import (
    CheckpointStoreDataset,
    OptionalJSONDataset,
    SegmentationModelDataset,
    StudyStoreDataset,
)
from waymo_unet.pipelines import training, tuning
from waymo_unet.pipelines.tuning.nodes import fixed_settings
from waymo_unet.tuning.study import TuningConfig

TRAINING = {
    "train_split": "training",
    "val_split": "validation",
    "use_tuned": True,
    "model": {"base_channels": 4, "depth": 2},
    "train": {"epochs": 2, "batch_size": 4, "num_workers": 0, "precision": "fp32"},
}
TUNING = {
    "n_trials": 2,
    "epochs": 1,
    "max_train_items": 16,
    "max_val_items": 8,
    "search_space": {
        "learning_rate": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True},
        "base_channels": {"type": "categorical", "choices": [6, 7]},
    },
}


@pytest.fixture
def catalog(tiny_shards, tmp_path) -> DataCatalog:
    store, index = tiny_shards
    return DataCatalog(
        {
            "primary_shard_store": MemoryDataset(store, copy_mode="assign"),
            "primary_shard_index": MemoryDataset(index),
            "model_input_label_catalog": MemoryDataset(LABEL_CATALOG),
            "models_tuning_study": StudyStoreDataset(str(tmp_path / "study")),
            "models_checkpoints": CheckpointStoreDataset(str(tmp_path / "checkpoints")),
            "model_input_tuned_hyperparameters": OptionalJSONDataset(
                filepath=str(tmp_path / "best.json")
            ),
            "models_segmentation_model": SegmentationModelDataset(str(tmp_path / "model.pt")),
            "models_deployed_model": MemoryDataset(copy_mode="assign"),
            "tracking_epoch_logger": MemoryDataset(lambda record: None, copy_mode="assign"),
            "params:training": MemoryDataset(TRAINING),
            "params:tuning": MemoryDataset(TUNING),
        }
    )


def test_training_without_a_study_uses_its_own_parameters(catalog):
    assert catalog.load("model_input_tuned_hyperparameters") == {}
    SequentialRunner().run(training.create_pipeline(), catalog)
    assert catalog.load("models_segmentation_model").config.base_channels == 4


def test_the_best_trial_reaches_training(catalog):
    outputs = SequentialRunner().run(tuning.create_pipeline(), catalog)
    trials = outputs["model_output_tuning_trials"].load()
    assert len(trials) == 2
    best = catalog.load("model_input_tuned_hyperparameters")
    assert best["value"] == pytest.approx(trials["value"].min())
    nested_runs = outputs["tracking_tuning_trials"].load()  # for MLflow, one per trial
    assert [run["name"] for run in nested_runs] == ["trial 0", "trial 1"]
    assert nested_runs[0]["params"] == {
        name[len("params_") :]: value
        for name, value in trials.iloc[0].items()
        if name.startswith("params_")
    }

    trained = SequentialRunner().run(training.create_pipeline(), catalog)
    model = catalog.load("models_segmentation_model")
    assert model.config.base_channels == best["hyperparameters"]["base_channels"]
    settings = trained["tracking_trained_settings"].load()  # what MLflow records as trained.*
    assert settings["trained.model.base_channels"] == best["hyperparameters"]["base_channels"]
    assert settings["trained.train.learning_rate"] == best["hyperparameters"]["learning_rate"]
    checkpoint = catalog.load("models_checkpoints").load()
    assert checkpoint["train_config"]["learning_rate"] == best["hyperparameters"]["learning_rate"]


def test_the_study_key_keeps_what_does_not_change_trials():
    config = TuningConfig.from_params(TUNING)
    key = fixed_settings(TRAINING, config)

    def changed(group: str, **values) -> dict:
        return fixed_settings({**TRAINING, group: {**TRAINING[group], **values}}, config)

    assert changed("train", epochs=30, num_workers=4, log_every=1) == key  # not trial results
    assert changed("train", learning_rate=0.5) == key  # searched: each trial draws its own
    assert changed("model", dropout=0.0, bilinear=True) == key  # defaults written out
    assert changed("train", weight_decay=0.1) != key  # every trial would train differently
    assert changed("model", depth=3) != key
