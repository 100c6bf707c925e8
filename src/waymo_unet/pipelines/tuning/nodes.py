"""Tuning node: run (or resume) the study; tabulate its trials and pick the best."""

from __future__ import annotations

from typing import Any

import pandas as pd

from waymo_unet.data.label_catalog import id_to_index_lut
from waymo_unet.data.shards import ShardStore
from waymo_unet.models.unet import UNetConfig
from waymo_unet.training.config import TrainConfig, TrainingRunConfig, outcome_settings
from waymo_unet.training.data import ShardDataset, data_signature, subsample_index
from waymo_unet.tuning.objective import OBJECTIVE, make_objective
from waymo_unet.tuning.study import (
    StudyStore,
    TuningConfig,
    best_hyperparameters,
    run_study,
    trial_runs,
    trials_table,
)


def fixed_settings(training_params: dict[str, Any], config: TuningConfig) -> dict[str, Any]:
    """The training settings every trial shares: not searched, and not the trial budget.

    Taken from the configs the parameters make, defaults filled in, so writing a default
    out in the YAML does not count as a change.
    """
    searched = set(config.search_space) | {"epochs"}
    run = TrainingRunConfig.from_params(training_params)
    train = TrainConfig.from_params(run.train).to_dict()
    model = UNetConfig.from_params(run.model, num_classes=1).to_dict()
    return {
        "model": {k: v for k, v in model.items() if k not in searched | {"num_classes"}},
        "train": {k: v for k, v in outcome_settings(train).items() if k not in searched},
    }


def tune_hyperparameters(
    shard_store: ShardStore,
    shard_index: pd.DataFrame,
    label_catalog: dict[str, Any],
    study_store: StudyStore,
    training_params: dict[str, Any],
    tuning_params: dict[str, Any],
) -> tuple[pd.DataFrame, dict[str, Any], list[dict[str, Any]]]:
    """Short training runs on a subset until the study has ``n_trials`` finished trials.

    Returns the trials table, the best trial's values, and every trial as a nested run
    for MLflow.
    """
    config = TuningConfig.from_params(tuning_params)
    run = TrainingRunConfig.from_params(training_params)
    lut = id_to_index_lut(label_catalog)
    train_index = subsample_index(shard_index, run.train_split, config.max_train_items, config.seed)
    val_index = subsample_index(shard_index, run.val_split, config.max_val_items, config.seed)
    train_data = ShardDataset(shard_store, train_index, run.train_split, lut)
    val_data = ShardDataset(shard_store, val_index, run.val_split, lut)
    class_weights = [c["weight"] for c in label_catalog["classes"]]
    objective = make_objective(
        config,
        training_params,
        label_catalog["num_classes"],
        train_data,
        val_data,
        class_weights,
        label_catalog["ignore_index"],
    )
    context = {
        "train": data_signature(train_data),
        "val": data_signature(val_data),
        "class_weights": class_weights,
        "fixed_settings": fixed_settings(training_params, config),
    }
    study = study_store.open_study(config, context)
    run_study(study, objective, config)
    best = best_hyperparameters(study)
    if best:  # what training checks it is about to train on
        best["image_shape"] = context["train"]["image_shape"]
    return trials_table(study), best, trial_runs(study, OBJECTIVE)
