"""The benchmark sections on tiny sizes (never timing anything), and the row-group claim."""

from __future__ import annotations

import json
import weakref
from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks import ddp_step, model_step, step_timer
from benchmarks.__main__ import run
from benchmarks.decoders import LABEL_DECODERS
from benchmarks.encoded_pairs import EncodedPairReader, pair_locations
from benchmarks.estimate import DatasetCounts, Rates, duration, estimate_full_run
from benchmarks.evaluation import run_evaluation_benchmark
from benchmarks.evaluation_notebook import naive_matrices
from benchmarks.evaluation_results import EvaluationBenchmark
from benchmarks.inference import run_inference_benchmark
from benchmarks.ingestion import run_ingestion_benchmark
from benchmarks.ingestion_results import WorkerScaling
from benchmarks.ingestion_runs import ProjectRun, project_ingest
from benchmarks.input_data import SPLIT, InputConfig, write_input
from benchmarks.machine import conv_peak, peak_tflops
from benchmarks.model_step import run_model_step_benchmark
from benchmarks.profile import Profile, make_profile, parse_args
from benchmarks.read_log import CountingFile, new_log_dir, read_log
from benchmarks.remote_storage import CountingParquetSource, RemoteStorage, open_counted
from benchmarks.step_cases import StepCase
from benchmarks.step_timer import count_flops
from benchmarks.timing import median_run
from benchmarks.training_input import run_training_input_benchmark
from tests import waymo_files as wf
from waymo_unet.data.ingestion_config import IngestionConfig
from waymo_unet.data.pairs import decode_pair
from waymo_unet.data.segment import SegmentJob, ingest_segment
from waymo_unet.data.segment_result import SegmentResult
from waymo_unet.data.shards import ShardStore
from waymo_unet.data.waymo import (
    CAMERA_IMAGE,
    CAMERA_SEGMENTATION,
    IMAGE_COLUMN,
    KEY_CAMERA,
    KEY_COLUMNS,
    KEY_TIMESTAMP,
    PANOPTIC_DIVISOR_COLUMN,
    PANOPTIC_LABEL_COLUMN,
)
from waymo_unet.devices import cpu_has_native_bf16
from waymo_unet.models.unet import UNetConfig
from waymo_unet.training.distributed import launch

TINY_INPUT = InputConfig(
    segments=2,
    frames_per_segment=12,
    labelled_runs=1,
    run_length=3,
    frames_per_row_group=4,
    distinct_frames=1,
    front_size=(96, 64),
    side_size=(96, 44),
)
TINY_UNET = UNetConfig(num_classes=3, base_channels=4, depth=2)
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def tiny_input(tmp_path_factory: pytest.TempPathFactory):
    return write_input(tmp_path_factory.mktemp("benchmark_input"), TINY_INPUT, workers=1)


def test_the_input_has_the_v2_layout_and_labelled_runs(tiny_input):
    summary = tiny_input.summary()
    assert summary["segments"] == 2
    assert summary["image_rows"] == 2 * 12 * 5
    assert summary["labelled_pairs"] == 2 * 3 * 5
    assert summary["row_groups_per_file"] == 3
    for segment in tiny_input.segments:
        images = pq.ParquetFile(segment.image_path)
        assert images.metadata.num_row_groups == 3
        assert images.metadata.row_group(0).column(0).compression == "BROTLI"
        assert Path(segment.image_path).parent.name == CAMERA_IMAGE
        assert Path(segment.label_path).parent.name == CAMERA_SEGMENTATION
        keys = images.read(columns=[KEY_TIMESTAMP]).column(0).to_pylist()
        assert keys == sorted(keys)  # frames in time order
        frames = segment.labelled_frames
        assert list(frames) == list(range(frames[0], frames[0] + 3))  # one run
        jpegs = images.read(columns=[IMAGE_COLUMN]).column(0).to_pylist()
        assert len(set(jpegs)) == len(jpegs)  # reused frames are shifted: no equal bytes


def test_a_second_call_reuses_the_input(tiny_input):
    again = write_input(tiny_input.root, TINY_INPUT, workers=1)
    assert again.reused
    assert again.segments == tiny_input.segments


