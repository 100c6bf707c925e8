"""Parameters become config dataclasses only when every key and type is right."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from waymo_unet.config import config_from_params, value_fits
from waymo_unet.data.ingestion_config import IngestionConfig
from waymo_unet.training.data import AugmentConfig
from waymo_unet.training.train import TrainConfig
from waymo_unet.tuning.study import TuningConfig


@dataclass(frozen=True)
class Example:
    size: int = 1
    rate: float = 0.5
    flag: bool = False
    limit: float | None = None
    cameras: tuple[int, ...] = (1,)
    name: str = "a"


@pytest.mark.parametrize(
    ("value", "hint", "fits"),
    [
        (3, int, True),
        (True, int, False),  # a bool is an int to Python, not to a user
        (3.0, int, False),
        (3, float, True),
        ("3", float, False),
        (float("nan"), float, False),
        (None, float | None, True),
        ("x", float | None, False),
        ([1, 2], tuple[int, ...], True),
        ([1, "2"], tuple[int, ...], False),
        ("yes", bool, False),
    ],
)
def test_values_are_checked_against_their_field_types(value, hint, fits):
    assert value_fits(value, hint) is fits


def test_good_parameters_build_the_config():
    assert config_from_params(
        Example, {"size": 2, "rate": 1, "limit": None, "cameras": [1, 2]}, "ex", "p.yml"
    ) == Example(size=2, rate=1, cameras=[1, 2])


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"sise": 2}, r"unknown parameter\(s\) ex\.sise \(see conf/base/p\.yml; known: size,"),
        ({"rate": "abc"}, r"parameter ex\.rate must be a number, got 'abc' \(see conf/base/p\.yml"),
        ({"limit": "x"}, r"ex\.limit must be a number or null, got 'x'"),
        ({"flag": "yes"}, r"ex\.flag must be true or false"),
        ({"cameras": 1}, r"ex\.cameras must be a list of \(an integer\)"),
        ([("size", 1)], r"parameters ex must be a mapping"),
    ],
)
def test_a_wrong_key_or_type_is_named_with_its_file(params, message):
    with pytest.raises(ValueError, match=message):
        config_from_params(Example, params, "ex", "p.yml")


def test_training_parameters_name_the_bad_learning_rate():
    with pytest.raises(ValueError, match=r"training\.train\.learning_rate must be a number.*abc"):
        TrainConfig.from_params({"learning_rate": "abc"})
    with pytest.raises(ValueError, match=r"training\.train\.augment\.flip"):
        TrainConfig.from_params({"augment": {"flip": True}})
    with pytest.raises(ValueError, match=r"training\.train .*learning_rate must be > 0"):
        TrainConfig.from_params({"learning_rate": 0})


def test_augmentation_defaults_when_left_out_and_is_off_when_null():
    assert TrainConfig.from_params({}).augment == AugmentConfig()
    assert TrainConfig.from_params({"augment": None}).augment is None


@pytest.mark.parametrize(
    ("build", "params", "message"),
    [
        (IngestionConfig.from_params, {"height": "abc", "width": 8}, r"ingestion\.height must be"),
        (
            IngestionConfig.from_params,
            {"height": 8, "width": 8, "camras": [1]},
            r"ingestion\.camras",
        ),
        (
            IngestionConfig.from_params,
            {"height": 8, "width": 8, "cameras": 1},
            r"ingestion\.cameras",
        ),
        (TuningConfig.from_params, {"search_space": {}, "n_trails": 3}, r"tuning\.n_trails"),
        (TuningConfig.from_params, {"search_space": {}, "epochs": "2"}, r"tuning\.epochs must be"),
    ],
)
def test_every_pipelines_parameters_are_checked_by_name(build, params, message):
    with pytest.raises(ValueError, match=message):
        build(params)
