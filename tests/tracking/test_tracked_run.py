"""`kedro run` as a user runs it, tracked by a real MLflow server the test starts."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from tests.projects import make_project
from waymo_unet.datasets import DeployedModelDataset
from waymo_unet.tracking.model_registry import load_registered_model

TINY = ",".join(
    [
        "ingestion.height=48",
        "ingestion.width=72",
        "ingestion.workers=1",
        "tuning.n_trials=2",
        "tuning.epochs=2",
        "tuning.max_train_items=16",
        "tuning.max_val_items=8",
        "training.model.base_channels=8",
        "training.model.depth=3",
        "training.train.epochs=3",
        "training.train.num_workers=0",
        "evaluation.max_segments=1",
    ]
)
MODEL_NAME = "waymo_unet"

pytestmark = pytest.mark.slow  # whole-project runs


@dataclass
class TrackedProject:
    root: Path
    client: MlflowClient
    uri: str

    def kedro_run(self, *arguments: str) -> None:
        """``kedro run`` in the project folder, tracking to the test's server."""
        environment = {**os.environ, "MLFLOW_TRACKING_URI": self.uri}
        command = [sys.executable, "-m", "kedro", "run", "--params", TINY, *arguments]
        done = subprocess.run(
            command, cwd=self.root, env=environment, capture_output=True, text=True, timeout=900
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    def runs(self) -> list[Run]:
        experiment = self.client.get_experiment_by_name("waymo_unet")
        if experiment is None:
            return []
        return self.client.search_runs([experiment.experiment_id], order_by=["start_time ASC"])

    def top_level_runs(self) -> list[Run]:
        return [run for run in self.runs() if "mlflow.parentRunId" not in run.data.tags]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, mlflow_server: str) -> TrackedProject:
    """A project copy after one default `kedro run` (every pipeline) tracked by the server."""
    tracked = TrackedProject(
        make_project(tmp_path_factory.mktemp("tracked")), MlflowClient(mlflow_server), mlflow_server
    )
    tracked.kedro_run()
    return tracked


@pytest.fixture(scope="module")
def default_run(project: TrackedProject) -> Run:
    (run,) = project.top_level_runs()
    return run


