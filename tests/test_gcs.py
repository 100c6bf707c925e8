"""`--env gcs` against a local GCS emulator: the real gcsfs code reads the raw data.

The emulator (gcp-storage-emulator) runs in this process on a free port; gcsfs talks to
it through STORAGE_EMULATOR_HOST with anonymous credentials. Runs go through Kedro's own
`kedro run` command (in this process), so `--params` is parsed as a user's would be.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import gcsfs
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch
from click.testing import CliRunner
from gcp_storage_emulator.server import create_server
from kedro.config import OmegaConfigLoader
from kedro.framework.cli.project import run as kedro_run_command
from kedro.framework.startup import bootstrap_project
from kedro.io import DatasetError
from omegaconf.errors import InterpolationResolutionError

from tests import waymo_files as wf
from tests.evaluation.models import HalvesModel
from tests.projects import PROJECT, make_project
from waymo_unet.config_resolvers import gcs_url
from waymo_unet.data.ingestion_config import IngestionConfig
from waymo_unet.data.parquet import ComponentFile, ParquetSource
from waymo_unet.data.segment import SegmentJob, ingest_segment
from waymo_unet.data.shards import ShardStore
from waymo_unet.data.waymo import (
    CAMERA_IMAGE,
    CAMERA_SEGMENTATION,
    IMAGE_COLUMN,
    KEY_CAMERA,
    KEY_TIMESTAMP,
)
from waymo_unet.datasets import WaymoComponentDataset
from waymo_unet.evaluation.evaluate import EvaluationConfig, evaluate_raw_files
from waymo_unet.evaluation.reading import plan_evaluation
from waymo_unet.settings import CONFIG_LOADER_ARGS

# Waymo's own bucket keeps the files at its root; a user's copy sits under a folder.
OFFICIAL_BUCKET = "waymo_open_dataset_v_2_0_1"
COPY_BUCKET, COPY_PREFIX = "waymo-test", "mirror/waymo"
DATA_PIPELINES = "ingestion,label_catalog"
INGESTION_PARAMS = "ingestion.height=24,ingestion.width=36,ingestion.workers=2"


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


def upload_sample(fs: gcsfs.GCSFileSystem, sample: Path, root: str) -> None:
    for path in sorted(sample.rglob("*.parquet")):
        fs.put(str(path), f"{root}/{path.relative_to(sample).as_posix()}")


@pytest.fixture(scope="module")
def buckets_with_sample(emulated_gcs, synthetic_sample) -> str:
    """The sample at the root of Waymo's bucket, beside the objects that sit there, and
    under the prefix of a user's copy; returns the copy's ``gs://`` root."""
    emulated_gcs.mkdir(OFFICIAL_BUCKET)
    upload_sample(emulated_gcs, synthetic_sample, OFFICIAL_BUCKET)
    # What else sits at the root of Waymo's bucket: ingestion must list past it. A
    # testing split it is not asked for, and a component whose bytes would fail if read.
    camera_image = next(synthetic_sample.glob("validation/camera_image/*.parquet"))
    emulated_gcs.put(
        str(camera_image), f"{OFFICIAL_BUCKET}/testing/camera_image/{camera_image.name}"
    )
    emulated_gcs.pipe(f"{OFFICIAL_BUCKET}/LICENSE", b"Waymo Dataset License Agreement\n")
    emulated_gcs.pipe(
        f"{OFFICIAL_BUCKET}/training/camera_box/{camera_image.name}", b"not a parquet file"
    )
    emulated_gcs.mkdir(COPY_BUCKET)
    upload_sample(emulated_gcs, synthetic_sample, f"{COPY_BUCKET}/{COPY_PREFIX}")
    emulated_gcs.invalidate_cache()  # the Kedro runs reuse this filesystem instance
    return f"gs://{COPY_BUCKET}/{COPY_PREFIX}"


