"""Shared fixtures: a small synthetic sample in the Waymo v2 layout, made once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.tiny_shards import write_tiny_shards
from waymo_unet.data.synthetic import SyntheticConfig, generate_sample

os.environ.setdefault("DO_NOT_TRACK", "1")  # no kedro-telemetry calls from tests
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
