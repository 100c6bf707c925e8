"""Ingestion of many segments: plan one job per segment, run them, log how it went.

``plan_segment_jobs`` turns the listed parquet files into ``SegmentJob``s;
``ingest_segments`` maps ``ingest_segment`` (``waymo_unet.data.segment``) over them
serially, in a process pool or on a Dask cluster, with a progress bar, and says which
segments were reused, which redone and why, and which yield no pairs.
"""

from __future__ import annotations

import logging
import time
from collections import Counter

from tqdm.auto import tqdm

from waymo_unet.data.ingestion_config import IngestionConfig
from waymo_unet.data.parallel import map_unordered, resolve_workers
from waymo_unet.data.parquet import ParquetSource
from waymo_unet.data.segment import SegmentJob, ingest_segment
from waymo_unet.data.segment_result import SegmentResult
from waymo_unet.data.shards import ShardStore
from waymo_unet.data.waymo import CAMERA_SEGMENTATION

logger = logging.getLogger(__name__)


SourceTree = dict[str, dict[str, ParquetSource]]
"""Parquet files of one component by split, then by segment."""


def plan_segment_jobs(
    images: SourceTree, labels: SourceTree, store: ShardStore, config: IngestionConfig
) -> list[SegmentJob]:
    """One job per segment of the chosen splits.

    ``max_segments`` caps the labelled segments per split (taken in name order); the
    segments lacking one of the two files are always planned too, so that the report
    lists them instead of dropping them silently.
    """
    jobs = []
    for split in config.splits:
        if split not in images:
            found = ", ".join(sorted(images)) or "none"
            raise ValueError(f"split {split!r} has no camera_image files (splits found: {found})")
        image_files, label_files = images[split], labels.get(split, {})
        labelled = sorted(image_files.keys() & label_files.keys())[: config.max_segments]
        incomplete = sorted(image_files.keys() ^ label_files.keys())
        for segment in (*labelled, *incomplete):
            jobs.append(
                SegmentJob(
                    split,
                    segment,
                    image_files.get(segment),
                    label_files.get(segment),
                    store,
                    config,
                )
            )
    return jobs


def ingest_segments(
    jobs: list[SegmentJob],
    workers: int | None = None,
    dask_scheduler: str | None = None,
    task_retries: int = 2,
) -> list[SegmentResult]:
    """Run ``ingest_segment`` over all jobs, logging progress; results in job order.

    Locally with ``workers`` processes, or on the Dask cluster at ``dask_scheduler``.
    Logs how many segments were reused and why the others were redone, and warns of
    every segment that yields no pairs.
    """
    workers = resolve_workers(workers)
    where = f"on Dask at {dask_scheduler}" if dask_scheduler else f"with {workers} worker(s)"
    logger.info("Ingesting %d segment(s) %s", len(jobs), where)
    start, pairs, results = time.perf_counter(), 0, {}
    progress = tqdm(total=len(jobs), unit="segment", desc="ingestion", disable=None)
    with progress:
        for result in map_unordered(ingest_segment, jobs, workers, dask_scheduler, task_retries):
            results[(result.split, result.segment)] = result
            pairs += result.pairs_written
            progress.update()
            rate = pairs / max(time.perf_counter() - start, 1e-9)
            progress.set_postfix(pairs=pairs, pairs_per_s=f"{rate:.1f}")
            logger.info(
                "%s/%s: %s, %d pair(s), %d quarantined, %s (%d/%d segments, %.1f pairs/s)",
                result.split,
                result.segment,
                result.status,
                result.pairs_written,
                len(result.quarantine),
                "reused" if result.reused else f"redone ({result.redo_reason})",
                len(results),
                len(jobs),
                rate,
            )
            if not result.pairs_written and result.status != "no_label_file":
                _warn_no_pairs(result)
    ordered = [results[(job.split, job.segment)] for job in jobs]
    _log_reuse(ordered)
    unlabelled = [f"{r.split}/{r.segment}" for r in ordered if r.status == "no_label_file"]
    if unlabelled:
        logger.warning(
            "%d segment(s) yield no pairs: they have no %s file (only some Waymo segments "
            "are labelled): %s",
            len(unlabelled),
            CAMERA_SEGMENTATION,
            ", ".join(unlabelled),
        )
    return ordered


def _warn_no_pairs(result: SegmentResult) -> None:
    files = ", ".join(source["path"] for source in result.sources.values()) or "none"
    logger.warning(
        "%s/%s yields no pairs: %s (files: %s)",
        result.split,
        result.segment,
        result.no_pairs_reason or result.status,
        files,
    )


def _log_reuse(results: list[SegmentResult]) -> None:
    """One line: segments reused, segments redone, and why, by kind of reason."""
    why = Counter(r.redo_reason.split(":", 1)[0] for r in results if not r.reused)
    reasons = ", ".join(f"{reason}: {count}" for reason, count in why.most_common())
    logger.info(
        "Ingestion: %d segment(s) reused, %d redone%s",
        len(results) - why.total(),
        why.total(),
        f" ({reasons})" if reasons else "",
    )
