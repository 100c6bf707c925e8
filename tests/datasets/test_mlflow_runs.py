"""Tags and nested runs land in the active MLflow run, and nowhere when logging is off."""

from __future__ import annotations

import pickle
from concurrent.futures import ThreadPoolExecutor

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from waymo_unet.datasets.mlflow_runs import (
    MlflowEpochLoggerDataset,
    MlflowMetricSeriesDataset,
    MlflowNestedRunsDataset,
    MlflowParamsDataset,
    MlflowTagsDataset,
)
from waymo_unet.tracking.epoch_logger import EpochMetricsLogger

TRIALS = [
    {
        "name": "trial 0",
        "params": {"learning_rate": 0.01, "depth": 3},
        "metrics": {
            "val_cross_entropy": [{"step": 1, "value": 2.0}, {"step": 2, "value": 1.5}],
            "mean_iou": [{"step": 0, "value": 0.3}],
        },
        "tags": {"state": "COMPLETE"},
        "status": "FINISHED",
    },
    {
        "name": "trial 1",
        "params": {"learning_rate": 0.1, "depth": 4},
        "metrics": {"val_cross_entropy": [{"step": 1, "value": 3.0}]},
        "tags": {"state": "PRUNED"},
        "status": "FINISHED",
    },
]


@pytest.fixture
def client(mlflow_experiment: str) -> MlflowClient:
    return MlflowClient()


def runs(client: MlflowClient) -> list:
    return client.search_runs([client.get_experiment_by_name("test").experiment_id])


def test_tags_go_to_the_active_run_as_strings(client: MlflowClient):
    dataset = MlflowTagsDataset()
    with mlflow.start_run() as run:
        dataset.save({"data.image_size": "48x72", "data.classes": 4})
        loaded = dataset.load()

    tags = client.get_run(run.info.run_id).data.tags
    assert tags["data.image_size"] == "48x72"
    assert tags["data.classes"] == "4"
    assert loaded == {"data.image_size": "48x72", "data.classes": "4"}


def test_params_go_to_the_active_run(client: MlflowClient):
    dataset = MlflowParamsDataset()
    with mlflow.start_run() as run:
        dataset.save({"trained.train.learning_rate": 0.004, "trained.model.depth": 3})
        assert dataset.load() == {
            "trained.train.learning_rate": "0.004",
            "trained.model.depth": "3",
        }

    assert client.get_run(run.info.run_id).data.params["trained.model.depth"] == "3"


def test_trials_become_finished_child_runs_with_a_point_per_epoch(client: MlflowClient):
    dataset = MlflowNestedRunsDataset()
    with mlflow.start_run() as parent:
        dataset.save(TRIALS)
        loaded = dataset.load()

    children = {child["name"]: child for child in loaded}
    assert set(children) == {"trial 0", "trial 1"}
    assert children["trial 1"]["tags"] == {"state": "PRUNED"}
    assert children["trial 0"]["params"] == {"learning_rate": "0.01", "depth": "3"}
    assert children["trial 0"]["status"] == "FINISHED"
    (first,) = [r for r in runs(client) if r.info.run_name == "trial 0"]
    assert first.data.tags["mlflow.parentRunId"] == parent.info.run_id
    history = client.get_metric_history(first.info.run_id, "val_cross_entropy")
    assert [(m.step, m.value) for m in history] == [(1, 2.0), (2, 1.5)]


def test_nothing_is_logged_with_logging_off_or_without_an_active_run(client: MlflowClient):
    tags, trials = MlflowTagsDataset(), MlflowNestedRunsDataset()
    tags.save({"a": 1})  # no active run: no stray run opened
    trials.save(TRIALS)
    assert runs(client) == []

    tags._logging_activated = trials._logging_activated = False  # as kedro-mlflow switches
    with mlflow.start_run() as run:
        tags.save({"a": 1})
        trials.save(TRIALS)

    assert [r.info.run_id for r in runs(client)] == [run.info.run_id]
    assert "a" not in client.get_run(run.info.run_id).data.tags


def test_the_epoch_logger_logs_each_epoch_as_a_step(client: MlflowClient):
    dataset = MlflowEpochLoggerDataset(prefix="training")
    with mlflow.start_run() as run:
        log_epoch = dataset.load()
        log_epoch({"epoch": 1, "train_loss": 2.0, "mean_iou": 0.2, "fingerprint": "ab12"})
        log_epoch({"epoch": 2, "train_loss": 1.5, "mean_iou": 0.3, "fingerprint": "ab12"})
        log_epoch.flush()  # sent from a background thread: training never waits for it

    history = client.get_metric_history(run.info.run_id, "training.val_mean_iou")
    assert [(m.step, m.value) for m in history] == [(1, 0.2), (2, 0.3)]
    # Set from the first epoch: a run that crashes is found by the run that resumes it.
    assert client.get_run(run.info.run_id).data.tags["training.fingerprint"] == "ab12"
    dataset._logging_activated = False
    with mlflow.start_run():
        assert dataset.load() is None  # tracking off: training gets no callback
    assert MlflowEpochLoggerDataset().load() is None  # no active run either


def test_a_tracking_server_that_does_not_answer_costs_a_warning(monkeypatch, caplog):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    log_epoch = EpochMetricsLogger("http://127.0.0.1:9", "0123", "training")  # discard port

    log_epoch({"epoch": 4, "train_loss": 1.0, "fingerprint": "ab12"})
    log_epoch.flush()
    log_epoch({"epoch": 5, "train_loss": 0.9, "fingerprint": "ab12"})  # not tried again
    log_epoch.flush()

    assert "Epoch 4 not logged to MLflow run 0123" in caplog.text
    assert "Epoch 5" not in caplog.text


def test_the_epoch_logger_pickles_without_its_thread():
    log_epoch = EpochMetricsLogger("sqlite:///x.db", "0123", "training")
    log_epoch._sender = ThreadPoolExecutor(1)

    copy = pickle.loads(pickle.dumps(log_epoch))

    assert (copy.tracking_uri, copy.run_id, copy.prefix) == ("sqlite:///x.db", "0123", "training")
    log_epoch.flush()


def test_the_metric_series_adds_only_the_points_the_run_lacks(client: MlflowClient):
    series = {"val_mean_iou": [{"step": s, "value": s / 10} for s in (1, 2, 3)]}
    with mlflow.start_run() as run:
        mlflow.log_metric("training.val_mean_iou", 0.1, step=1)  # logged live
        mlflow.log_metric("training.val_mean_iou", 0.2, step=2)
        MlflowMetricSeriesDataset(prefix="training").save(series)

    history = client.get_metric_history(run.info.run_id, "training.val_mean_iou")
    assert sorted((m.step, m.value) for m in history) == [(1, 0.1), (2, 0.2), (3, 0.3)]