def test_counting_file_counts_what_reads_return(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(bytes(1000))
    log_dir = new_log_dir(tmp_path)
    with CountingFile(open(path, "rb"), str(path), str(log_dir)) as file:
        file.read(100)
        file.readinto(bytearray(50))
        file.seek(0)
        file.read()
    assert read_log(log_dir).per_file == {str(path): (1150, 3)}
    assert (read_log(log_dir).bytes, read_log(log_dir).reads) == (1150, 3)


def test_remote_file_fetches_ranges_behind_a_read_ahead_cache(tmp_path, monkeypatch):
    waits = []
    monkeypatch.setattr(RemoteStorage, "wait", lambda self, size: waits.append(size))
    path = tmp_path / "data.bin"
    content = bytes(range(256)) * 4
    path.write_bytes(content)
    log_dir = new_log_dir(tmp_path)
    storage = RemoteStorage(cache_type="readahead", block_size=300)
    with open_counted(str(path), str(log_dir), storage) as file:
        assert file.read(100) == content[:100]
        assert file.read(100) == content[100:200]  # from the read-ahead block
        file.seek(900)
        assert file.read() == content[900:]
    assert waits == [400, 124]  # each request waits for what it fetches
    assert read_log(log_dir).per_file == {str(path): (524, 2)}


def test_row_group_selection_reads_fewer_bytes_for_the_same_pairs(tmp_path):
    """The issue's claim: the same pairs as reading whole files, from fewer bytes."""
    height, width = 256, 384
    images = [wf.image_row(f, c, height, width) for f in range(16) for c in (1, 2, 3)]
    labels = [wf.label_row(f, c, height, width) for f in (4, 5) for c in (1, 2, 3)]
    image_path, label_path = wf.write_segment(
        tmp_path / "raw", images, labels, row_group_size=6
    )  # 8 image row groups of 2 frames; the labelled frames 4 and 5 are all in the third
    assert pq.ParquetFile(image_path).metadata.num_row_groups == 8
    log_dir = new_log_dir(tmp_path)
    job = SegmentJob(
        SPLIT,
        wf.SEGMENT,
        CountingParquetSource(str(image_path), log_dir=str(log_dir)),
        CountingParquetSource(str(label_path), log_dir=str(log_dir)),
        ShardStore(str(tmp_path / "shards")),
        IngestionConfig(64, 96, splits=(SPLIT,)),
    )
    result = ingest_segment(job)
    selected_bytes = read_log(log_dir).bytes_of(str(image_path))

    whole_log = new_log_dir(tmp_path)
    with CountingFile(open(image_path, "rb"), str(image_path), str(whole_log)) as file:
        whole_images = pd.read_parquet(file)
    whole_labels = pd.read_parquet(label_path)
    pairs = whole_images.merge(whole_labels, on=list(KEY_COLUMNS)).sort_values(
        [KEY_TIMESTAMP, KEY_CAMERA]
    )
    decoded = [
        decode_pair(
            row[IMAGE_COLUMN],
            row[PANOPTIC_LABEL_COLUMN],
            int(row[PANOPTIC_DIVISOR_COLUMN]),
            64,
            96,
        )
        for _, row in pairs.iterrows()
    ]

    assert [(i["timestamp"], i["camera"]) for i in result.items] == list(
        zip(pairs[KEY_TIMESTAMP].tolist(), pairs[KEY_CAMERA].tolist(), strict=True)
    )
    shard_images, shard_labels = job.store.open_segment(SPLIT, wf.SEGMENT)
    np.testing.assert_array_equal(shard_images, np.stack([d.image for d in decoded]))
    np.testing.assert_array_equal(shard_labels, np.stack([d.label for d in decoded]))
    file_size = image_path.stat().st_size
    assert selected_bytes < file_size / 2
    assert selected_bytes < read_log(whole_log).bytes_of(str(image_path))


def test_ingestion_section_counts_bytes_in_worker_processes(tiny_input, tmp_path):
    storage = RemoteStorage(latency_s=0.001, mib_per_s=10_000)
    section, run_1 = run_ingestion_benchmark(
        tiny_input, 32, 48, (1, 2), tmp_path, repeats=2, storage=storage
    )
    naive, one, two = section.rows
    assert naive.pairs == one.pairs == two.pairs == tiny_input.labelled_pairs
    assert one.warm_pairs_per_s > 0  # one worker, two segments: the second is warm
    assert section.worker_scaling.workers == (1, 2)
    assert naive.read_fraction >= 1.0  # whole files, footers read more than once
    assert 0 < two.bytes_read == one.bytes_read < naive.bytes_read
    assert section.agreement.pairs_matched == tiny_input.labelled_pairs
    assert section.agreement.label_agreement == 1.0
    assert section.image_row_groups.with_labelled_frames < section.image_row_groups.total
    assert section.fastest_project in (one, two)
    assert run_1.workers == 1
    assert naive.runs == one.runs == two.runs == 2
    assert section.decode_only_pairs_per_s > 0
    assert set(section.label_decode_ms) == set(LABEL_DECODERS)
    assert all(ms > 0 for ms in section.label_decode_ms.values())
    assert section.table_rows()[0]["read_ahead"] == "-"  # the baseline has none
    remote_naive, unread, read_ahead, two_workers, four_workers = section.remote.rows
    assert (two_workers.workers, four_workers.workers) == (2, 4)
    assert two_workers.pairs == four_workers.pairs == naive.pairs
    assert remote_naive.pairs == unread.pairs == read_ahead.pairs == naive.pairs
    assert (unread.read_ahead, read_ahead.read_ahead) == (0, 1)
    assert unread.bytes_read == read_ahead.bytes_read == one.bytes_read  # none extra
    assert read_ahead.reads == unread.reads > 0  # requests, on the modelled storage
    assert all(row.storage_wait_s > 0 for row in section.remote.rows)
    json.dumps(asdict(section), default=str)


@pytest.mark.parametrize(("workers", "expected"), [(1, 4.0), (2, 3.0), (4, 3.0)])
def test_steady_time_is_shared_among_workers_but_never_below_the_slowest_segment(workers, expected):
    results = [SegmentResult(SPLIT, name, seconds=s) for name, s in (("a", 1.0), ("b", 3.0))]
    run = ProjectRun(workers, 10, 5.0, 0, 0, ShardStore("/tmp/unused"), results)
    assert run.steady_seconds == expected


def segment(name: str, worker: str, started: float, seconds: float, pairs: int) -> SegmentResult:
    return SegmentResult(
        SPLIT, name, worker=worker, started=started, seconds=seconds, pairs_written=pairs
    )


@pytest.mark.parametrize(
    ("segments", "expected"),
    [
        # each worker's first segment (a, b) is left out: 30 pairs from 3 s to 5.5 s
        ("a:A:1:2:10 b:B:1.5:3:10 c:A:3:1:10 d:B:4.5:1:20", 12.0),
        ("c:A:3:1:10 d:B:4.5:1:20 b:B:1.5:3:10 a:A:1:2:10", 12.0),  # in any order
        ("a:A:0:1:10 b:B:0:1:10 c:A:1:1:10 d:B:1:1:10", 20.0),  # side by side: 20 pairs in 1 s
        ("a:A:1:2:10 b:B:1.5:3:10 c:A:3:4:10", 2.5),  # B did one: A's second alone
        ("a:A:1:2:10 b:B:1.5:3:10", None),  # nobody did two
    ],
)
def test_warm_rate_leaves_out_each_workers_first_segment(segments, expected):
    results = [
        segment(name, worker, float(started), float(seconds), int(pairs))
        for name, worker, started, seconds, pairs in (s.split(":") for s in segments.split())
    ]
    run = ProjectRun(2, 50, 9.0, 0, 0, ShardStore("/tmp/unused"), results)
    assert run.warm_rate == pytest.approx(expected)


def test_scaling_is_not_applicable_without_a_warm_rate():
    def row(workers: int, steady: float, warm: float | None) -> SimpleNamespace:
        return SimpleNamespace(workers=workers, steady_pairs_per_s=steady, warm_pairs_per_s=warm)

    measured = WorkerScaling.of([row(1, 40.0, 50.0), row(2, 60.0, 90.0)])
    assert measured == WorkerScaling((1, 2), 1.5, 1.8)
    assert measured.note() == "from 1 to 2 workers: 1.50x steady, 1.80x warm"
    unmeasured = WorkerScaling.of([row(1, 40.0, 50.0), row(2, 60.0, None)])
    assert unmeasured.warm is None
    assert unmeasured.note() == "from 1 to 2 workers: 1.50x steady, n/a warm"
    assert "no scaling measured" in WorkerScaling.of([row(2, 60.0, None)]).note()


@pytest.mark.parametrize(
    ("rates", "expected"), [([3.0], 3.0), ([5.0, 1.0, 4.0], 4.0), ([2.0, 9.0, 1.0, 7.0], 2.0)]
)
def test_the_reported_run_is_the_median_one(rates, expected):
    assert median_run(rates, lambda rate: rate) == expected


def test_training_input_section_delivers_batches(tiny_input, tmp_path):
    shards = project_ingest(tiny_input, 32, 48, 1, tmp_path)
    section = run_training_input_benchmark(
        tiny_input, shards, batch_size=4, shard_epochs=2, workers=0
    )
    assert section.size == (32, 48)
    assert section.items == tiny_input.labelled_pairs
    assert len(section.rows()) == 5
    for row in section.rows():
        assert row["images"] > 0
        assert row["images_per_s"] > 0
    assert section.notebook.speedup == 1.0


def test_model_step_section_counts_flops_and_shrinks_emulated_bf16():
    section = run_model_step_benchmark(
        TINY_UNET, CPU, 2, 32, 48, 0, 1, emulated_bf16="shrink", shrunk_size=(16, 24)
    )
    rows = section.rows
    assert [(r["precision"], r["channels_last"]) for r in rows[:2]] == [
        ("fp32", False),
        ("fp32", True),
    ]
    for row in rows:
        assert row["images_per_s"] > 0
        assert row["train_flop_per_image"] > 0
        assert row["mfu"] == "n/a"  # no GPU peak on a CPU
    if not cpu_has_native_bf16():  # emulated bf16 runs small, beside an fp32 baseline
        assert {r["size"] for r in rows if r["precision"] == "bf16"} == {"16x24"}
        assert any(r["precision"] == "fp32" and r["size"] == "16x24" for r in rows)
    # FLOPs grow with the pixels (sizes that are multiples of 2 ** depth).
    assert count_flops(TINY_UNET, 64, 96) == 4 * count_flops(TINY_UNET, 32, 48)
    assert count_flops(TINY_UNET, 32, 48, backward=False) < count_flops(TINY_UNET, 32, 48)


def test_gpu_peaks_match_by_name():
    assert peak_tflops("NVIDIA H100 PCIe") == 756.0
    assert peak_tflops("NVIDIA H100 80GB HBM3") == 989.0
    assert peak_tflops("NVIDIA A100-SXM4-40GB") == 312.0
    assert peak_tflops("NVIDIA H100 NVL") == 835.0
    assert peak_tflops("NVIDIA A10") == 125.0
    assert peak_tflops("NVIDIA L40") == 181.0  # not the L4's
    assert peak_tflops("NVIDIA L40S") == 362.0
    assert peak_tflops("NVIDIA L4") == 121.0
    assert peak_tflops("NVIDIA A10G") is None  # not an A10
    assert peak_tflops("NVIDIA RTX A1000 Laptop GPU") is None  # not an A100
    assert peak_tflops("Some Future GPU") is None


def test_command_line_sizes_reach_every_section_on_cuda():
    args = parse_args(["--quick", "--height", "256", "--width", "384"])
    profile = make_profile(args, cuda=True)
    assert (profile.height, profile.width) == (256, 384)
    assert profile.step_size == profile.inference_size == (256, 384)


def test_inference_section_checks_the_exported_logits():
    section = run_inference_benchmark(TINY_UNET, 20, 28, 2, CPU, warmup=0, iterations=1)
    assert section.passed
    assert section.max_abs_logit_difference <= section.tolerance
    assert section.argmax_agreement == 1.0
    assert [r["model"] for r in section.rows()] == [
        "eager SegmentationModel",
        "exported DeployedModel",
    ]


def test_evaluation_section_scores_the_same_images_both_ways(tiny_input):
    section = run_evaluation_benchmark(
        tiny_input, TINY_UNET, (32, 48), CPU, segments=1, batch_size=3, repeats=2
    )
    assert isinstance(section, EvaluationBenchmark)
    labelled_images = tiny_input.segments[0].label_rows  # 3 frames x 5 cameras
    assert section.naive.images == section.project.images == labelled_images
    assert section.agreement.same_images
    assert section.agreement.ground_truth_equal
    assert 0.0 <= section.agreement.differing_pixel_share <= 1.0
    assert section.label_sizes == ((64, 96), (44, 96))
    assert section.naive.precision == section.project.precision == "fp32"
    assert [row["method"] for row in section.rows()][:2] == [
        section.naive.method,
        section.project.method,
    ]
    for path in section.paths:
        assert path.images == labelled_images
        assert len(path.rates) == 2
        assert path.images_per_s > 0
    assert section.speedup == pytest.approx(
        section.project.images_per_s / section.naive.images_per_s
    )
    assert set(section.naive_stage_ms) >= {"decode", "model", "confusion"}
    assert "NOT EQUAL" not in " ".join(section.notes())
    json.dumps(asdict(section))


def test_evaluation_section_can_score_some_cameras(tiny_input):
    section = run_evaluation_benchmark(
        tiny_input, TINY_UNET, (32, 48), CPU, segments=2, repeats=1, cameras=(1, 4)
    )
    assert section.segments == 2
    assert section.naive.images == section.project.images == 2 * 3 * 2
    assert section.agreement.ground_truth_equal


def test_naive_matrices_weigh_by_coverage_and_leave_out_undefined():
    semantic = np.array([[0, 1, 1], [2, 2, 40]], dtype=np.uint8)  # 40: not a Waymo id
    predicted = np.array([[5, 1, 3], [2, 200, 2]], dtype=np.uint8)  # 200: a miss
    covered = np.array([[1, 2, 1], [1, 2, 1]], dtype=np.uint8)
    weighted, counts = naive_matrices(semantic, predicted, covered)
    assert counts.sum() == 4
    assert (counts[1, 1], counts[1, 3], counts[2, 2], counts[2, 0]) == (1, 1, 1, 1)
    assert (weighted[1, 1], weighted[1, 3], weighted[2, 2], weighted[2, 0]) == (0.5, 1, 1, 0.5)


def test_estimate_adds_ingestion_and_epochs_and_names_the_bound():
    counts = DatasetCounts()
    rates = Rates("test", 100.0, 10.0, 30.0, 1000.0, notebook_input_images_per_s=5.0)
    section = estimate_full_run(rates, epochs=2, counts=counts)
    ingestion, train, evaluate, full = section.rows[:4]
    assert ingestion.seconds == pytest.approx(counts.pairs / 100)
    assert train.seconds == pytest.approx(counts.train_images / 10)
    assert evaluate.seconds == pytest.approx(counts.val_images / 30)
    assert full.seconds == pytest.approx(ingestion.seconds + 2 * (train.seconds + evaluate.seconds))
    assert "images_per_s" not in full.table_row()  # the total has no rate
    assert section.bound_by == "training compute"
    starved = estimate_full_run(Rates("test", 100.0, 10.0, 30.0, 5.0), epochs=2)
    assert starved.rows[1].bound_by == "input pipeline"
    assert section.rows[4].bound_by == "input pipeline"  # the notebook decodes per epoch
    assert duration(90) == "1.5 min"
    assert duration(3 * 86_400) == "3.0 d"


def test_every_section_runs_in_one_call_on_a_tiny_profile(tiny_input, tmp_path, capsys):
    profile = Profile(
        "tiny",
        TINY_INPUT,
        height=32,
        width=48,
        workers=(1,),
        ingestion_repeats=1,
        loader_batch=4,
        shard_epochs=1,
        step_size=(32, 48),
        step_steps=1,
        step_warmup=0,
        emulated_bf16="skip",
        inference_size=(32, 48),
        inference_warmup=0,
        inference_iterations=1,
        evaluation_repeats=1,
        base_channels=4,
        depth=2,
        epochs=2,
        remote_storage=RemoteStorage(latency_s=0.001, mib_per_s=10_000),
    )
    results = run(profile, CPU, tmp_path, Path(tiny_input.root))
    json.dumps(results, default=str)
    assert set(results) >= {
        "machine",
        "input",
        "ingestion",
        "training_input",
        "model_step",
        "inference",
        "evaluation",
        "estimate",
    }
    assert results["inference"]["passed"]
    rates = results["estimate"]["rates"]  # taken from the sections' fields
    project = [row for row in results["ingestion"]["rows"] if not row["baseline"]]
    assert rates["ingestion_pairs_per_s"] == max(row["steady_pairs_per_s"] for row in project)
    loader = results["training_input"]
    assert rates["notebook_input_images_per_s"] == loader["notebook"]["images_per_s"]
    assert rates["input_images_per_s"] == loader["prepared"]["images_per_s"]  # on the CPU
    evaluation = results["evaluation"]
    assert evaluation["agreement"]["ground_truth_equal"]
    assert evaluation["paths"][0]["images"] == evaluation["paths"][1]["images"] > 0
    printed = capsys.readouterr().out
    for title in (
        "1. Ingestion",
        "1b. Ingestion from",
        "2. Training input",
        "3. Model step",
        "4. Inference",
        "5. Evaluation",
        "6. Full",
    ):
        assert title in printed
    assert "label PNG alone, ms each on the same labels: waymo_unet.data.png" in printed


def test_reading_all_pairs_decompresses_each_row_group_once(tiny_input, monkeypatch):
    locations = pair_locations(tiny_input)
    one_by_one = [EncodedPairReader().read(where) for where in locations]
    reads = []
    read_row_group = pq.ParquetFile.read_row_group

    def counted(self, index, *args, **kwargs):
        reads.append(index)
        return read_row_group(self, index, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "read_row_group", counted)
    assert EncodedPairReader().read_all(locations) == one_by_one
    groups = {(w.image_path, w.image_group) for w in locations}
    groups |= {(w.label_path, w.label_group) for w in locations}
    assert len(reads) == len(groups) < 2 * len(locations)


def test_a_failed_model_step_case_is_reported_and_freed_before_the_next_runs(monkeypatch):
    """A case that runs out of memory (or fails to compile) while holding tensors: its
    memory is released once the exception is gone, the next case runs, both are reported."""
    measure, release = model_step.measure_step, step_timer.release_memory
    held: list[weakref.ref] = []
    freed_after_release: list[bool] = []

    def failing_with_dice(case, *args):
        if not case.dice_weight:
            return measure(case, *args)
        tensor = torch.ones(2**20)
        cycle = {"tensor": tensor}
        cycle["self"] = cycle  # only the garbage collector frees it
        held.append(weakref.ref(tensor))
        del tensor
        if case.precision == "fp32":
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        raise RuntimeError("compiler failed (simulated)")

    def spied_release(device, compiled=False):
        release(device, compiled)
        freed_after_release.append(all(ref() is None for ref in held))

    monkeypatch.setattr(model_step, "measure_step", failing_with_dice)
    monkeypatch.setattr(step_timer, "release_memory", spied_release)
    cases = [
        StepCase("fp32", False, dice_weight=0.5),
        StepCase("fp32", False),
        StepCase("bf16", True, dice_weight=0.5),
        StepCase("bf16", True),
    ]
    section = run_model_step_benchmark(TINY_UNET, CPU, 2, 32, 48, 0, 1, cases=cases)
    assert freed_after_release == [True] * 4  # before each next case, with cuda's empty_cache
    assert [(r["precision"], r["dice_weight"]) for r in section.rows] == [
        ("fp32", 0.0),
        ("bf16", 0.0),
    ]
    assert all(r["images_per_s"] > 0 for r in section.rows)
    failed = {(r["precision"], r["dice_weight"]): r["status"] for r in section.failed}
    assert failed[("fp32", 0.5)] == "out of memory"
    assert failed[("bf16", 0.5)] == "failed: RuntimeError: compiler failed (simulated)"
    assert any(
        "fp32, eager, dice 0.5" in note and "out of memory" in note for note in section.notes
    )
    skipped = run_model_step_benchmark(TINY_UNET, CPU, 2, 32, 48, 0, 1, cases=cases, budget_s=0)
    assert not skipped.rows
    assert all(r["status"].startswith("skipped") for r in skipped.failed)


def test_the_gpu_check_model_step_options_run_on_the_cpu(tmp_path):
    """gpu_check.sh's grid (precisions x Dice weights, eager; compiling is left to the GPU)
    at a tiny size, and the FLOP count of a real step equal to the meta device's."""
    path = tmp_path / "step.json"
    sizes = ["--height", "32", "--width", "48", "--base-channels", "4", "--depth", "2"]
    options = ["--classes", "3", "--batch-size", "2", "--warmup", "1", "--steps", "1"]
    grid = ["--precisions", "bf16,fp32", "--dice-weights", "0,0.5", "--budget-s", "600"]
    model_step.main([*sizes, *options, *grid, "--device", "cpu", "--json", str(path)])
    results = json.loads(path.read_text())
    rows = results["model_step"]
    assert [(r["precision"], r["channels_last"], r["dice_weight"]) for r in rows] == [
        ("bf16", True, 0.0),
        ("bf16", True, 0.5),
        ("fp32", False, 0.0),
        ("fp32", False, 0.5),
    ]
    assert not results["failed"]
    for row in rows:
        assert row["images_per_s"] > 0
        assert row["first_step_s"] > 0
        assert row["train_flop_per_image"] > 0
        assert (row["peak"], row["mfu"]) == ("n/a", "n/a")  # no GPU peak on a CPU
    assert rows[2]["speedup"] == rows[3]["speedup"] == 1.0  # against fp32 of the same loss
    assert sum(note.startswith("Dice 0.5") for note in results["notes"]) == 2

    model_flops = 2 * count_flops(TINY_UNET, 32, 48)
    for weight in (0.0, 0.5):
        step = step_timer.build_step(
            StepCase("fp32", False, dice_weight=weight), TINY_UNET, 2, 32, 48, CPU
        )
        with FlopCounterMode(display=False) as counter:
            step()
        # Cross-entropy and AdamW count none; Dice a product per pixel and class.
        assert counter.get_total_flops() == pytest.approx(model_flops, rel=0.01 if weight else 0)


def test_mfu_divides_by_the_peak_of_the_precision_the_convolutions_run_in(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H100 80GB HBM3")
    rows = [
        {"precision": p, "height": 32, "width": 48, "images_per_s": 1e6} for p in ("bf16", "fp32")
    ]
    step_timer.add_flop_rates(rows, TINY_UNET, torch.device("cuda"), gpus=2)
    tflop_per_s = count_flops(TINY_UNET, 32, 48) * 1e6 / 1e12
    assert rows[0]["peak"] == "bf16 dense 989"
    assert rows[0]["mfu"] == pytest.approx(tflop_per_s / (2 * 989.0))
    assert rows[1]["peak"] == "tf32 dense 494.7"  # cuDNN's default for fp32 convolutions
    assert rows[1]["mfu"] == pytest.approx(tflop_per_s / (2 * 494.7))
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    assert conv_peak("fp32", "NVIDIA H100 80GB HBM3") == ("fp32", 67.0)
    assert conv_peak("fp32", "NVIDIA H100 PCIe") == ("fp32", 51.0)
    assert conv_peak("fp32", "NVIDIA T4") == ("fp32", 8.1)  # no TF32
    assert conv_peak("fp32", "Some Future GPU") == ("fp32", None)


def test_the_ddp_step_runs_on_two_cpu_ranks(tmp_path):
    path = tmp_path / "ddp.json"
    sizes = ["--height", "32", "--width", "48", "--base-channels", "4", "--depth", "2"]
    options = ["--classes", "3", "--batch-size", "4", "--warmup", "1", "--steps", "1"]
    launch(ddp_step.main, 2, [[*sizes, *options, "--device", "cpu", "--json", str(path)]])
    section = json.loads(path.read_text())["ddp_step"]
    assert (section["ranks"], section["batch_per_rank"]) == (2, 2)
    (row,) = section["rows"]  # no SyncBatchNorm on CPUs, as in training
    assert (row["sync_batchnorm"], row["batch"], row["status"]) == (False, 4, "ok")
    assert row["images_per_s"] > 0
    assert row["train_flop_per_image"] == count_flops(TINY_UNET, 32, 48)  # the same U-Net
