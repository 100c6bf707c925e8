"""The training settings: the ``training`` parameters, one run's ``TrainConfig``, and what
derives from them (which settings change a run's outcome, the run's fingerprint)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from waymo_unet.config import config_from_params
from waymo_unet.digest import content_digest
from waymo_unet.models.unet import UNetConfig
from waymo_unet.training.data import AugmentConfig

PARAMETERS_FILE = "parameters_training.yml"

# Settings that change how fast a run goes, not what it computes.
_RUNTIME_ONLY = ("num_workers", "log_every", "retrain", "device", "compile", "sync_batchnorm")


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters and run settings of one training run.

    The defaults are those of ``training.train`` in ``conf/base/parameters_training.yml``
    (a test keeps them equal), for callers that build a config in code.
    """

    epochs: int = 12
    batch_size: int = 8
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    warmup_epochs: float = 1.0
    min_lr_ratio: float = 0.01
    grad_clip: float | None = 1.0
    accumulation_steps: int = 1
    dice_weight: float = 0.0
    class_weight_power: float = 1.0  # loss weights = catalogue weights ** power (0: unweighted)
    augment: AugmentConfig | None = field(default_factory=AugmentConfig)
    # auto: bf16 on GPUs from Ampere on and CPUs with native bf16, fp16 + scaler on older GPUs
    precision: str = "auto"
    channels_last: bool | None = None  # None: when the precision is mixed
    compile: bool = False
    sync_batchnorm: bool = False  # under DDP on GPUs: batch statistics of the global batch
    device: str = "auto"
    seed: int = 0
    num_workers: int | None = None  # None: see loader_workers
    log_every: int = 50
    retrain: bool = False

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "accumulation_steps", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> TrainConfig:
        """From ``training.train``; an unknown key or a wrong type is a ValueError naming it."""
        values = dict(params)
        augment = values.pop("augment", {})
        if augment is not None:  # null: no augmentation
            section = "training.train.augment"
            augment = config_from_params(AugmentConfig, augment, section, PARAMETERS_FILE)
        values["augment"] = augment
        return config_from_params(cls, values, "training.train", PARAMETERS_FILE)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


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


def run_fingerprint(config: TrainConfig, unet: UNetConfig, data_signature: dict[str, Any]) -> str:
    """Identifies what a run computes; a checkpoint of another fingerprint is not resumed."""
    return content_digest([outcome_settings(config.to_dict()), unet.to_dict(), data_signature])


def outcome_settings(train_params: dict[str, Any]) -> dict[str, Any]:
    """The training settings that change what a run computes: all but how it is run."""
    return {k: v for k, v in train_params.items() if k not in _RUNTIME_ONLY}
