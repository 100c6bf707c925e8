"""The evaluation pipeline on a temporary catalog: raw sample files, a deployed tiny model."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from kedro_datasets.json import JSONDataset
from kedro_datasets.pandas import CSVDataset

from tests.tiny_shards import LABEL_CATALOG
from waymo_unet.data import waymo
from waymo_unet.datasets import DeployedModelDataset, WaymoComponentDataset
from waymo_unet.models.bundle import SegmentationModel
from waymo_unet.models.export import DeployedModel, deployment_manifest, export_program
from waymo_unet.models.unet import UNetConfig, build_unet
from waymo_unet.pipelines import evaluation

PARAMS = {
    "split": "validation",
    "max_segments": None,
    "cameras": [1, 2, 3, 4, 5],
    "batch_size": 4,
    "device": "cpu",
    "precision": "fp32",
    "decode_threads": 2,
    "read_ahead": 1,
    "gallery_images": 2,
    "gallery_width": 120,
}
OUTPUTS = evaluation.create_pipeline().outputs()


@pytest.fixture
def catalog(synthetic_sample: Path, tiny_shards, tmp_path: Path) -> DataCatalog:
    store, index = tiny_shards
    index = index.assign(timestamp=index["item"], camera=1)
    config = UNetConfig(num_classes=3, base_channels=4, depth=2)
    model = SegmentationModel(build_unet(config).eval(), config, LABEL_CATALOG["classes"], (16, 24))
    deployed = DeployedModelDataset(str(tmp_path / "deployed"))
    deployed.save(DeployedModel(export_program(model), deployment_manifest(model)))
    raw = str(synthetic_sample)
    return DataCatalog(
        {
            "models_deployed_model": deployed,
            "raw_camera_images": WaymoComponentDataset(raw, waymo.CAMERA_IMAGE),
            "raw_camera_segmentation": WaymoComponentDataset(raw, waymo.CAMERA_SEGMENTATION),
            "primary_shard_store": MemoryDataset(store, copy_mode="assign"),
            "primary_shard_index": MemoryDataset(index),
            "params:evaluation": MemoryDataset(PARAMS),
        }
        | {name: MemoryDataset() for name in OUTPUTS}
        # Read by a later node, so a memory copy would be released after it.
        | {
            "model_output_evaluation_images": CSVDataset(filepath=str(tmp_path / "images.csv")),
            "model_output_evaluation_class_iou": CSVDataset(filepath=str(tmp_path / "iou.csv")),
            "model_output_evaluation_metrics": JSONDataset(filepath=str(tmp_path / "m.json")),
            "model_output_evaluation_metrics_at_training_size": JSONDataset(
                filepath=str(tmp_path / "at_training_size.json")
            ),
        }
    )


def test_the_pipeline_scores_every_labelled_validation_image(catalog, synthetic_sample):
    SequentialRunner().run(evaluation.create_pipeline(), catalog)
    metrics = catalog.load("model_output_evaluation_metrics")
    images = catalog.load("model_output_evaluation_images")
    labelled = sum(
        pd.read_parquet(path, columns=[waymo.KEY_CAMERA]).shape[0]
        for path in (synthetic_sample / "validation" / waymo.CAMERA_SEGMENTATION).glob("*")
    )
    assert metrics["images"] == len(images) == labelled > 0
    assert metrics["quarantined_rows"] == 0
    assert metrics["images_without_coverage"] == 0  # the sample carries num_cameras_covered
    assert 0 <= metrics["waymo_weighted_miou"] <= 1
    # Classes the tiny model never learnt (the sample has more than CAR, ROAD and SKY).
    assert set(metrics["untrained_classes"]) >= {"BUILDING"}
    classes = catalog.load("model_output_evaluation_class_iou").set_index("name")
    assert classes.loc["BUILDING", "iou"] == 0
    assert not classes.loc["BUILDING", "trained"]
    assert classes.loc["SKY", "trained"]
    cells = catalog.load("model_output_evaluation_confusion")
    assert cells["pixels"].sum() == metrics["pixels"]
    assert catalog.load("reporting_evaluation_quarantine").empty
    tracked = catalog.load("tracking_evaluation_metrics")  # what MLflow gets
    assert tracked["waymo_weighted_miou"] == [{"step": 0, "value": metrics["waymo_weighted_miou"]}]
    assert "at_training_size.miou" in tracked


def test_the_shard_metric_and_the_gallery_sit_beside_it(catalog):
    SequentialRunner().run(evaluation.create_pipeline(), catalog)
    at_training_size = catalog.load("model_output_evaluation_metrics_at_training_size")
    assert at_training_size["images"] == 8  # the tiny validation shard
    assert at_training_size["images_without_coverage"] == 8
    assert not math.isnan(at_training_size["pixel_accuracy"])
    gallery = catalog.load("reporting_evaluation_gallery")
    assert gallery.mode == "RGB"
    assert gallery.width == 3 * 120