@pytest.fixture
def registry_at(project: TrackedProject) -> Iterator[None]:
    """The server as this process's tracking and registry URI for one test."""
    mlflow.set_tracking_uri(project.uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(None)


def test_one_run_named_after_the_pipelines_holds_every_parameter(default_run: Run):
    params = default_run.data.params

    assert default_run.info.run_name == "__default__"
    assert default_run.info.status == "FINISHED"
    assert params["ingestion.height"] == "48"
    assert params["training.train.epochs"] == "3"
    assert params["training.model.base_channels"] == "8"
    assert params["tuning.n_trials"] == "2"
    assert "evaluation.split" in params


def test_each_epoch_is_one_metric_point(project: TrackedProject, default_run: Run):
    run_id = default_run.info.run_id
    for name in ("train_loss", "val_loss", "val_mean_iou", "val_pixel_accuracy", "learning_rate"):
        history = project.client.get_metric_history(run_id, f"training.{name}")
        assert [point.step for point in history] == [1, 2, 3], name
    metrics = default_run.data.metrics
    assert 0 < metrics["evaluation.waymo_weighted_miou"] <= 1
    assert "evaluation.at_training_size.miou" in metrics
    assert "training.majority_class_mean_iou" in metrics


def test_the_data_and_the_training_run_are_tagged(default_run: Run):
    tags = default_run.data.tags

    assert tags["data.image_size"] == "48x72"
    assert int(tags["data.training_segments"]) > 0
    assert len(tags["data.shard_index_digest"]) == 16
    assert len(tags["data.label_catalog_digest"]) == 16
    assert tags["training.resumed_after_epoch"] == "0"
    assert tags["tuned.trial"].isdigit()  # the default run tunes, then trains with the best
    # What trained: the tuned value, beside the parameter as written.
    assert default_run.data.params["trained.train.learning_rate"] == tags["tuned.learning_rate"]


def test_the_report_and_the_label_catalogue_are_artifacts(project: TrackedProject, default_run):
    def listed(folder: str) -> set[str]:
        artifacts = project.client.list_artifacts(default_run.info.run_id, folder)
        return {Path(a.path).name for a in artifacts}

    assert {"training_chart.png", "index.html", "validation_overlays.png"} <= listed("report")
    assert {"label_catalog.csv", "label_catalog.json"} <= listed("label_catalog")
    assert {"evaluation_metrics.json", "class_iou.csv"} <= listed("evaluation")
    assert "training_history.csv" in listed("training")


def test_tuning_trials_are_nested_runs_with_their_epochs(project: TrackedProject, default_run):
    trials = [
        run
        for run in project.runs()
        if run.data.tags.get("mlflow.parentRunId") == default_run.info.run_id
    ]

    assert sorted(run.info.run_name for run in trials) == ["trial 0", "trial 1"]
    for trial in trials:
        assert set(trial.data.params) >= {"learning_rate", "base_channels"}
        assert trial.data.tags["state"] in {"COMPLETE", "PRUNED"}
        history = project.client.get_metric_history(trial.info.run_id, "val_cross_entropy")
        assert [point.step for point in history][:1] == [1]


def test_the_registered_version_predicts_the_deployed_models_labels(
    project: TrackedProject, default_run: Run, registry_at: None
):
    (version,) = project.client.search_model_versions(f"name='{MODEL_NAME}'")
    deployed = DeployedModelDataset(str(project.root / "data/06_models/deployed")).load()
    shards = project.root / "data/03_primary/shards/validation"
    images = np.concatenate([np.load(path) for path in sorted(shards.glob("*/images.npy"))])

    registered = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}/{version.version}")
    expected = deployed.waymo_ids[deployed.predict_indices(torch.from_numpy(images)).numpy()]

    assert version.run_id == default_run.info.run_id
    assert np.array_equal(registered.predict(images), expected)
    assert np.array_equal(
        load_registered_model(MODEL_NAME, version.version).predict_indices(
            torch.from_numpy(images)
        ),
        deployed.predict_indices(torch.from_numpy(images)),
    )


def test_reusing_the_finished_training_registers_no_new_version(
    project: TrackedProject, default_run: Run
):
    project.kedro_run("--pipeline", "training")

    latest = project.top_level_runs()[-1]
    assert latest.info.run_name == "training"
    assert latest.data.tags["training.reused_finished_run"] == "True"
    assert latest.data.tags["training.fingerprint"] == default_run.data.tags["training.fingerprint"]
    assert len(project.client.search_model_versions(f"name='{MODEL_NAME}'")) == 1
    assert latest.data.tags["registered_model_version"] == "1"
    # Every epoch it restored, once: nothing was logged live.
    history = project.client.get_metric_history(latest.info.run_id, "training.val_mean_iou")
    assert [point.step for point in history] == [1, 2, 3]


def test_inference_runs_on_a_registered_version(project: TrackedProject, default_run: Run):
    labels = project.root / "data/07_model_output/predictions/labels"
    project.kedro_run("--pipeline", "inference")  # the deployed model's folder
    from_folder = {path.name: path.read_bytes() for path in labels.glob("*.png")}
    override = project.root / "conf/local/catalog.yml"
    override.write_text(
        "models_deployed_model:\n"
        "  type: waymo_unet.datasets.MlflowRegisteredModelDataset\n"
        f"  model_name: {MODEL_NAME}\n"
        "  version: 1\n"
    )
    try:
        project.kedro_run("--pipeline", "inference")
    finally:
        override.unlink()

    from_registry = {path.name: path.read_bytes() for path in labels.glob("*.png")}
    assert from_folder
    assert from_registry == from_folder


def test_tracking_off_makes_no_run(project: TrackedProject):
    before = len(project.runs())
    (project.root / "conf/local/mlflow.yml").write_text("enabled: false\n")
    try:
        project.kedro_run("--pipeline", "label_catalog")
    finally:
        (project.root / "conf/local/mlflow.yml").unlink()

    assert len(project.runs()) == before
