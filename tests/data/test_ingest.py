import json
import re
import struct
import time

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests import waymo_files as wf
from waymo_unet.data import pairs as pairs_module
from waymo_unet.data.decode import decode_camera_image, decode_panoptic_label
from waymo_unet.data.ingest import ingest_segments, plan_segment_jobs
from waymo_unet.data.ingestion_config import IngestionConfig
from waymo_unet.data.parallel import worker_name
from waymo_unet.data.parquet import (
    ComponentFile,
    ParquetSource,
    SchemaError,
    UnreadableFileError,
)
from waymo_unet.data.segment import (
    NEW,
    SETTINGS_CHANGED,
    UNFINISHED,
    SegmentJob,
    ingest_segment,
)
from waymo_unet.data.segment_result import SegmentResult
from waymo_unet.data.shards import RESULT_FILE, ShardStore
from waymo_unet.data.waymo import (
    CAMERA_IMAGE,
    CAMERA_SEGMENTATION_SCHEMA,
    IMAGE_COLUMN,
    KEY_CAMERA,
    KEY_TIMESTAMP,
    PANOPTIC_LABEL_COLUMN,
)

CONFIG = IngestionConfig(height=16, width=24)


def listed(path) -> ParquetSource:
    """A source as the dataset's listing gives it: with the file's size and mtime."""
    return ParquetSource.listed(str(path), fsspec.filesystem("file").info(str(path)))


def job_for(tmp_path, image_path, label_path, config=CONFIG) -> SegmentJob:
    return SegmentJob(
        split="training",
        segment=wf.SEGMENT,
        images=listed(image_path) if image_path else None,
        labels=listed(label_path) if label_path else None,
        store=ShardStore(str(tmp_path / "shards")),
        config=config,
    )


def ingest(tmp_path, image_rows, label_rows, config=CONFIG, row_group_size=None):
    paths = wf.write_segment(
        tmp_path / "raw", image_rows, label_rows, row_group_size=row_group_size
    )
    job = job_for(tmp_path, *paths, config=config)
    return ingest_segment(job), job


def reasons(result) -> list[str]:
    return [row["reason"] for row in result.quarantine]


def test_labelled_pairs_are_joined_decoded_and_written(tmp_path):
    images = [wf.image_row(frame, camera) for frame in range(3) for camera in (1, 2, 4)]
    labels = [wf.label_row(1, camera) for camera in (4, 1, 2)]  # rows out of camera order
    result, job = ingest(tmp_path, images, labels)

    assert result.status == "ingested"
    assert (result.frames, result.image_rows, result.label_rows) == (3, 9, 3)
    assert result.pairs_written == 3
    assert (result.unlabelled_frames, result.unlabelled_images) == (2, 6)
    assert result.quarantine == []
    assert [(i["camera"], i["timestamp"]) for i in result.items] == [
        (camera, wf.FRAME_0 + 100_000) for camera in (1, 2, 4)
    ]
    images_out, labels_out = job.store.open_segment("training", wf.SEGMENT)
    assert images_out.shape == (3, 16, 24, 3)
    assert images_out.dtype == np.uint8
    assert labels_out.shape == (3, 16, 24)
    assert labels_out.dtype == np.uint8
    assert set(np.unique(labels_out[:, :8])) == {25}
    assert set(np.unique(labels_out[:, 8:])) == {20}
    # Full-resolution counts: 3 labels of 32x48, half sky and half road.
    assert result.class_pixels == {20: 3 * 16 * 48, 25: 3 * 16 * 48}
    assert result.class_images == {20: 3, 25: 3}


def test_a_missing_required_column_names_the_file_and_column(tmp_path):
    label = wf.label_row(0, 1)
    table = pa.Table.from_pylist([label], schema=CAMERA_SEGMENTATION_SCHEMA)
    path = tmp_path / "raw" / "broken.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(table.drop_columns([PANOPTIC_LABEL_COLUMN]), path)
    image_path, _ = wf.write_segment(tmp_path / "raw", [wf.image_row(0, 1)], None)
    with pytest.raises(SchemaError) as error:
        ingest_segment(job_for(tmp_path, image_path, path))
    assert str(path) in str(error.value)
    assert PANOPTIC_LABEL_COLUMN in str(error.value)


