"""Where runs go: the project's own SQLite store unless a URI is given."""

from __future__ import annotations

from pathlib import Path

import pytest

from waymo_unet.hooks import with_project_store

PROJECT = Path("/home/user/waymo-unet")


def artifact_location(settings: dict) -> str | None:
    experiment = settings.get("tracking", {}).get("experiment", {})
    return experiment.get("create_experiment_kwargs", {}).get("artifact_location")


def test_without_a_uri_runs_go_to_a_sqlite_file_in_the_project():
    settings = with_project_store({"server": {"mlflow_tracking_uri": None}}, PROJECT)

    assert settings["server"]["mlflow_tracking_uri"] == f"sqlite:///{PROJECT}/mlflow.db"
    assert artifact_location(settings) == "mlartifacts"  # kedro-mlflow makes it the project's


def test_the_environment_variable_points_at_a_server():
    settings = with_project_store(
        {"server": {"mlflow_tracking_uri": None}}, PROJECT, "http://mlflow.example:5000"
    )

    assert settings["server"]["mlflow_tracking_uri"] == "http://mlflow.example:5000"
    assert artifact_location(settings) is None  # the server decides


@pytest.mark.parametrize(
    ("configured", "expected"),
    [
        ("sqlite:///runs/mlflow.db", f"sqlite:///{PROJECT}/runs/mlflow.db"),
        ("sqlite:////srv/mlflow.db", "sqlite:////srv/mlflow.db"),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
    ],
)
def test_a_configured_uri_wins_and_a_relative_sqlite_path_is_the_projects(
    configured: str, expected: str
):
    experiment = {"name": "waymo_unet", "create_experiment_kwargs": {"artifact_location": "x"}}
    given = {"server": {"mlflow_tracking_uri": configured}, "tracking": {"experiment": experiment}}

    settings = with_project_store(given, PROJECT, "http://ignored:5000")

    assert settings["server"]["mlflow_tracking_uri"] == expected
    assert settings["tracking"]["experiment"]["name"] == "waymo_unet"
    assert artifact_location(settings) == "x"  # a configured location is kept
    assert given["server"]["mlflow_tracking_uri"] == configured  # the input is not changed
