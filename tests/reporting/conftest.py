"""Run tables the chart builders take: optuna trials, a history, class IoU, a catalogue."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


@pytest.fixture
def trials() -> pd.DataFrame:
    """optuna-like trials: complete, pruned (one without a value) and failed ones."""
    rng = np.random.default_rng(0)
    n = 12
    state = ["COMPLETE"] * n
    state[3], state[7], state[9] = "FAIL", "PRUNED", "PRUNED"
    value = 0.2 + rng.random(n)
    value[[3, 9]] = np.nan
    return pd.DataFrame(
        {
            "number": np.arange(n),
            "value": value,
            "state": state,
            "params_learning_rate": 10 ** rng.uniform(-4, -2, n),
            "params_weight_decay": 10 ** rng.uniform(-5, -2, n),
            "params_base_channels": rng.choice([8, 16, 32], n),
            "params_bilinear": rng.choice([True, False], n),
        }
    )


@pytest.fixture
def history() -> pd.DataFrame:
    """A training history with one missing validation value."""
    epochs = np.arange(1, 7)
    return pd.DataFrame(
        {
            "epoch": epochs,
            "train_loss": 2.0 / epochs,
            "val_loss": [2.5, 1.4, np.nan, 0.8, 0.7, 0.65],
            "mean_iou": np.linspace(0.1, 0.7, 6),
            "pixel_accuracy": np.linspace(0.4, 0.95, 6),
            "lr": np.linspace(3e-3, 1e-5, 6),
        }
    )


@pytest.fixture
def class_iou() -> pd.DataFrame:
    """Per-class IoU with one class never seen in validation (NaN)."""
    return pd.DataFrame(
        {
            "class_id": [2, 9, 20, 25, 3],
            "name": ["CAR", "PEDESTRIAN", "ROAD", "SKY", "TRUCK"],
            "iou": [0.9, 0.6, 0.95, 0.97, np.nan],
        }
    )


@pytest.fixture
def catalog() -> pd.DataFrame:
    """A label catalogue with two splits and one unknown id."""
    return pd.DataFrame(
        {
            "class_id": [0, 2, 20, 25, 37],
            "name": ["UNDEFINED", "CAR", "ROAD", "SKY", "UNKNOWN_37"],
            "unknown": [False, False, False, False, True],
            "pixels_training": [10, 300, 500, 190, 1],
            "pixels_validation": [5, 100, 200, 95, 0],
        }
    )
