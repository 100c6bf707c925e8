"""The search space, as written in ``parameters_tuning.yml``, and where its values go.

Every searched name is a field of ``TrainConfig`` (learning_rate, batch_size, ...) or of
``UNetConfig`` (base_channels, depth, ...), so a trial's values and the best values apply
to a training run the same way.
"""

from __future__ import annotations

import dataclasses
from copy import deepcopy
from typing import Any

import optuna

from waymo_unet.models.unet import UNetConfig
from waymo_unet.training.config import TrainConfig

TRAIN_FIELDS = {f.name for f in dataclasses.fields(TrainConfig)}
MODEL_FIELDS = {f.name for f in dataclasses.fields(UNetConfig)} - {"num_classes"}
KINDS = ("float", "int", "categorical")


def validate_search_space(space: dict[str, dict[str, Any]]) -> None:
    """Fail early, naming the entry, on unknown names or malformed ranges."""
    for name, spec in space.items():
        if name not in TRAIN_FIELDS | MODEL_FIELDS:
            raise ValueError(
                f"search space entry {name!r} is neither a training nor a model setting"
            )
        kind = spec.get("type")
        if kind not in KINDS:
            raise ValueError(f"search space entry {name!r}: type must be one of {KINDS}")
        if kind == "categorical" and not spec.get("choices"):
            raise ValueError(f"search space entry {name!r}: categorical needs choices")
        if kind != "categorical" and not spec.get("low", 0) <= spec.get("high", -1):
            raise ValueError(f"search space entry {name!r}: needs low <= high")


def suggest_hyperparameters(
    trial: optuna.Trial, space: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """One value per entry of the search space, drawn by the study's sampler."""
    values: dict[str, Any] = {}
    for name, spec in space.items():
        if spec["type"] == "categorical":
            values[name] = trial.suggest_categorical(name, list(spec["choices"]))
        elif spec["type"] == "int":
            values[name] = trial.suggest_int(
                name, spec["low"], spec["high"], log=spec.get("log", False)
            )
        else:
            values[name] = trial.suggest_float(
                name, spec["low"], spec["high"], log=spec.get("log", False)
            )
    return values


def apply_hyperparameters(
    training_params: dict[str, Any], values: dict[str, Any]
) -> dict[str, Any]:
    """A copy of the ``training`` parameters with ``values`` put in ``train`` or ``model``."""
    merged = deepcopy(training_params)
    for name, value in values.items():
        if name in TRAIN_FIELDS:
            merged["train"][name] = value
        elif name in MODEL_FIELDS:
            merged["model"][name] = value
        else:
            raise ValueError(f"tuned value {name!r} is neither a training nor a model setting")
    return merged
