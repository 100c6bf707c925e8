"""DDP entries on one machine: `training.nproc_per_node=2` and the torchrun program."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from mlflow.tracking import MlflowClient

from tests.projects import make_project

DATA = {"ingestion": {"height": 32, "width": 48, "workers": 1}}
TRAINING = ",".join(
    [
        "training.train.epochs=2",
        "training.train.num_workers=0",
        "training.model.base_channels=4",
        "training.model.depth=2",
        "training.use_tuned=false",
    ]
)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A project copy whose shards and label catalogue exist."""
    root = make_project(tmp_path_factory.mktemp("project"))
    bootstrap_project(root)
    with KedroSession.create(project_path=root, runtime_params=DATA) as session:
        session.run(pipeline_names=["ingestion", "label_catalog"])
    return root


def kedro_params(text: str) -> dict:
    from waymo_unet.train_distributed import parse_params

    return parse_params(text)


def test_the_training_pipeline_runs_on_two_ranks(project):
    params = kedro_params(f"{TRAINING},training.nproc_per_node=2") | DATA
    with KedroSession.create(project_path=project, runtime_params=params) as session:
        session.run(node_names=["train_segmentation_model", "export_deployable_model"])
    history = pd.read_csv(project / "data" / "07_model_output" / "training_history.csv")
    assert list(history["epoch"]) == [1, 2]
    assert (project / "data" / "06_models" / "deployed" / "model.pt2").exists()


def test_the_torchrun_program_trains_and_saves_through_the_catalog(project):
    output = project / "data" / "07_model_output" / "training_metrics.json"
    output.unlink(missing_ok=True)
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nnodes",
        "1",
        "--nproc-per-node",
        "2",
        "-m",
        "waymo_unet.train_distributed",
        "--params",
        f"{TRAINING},training.train.retrain=true,ingestion.height=32,ingestion.width=48",
    ]
    environment = {**os.environ, "DO_NOT_TRACK": "1", "OMP_NUM_THREADS": "1"}
    finished = subprocess.run(
        command, cwd=project, env=environment, capture_output=True, text=True, timeout=600
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert json.loads(output.read_text())["epochs"] == 2
    assert "Rank 1 of 2" in finished.stderr + finished.stdout
    # Rank 0 alone recorded the run, in the project's own MLflow store.
    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("waymo_unet")
    runs = client.search_runs(
        [experiment.experiment_id], filter_string="attributes.run_name = 'training (torchrun)'"
    )
    (run,) = runs
    assert run.data.params["training.nproc_per_node"] == "1"
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "training.train_loss")]
    assert steps == [1, 2]
    assert run.data.tags["data.image_size"] == "32x48"
