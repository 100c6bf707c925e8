"""A user's `kedro run`, with no opt-out in the environment, sends nothing and writes nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.projects import make_project

# The project's own opt-outs (.telemetry for Kedro, settings.py for MLflow) must do it.
OPT_OUTS = ("DO_NOT_TRACK", "KEDRO_DISABLE_TELEMETRY", "MLFLOW_DISABLE_TELEMETRY")


def test_a_run_leaves_pyproject_untouched_and_the_log_free_of_telemetry(tmp_path: Path):
    project = make_project(tmp_path)
    pyproject = (project / "pyproject.toml").read_bytes()
    environment = {k: v for k, v in os.environ.items() if k not in OPT_OUTS}
    finished = subprocess.run(
        [
            sys.executable,
            "-m",
            "kedro",
            "run",
            "--pipelines",
            "ingestion",
            "--params",
            "ingestion.height=16,ingestion.width=24,ingestion.workers=1,ingestion.max_segments=1",
        ],
        cwd=project,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert (project / "pyproject.toml").read_bytes() == pyproject
    log = (finished.stdout + finished.stderr).lower()
    assert "telemetry" not in log
    assert "heap" not in log
