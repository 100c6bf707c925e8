"""The whole Kedro project, run as a user runs it, with tiny parameters."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

PROJECT = Path(__file__).resolve().parents[1]


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """The project's conf and embedded raw sample in a scratch folder, so outputs land there."""
    shutil.copy(PROJECT / "pyproject.toml", tmp_path)
    shutil.copytree(PROJECT / "conf", tmp_path / "conf", ignore=shutil.ignore_patterns("local"))
    (tmp_path / "conf" / "local").mkdir()
    (tmp_path / "src").mkdir()  # the package itself is installed; Kedro wants the folder
    shutil.copytree(PROJECT / "data" / "01_raw", tmp_path / "data" / "01_raw")
    return tmp_path


@pytest.mark.slow
def test_ingestion_and_label_catalog_run_on_the_embedded_sample(project_copy: Path):
    bootstrap_project(project_copy)
    params = {"ingestion": {"height": 32, "width": 48, "workers": 2}}
    with KedroSession.create(project_path=project_copy, runtime_params=params) as session:
        session.run(pipeline_names=["ingestion", "label_catalog"])

    data = project_copy / "data"
    report = pd.read_csv(data / "08_reporting" / "ingestion_report.csv")
    index = pd.read_parquet(data / "03_primary" / "shard_index.parquet")
    catalog = pd.read_csv(data / "05_model_input" / "label_catalog.csv")
    assert (report["status"] == "no_label_file").sum() >= 1
    assert len(index) == report["pairs_written"].sum() > 0
    assert (data / "05_model_input" / "label_catalog.json").exists()
    assert catalog["train_index"].notna().sum() >= 8
    shard = data / "03_primary" / "shards" / index["split"][0] / index["segment"][0]
    assert (shard / "images.npy").exists()
    assert (shard / "result.json").exists()