def test_a_file_that_is_not_parquet_is_named(tmp_path):
    path = tmp_path / "not_parquet.parquet"
    path.write_bytes(b"this is text")
    with pytest.raises(SchemaError, match=f"{path}: not a readable parquet file"):
        ingest_segment(job_for(tmp_path, path, None))


def huge_header(png: bytes) -> bytes:
    """The PNG with a width of 2**31 in its header: refused before anything is allocated."""
    return png[:16] + struct.pack(">I", 2**31) + png[20:]


@pytest.mark.parametrize(
    ("damage", "reason", "bad_component"),
    [
        ({"image": b"\xff\xd8broken"}, "corrupt JPEG", "camera_image"),
        ({"label": b"\x89PNG broken"}, "corrupt PNG", "camera_segmentation"),
        (
            {"label": wf.panoptic_png(30, 48)},
            "label size 48x30 differs from image size 48x32",
            "camera_segmentation",
        ),
        (
            {"label": huge_header(wf.panoptic_png(32, 48))},
            "2147483648x32 pixels",
            "camera_segmentation",
        ),
        ({"divisor": 0}, "invalid panoptic_label_divisor 0", "camera_segmentation"),
    ],
    ids=["jpeg", "png", "size", "huge-header", "divisor"],
)
def test_an_unusable_pair_is_quarantined_and_the_rest_written(
    tmp_path, damage, reason, bad_component
):
    images = [wf.image_row(0, camera) for camera in (1, 2, 3)]
    labels = [wf.label_row(0, camera) for camera in (1, 2, 3)]
    if "image" in damage:
        images[1]["[CameraImageComponent].image"] = damage["image"]
    if "label" in damage:
        labels[1][PANOPTIC_LABEL_COLUMN] = damage["label"]
    if "divisor" in damage:
        labels[1]["[CameraSegmentationLabelComponent].panoptic_label_divisor"] = damage["divisor"]
    result, _ = ingest(tmp_path, images, labels)

    assert result.pairs_written == 2
    assert [i["camera"] for i in result.items] == [1, 3]
    [row] = result.quarantine
    assert reason in row["reason"]
    assert (row["timestamp"], row["camera"]) == (wf.FRAME_0, 2)
    assert f"/{bad_component}/" in row["file"]


def test_a_label_of_the_wrong_size_is_refused_before_it_is_inflated(tmp_path, monkeypatch):
    decoded = []
    monkeypatch.setattr(
        pairs_module,
        "decode_panoptic_label",
        lambda png: decoded.append(png) or decode_panoptic_label(png),
    )
    labels = [wf.label_row(0, camera) for camera in (1, 2)]
    labels[1][PANOPTIC_LABEL_COLUMN] = wf.panoptic_png(30, 48)
    result, _ = ingest(tmp_path, [wf.image_row(0, camera) for camera in (1, 2)], labels)
    assert "label size 48x30 differs" in result.quarantine[0]["reason"]
    assert decoded == [labels[0][PANOPTIC_LABEL_COLUMN]]  # only the good label was inflated


def test_label_rows_without_an_image_are_quarantined(tmp_path):
    images = [wf.image_row(0, 1)]
    labels = [wf.label_row(0, 1), wf.label_row(0, 2), wf.label_row(5, 1)]
    result, _ = ingest(tmp_path, images, labels)
    assert result.pairs_written == 1
    assert reasons(result) == ["label row has no matching image row"] * 2
    assert {(r["timestamp"], r["camera"]) for r in result.quarantine} == {
        (wf.FRAME_0, 2),
        (wf.FRAME_0 + 500_000, 1),
    }


def test_a_segment_without_labels_is_reported_and_committed(tmp_path):
    result, job = ingest(tmp_path, [wf.image_row(f, c) for f in range(4) for c in (1, 2)], None)
    assert result.status == "no_label_file"
    assert result.no_pairs_reason == "no camera_segmentation file"
    assert (result.frames, result.unlabelled_frames, result.pairs_written) == (4, 4, 0)
    assert job.store.read_result("training", wf.SEGMENT)["status"] == "no_label_file"


