"""A persisted Optuna study: TPE sampling, median pruning, resumable trial budget."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any

import optuna
import pandas as pd
import torch
from fsspec.implementations.local import LocalFileSystem
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from waymo_unet.config import config_from_params
from waymo_unet.data.location import Location
from waymo_unet.digest import content_digest
from waymo_unet.tuning.search_space import validate_search_space

logger = logging.getLogger(__name__)

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
# How many trials, for how long, and which to stop early: a study continues when these
# change (they do not change what a finished trial measured).
_NOT_IN_KEY = (
    "study_name",
    "n_trials",
    "timeout_s",
    "pruner_startup_trials",
    "pruner_warmup_epochs",
)


@dataclass(frozen=True)
class TuningConfig:
    """How many trials, how long each one trains, on how much data, over which space.

    The defaults are those of ``conf/base/parameters_tuning.yml`` (a test keeps them equal).
    """

    search_space: dict[str, dict[str, Any]]
    study_name: str = "waymo_unet"
    n_trials: int = 4  # finished trials wanted in the study; a re-run adds only the missing
    timeout_s: float | None = None
    seed: int = 0
    epochs: int = 3  # per trial
    max_train_items: int | None = 48  # per trial: a fixed random subset of the splits
    max_val_items: int | None = 30
    pruner_startup_trials: int = 2
    pruner_warmup_epochs: int = 1

    def __post_init__(self) -> None:
        validate_search_space(self.search_space)
        if self.n_trials < 1 or self.epochs < 1:
            raise ValueError("n_trials and epochs must be >= 1")

    def keyed_study_name(self, context: dict[str, Any]) -> str:
        """``study_name`` and a digest of what decides the trials' results (not their count)."""
        trials = {k: v for k, v in dataclasses.asdict(self).items() if k not in _NOT_IN_KEY}
        return f"{self.study_name}-{content_digest([trials, context], length=8)}"

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> TuningConfig:
        """From the ``tuning`` parameters; an unknown key or a wrong type is named."""
        return config_from_params(cls, params, "tuning", "parameters_tuning.yml")


@dataclass(frozen=True)
class StudyStore(Location):
    """The folder holding a study's journal file (local: the journal relies on file locks)."""

    journal_name: str = field(default="study.journal", compare=False)

    def open_study(self, config: TuningConfig, context: dict[str, Any]) -> optuna.Study:
        """Create the study, or load it with every trial done so far.

        The study's name ends with a digest of the search space, the per-trial budget and
        ``context`` (what the trials train on): trials of other data or settings are not
        mixed in; they stay in the journal under their own study.
        """
        fs = self.filesystem
        if not isinstance(fs, LocalFileSystem):
            raise ValueError(f"the tuning study must be on a local disk, not {self.root}")
        fs.makedirs(self.root, exist_ok=True)
        storage = JournalStorage(JournalFileBackend(self.join(self.journal_name)))
        return optuna.create_study(
            study_name=config.keyed_study_name(context),
            storage=storage,
            direction="minimize",
            load_if_exists=True,
            sampler=optuna.samplers.TPESampler(seed=config.seed),
            pruner=optuna.pruners.MedianPruner(
                n_startup_trials=config.pruner_startup_trials,
                n_warmup_steps=config.pruner_warmup_epochs,
            ),
        )


def fail_interrupted_trials(study: optuna.Study) -> None:
    """Trials left RUNNING by a killed run will never finish: record them as failed."""
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        logger.warning("Trial %d was interrupted; marking it failed", trial.number)
        study.tell(trial.number, state=TrialState.FAIL)


def run_study(study: optuna.Study, objective, config: TuningConfig) -> None:
    """Run trials until the study holds ``n_trials`` finished ones (or the timeout)."""
    fail_interrupted_trials(study)
    finished = len(study.get_trials(deepcopy=False, states=FINISHED))
    remaining = config.n_trials - finished
    if remaining <= 0:
        logger.info("Study %r already has %d finished trials", study.study_name, finished)
        return
    logger.info(
        "Study %r: %d finished trial(s), running %d more", study.study_name, finished, remaining
    )
    # Optuna logs each trial; send that through the application's logging (Kedro's).
    optuna.logging.disable_default_handler()
    optuna.logging.enable_propagation()
    study.optimize(
        objective, n_trials=remaining, timeout=config.timeout_s, catch=(torch.OutOfMemoryError,)
    )


def trials_table(study: optuna.Study) -> pd.DataFrame:
    """One row per trial: number, value, state, duration (s), params_*, user_attrs_*."""
    trials = study.trials_dataframe(
        attrs=("number", "value", "state", "duration", "params", "user_attrs")
    )
    if "duration" in trials:
        trials["duration"] = trials["duration"].dt.total_seconds()
    return trials


TRACKED_STATES = {
    TrialState.COMPLETE: "FINISHED",
    TrialState.PRUNED: "FINISHED",  # stopped early on purpose; the tag says pruned
    TrialState.FAIL: "FAILED",
}


def trial_runs(study: optuna.Study, objective: str) -> list[dict[str, Any]]:
    """Each finished or failed trial as a run to record under the tuning run.

    Its searched values, the objective after each epoch (what the pruner compared), its
    user attributes (such as the final mIoU) and its state, for the MLflow UI to compare.
    """
    return [
        {
            "name": f"trial {trial.number}",
            "params": dict(trial.params),
            "metrics": {
                objective: [
                    {"step": int(step), "value": float(value)}
                    for step, value in sorted(trial.intermediate_values.items())
                ],
                **{
                    name: [{"step": 0, "value": float(value)}]
                    for name, value in trial.user_attrs.items()
                    if isinstance(value, int | float)
                },
            },
            "tags": {
                "trial": str(trial.number),
                "state": trial.state.name,
                "study": study.study_name,
            },
            "status": TRACKED_STATES[trial.state],
        }
        for trial in study.get_trials(deepcopy=False, states=tuple(TRACKED_STATES))
    ]


def best_hyperparameters(study: optuna.Study) -> dict[str, Any]:
    """The best complete trial's values, with its number and objective; {} if none yet."""
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        logger.warning("Study %r has no complete trial yet", study.study_name)
        return {}
    best = study.best_trial
    return {
        "study": study.study_name,
        "trial": best.number,
        "value": best.value,
        "objective": "validation cross-entropy",
        "hyperparameters": best.params,
    }
