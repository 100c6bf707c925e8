"""Parameters become config dataclasses only when every key and type is right."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields
from typing import Any

import numpy as np
import pytest
from omegaconf import OmegaConf

from tests.projects import PROJECT
from waymo_unet.config import config_from_params, value_fits
from waymo_unet.data.ingestion_config import IngestionConfig
from waymo_unet.data.label_catalog import LabelCatalogConfig
from waymo_unet.evaluation.evaluate import EvaluationConfig
from waymo_unet.models.unet import UNetConfig
from waymo_unet.training.config import TrainConfig, TrainingRunConfig
from waymo_unet.training.data import AugmentConfig
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
        (np.int64(3), int, True),  # what pandas and numpy hand back
        (np.float32(0.5), float, True),
        (np.bool_(True), int, False),
        ({"a": 1}, Mapping[str, Any], True),
        ([1], Mapping[str, Any], False),
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
        (
            {"sise": 2},
            r"^unknown key ex\.sise=2; did you mean ex\.size\? \(see conf/base/p\.yml; known: size",
        ),
        (
            {"sise": 2, "xyz": "a"},
            r"^unknown keys ex\.sise=2, ex\.xyz='a'; did you mean ex\.size\? ",
        ),
        ({"rate": "abc"}, r"^ex\.rate must be a number, got 'abc' \(see conf/base/p\.yml\)$"),
        ({"limit": "x"}, r"ex\.limit must be a number or null, got 'x'"),
        ({"flag": "yes"}, r"ex\.flag must be true or false"),
        ({"cameras": 1}, r"ex\.cameras must be a list of \(an integer\)"),
        ([("size", 1)], r"ex must be a mapping"),
    ],
)
def test_a_wrong_key_or_type_is_named_with_its_file(params, message):
    with pytest.raises(ValueError, match=message):
        config_from_params(Example, params, "ex", "p.yml")


@dataclass(frozen=True)
class Required:
    size: int
    rate: float = 0.5


def test_a_missing_required_key_is_named():
    with pytest.raises(ValueError, match=r"^missing key ex\.size \(see conf/base/p\.yml\)$"):
        config_from_params(Required, {"rate": 1.0}, "ex", "p.yml")


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


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"use_tunned": False},
            r"unknown key training\.use_tunned=False; did you mean training\.use_tuned\?",
        ),
        ({"nproc_per_node": "2"}, r"training\.nproc_per_node must be an integer, got '2'"),
        ({"nproc_per_node": 0}, r"nproc_per_node must be >= 1"),
        ({"train": {"learning_rate": "abc"}}, r"training\.train\.learning_rate must be a number"),
        ({"model": {"dept": 3}}, r"training\.model\.dept=3; did you mean training\.model\.depth"),
        ({"model": {"num_classes": 3}}, r"training\.model\.num_classes=3 is not a setting"),
    ],
)
def test_the_training_section_is_checked_as_a_whole(params, message):
    with pytest.raises(ValueError, match=message) as error:
        TrainingRunConfig.from_params(params)
    assert "conf/base/parameters_training.yml" in str(error.value)


# --- one source for every default ----------------------------------------------------------


def yaml_section(parameters_file: str, section: str) -> dict[str, Any]:
    """One section of ``conf/base/<parameters_file>``, read the way Kedro reads it."""
    values = OmegaConf.to_container(OmegaConf.load(PROJECT / "conf" / "base" / parameters_file))
    for part in section.split("."):
        values = values[part]
    return values


def augment_from_params(params: dict[str, Any]) -> AugmentConfig:
    return config_from_params(AugmentConfig, params, "training.train.augment", "x.yml")


# (config class, its parameters file and section, how the pipelines build it from there,
# fields the YAML does not hold, fields whose default is not a YAML value)
CONFIG_SOURCES = [
    (TrainConfig, "parameters_training.yml", "training.train", TrainConfig.from_params, (), ()),
    (
        AugmentConfig,
        "parameters_training.yml",
        "training.train.augment",
        augment_from_params,
        (),
        (),
    ),
    (
        UNetConfig,
        "parameters_training.yml",
        "training.model",
        lambda params: UNetConfig.from_params(params, num_classes=3),
        ("num_classes", "in_channels"),  # the label catalogue's count; RGB images
        (),
    ),
    (
        TrainingRunConfig,
        "parameters_training.yml",
        "training",
        TrainingRunConfig.from_params,
        (),
        ("model", "train"),  # empty: the defaults of UNetConfig and TrainConfig, checked here
    ),
    (IngestionConfig, "parameters_ingestion.yml", "ingestion", IngestionConfig.from_params, (), ()),
    (TuningConfig, "parameters_tuning.yml", "tuning", TuningConfig.from_params, (), ()),
    (
        LabelCatalogConfig,
        "parameters_label_catalog.yml",
        "label_catalog",
        LabelCatalogConfig.from_params,
        (),
        (),
    ),
    (
        EvaluationConfig,
        "parameters_evaluation.yml",
        "evaluation",
        EvaluationConfig.from_params,
        (),
        (),
    ),
]


@pytest.mark.parametrize(
    ("cls", "parameters_file", "section", "from_params", "not_in_yaml", "not_compared"),
    CONFIG_SOURCES,
    ids=[source[0].__name__ for source in CONFIG_SOURCES],
)
def test_dataclass_defaults_are_the_yaml_values(
    cls, parameters_file, section, from_params, not_in_yaml, not_compared
):
    """The YAML is what users run; a config built in code without a value gets the same."""
    params = yaml_section(parameters_file, section)
    from_yaml = from_params(params)  # every YAML key is a field of the right type
    init = [f for f in fields(cls) if f.init]
    assert not [f.name for f in init if f.name not in params and f.name not in not_in_yaml], (
        f"settings of {cls.__name__} missing from {parameters_file} {section}"
    )
    required = {
        f.name: getattr(from_yaml, f.name)
        for f in init
        if f.default is MISSING and f.default_factory is MISSING
    }
    defaults = cls(**required)
    differ = [
        f"{f.name}: dataclass {getattr(defaults, f.name)!r}, YAML {getattr(from_yaml, f.name)!r}"
        for f in init
        if f.name not in not_compared and getattr(defaults, f.name) != getattr(from_yaml, f.name)
    ]
    assert not differ, f"{cls.__name__} vs {parameters_file} {section}: {'; '.join(differ)}"
