"""Ingestion on a Dask LocalCluster of 2 worker processes, including a worker killed mid-run."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from distributed import Client, LocalCluster

from waymo_unet.data.ingest import (
    IngestionConfig,
    SegmentJob,
    SegmentResult,
    ingest_segment,
    ingest_segments,
    plan_segment_jobs,
)
from waymo_unet.data.parallel import map_unordered
from waymo_unet.data.results import class_histograms, shard_index
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
