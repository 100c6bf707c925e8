"""Inference outputs: one file per input image, only the latest run's, and clear errors
when there is nothing to segment."""

from __future__ import annotations

import logging
import re

import numpy as np
import pytest
from kedro.io import DatasetError
from PIL import Image

from tests import waymo_files as wf
from tests.inference.inference_runs import PARAMS, PNG_PARTITIONS, written_pngs
from waymo_unet.datasets.camera_images import LatestRunPartitionsDataset
from waymo_unet.inference.sources import NothingToSegmentError, unique_names

WHAT_TO_DO = (
    "; point inference_camera_images at a folder of JPEGs or camera_image parquet files "
    "in conf/local/catalog.yml"
)


def write_jpegs(folder, sizes: dict[str, tuple[int, int]]):
    """JPEGs of the given (height, width), by path under ``folder``."""
    for seed, (name, (height, width)) in enumerate(sizes.items()):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(wf.camera_jpeg(height, width, seed=seed))
    return folder


def segmented_count(log: str) -> int:
    """The count of the node's closing log line."""
    return int(re.search(r"Segmented (\d+) image\(s\)", log).group(1))


def test_images_sharing_a_stem_get_outputs_of_their_own(run_inference, tmp_path, caplog):
    # Three sizes, so each output can be traced back to its own input.
    images = write_jpegs(
        tmp_path / "in",
        {"normal.jpg": (50, 70), "normal.jpeg": (40, 60), "sub/normal.jpg": (30, 44)},
    )
    with caplog.at_level(logging.INFO):
        run_inference(images, tmp_path / "out", {**PARAMS, "batch_size": 2})  # two saves

    expected = {
        "normal.jpg.png": (70, 50),
        "normal.jpeg.png": (60, 40),
        "sub/normal.jpg.png": (44, 30),
    }
    for kind in ("labels", "overlays"):
        written = written_pngs(tmp_path / "out" / kind)
        assert {name: image.size for name, image in written.items()} == expected
    assert segmented_count(caplog.text) == len(expected)


def test_a_second_run_leaves_only_its_own_outputs(run_inference, tmp_path, caplog):
    run_inference(
        write_jpegs(tmp_path / "a", {"x.jpg": (30, 44), "sub/y.jpg": (30, 44)}), tmp_path / "out"
    )
    notes = tmp_path / "out" / "labels" / "notes.txt"
    notes.write_text("not written by inference")

    with caplog.at_level(logging.INFO):
        run_inference(write_jpegs(tmp_path / "b", {"z.jpeg": (30, 44)}), tmp_path / "out")

    for kind in ("labels", "overlays"):
        assert list(written_pngs(tmp_path / "out" / kind)) == ["z.jpeg.png"]
        assert not (tmp_path / "out" / kind / "sub").exists()
        assert (
            f"Removed 2 .png file(s) an earlier run left in {tmp_path / 'out' / kind}"
            in caplog.text
        )
    assert notes.exists()
    assert segmented_count(caplog.text) == 1


def test_overwrite_is_refused_because_it_would_wipe_earlier_batches(tmp_path):
    with pytest.raises(DatasetError, match="overwrite: true` would delete each batch"):
        LatestRunPartitionsDataset(path=str(tmp_path), overwrite=True, **PNG_PARTITIONS)


def test_a_partition_saved_twice_in_one_run_is_refused(tmp_path):
    outputs = LatestRunPartitionsDataset(path=str(tmp_path), **PNG_PARTITIONS)
    outputs.save({"a.jpg": Image.new("L", (4, 4), 1)})
    with pytest.raises(DatasetError, match=r"\['a.jpg'\] .* already saved by this run"):
        outputs.save({"a.jpg": Image.new("L", (4, 4), 2), "b.jpg": Image.new("L", (4, 4), 2)})
    assert list(written_pngs(tmp_path)) == ["a.jpg.png"]
    assert np.unique(np.asarray(Image.open(tmp_path / "a.jpg.png"))).tolist() == [1]


def test_repeated_names_are_made_distinct_with_a_warning(caplog):
    images = [("a", b"1"), ("a", b"2"), ("a~2", b"3"), ("b", b"4")]
    assert list(unique_names(images)) == [("a", b"1"), ("a~2", b"2"), ("a~2~2", b"3"), ("b", b"4")]
    assert "A second image is named a: it is written as a~2" in caplog.text
    assert "A second image is named a~2: it is written as a~2~2" in caplog.text


def test_the_same_parquet_rows_in_two_files_get_distinct_outputs(run_inference, tmp_path, caplog):
    rows = [wf.image_row(frame, camera) for frame in range(2) for camera in (1, 4)]
    for copy in ("one", "two"):
        wf.write_segment(tmp_path / "in" / copy, rows, None)

    with caplog.at_level(logging.INFO):
        run_inference(tmp_path / "in", tmp_path / "out")

    names = [f"{wf.SEGMENT}_{wf.FRAME_0 + f * 100_000}_{c}" for f in (0, 1) for c in (1, 4)]
    written = written_pngs(tmp_path / "out" / "labels")
    assert sorted(written) == sorted([f"{n}.png" for n in names] + [f"{n}~2.png" for n in names])
    assert segmented_count(caplog.text) == len(written)
    assert caplog.text.count("A second image is named") == len(names)


def test_a_folder_where_nothing_decodes_is_one_error_line(run_inference, tmp_path):
    images = tmp_path / "in"
    (images / "sub").mkdir(parents=True)
    (images / "bad.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    (images / "sub" / "bad.jpeg").write_bytes(b"")

    with pytest.raises(NothingToSegmentError) as raised:
        run_inference(images, tmp_path / "out")
    assert str(raised.value) == (
        f"{images}: none of the 2 image(s) could be decoded (bad.jpg, sub/bad.jpeg){WHAT_TO_DO}"
    )


def test_a_folder_without_images_says_so(run_inference, tmp_path):
    images = tmp_path / "in"
    images.mkdir()
    (images / "notes.txt").write_text("no images here")
    Image.new("RGB", (4, 4)).save(images / "photo.png")

    with pytest.raises(NothingToSegmentError) as raised:
        run_inference(images, tmp_path / "out")
    assert str(raised.value) == f"{images}: no camera_image parquet or JPEG files found{WHAT_TO_DO}"
