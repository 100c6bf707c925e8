"""Ingestion nodes: map ``ingest_segment`` over the segments, then tabulate the results."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from waymo_unet.data import results as tables
from waymo_unet.data.ingest import SourceTree, ingest_segments, plan_segment_jobs
from waymo_unet.data.ingestion_config import IngestionConfig
from waymo_unet.data.segment_result import SegmentResult
from waymo_unet.data.shards import ShardStore

logger = logging.getLogger(__name__)


def ingest_camera_segments(
    camera_images: SourceTree,
    camera_segmentation: SourceTree,
    shard_store: ShardStore,
    params: dict[str, Any],
) -> list[SegmentResult]:
    """Decode every chosen segment into a shard; segments done alike before are reused."""
    config = IngestionConfig.from_params(params)
    jobs = plan_segment_jobs(camera_images, camera_segmentation, shard_store, config)
    return ingest_segments(jobs, config.workers, config.dask_scheduler, config.task_retries)


def build_ingestion_report(
    segment_results: list[SegmentResult],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The per-segment report and the quarantined rows."""
    report = tables.ingestion_report(segment_results)
    quarantine = tables.quarantine_table(segment_results)
    logger.info(
        "Ingestion: %d segment(s), %d pair(s) written, %d unlabelled image(s) skipped, "
        "%d row(s) quarantined",
        len(report),
        report["pairs_written"].sum(),
        report["unlabelled_images"].sum(),
        len(quarantine),
    )
    if len(quarantine):
        logger.warning("Quarantined rows by reason:\n%s", quarantine["reason"].value_counts())
    return report, quarantine


def build_shard_index(segment_results: list[SegmentResult]) -> pd.DataFrame:
    """One row per training item: split, segment, position in its shard, source keys."""
    return tables.shard_index(segment_results)


def merge_class_histograms(segment_results: list[SegmentResult]) -> pd.DataFrame:
    """Per-segment class pixel counts, measured at full resolution during decoding."""
    return tables.class_histograms(segment_results)
