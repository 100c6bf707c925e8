"""`--env gcs` against a local GCS emulator: the real gcsfs code reads the raw data.

The emulator (gcp-storage-emulator) runs in this process on a free port; gcsfs talks to
it through STORAGE_EMULATOR_HOST with anonymous credentials.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import gcsfs
import pandas as pd
import pyarrow.parquet as pq
import pytest
from gcp_storage_emulator.server import create_server
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from kedro.io import DatasetError

from tests import waymo_files as wf
from tests.projects import make_project
from waymo_unet.data.ingest import IngestionConfig, SegmentJob, ingest_segment
from waymo_unet.data.parquet import ComponentFile, ParquetSource
from waymo_unet.data.shards import ShardStore
from waymo_unet.data.waymo import CAMERA_IMAGE, IMAGE_COLUMN, KEY_CAMERA, KEY_TIMESTAMP

BUCKET, PREFIX = "waymo-test", "copy/v2"
PARAMS = {"ingestion": {"height": 24, "width": 36, "workers": 2}}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def emulated_gcs() -> Iterator[gcsfs.GCSFileSystem]:
    port = free_port()
    server = create_server("127.0.0.1", port, in_memory=True)
    server.start()
    saved = {
        k: os.environ.get(k) for k in ("STORAGE_EMULATOR_HOST", "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT")
    }
    os.environ["STORAGE_EMULATOR_HOST"] = f"http://127.0.0.1:{port}"
    # Emulators do not answer gcsfs's hierarchical-namespace probe: skip it.
    os.environ["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] = "false"
    try:
        yield gcsfs.GCSFileSystem(token="anon")
    finally:
        server.stop()
        for key, value in saved.items():
            os.environ.pop(key) if value is None else os.environ.__setitem__(key, value)


@pytest.fixture(scope="module")
def bucket_with_sample(emulated_gcs, synthetic_sample) -> str:
    emulated_gcs.mkdir(BUCKET)
    for path in sorted(synthetic_sample.rglob("*.parquet")):
        emulated_gcs.put(str(path), f"{BUCKET}/{PREFIX}/{path.relative_to(synthetic_sample)}")
    emulated_gcs.invalidate_cache()  # the Kedro run reuses this filesystem instance
    return f"gs://{BUCKET}/{PREFIX}"


def run_data_pipelines(project: Path, env: str | None, params: dict) -> None:
    bootstrap_project(project)
    with KedroSession.create(project_path=project, env=env, runtime_params=params) as session:
        session.run(pipeline_names=["ingestion", "label_catalog"])


@pytest.fixture(scope="module")
def local_and_gcs_runs(bucket_with_sample, synthetic_sample, tmp_path_factory):
    local = make_project(tmp_path_factory.mktemp("local"), synthetic_sample)
    run_data_pipelines(local, None, PARAMS)
    remote = make_project(tmp_path_factory.mktemp("gcs"), None)
    gcs = {"bucket": BUCKET, "prefix": PREFIX}
    run_data_pipelines(remote, "gcs", PARAMS | {"gcs": gcs})
    return local / "data", remote / "data"


def test_gcs_ingestion_matches_the_local_run(local_and_gcs_runs):
    local, remote = local_and_gcs_runs
    for table in ("03_primary/shard_index.parquet", "02_intermediate/class_histograms.parquet"):
        pd.testing.assert_frame_equal(
            pd.read_parquet(local / table), pd.read_parquet(remote / table)
        )
    pd.testing.assert_frame_equal(
        pd.read_csv(local / "05_model_input/label_catalog.csv"),
        pd.read_csv(remote / "05_model_input/label_catalog.csv"),
    )
    reports = [
        # when and where each segment ran differ between runs; what was read and written not
        pd.read_csv(d / "08_reporting/ingestion_report.csv").drop(columns=["seconds", "worker"])
        for d in (local, remote)
    ]
    pd.testing.assert_frame_equal(*reports)
    shards = sorted(p.relative_to(local) for p in (local / "03_primary/shards").rglob("*.npy"))
    assert shards
    for shard in shards:
        assert (local / shard).read_bytes() == (remote / shard).read_bytes(), shard


def test_a_missing_bucket_names_the_path(bucket_with_sample, tmp_path):
    project = make_project(tmp_path, None)
    with pytest.raises(DatasetError, match=r"gs://no-such-bucket/copy/v2: the bucket or folder"):
        run_data_pipelines(
            project, "gcs", PARAMS | {"gcs": {"bucket": "no-such-bucket", "prefix": PREFIX}}
        )


def test_a_missing_object_names_the_path(bucket_with_sample):
    path = f"{bucket_with_sample}/training/camera_image/gone.parquet"
    with pytest.raises(FileNotFoundError, match=f"{path}: no such file or object"):
        ComponentFile(ParquetSource(path, {"token": "anon"}), CAMERA_IMAGE)


def test_a_bucket_serves_only_the_labelled_row_groups(emulated_gcs, tmp_path, monkeypatch):
    """What gcsfs really fetches: ranges of the needed columns and row groups, no more."""
    fetched: list[tuple[str, int]] = []
    fetch = gcsfs.GCSFileSystem._cat_file_sequential

    async def recording_fetch(self, path, start=None, end=None, **kwargs):
        data = await fetch(self, path, start=start, end=end, **kwargs)
        fetched.append((path, len(data)))
        return data

    monkeypatch.setattr(gcsfs.GCSFileSystem, "_cat_file_sequential", recording_fetch)
    height, width = 256, 384
    images = [wf.image_row(f, c, height, width) for f in range(16) for c in (1, 2, 3)]
    labels = [wf.label_row(f, c, height, width) for f in (4, 5) for c in (1, 2, 3)]
    image_path, label_path = wf.write_segment(tmp_path / "raw", images, labels, row_group_size=6)
    emulated_gcs.mkdir("row-groups")
    remote = {}
    for name, path in (("images", image_path), ("labels", label_path)):
        remote[name] = f"gs://row-groups/{name}.parquet"
        emulated_gcs.put(str(path), remote[name])
    job = SegmentJob(
        "training",
        wf.SEGMENT,
        ParquetSource(remote["images"], {"token": "anon"}),
        ParquetSource(remote["labels"], {"token": "anon"}),
        ShardStore(str(tmp_path / "shards")),
        IngestionConfig(32, 48),
    )
    result = ingest_segment(job)

    assert result.pairs_written == 6
    # 8 row groups of 2 frames; the labelled frames 4 and 5 are all in the third. Needed:
    # the footer (pyarrow reads the last 64 KiB), every row group's key columns, and the
    # image column of the third row group.
    metadata = pq.ParquetFile(image_path).metadata
    names = metadata.schema.names
    keys = [names.index(KEY_TIMESTAMP), names.index(KEY_CAMERA)]
    needed = (
        min(64 * 2**10, image_path.stat().st_size)
        + sum(
            metadata.row_group(g).column(c).total_compressed_size
            for g in range(metadata.num_row_groups)
            for c in keys
        )
        + metadata.row_group(2).column(names.index(IMAGE_COLUMN)).total_compressed_size
    )
    image_bytes = sum(size for path, size in fetched if path.endswith("images.parquet"))
    assert image_bytes <= needed < image_path.stat().st_size / 2
