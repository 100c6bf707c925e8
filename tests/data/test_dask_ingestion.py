"""Ingestion on a Dask LocalCluster of 2 worker processes, including a worker killed mid-run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from distributed import Client, LocalCluster, get_task_stream

from tests.projects import make_project
from waymo_unet.data.ingest import ingest_segments, plan_segment_jobs
from waymo_unet.data.ingestion_config import IngestionConfig
from waymo_unet.data.parallel import map_unordered
from waymo_unet.data.results import class_histograms, shard_index
from waymo_unet.data.segment import SegmentJob, ingest_segment
from waymo_unet.data.segment_result import SegmentResult
from waymo_unet.data.shards import ShardStore
from waymo_unet.datasets import WaymoComponentDataset

CONFIG = IngestionConfig(height=24, width=36, workers=1)


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as local:
        yield local


def plan(sample: Path, shards: Path) -> list[SegmentJob]:
    images = WaymoComponentDataset(str(sample), "camera_image").load()
    labels = WaymoComponentDataset(str(sample), "camera_segmentation").load()
    return plan_segment_jobs(images, labels, ShardStore(str(shards)), CONFIG)


def shard_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.npy"))}


@pytest.fixture(scope="module")
def serial(synthetic_sample, tmp_path_factory):
    root = tmp_path_factory.mktemp("serial")
    return root, ingest_segments(plan(synthetic_sample, root), workers=1)


def test_dask_ingestion_equals_the_serial_run(cluster, serial, synthetic_sample, tmp_path):
    serial_root, serial_results = serial
    results = ingest_segments(
        plan(synthetic_sample, tmp_path), dask_scheduler=cluster.scheduler_address
    )
    assert shard_bytes(tmp_path) == shard_bytes(serial_root)
    assert shard_index(results).equals(shard_index(serial_results))
    assert class_histograms(results).equals(class_histograms(serial_results))


def ingest_slowly(job: SegmentJob) -> SegmentResult:
    """Long enough per segment for the test to kill a worker in the middle of one."""
    time.sleep(1.5)
    return ingest_segment(job)


def test_a_worker_killed_mid_ingestion_and_a_rerun_give_the_serial_outputs(
    cluster, serial, synthetic_sample, tmp_path
):
    serial_root, _ = serial
    jobs = plan(synthetic_sample, tmp_path)
    with Client(cluster.scheduler_address) as client:
        pids = client.run(os.getpid)
    results = map_unordered(ingest_slowly, jobs, 1, cluster.scheduler_address)
    finished = [next(results)]
    os.kill(next(iter(pids.values())), signal.SIGKILL)  # that worker is mid-segment
    finished += list(results)
    assert sorted(r.segment for r in finished) == sorted(job.segment for job in jobs)

    rerun = ingest_segments(plan(synthetic_sample, tmp_path), workers=1)
    assert all(result.reused for result in rerun)
    assert shard_bytes(tmp_path) == shard_bytes(serial_root)


def test_kedro_run_on_the_cluster_writes_into_the_project(cluster, tmp_path):
    """The CLI path: the workers run in another directory than the Kedro project."""
    (tmp_path / "project").mkdir()
    project = make_project(tmp_path / "project")
    assert Path.cwd() != project
    params = f"ingestion.dask_scheduler={cluster.scheduler_address},ingestion.height=24"
    with Client(cluster) as client, get_task_stream(client) as tasks:
        completed = subprocess.run(
            [sys.executable, "-m", "kedro", "run", "--pipeline", "ingestion", "--params", params],
            cwd=project,
            env={**os.environ, "DO_NOT_TRACK": "1"},
            capture_output=True,
            text=True,
            timeout=600,
        )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    ran_on_dask = [task for task in tasks.data if "ingest_segment" in str(task["key"])]
    report = pd.read_csv(project / "data" / "08_reporting" / "ingestion_report.csv")
    ingested = report[report["status"] == "ingested"]
    assert len(ran_on_dask) == len(report)
    assert len(ingested) > 0
    for row in ingested.itertuples():
        assert (project / "data" / "03_primary" / "shards" / row.split / row.segment).is_dir()