def test_a_label_file_without_pairs_is_reported(tmp_path):
    result, _ = ingest(
        tmp_path, [wf.image_row(0, 1)], [wf.label_row(0, 2)], IngestionConfig(16, 24, cameras=(1,))
    )
    assert result.status == "no_labelled_pairs"
    assert result.other_camera_rows == 1
    assert result.no_pairs_reason == (
        "none of its 1 camera_segmentation row(s) is usable: 1 of cameras other than [1], "
        "0 quarantined"
    )


@pytest.mark.parametrize(
    ("image_rows", "label_rows", "reason"),
    [
        ([wf.image_row(0, 1)], [], "its camera_segmentation file has no rows"),
        ([], [wf.label_row(0, 1)], "its camera_image file has no rows"),
        (
            [wf.image_row(0, 1)],
            [wf.label_row(3, 1), wf.label_row(4, 1)],
            "none of its 2 label row(s) matches an image row by (timestamp, camera)",
        ),
        (
            [wf.image_row(0, 1)],
            [wf.label_row(0, 1) | {PANOPTIC_LABEL_COLUMN: b"\x89PNG broken"}],
            "all 1 matched pair(s) were quarantined (panoptic label: corrupt PNG",
        ),
    ],
    ids=["no-label-rows", "no-image-rows", "no-match", "all-quarantined"],
)
def test_a_segment_without_pairs_says_why(tmp_path, image_rows, label_rows, reason):
    result, _ = ingest(tmp_path, image_rows, label_rows)
    assert (result.status, result.pairs_written) == ("no_labelled_pairs", 0)
    assert result.no_pairs_reason.startswith(reason)


def test_a_segment_with_pairs_has_no_no_pairs_reason(tmp_path):
    result, _ = ingest(tmp_path, [wf.image_row(0, 1)], [wf.label_row(0, 1)])
    assert result.pairs_written == 1
    assert result.no_pairs_reason == ""


def test_camera_names_are_accepted_and_unknown_ones_quarantined(tmp_path):
    images = [wf.image_row(0, "FRONT"), wf.image_row(0, "SIDE_LEFT"), wf.image_row(0, "ROOF")]
    labels = [wf.label_row(0, "FRONT"), wf.label_row(0, "SIDE_LEFT")]
    result, _ = ingest(tmp_path, images, labels)
    assert [i["camera"] for i in result.items] == [1, 4]
    assert reasons(result) == ["unknown camera name"]


def test_duplicate_keys_are_quarantined(tmp_path):
    images = [wf.image_row(0, 1), wf.image_row(0, 1)]
    labels = [wf.label_row(0, 1)]
    result, _ = ingest(tmp_path, images, labels)
    assert result.pairs_written == 1
    assert reasons(result) == ["duplicate (timestamp, camera) key"]


def test_cameras_not_chosen_are_counted_not_dropped(tmp_path):
    images = [wf.image_row(0, camera) for camera in (1, 2, 4, 3, 5)]
    labels = [wf.label_row(0, camera) for camera in (1, 2, 4, 3, 5)]
    result, _ = ingest(tmp_path, images, labels, IngestionConfig(16, 24, cameras=(1, 2, 3)))
    assert [i["camera"] for i in result.items] == [1, 2, 3]
    assert result.other_camera_rows == 4  # two image and two label rows
    assert result.unlabelled_images == 0