def kedro_run(project: Path, *args: str) -> None:
    """``kedro run ARGS`` in ``project``, in this process (where the emulator runs)."""
    bootstrap_project(project)
    with contextlib.chdir(project):
        result = CliRunner().invoke(kedro_run_command, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output


def run_data_pipelines_from_bucket(project: Path, gcs_params: str) -> Path:
    params = f"{INGESTION_PARAMS},{gcs_params}"
    kedro_run(project, "--env", "gcs", "--pipelines", DATA_PIPELINES, "--params", params)
    return project / "data"


@pytest.fixture(scope="module")
def local_run(synthetic_sample, tmp_path_factory) -> Path:
    project = make_project(tmp_path_factory.mktemp("local"), synthetic_sample)
    kedro_run(project, "--pipelines", DATA_PIPELINES, "--params", INGESTION_PARAMS)
    return project / "data"


def assert_same_outputs(local: Path, remote: Path) -> None:
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


@pytest.mark.parametrize(
    "gcs_params",
    [
        # `gcs.prefix=` reaches the catalog as None (Kedro's --params parser)
        pytest.param(f"gcs.bucket={OFFICIAL_BUCKET},gcs.prefix=", id="official-bucket-root"),
        pytest.param(f"gcs.bucket={COPY_BUCKET},gcs.prefix={COPY_PREFIX}", id="users-copy"),
    ],
)
def test_gcs_ingestion_matches_the_local_run(buckets_with_sample, local_run, tmp_path, gcs_params):
    remote = run_data_pipelines_from_bucket(make_project(tmp_path, None), gcs_params)
    assert_same_outputs(local_run, remote)


def raw_data_root(runtime_params: dict) -> str:
    loader = OmegaConfigLoader(
        str(PROJECT / "conf"), env="gcs", runtime_params=runtime_params, **CONFIG_LOADER_ARGS
    )
    return loader["catalog"]["raw_camera_images"]["path"]


@pytest.mark.parametrize(
    ("gcs", "root"),
    [
        pytest.param({"bucket": OFFICIAL_BUCKET}, f"gs://{OFFICIAL_BUCKET}", id="no-prefix"),
        pytest.param(
            {"bucket": OFFICIAL_BUCKET, "prefix": None},
            f"gs://{OFFICIAL_BUCKET}",
            id="empty-prefix",
        ),
        pytest.param(
            {"bucket": COPY_BUCKET, "prefix": f"/{COPY_PREFIX}/"},
            f"gs://{COPY_BUCKET}/{COPY_PREFIX}",
            id="prefix",
        ),
    ],
)
def test_the_catalog_reads_the_bucket_root_unless_a_prefix_is_given(gcs, root):
    assert raw_data_root({"gcs": gcs}) == root


def test_the_bucket_defaults_to_waymos_own():
    assert raw_data_root({}) == f"gs://{OFFICIAL_BUCKET}"
    assert (
        raw_data_root({"gcs": {"prefix": COPY_PREFIX}}) == f"gs://{OFFICIAL_BUCKET}/{COPY_PREFIX}"
    )


def test_an_empty_bucket_is_refused_by_name():
    with pytest.raises(InterpolationResolutionError, match=r"gcs\.bucket is empty"):
        raw_data_root({"gcs": {"bucket": None}})


@pytest.mark.parametrize(
    ("prefix", "url"),
    [
        (None, "gs://bucket"),
        ("", "gs://bucket"),
        ("/", "gs://bucket"),
        ("a/", "gs://bucket/a"),
        ("/a/b/", "gs://bucket/a/b"),
        ("a//b", "gs://bucket/a/b"),
        (2024, "gs://bucket/2024"),  # Kedro's --params parser turns digits into a number
    ],
)
def test_gcs_url_skips_an_empty_prefix_and_normalises_slashes(prefix, url):
    assert gcs_url("bucket", prefix) == url
    assert gcs_url("gs://bucket/", prefix) == url


@pytest.mark.parametrize(
    ("bucket", "message"),
    [(None, r"gcs\.bucket is empty"), ("", r"gcs\.bucket is empty"), ("a/b", "holds a path")],
)
def test_gcs_url_refuses_a_missing_or_nested_bucket(bucket, message):
    with pytest.raises(ValueError, match=message):
        gcs_url(bucket, "prefix")


def test_a_missing_bucket_names_the_path(buckets_with_sample, tmp_path):
    with pytest.raises(
        DatasetError, match=rf"gs://no-such-bucket/{COPY_PREFIX}: the bucket or folder"
    ):
        run_data_pipelines_from_bucket(
            make_project(tmp_path, None), f"gcs.bucket=no-such-bucket,gcs.prefix={COPY_PREFIX}"
        )


def test_a_missing_object_names_the_path(buckets_with_sample):
    path = f"{buckets_with_sample}/training/camera_image/gone.parquet"
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


def test_evaluation_reads_a_bucket_as_it_reads_a_folder(buckets_with_sample, synthetic_sample):
    # The evaluation pipeline reads the same raw catalog entries that `--env gcs` points
    # at the bucket: the scores from the bucket equal those from the local files.
    def evaluate(root: str, credentials: dict | None = None):
        images = WaymoComponentDataset(root, CAMERA_IMAGE, credentials=credentials).load()
        labels = WaymoComponentDataset(root, CAMERA_SEGMENTATION, credentials=credentials)
        config = EvaluationConfig(device="cpu", precision="fp32", decode_threads=2)
        segments = plan_evaluation(images, labels.load(), config.split)
        return evaluate_raw_files(HalvesModel(), segments, config)

    local = evaluate(str(synthetic_sample))
    remote = evaluate(buckets_with_sample, {"token": "anon"})
    assert len(remote.images) > 0
    pd.testing.assert_frame_equal(local.images, remote.images)
    assert torch.equal(local.confusion.weighted, remote.confusion.weighted)
    assert remote.segments[0].sources["camera_image"]["path"].startswith("gs://")
