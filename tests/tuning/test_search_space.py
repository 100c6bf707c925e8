import optuna
import pytest

from waymo_unet.tuning.search_space import (
    apply_hyperparameters,
    suggest_hyperparameters,
    validate_search_space,
)

SPACE = {
    "learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
    "batch_size": {"type": "categorical", "choices": [4, 8]},
    "depth": {"type": "int", "low": 2, "high": 4},
}


def test_suggestions_follow_the_space():
    trial = optuna.trial.FixedTrial({"learning_rate": 3e-3, "batch_size": 8, "depth": 3})
    assert suggest_hyperparameters(trial, SPACE) == {
        "learning_rate": 3e-3,
        "batch_size": 8,
        "depth": 3,
    }


def test_values_go_to_the_training_or_model_settings():
    params = {"train": {"learning_rate": 1e-3, "epochs": 5}, "model": {"depth": 4}}
    merged = apply_hyperparameters(params, {"learning_rate": 5e-3, "depth": 2})
    assert merged == {"train": {"learning_rate": 5e-3, "epochs": 5}, "model": {"depth": 2}}
    assert params["train"]["learning_rate"] == 1e-3  # the input is left alone


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"colour": {"type": "float", "low": 0, "high": 1}}, "neither a training nor a model"),
        ({"depth": {"type": "uniform", "low": 0, "high": 1}}, "type must be one of"),
        ({"depth": {"type": "int", "low": 5, "high": 1}}, "needs low <= high"),
        ({"batch_size": {"type": "categorical"}}, "categorical needs choices"),
    ],
)
def test_a_malformed_space_names_the_entry(entry, message):
    with pytest.raises(ValueError, match=message):
        validate_search_space(entry)
