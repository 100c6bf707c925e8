"""Inference sources, batched prediction and the inference pipeline on unseen image sizes."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from kedro.io import DatasetError

from tests import waymo_files as wf
from tests.inference.inference_runs import written_pngs
from waymo_unet.datasets import DeployedModelDataset, SegmentationModelDataset
from waymo_unet.inference.predict import name_some, segment_images
from waymo_unet.inference.sources import CameraImageSource, NothingToSegmentError


@pytest.fixture
def jpeg_folder(tmp_path):
    """Five JPEGs of a size the model never saw (50x70), one of them corrupt."""
    folder = tmp_path / "jpegs"
    folder.mkdir()
    for i in range(4):
        (folder / f"frame_{i}.jpg").write_bytes(wf.camera_jpeg(50, 70, seed=i))
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    return folder


def test_parquet_rows_are_named_by_their_keys(tmp_path):
    rows = [wf.image_row(frame, camera) for frame in range(2) for camera in (1, 4)]
    image_path, _ = wf.write_segment(tmp_path, rows, None, row_group_size=3)
    names = [name for name, _ in CameraImageSource(str(image_path)).iter_images()]
    assert names == [f"{wf.SEGMENT}_{wf.FRAME_0 + f * 100_000}_{c}" for f in (0, 1) for c in (1, 4)]
    folder = CameraImageSource(str(tmp_path / "training" / "camera_image"))
    assert [name for name, _ in folder.iter_images()] == names


def test_jpegs_are_named_by_their_path_under_the_folder_suffix_kept(jpeg_folder):
    (jpeg_folder / "sub").mkdir()
    (jpeg_folder / "frame_0.jpg").rename(jpeg_folder / "sub" / "frame_0.jpg")
    names = [name for name, _ in CameraImageSource(str(jpeg_folder)).iter_images()]
    assert names == ["broken.jpg"] + [f"frame_{i}.jpg" for i in (1, 2, 3)] + ["sub/frame_0.jpg"]
    lone = CameraImageSource(str(jpeg_folder / "frame_1.jpg"))
    assert [name for name, _ in lone.iter_images()] == ["frame_1.jpg"]


def test_an_empty_source_is_a_clear_error(tmp_path):
    with pytest.raises(NothingToSegmentError, match="no camera_image parquet or JPEG files"):
        list(CameraImageSource(str(tmp_path)).iter_images())


def test_unseen_sizes_get_labels_of_their_own_size_and_bad_images_are_skipped(
    model, jpeg_folder, caplog
):
    source = CameraImageSource(str(jpeg_folder))
    batches = list(segment_images(model, source.iter_images(), batch_size=3, device="cpu"))
    assert [len(batch) for batch in batches] == [3, 1]
    predictions = [p for batch in batches for p in batch]
    assert sorted(p.name for p in predictions) == [f"frame_{i}.jpg" for i in range(4)]
    for prediction in predictions:
        assert prediction.waymo_ids.shape == (50, 70)
        assert set(np.unique(prediction.waymo_ids)) <= {2, 20, 25}
    assert "Skipping broken.jpg" in caplog.text
    assert (
        "Skipped 1 of 5 image(s) that could not be decoded (reasons above): broken.jpg"
        in caplog.text
    )


def test_the_pipeline_writes_label_pngs_of_waymo_ids_and_overlays(
    run_inference, jpeg_folder, tmp_path, caplog
):
    with caplog.at_level(logging.INFO):
        run_inference(jpeg_folder, tmp_path / "out")

    labels = written_pngs(tmp_path / "out" / "labels")
    assert sorted(labels) == [f"frame_{i}.jpg.png" for i in range(4)]
    for image in labels.values():
        assert image.mode == "L"
        assert image.size == (70, 50)
        assert set(np.unique(np.asarray(image))) <= {2, 20, 25}
    overlays = written_pngs(tmp_path / "out" / "overlays")
    assert {name: image.size for name, image in overlays.items()} == {
        f"frame_{i}.jpg.png": (70, 50) for i in range(4)
    }
    # The corrupt fifth image is counted and named, and not among the files written.
    assert f"Segmented 4 image(s) from {jpeg_folder}" in caplog.text
    assert "Skipped 1 of 5 image(s) that could not be decoded" in caplog.text


def test_a_missing_model_says_which_pipeline_makes_it(tmp_path):
    with pytest.raises(DatasetError, match="kedro run --pipelines training"):
        SegmentationModelDataset(str(tmp_path / "absent.pt")).load()
    with pytest.raises(DatasetError, match="kedro run --pipelines training"):
        DeployedModelDataset(str(tmp_path / "absent")).load()


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        ([], ""),
        (["a", "b"], "a, b"),
        (["a", "b", "c"], "a, b, c"),
        (list("abcde"), "a, b, c and 2 more"),
    ],
)
def test_long_lists_of_skipped_names_are_cut(names, expected):
    assert name_some(names, limit=3) == expected
