"""The whole Kedro project, run as a user runs it, with tiny parameters."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from mlflow.tracking import MlflowClient

from tests.projects import make_project


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """The project's conf and embedded raw sample in a scratch folder, so outputs land there."""
    return make_project(tmp_path)


TINY = {
    "ingestion": {"height": 48, "width": 72, "workers": 2},
    "tuning": {"n_trials": 2, "epochs": 1, "max_train_items": 16, "max_val_items": 8},
    "training": {
        "model": {"base_channels": 8, "depth": 3},
        "train": {"epochs": 8, "batch_size": 8, "learning_rate": 0.005, "num_workers": 1},
    },
}


@pytest.mark.slow
def test_the_default_run_ingests_tunes_learns_and_reports(project_copy: Path):
    bootstrap_project(project_copy)
    with KedroSession.create(project_path=project_copy, runtime_params=TINY) as session:
        session.run()
    with KedroSession.create(project_path=project_copy, runtime_params=TINY) as session:
        session.run(pipeline_names=["inference"])
    assert_tracked_in_the_project_store(project_copy)

    data = project_copy / "data"
    report = pd.read_csv(data / "08_reporting" / "ingestion_report.csv")
    index = pd.read_parquet(data / "03_primary" / "shard_index.parquet")
    catalog = pd.read_csv(data / "05_model_input" / "label_catalog.csv")
    assert (report["status"] == "no_label_file").sum() == 1
    assert len(index) == report["pairs_written"].sum() > 0
    assert catalog["train_index"].notna().sum() >= 8
    shard = data / "03_primary" / "shards" / index["split"][0] / index["segment"][0]
    assert (shard / "images.npy").exists()
    assert (shard / "result.json").exists()

    metrics = json.loads((data / "07_model_output" / "training_metrics.json").read_text())
    history = pd.read_csv(data / "07_model_output" / "training_history.csv")
    assert len(history) == 8
    assert metrics["mean_iou"] > metrics["majority_class_mean_iou"] + 0.3
    assert (data / "06_models" / "segmentation_model.pt").exists()

    trials = pd.read_csv(data / "07_model_output" / "tuning_trials.csv")
    assert len(trials) == 2
    tuned = json.loads((data / "05_model_input" / "tuned_hyperparameters.json").read_text())
    assert set(tuned["hyperparameters"]) >= {"learning_rate", "base_channels"}
    for chart in ("tuning_chart", "training_chart", "class_iou_chart", "class_distribution_chart"):
        for suffix in ("vl.json", "html", "png"):
            assert (data / "08_reporting" / f"{chart}.{suffix}").exists()
    page = (data / "08_reporting" / "index.html").read_text()
    assert "Validation overlays" in page
    assert "Waymo evaluation: lowest weighted IoU" in page

    evaluation = data / "07_model_output" / "evaluation"
    waymo_metric = json.loads((evaluation / "evaluation_metrics.json").read_text())
    at_training_size = json.loads(
        (evaluation / "evaluation_metrics_at_training_size.json").read_text()
    )
    validation_labels = report.loc[report["split"] == "validation", "label_rows"].sum()
    assert waymo_metric["images"] == at_training_size["images"] == validation_labels
    assert waymo_metric["quarantined_rows"] == 0
    assert waymo_metric["images_without_coverage"] == 0
    # The model learnt something, and upsampling its logits keeps most of it.
    assert waymo_metric["waymo_weighted_miou"] > metrics["majority_class_mean_iou"] + 0.2
    assert abs(waymo_metric["miou"] - at_training_size["miou"]) < 0.15
    assert (data / "08_reporting" / "evaluation_gallery.png").exists()

    labels = sorted((data / "07_model_output" / "predictions" / "labels").glob("*.png"))
    validation_images = report.loc[report["split"] == "validation", "image_rows"].sum()
    assert len(labels) == validation_images  # every validation camera image, labelled or not


def assert_tracked_in_the_project_store(project: Path) -> None:
    """No server: both runs went to the project's own SQLite store, and both ended."""
    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("waymo_unet")
    runs = client.search_runs([experiment.experiment_id], order_by=["start_time ASC"])
    top_level = [run for run in runs if "mlflow.parentRunId" not in run.data.tags]
    assert [run.info.run_name for run in top_level] == ["__default__", "inference"]
    assert {run.info.status for run in runs} == {"FINISHED"}
    assert experiment.artifact_location.startswith((project / "mlartifacts").as_uri())
    assert mlflow.active_run() is None  # nothing left open in this process
