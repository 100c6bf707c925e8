"""The objective of a trial: a short ``train_model`` run, pruned on validation cross-entropy."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import optuna
from torch.utils.data import Dataset

from waymo_unet.models.unet import UNetConfig
from waymo_unet.training.config import TrainConfig
from waymo_unet.training.train import train_model
from waymo_unet.tuning.search_space import apply_hyperparameters, suggest_hyperparameters
from waymo_unet.tuning.study import TuningConfig

OBJECTIVE = "val_cross_entropy"
"""Unweighted, without Dice: comparable between trials that weight their loss differently."""


def make_objective(
    config: TuningConfig,
    training_params: dict[str, Any],
    num_classes: int,
    train_data: Dataset,
    val_data: Dataset,
    class_weights: Sequence[float] | None,
    ignore_index: int,
) -> Callable[[optuna.Trial], float]:
    """An Optuna objective training with the base ``training`` parameters plus the trial's."""

    def objective(trial: optuna.Trial) -> float:
        values = suggest_hyperparameters(trial, config.search_space)
        params = apply_hyperparameters(training_params, values)
        train = TrainConfig.from_params(
            {**params["train"], "epochs": config.epochs, "retrain": True}
        )
        unet = UNetConfig.from_params(params["model"], num_classes)

        def report(record: dict[str, float]) -> None:
            trial.report(record[OBJECTIVE], step=int(record["epoch"]))
            if trial.should_prune():
                raise optuna.TrialPruned()

        result = train_model(
            train, unet, train_data, val_data, class_weights, ignore_index, callbacks=[report]
        )
        trial.set_user_attr("mean_iou", result.final_metrics.mean_iou)
        return result.history[-1][OBJECTIVE]

    return objective