@pytest.mark.parametrize("read_ahead", [0, 1, 3])
def test_pairs_spread_over_many_row_groups_are_all_found(tmp_path, monkeypatch, read_ahead):
    reads = []
    read_columns = ComponentFile.read_columns

    def recording_read_columns(self, row_group, columns):
        reads.append((self.component, row_group))
        return read_columns(self, row_group, columns)

    monkeypatch.setattr(ComponentFile, "read_columns", recording_read_columns)
    # Rows in camera order 1, 2, 4, 3, 5 in row groups of 4: frames straddle row groups.
    images = [wf.image_row(frame, camera) for frame in range(6) for camera in (1, 2, 4, 3, 5)]
    labels = [wf.label_row(frame, camera) for frame in (2, 3, 5) for camera in (1, 2, 4, 3, 5)]
    config = IngestionConfig(height=16, width=24, read_ahead=read_ahead)
    result, job = ingest(tmp_path, images, labels, config, row_group_size=4)
    assert result.pairs_written == 15
    assert [i["camera"] for i in result.items] == [1, 2, 3, 4, 5] * 3
    assert [i["timestamp"] for i in result.items[::5]] == [
        wf.FRAME_0 + frame * 100_000 for frame in (2, 3, 5)
    ]
    image_reads = [group for component, group in reads if component == CAMERA_IMAGE]
    key_reads = len(range(0, 30, 4))
    assert sorted(image_reads[key_reads:]) == [2, 3, 4, 6, 7]  # each read once
    jpegs = {(row[KEY_TIMESTAMP], row[KEY_CAMERA]): row[IMAGE_COLUMN] for row in images}
    shard_images, _ = job.store.open_segment("training", wf.SEGMENT)
    for item, shard_image in zip(result.items, shard_images, strict=True):
        jpeg = jpegs[item["timestamp"], item["camera"]]
        assert (shard_image == decode_camera_image(jpeg, 16, 24)).all()


def test_a_committed_segment_is_reused_and_other_settings_rebuild_it(tmp_path):
    images, labels = [wf.image_row(0, 1)], [wf.label_row(0, 1)]
    first, job = ingest(tmp_path, images, labels)
    assert (first.reused, first.redo_reason) == (False, NEW)
    marker = tmp_path / "shards" / "training" / wf.SEGMENT / RESULT_FILE
    written = marker.stat().st_mtime_ns

    again = ingest_segment(job)
    assert (again.reused, again.redo_reason) == (True, "")
    assert again.pairs_written == first.pairs_written
    assert marker.stat().st_mtime_ns == written

    bigger = ingest_segment(
        job_for(tmp_path, job.images.path, job.labels.path, IngestionConfig(32, 48))
    )
    assert (bigger.reused, bigger.redo_reason) == (False, SETTINGS_CHANGED)
    assert job.store.open_segment("training", wf.SEGMENT)[0].shape == (1, 32, 48, 3)


def test_a_half_written_segment_is_not_taken_as_done(tmp_path):
    images, labels = [wf.image_row(0, 1)], [wf.label_row(0, 1)]
    _, job = ingest(tmp_path, images, labels)
    marker = tmp_path / "shards" / "training" / wf.SEGMENT / RESULT_FILE
    marker.unlink()  # as if the worker died before its commit
    assert job.store.read_result("training", wf.SEGMENT) is None
    result = ingest_segment(job)
    assert (result.reused, result.redo_reason) == (False, UNFINISHED)
    assert json.loads(marker.read_text())["pairs_written"] == 1


def test_a_source_not_listed_with_its_identity_is_never_taken_as_current(tmp_path):
    images, labels = [wf.image_row(0, 1)], [wf.label_row(0, 1)]
    _, job = ingest(tmp_path, images, labels)
    bare = SegmentJob(
        job.split,
        job.segment,
        ParquetSource(job.images.path),
        job.labels,
        job.store,
        job.config,
    )
    result = ingest_segment(bare)
    assert not result.reused
    assert result.redo_reason == "raw file identity unknown: camera_image not listed with details"


def test_a_shard_committed_without_file_identities_is_redone(tmp_path):
    images, labels = [wf.image_row(0, 1)], [wf.label_row(0, 1)]
    _, job = ingest(tmp_path, images, labels)
    older = job.store.read_result(job.split, job.segment)
    del older["sources"]  # as ingestion committed it before it recorded them
    job.store.commit(job.split, job.segment, older)
    result = ingest_segment(job)
    assert not result.reused
    assert result.redo_reason.startswith("raw file identity unknown: not recorded")
    assert ingest_segment(job).reused  # recorded now


def test_a_corrupt_row_group_names_the_file(tmp_path):
    images = [wf.image_row(frame, 1) for frame in range(4)]
    labels = [wf.label_row(frame, 1) for frame in range(4)]
    image_path, label_path = wf.write_segment(tmp_path / "raw", images, labels, row_group_size=2)
    chunk = pq.ParquetFile(image_path).metadata.row_group(1).column(3)
    assert chunk.path_in_schema == IMAGE_COLUMN
    data = bytearray(image_path.read_bytes())
    start = chunk.data_page_offset + 16
    data[start : start + 16] = b"\xa5" * 16  # the image column's page of row group 1
    image_path.write_bytes(bytes(data))
    with pytest.raises(UnreadableFileError, match=f"{image_path}: row group 1 cannot be read"):
        ingest_segment(job_for(tmp_path, image_path, label_path))


