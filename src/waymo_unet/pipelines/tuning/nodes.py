"""Tuning node: run (or resume) the study; tabulate its trials and pick the best."""

from __future__ import annotations

from typing import Any

import pandas as pd

from waymo_unet.data.label_catalog import id_to_index_lut
from waymo_unet.data.shards import ShardStore
from waymo_unet.training.data import ShardDataset, subsample_index
from waymo_unet.tuning.objective import make_objective
from waymo_unet.tuning.study import (
    StudyStore,
    TuningConfig,
    best_hyperparameters,
    run_study,
    trials_table,
)


def tune_hyperparameters(
    shard_store: ShardStore,
    shard_index: pd.DataFrame,
    label_catalog: dict[str, Any],
    study_store: StudyStore,
    training_params: dict[str, Any],
    tuning_params: dict[str, Any],
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Short training runs on a subset until the study has ``n_trials`` finished trials."""
    config = TuningConfig.from_params(tuning_params)
    lut = id_to_index_lut(label_catalog)
    train_index = subsample_index(
        shard_index, training_params["train_split"], config.max_train_items, config.seed
    )
    val_index = subsample_index(
        shard_index, training_params["val_split"], config.max_val_items, config.seed
    )
    objective = make_objective(
        config,
        training_params,
        label_catalog["num_classes"],
        ShardDataset(shard_store, train_index, training_params["train_split"], lut),
        ShardDataset(shard_store, val_index, training_params["val_split"], lut),
        [c["weight"] for c in label_catalog["classes"]],
        label_catalog["ignore_index"],
    )
    study = study_store.open_study(config)
    run_study(study, objective, config)
    return trials_table(study), best_hyperparameters(study)
