"""Inference sources, batched prediction and the inference pipeline on unseen image sizes."""

from __future__ import annotations

import numpy as np
import pytest
from kedro.io import DataCatalog, DatasetError, MemoryDataset
from kedro.runner import SequentialRunner
from kedro_datasets.partitions import PartitionedDataset

from tests import waymo_files as wf
from tests.tiny_shards import LABEL_CATALOG
from waymo_unet.datasets import (
    CameraImagesDataset,
    DeployedModelDataset,
    SegmentationModelDataset,
)
from waymo_unet.inference.predict import name_some, segment_images
from waymo_unet.inference.sources import CameraImageSource
from waymo_unet.models.bundle import SegmentationModel
from waymo_unet.models.export import DeployedModel, deployment_manifest, export_program
from waymo_unet.models.unet import UNetConfig, build_unet
from waymo_unet.pipelines import inference

PARAMS = {"batch_size": 3, "device": "cpu", "precision": "auto", "overlay_alpha": 0.5}


@pytest.fixture
def model() -> SegmentationModel:
    config = UNetConfig(num_classes=3, base_channels=4, depth=2)
    return SegmentationModel(build_unet(config).eval(), config, LABEL_CATALOG["classes"], (16, 24))


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


def test_an_empty_source_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no camera_image parquet or JPEG files"):
        list(CameraImageSource(str(tmp_path)).iter_images())


def test_unseen_sizes_get_labels_of_their_own_size_and_bad_images_are_skipped(
    model, jpeg_folder, caplog
):
    source = CameraImageSource(str(jpeg_folder))
    batches = list(segment_images(model, source.iter_images(), batch_size=3, device="cpu"))
    assert [len(batch) for batch in batches] == [3, 1]
    predictions = [p for batch in batches for p in batch]
    assert sorted(p.name for p in predictions) == [f"frame_{i}" for i in range(4)]
    for prediction in predictions:
        assert prediction.waymo_ids.shape == (50, 70)
        assert set(np.unique(prediction.waymo_ids)) <= {2, 20, 25}
    assert "Skipping broken" in caplog.text
    assert "Skipped 1 image(s) that could not be decoded (reasons above): broken" in caplog.text


def test_the_pipeline_writes_label_pngs_of_waymo_ids_and_overlays(model, jpeg_folder, tmp_path):
    deployed = DeployedModelDataset(str(tmp_path / "deployed"))
    deployed.save(DeployedModel(export_program(model), deployment_manifest(model)))
    labels = PartitionedDataset(
        path=str(tmp_path / "labels"), dataset="pillow.ImageDataset", filename_suffix=".png"
    )
    overlays = PartitionedDataset(
        path=str(tmp_path / "overlays"), dataset="pillow.ImageDataset", filename_suffix=".png"
    )
    catalog = DataCatalog(
        {
            "models_deployed_model": deployed,
            "inference_camera_images": CameraImagesDataset(str(jpeg_folder)),
            "params:inference": MemoryDataset(PARAMS),
            "model_output_predicted_labels": labels,
            "model_output_prediction_overlays": overlays,
        }
    )
    SequentialRunner().run(inference.create_pipeline(), catalog)

    written = labels.load()
    assert sorted(written) == [f"frame_{i}" for i in range(4)]
    for load in written.values():
        image = load()
        assert image.mode == "L"
        assert image.size == (70, 50)
        assert set(np.unique(np.asarray(image))) <= {2, 20, 25}
    assert {name: load().size for name, load in overlays.load().items()} == {
        f"frame_{i}": (70, 50) for i in range(4)
    }


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
