"""A tiny study on tiny shards: it runs, resumes, grows and never repeats finished trials."""

import optuna
import pytest
from optuna.trial import TrialState

from tests.tiny_shards import LABEL_CATALOG, LUT
from waymo_unet.training.data import ShardDataset
from waymo_unet.tuning.objective import make_objective
from waymo_unet.tuning.study import (
    StudyStore,
    TuningConfig,
    best_hyperparameters,
    run_study,
    trial_runs,
    trials_table,
)

SPACE = {
    "learning_rate": {"type": "float", "low": 1e-3, "high": 2e-2, "log": True},
    "base_channels": {"type": "categorical", "choices": [4, 6]},
    "class_weight_power": {"type": "float", "low": 0.0, "high": 1.0},
}
TRAINING = {
    "train_split": "training",
    "val_split": "validation",
    "model": {"base_channels": 4, "depth": 2},
    "train": {"batch_size": 4, "num_workers": 0, "precision": "fp32"},
}


CONTEXT = {"train": {"items": 24}, "val": {"items": 8}}  # what the node derives from the data


def config(n_trials: int) -> TuningConfig:
    return TuningConfig(search_space=SPACE, n_trials=n_trials, epochs=2, pruner_startup_trials=5)


def run(tiny_shards, store: StudyStore, n_trials: int, context=CONTEXT) -> optuna.Study:
    shards, index = tiny_shards
    objective = make_objective(
        config(n_trials),
        TRAINING,
        3,
        ShardDataset(shards, index, "training", LUT),
        ShardDataset(shards, index, "validation", LUT),
        [c["weight"] for c in LABEL_CATALOG["classes"]],
        255,
    )
    study = store.open_study(config(n_trials), context)
    run_study(study, objective, config(n_trials))
    return study


def test_a_study_resumes_and_grows_without_repeating_trials(tiny_shards, tmp_path):
    store = StudyStore(str(tmp_path / "study"))
    first = trials_table(run(tiny_shards, store, 2))
    assert list(first["number"]) == [0, 1]
    assert set(first["state"]) == {"COMPLETE"}

    same = trials_table(run(tiny_shards, store, 2))  # budget already met: nothing runs
    assert list(same["number"]) == [0, 1]

    grown = trials_table(run(tiny_shards, store, 3))
    assert list(grown["number"]) == [0, 1, 2]
    columns = ["value", "params_learning_rate", "params_base_channels"]
    assert grown[columns].iloc[:2].equals(first[columns])
    assert {"duration", "user_attrs_mean_iou"} <= set(grown.columns)


def test_the_best_trial_is_reported_with_its_values(tiny_shards, tmp_path):
    study = run(tiny_shards, StudyStore(str(tmp_path)), 2)
    best = best_hyperparameters(study)
    assert best["value"] == pytest.approx(min(t.value for t in study.trials))
    assert set(best["hyperparameters"]) == set(SPACE)


def test_an_interrupted_trial_is_recorded_as_failed(tiny_shards, tmp_path):
    store = StudyStore(str(tmp_path))
    study = store.open_study(config(1), CONTEXT)
    study.ask()  # a trial that started, then its process died
    assert best_hyperparameters(study) == {}
    study = run(tiny_shards, store, 1)
    states = [t.state for t in study.trials]
    assert states == [TrialState.FAIL, TrialState.COMPLETE]


def test_trials_on_other_data_or_settings_start_a_study_of_their_own(tiny_shards, tmp_path):
    store = StudyStore(str(tmp_path))
    first = run(tiny_shards, store, 1)
    assert first.study_name.startswith("waymo_unet-")
    assert run(tiny_shards, store, 2).study_name == first.study_name  # more trials: same study
    reingested = run(tiny_shards, store, 3, context={**CONTEXT, "train": {"items": 48}})
    assert reingested.study_name != first.study_name
    assert len(reingested.trials) == 3
    assert len(run(tiny_shards, store, 2).trials) == 2  # the first study has its own two


def test_the_study_key_ignores_the_trial_count_but_not_the_budget():
    key = config(2).keyed_study_name(CONTEXT)
    assert config(5).keyed_study_name(CONTEXT) == key
    longer = TuningConfig(search_space=SPACE, n_trials=2, epochs=3, pruner_startup_trials=5)
    assert longer.keyed_study_name(CONTEXT) != key


def test_each_finished_or_failed_trial_becomes_a_run_with_its_epochs():
    study = optuna.create_study(study_name="waymo_unet-1234")
    rate = optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)
    for state, value, epochs in [
        (TrialState.COMPLETE, 1.5, {1: 2.0, 2: 1.5}),
        (TrialState.PRUNED, None, {1: 3.0}),
        (TrialState.FAIL, None, {}),
    ]:
        study.add_trial(
            optuna.trial.create_trial(
                params={"learning_rate": 0.01},
                distributions={"learning_rate": rate},
                value=value,
                intermediate_values=epochs,
                user_attrs={"mean_iou": 0.3} if value else {},
                state=state,
            )
        )
    study.enqueue_trial({"learning_rate": 0.02})  # waiting, not run: no record

    runs = trial_runs(study, "val_cross_entropy")

    assert [r["name"] for r in runs] == ["trial 0", "trial 1", "trial 2"]
    complete, pruned, failed = runs
    assert complete["metrics"] == {
        "val_cross_entropy": [{"step": 1, "value": 2.0}, {"step": 2, "value": 1.5}],
        "mean_iou": [{"step": 0, "value": 0.3}],
    }
    assert complete["params"] == {"learning_rate": 0.01}
    assert complete["tags"] == {"trial": "0", "state": "COMPLETE", "study": "waymo_unet-1234"}
    assert (pruned["status"], pruned["tags"]["state"]) == ("FINISHED", "PRUNED")
    assert (failed["status"], failed["metrics"]) == ("FAILED", {"val_cross_entropy": []})
