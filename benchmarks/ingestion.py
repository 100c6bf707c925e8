"""Ingestion: a notebook-style baseline against the project's segment ingestion.

Both turn the same parquet files into labelled (image, label) pairs at one size
(``benchmarks.ingestion_runs``), reading through files that count their bytes, locally
and then from a modelled object store (``benchmarks.remote_storage``). Each case runs
``repeats`` times and its row is the run with the median steady rate (a shared VM's
neighbours move single runs by a third). This module does not import torch: worker
processes import it to unpickle their jobs.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from benchmarks.decoders import time_decoders_alone
from benchmarks.ingestion_results import (
    IngestionBenchmark,
    OutputAgreement,
    RemoteIngestion,
    RowGroups,
    WorkerScaling,
    case_row,
    with_speedups,
)
from benchmarks.ingestion_runs import NaiveRun, ProjectRun, measure_naive, measure_project
from benchmarks.input_data import BenchmarkInput
from benchmarks.remote_storage import RemoteStorage


def compare_outputs(naive: NaiveRun, project: ProjectRun) -> OutputAgreement:
    """How far the project's shards are from the baseline's arrays, pair by pair."""
    position = {key: i for i, key in enumerate(naive.keys)}
    equal_pixels = total_pixels = matched = 0
    absolute_error = 0.0
    for result in project.results:
        images, labels = project.store.open_segment(result.split, result.segment)
        for item, keys in enumerate(result.items):
            index = position.get((result.segment, keys["timestamp"], keys["camera"]))
            if index is None:
                continue
            matched += 1
            equal_pixels += int((labels[item] == naive.labels[index]).sum())
            total_pixels += labels[item].size
            difference = images[item].astype(np.int16) - naive.images[index].astype(np.int16)
            absolute_error += float(np.abs(difference).mean())
    return OutputAgreement(
        matched,
        equal_pixels / total_pixels if total_pixels else 0.0,
        absolute_error / matched if matched else 0.0,
    )


def run_remote_storage_benchmark(
    data: BenchmarkInput,
    height: int,
    width: int,
    work_dir: Path,
    repeats: int,
    storage: RemoteStorage,
    workers: int = 1,
) -> RemoteIngestion:
    """Baseline and project on modelled remote storage.

    The project runs with 1 worker, read-ahead off and on; then with ``workers`` and
    twice as many (more processes than cores keep more requests in flight).
    """
    file_bytes = sum(s.file_bytes for s in data.segments)
    naive, rates = measure_naive(data, (height, width), work_dir, repeats, storage)
    rows = [case_row(naive, rates, file_bytes, read_ahead=None)]
    cases = [(1, 0), (1, 1), *((count, 1) for count in sorted({workers, 2 * workers} - {1}))]
    for count, read_ahead in cases:
        run, rates = measure_project(
            data, (height, width), count, work_dir, repeats, read_ahead, storage
        )
        rows.append(case_row(run, rates, file_bytes, read_ahead))
    rows = [
        replace(row, storage_wait_s=storage.seconds(row.reads, row.bytes_read))
        for row in with_speedups(rows)
    ]
    return RemoteIngestion(storage, storage.describe(), tuple(rows))


def run_ingestion_benchmark(
    data: BenchmarkInput,
    height: int,
    width: int,
    workers: tuple[int, ...],
    work_dir: str | Path,
    repeats: int = 1,
    storage: RemoteStorage | None = None,
) -> tuple[IngestionBenchmark, ProjectRun]:
    """Measure the baseline and the project (per worker count) on the same input.

    Given ``storage``, the section also has ``remote``: the same cases on that modelled
    remote storage. Returns the section and a single-worker project run, whose shards
    feed the training-input benchmark.
    """
    work_dir = Path(work_dir)
    file_bytes = sum(s.file_bytes for s in data.segments)
    naive, rates = measure_naive(data, (height, width), work_dir, repeats)
    rows = [case_row(naive, rates, file_bytes, read_ahead=None)]
    runs = []
    for count in workers:
        run, rates = measure_project(data, (height, width), count, work_dir, repeats)
        runs.append(run)
        rows.append(case_row(run, rates, file_bytes, read_ahead=1))
    rows = with_speedups(rows)
    decode_only, label_decode_ms = time_decoders_alone(data, height, width)
    section = IngestionBenchmark(
        size=(height, width),
        repeats=repeats,
        rows=tuple(rows),
        naive_read_seconds=naive.read_seconds,
        naive_decode_seconds=naive.decode_seconds,
        naive_decode_pairs_per_s=naive.pairs / naive.decode_seconds
        if naive.decode_seconds
        else 0.0,
        agreement=compare_outputs(naive, runs[0]),
        decode_only_pairs_per_s=decode_only,
        label_decode_ms=label_decode_ms,
        single_worker_share_of_decode_only=rows[1].steady_pairs_per_s / decode_only
        if decode_only
        else 0.0,
        image_row_groups=RowGroups.of(data),
        labelled_pairs_in_input=data.labelled_pairs,
        worker_scaling=WorkerScaling.of(rows[1:]),
        remote=None
        if storage is None
        else run_remote_storage_benchmark(
            data, height, width, work_dir, repeats, storage, max(workers)
        ),
    )
    return section, runs[0]
