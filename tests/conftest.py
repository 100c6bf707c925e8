"""Shared fixtures: a small synthetic sample in the Waymo v2 layout, made once per session."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.tiny_shards import write_tiny_shards
from waymo_unet.data.synthetic import SyntheticConfig, generate_sample

os.environ.setdefault("DO_NOT_TRACK", "1")  # no kedro-telemetry calls from tests
# MLflow's client sends usage telemetry from `import mlflow` on unless this is set (it
# takes DO_NOT_TRACK only when it is "true"); it reads it again at each tracked call.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# gcsfs reads this when first imported: its hierarchical-namespace probe, which the GCS
# emulator of tests/test_gcs.py never answers, would stall every call for a minute.
os.environ["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] = "false"

# Smaller than the embedded sample: two labelled training segments, one validation
# segment and one training segment without labels.
TINY_SAMPLE = SyntheticConfig(
    seed=7,
    training_segments=2,
    validation_segments=1,
    unlabelled_segments=1,
    frames_per_segment=8,
)


@pytest.fixture(scope="session")
def synthetic_sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Root of a tiny raw sample: ``<root>/<split>/<component>/<segment>.parquet``."""
    root = tmp_path_factory.mktemp("raw")
    generate_sample(root, TINY_SAMPLE)
    return root


@pytest.fixture
def tiny_shards(tmp_path: Path):
    """A learnable 16x24 shard store (colour gives the class) and its shard index."""
    return write_tiny_shards(tmp_path / "shards")


@pytest.fixture(autouse=True)
def no_inherited_tracking_uri(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts without MLFLOW_TRACKING_URI: MLflow exports the URI a Kedro session
    set it to, which would send a later test's runs (and subprocesses') to that store."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


@pytest.fixture(scope="session", autouse=True)
def no_mlflow_store_in_the_checkout() -> Iterator[None]:
    """Runs track into their project copies: a store appearing here means a test leaked."""
    checkout = Path(__file__).resolve().parents[1]
    stores = [checkout / name for name in ("mlflow.db", "mlruns", "mlartifacts")]
    before = {store for store in stores if store.exists()}
    yield
    leaked = {store for store in stores if store.exists()} - before
    assert not leaked, f"tests wrote MLflow stores into the checkout: {sorted(leaked)}"


@pytest.fixture(scope="session")
def empty_mlflow_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite MLflow store with its tables made: making them takes seconds, copying none."""
    import mlflow  # here: most tests never need it, and it takes seconds to import

    path = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    mlflow.MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def mlflow_experiment(empty_mlflow_store: Path, tmp_path: Path) -> Iterator[str]:
    """Id of an experiment in a fresh store of the test's own, set as the tracking URI and
    active experiment; every run is ended and the URI unset after the test."""
    import mlflow

    uri = f"sqlite:///{shutil.copy(empty_mlflow_store, tmp_path / 'mlflow.db')}"
    mlflow.set_tracking_uri(uri)  # exports MLFLOW_TRACKING_URI too
    try:
        # Artifacts under tmp_path: a SQLite store keeps them in ./mlruns by default.
        experiment = mlflow.create_experiment("test", (tmp_path / "artifacts").as_uri())
        mlflow.set_experiment(experiment_id=experiment)
        yield experiment
    finally:
        while mlflow.active_run() is not None:
            mlflow.end_run()
        mlflow.set_tracking_uri(None)  # unset, not a relative default left behind
