"""The ``training`` parameters as a whole: splits, tuned values, ranks, model and run."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from waymo_unet.config import config_from_params
from waymo_unet.models.unet import UNetConfig
from waymo_unet.training.train import PARAMETERS_FILE, TrainConfig


@dataclass(frozen=True)
class TrainingRunConfig:
    """What to train on, whether the tuned values apply, and on how many DDP ranks.

    ``model`` and ``train`` stay mappings: the tuning study's best trial is merged into
    them before they become a ``UNetConfig`` (which also needs the catalogue's class
    count) and a ``TrainConfig``. The defaults are those of ``conf/base/parameters_training.yml``
    (a test keeps them equal).
    """

    train_split: str = "training"
    val_split: str = "validation"
    use_tuned: bool = True  # take the tuning study's best trial when there is one
    nproc_per_node: int = 1  # DDP ranks on this machine
    model: Mapping[str, Any] = field(default_factory=dict)
    train: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.nproc_per_node < 1:
            raise ValueError(f"nproc_per_node must be >= 1, got {self.nproc_per_node}")

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> TrainingRunConfig:
        """From the ``training`` parameters, ``model`` and ``train`` included: any
        unknown key or wrong type is named now, not once ingestion has run."""
        config = config_from_params(cls, params, "training", PARAMETERS_FILE)
        TrainConfig.from_params(config.train)
        UNetConfig.from_params(config.model, num_classes=1)  # the catalogue's count comes later
        return config
