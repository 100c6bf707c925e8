"""A committed shard is reused only while its raw files are the ones it was made from.

The identity of each file (size and modification time locally; a checksum on GCS)
comes from the listing ``WaymoComponentDataset`` does, and travels in its handle.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from tests import waymo_files as wf
from tests.test_gcs import emulated_gcs as emulated_gcs  # a fixture, used by name
from waymo_unet.data.ingest import ingest_segments, plan_segment_jobs
from waymo_unet.data.ingestion_config import IngestionConfig
from waymo_unet.data.parquet import ParquetSource, SchemaError
from waymo_unet.data.results import ingestion_report, quarantine_table, shard_index
from waymo_unet.data.segment_result import SegmentResult
from waymo_unet.data.shards import ShardStore
from waymo_unet.data.waymo import CAMERA_SEGMENTATION_SCHEMA, KEY_CAMERA, PANOPTIC_LABEL_COLUMN
from waymo_unet.datasets import WaymoComponentDataset

CAMERAS = (1, 2, 3)
INGEST_LOG = "waymo_unet.data.ingest"


def label_rows(broken_camera: int | None = None) -> list[dict]:
    """Labels of one frame of three cameras; that of ``broken_camera`` unusable."""
    labels = [wf.label_row(0, camera) for camera in CAMERAS]
    for row in labels:
        if row[KEY_CAMERA] == broken_camera:
            row[PANOPTIC_LABEL_COLUMN] = b"\x89PNG broken"
    return labels


def write(raw: Path, segment: str, broken_camera: int | None = None) -> tuple[Path, Path]:
    """A segment of one frame of three cameras, all labelled."""
    images = [wf.image_row(0, camera) for camera in CAMERAS]
    return wf.write_segment(raw, images, label_rows(broken_camera), segment=segment)


def ingest(raw: str, shards: Path, workers: int = 1, **options) -> list[SegmentResult]:
    """List the raw files as the catalog does, then ingest every training segment."""
    images = WaymoComponentDataset(raw, "camera_image", **options).load()
    labels = WaymoComponentDataset(raw, "camera_segmentation", **options).load()
    config = IngestionConfig(16, 24, splits=("training",))
    return ingest_segments(
        plan_segment_jobs(images, labels, ShardStore(str(shards)), config), workers
    )


def url(path: Path) -> str:
    """A local path as the listing names it."""
    return f"file://{path}"


def by_segment(results: list[SegmentResult]) -> dict[str, SegmentResult]:
    return {result.segment: result for result in results}


def messages(caplog, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == INGEST_LOG and r.levelno == level]


def test_a_fixed_label_file_is_ingested_again_and_its_pair_appears(tmp_path, caplog):
    raw = tmp_path / "raw"
    _, label_path = write(raw, "a", broken_camera=2)
    write(raw, "b")
    first = ingest(str(raw), tmp_path / "shards")
    assert len(shard_index(first)) == 5
    [row] = quarantine_table(first).itertuples()
    assert (row.segment, row.camera, row.file) == ("a", 2, url(label_path))

    wf.write_component(label_path, label_rows(), CAMERA_SEGMENTATION_SCHEMA)  # fixed
    with caplog.at_level(logging.INFO, INGEST_LOG):
        second = by_segment(ingest(str(raw), tmp_path / "shards"))
    assert (second["a"].reused, second["b"].reused) == (False, True)
    assert second["a"].redo_reason == "raw file changed: camera_segmentation (mtime, size)"
    assert [item["camera"] for item in second["a"].items] == [1, 2, 3]
    assert len(shard_index(list(second.values()))) == 6
    assert quarantine_table(list(second.values())).empty
    report = ingestion_report(list(second.values())).set_index("segment")
    assert report.loc["a", "redo_reason"].startswith("raw file changed")
    assert report.loc["b", "redo_reason"] == ""
    assert "Ingestion: 1 segment(s) reused, 1 redone (raw file changed: 1)" in messages(
        caplog, logging.INFO
    )


def test_an_untouched_file_is_reused_and_a_touched_one_redone(tmp_path, caplog):
    raw = tmp_path / "raw"
    image_path, _ = write(raw, "a")
    write(raw, "b")
    first = ingest(str(raw), tmp_path / "shards")
    assert {r.redo_reason for r in first} == {"new"}

    with caplog.at_level(logging.INFO, INGEST_LOG):
        again = ingest(str(raw), tmp_path / "shards")
    assert all(result.reused for result in again)
    assert "Ingestion: 2 segment(s) reused, 0 redone" in messages(caplog, logging.INFO)
    assert [r.to_dict() | {"reused": False, "redo_reason": "new"} for r in again] == [
        r.to_dict() for r in first
    ]

    stat = image_path.stat()
    os.utime(image_path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # same bytes
    touched = by_segment(ingest(str(raw), tmp_path / "shards"))
    assert touched["a"].redo_reason == "raw file changed: camera_image (mtime)"
    assert touched["b"].reused


def test_a_truncated_camera_image_file_stops_the_run_naming_it(tmp_path):
    raw = tmp_path / "raw"
    image_path, _ = write(raw, "a")
    write(raw, "b")
    ingest(str(raw), tmp_path / "shards")
    data = image_path.read_bytes()
    image_path.write_bytes(data[: len(data) // 2])  # as an interrupted copy leaves it
    # In the process pool, as a run with the default settings does.
    with pytest.raises(SchemaError, match=f"{image_path}: not a readable parquet file"):
        ingest(str(raw), tmp_path / "shards", workers=2)


def test_the_log_warns_of_each_segment_without_pairs(tmp_path, caplog):
    raw = tmp_path / "raw"
    write(raw, "a")
    empty = wf.write_segment(raw, [wf.image_row(0, 1)], [], segment="empty_labels")
    wf.write_segment(raw, [wf.image_row(0, 1)], None, segment="unlabelled")
    for run in ("first", "reused"):
        caplog.clear()
        with caplog.at_level(logging.WARNING, INGEST_LOG):
            results = by_segment(ingest(str(raw), tmp_path / "shards"))
        assert results["empty_labels"].reused == (run == "reused")
        warnings = messages(caplog, logging.WARNING)
        assert len(warnings) == 2, warnings
        assert warnings[0] == (
            "training/empty_labels yields no pairs: its camera_segmentation file has no rows "
            f"(files: {url(empty[0])}, {url(empty[1])})"
        )
        assert warnings[1].startswith("1 segment(s) yield no pairs: they have no")
        assert warnings[1].endswith(": training/unlabelled")


def test_the_listing_gives_each_local_file_its_size_and_mtime(tmp_path):
    image_path, _ = write(tmp_path, "a")
    [source] = WaymoComponentDataset(str(tmp_path), "camera_image").load()["training"].values()
    stat = image_path.stat()
    assert dict(source.identity) == {"size": stat.st_size, "mtime": stat.st_mtime}


def test_on_gcs_the_identity_is_the_object_checksum(emulated_gcs, tmp_path):
    """Copying the same bytes again keeps the shard; other bytes under the name redo it."""
    emulated_gcs.mkdir("identity")
    local = tmp_path / "raw"
    paths = write(local, "a", broken_camera=2)
    root = "gs://identity/v2"

    def upload() -> None:
        for path in paths:
            emulated_gcs.put(str(path), f"{root}/{path.relative_to(local).as_posix()}")
        emulated_gcs.invalidate_cache()  # this process lists through the same instance

    upload()
    options = {"credentials": {"token": "anon"}}
    [first] = ingest(root, tmp_path / "shards", **options)
    label = first.sources["camera_segmentation"]
    assert set(label) == {"path", "size", "md5Hash"}
    assert label["path"] == f"{root}/training/camera_segmentation/a.parquet"
    assert ParquetSource.listed(label["path"], emulated_gcs.info(label["path"])).identity == (
        ("size", label["size"]),
        ("md5Hash", label["md5Hash"]),
    )

    upload()  # a new generation of the same bytes
    [same] = ingest(root, tmp_path / "shards", **options)
    assert same.reused

    wf.write_component(paths[1], label_rows(), CAMERA_SEGMENTATION_SCHEMA)  # fixed
    upload()
    [fixed] = ingest(root, tmp_path / "shards", **options)
    assert fixed.redo_reason == "raw file changed: camera_segmentation (md5Hash, size)"
    assert (fixed.pairs_written, fixed.quarantine) == (3, [])