def make_tree(tmp_path, segments: dict[str, bool], split="training"):
    images, labels = {}, {}
    for segment, labelled in segments.items():
        image_path, label_path = wf.write_segment(
            tmp_path / "raw",
            [wf.image_row(0, 1)],
            [wf.label_row(0, 1)] if labelled else None,
            split,
            segment,
        )
        images.setdefault(split, {})[segment] = listed(image_path)
        if label_path:
            labels.setdefault(split, {})[segment] = listed(label_path)
    return images, labels


def test_max_segments_caps_labelled_segments_and_keeps_unlabelled_ones_in_view(tmp_path):
    images, labels = make_tree(tmp_path, {"c": True, "a": True, "b": False, "d": True})
    config = IngestionConfig(16, 24, splits=("training",), max_segments=2)
    jobs = plan_segment_jobs(images, labels, ShardStore(str(tmp_path / "s")), config)
    assert [(j.segment, j.labels is not None) for j in jobs] == [
        ("a", True),
        ("c", True),
        ("b", False),
    ]


def test_a_split_without_files_is_a_clear_error(tmp_path):
    images, labels = make_tree(tmp_path, {"a": True})
    with pytest.raises(ValueError, match="split 'validation' has no camera_image files"):
        plan_segment_jobs(images, labels, ShardStore(str(tmp_path)), IngestionConfig(16, 24))


def test_parallel_ingestion_writes_the_same_bytes_as_serial(tmp_path):
    images, labels = make_tree(tmp_path, {f"segment_{i}": True for i in range(3)})
    config = IngestionConfig(16, 24, splits=("training",))
    outputs, worker_names = {}, {}
    for workers in (1, 2):
        store = ShardStore(str(tmp_path / f"shards_{workers}"))
        before = time.time()
        results = ingest_segments(plan_segment_jobs(images, labels, store, config), workers)
        assert [r.segment for r in results] == ["segment_0", "segment_1", "segment_2"]
        assert all(before - 0.001 <= r.started <= time.time() for r in results)  # ms rounding
        worker_names[workers] = {r.worker for r in results}
        outputs[workers] = {
            path.relative_to(store.root).as_posix(): path.read_bytes()
            for path in sorted((tmp_path / f"shards_{workers}").rglob("*.npy"))
        }
    assert outputs[1] == outputs[2]
    assert len(outputs[1]) == 6
    assert worker_names[1] == {worker_name()}  # serial: this process
    assert worker_name() not in worker_names[2]  # the pool's processes
    assert all(re.fullmatch(r".+:\d+", name) for name in worker_names[2])


def test_a_result_written_by_a_newer_version_still_loads(tmp_path):
    result, _ = ingest(tmp_path, [wf.image_row(0, 1)], [wf.label_row(0, 1)])
    assert SegmentResult.from_dict({**result.to_dict(), "added_later": 1}) == result


def test_the_ingestion_fingerprint_of_committed_shards_stays_the_same():
    # Shards committed before are reused only while these values hold.
    assert IngestionConfig(96, 144).fingerprint == "0396af2483eb63f9"
    assert IngestionConfig(512, 768).fingerprint == "8e9f04c15668ed76"


def test_ingestion_config_rejects_bad_values():
    with pytest.raises(ValueError, match="unknown camera id"):
        IngestionConfig(16, 24, cameras=(0, 1))
    with pytest.raises(ValueError, match="image size must be positive"):
        IngestionConfig(0, 24)
    with pytest.raises(ValueError, match="read_ahead must be >= 0"):
        IngestionConfig(16, 24, read_ahead=-1)
    assert IngestionConfig.from_params({"height": 8, "width": 8, "cameras": [1]}).cameras == (1,)
    assert KEY_CAMERA  # the key column name is shared with the generator
