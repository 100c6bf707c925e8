"""A tiny model, deployed as inference loads it, and the inference pipeline run with a
fresh catalog each time, as each `kedro run` gets one."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from tests.inference.inference_runs import PARAMS, PNG_PARTITIONS
from tests.tiny_shards import LABEL_CATALOG
from waymo_unet.datasets import CameraImagesDataset, DeployedModelDataset
from waymo_unet.datasets.camera_images import LatestRunPartitionsDataset
from waymo_unet.models.bundle import SegmentationModel
from waymo_unet.models.export import DeployedModel, deployment_manifest, export_program
from waymo_unet.models.unet import UNetConfig, build_unet
from waymo_unet.pipelines import inference


@pytest.fixture
def model() -> SegmentationModel:
    config = UNetConfig(num_classes=3, base_channels=4, depth=2)
    return SegmentationModel(build_unet(config).eval(), config, LABEL_CATALOG["classes"], (16, 24))


@pytest.fixture
def deployed_model(model, tmp_path) -> DeployedModelDataset:
    deployed = DeployedModelDataset(str(tmp_path / "deployed"))
    deployed.save(DeployedModel(export_program(model), deployment_manifest(model)))
    return deployed


@pytest.fixture
def run_inference(deployed_model) -> Callable[..., None]:
    """Segment a folder into ``<outputs>/labels`` and ``<outputs>/overlays``."""

    def run(images: Path, outputs: Path, params: dict[str, Any] = PARAMS) -> None:
        catalog = DataCatalog(
            {
                "models_deployed_model": deployed_model,
                "inference_camera_images": CameraImagesDataset(str(images)),
                "params:inference": MemoryDataset(params),
                "model_output_predicted_labels": LatestRunPartitionsDataset(
                    path=str(outputs / "labels"), **PNG_PARTITIONS
                ),
                "model_output_prediction_overlays": LatestRunPartitionsDataset(
                    path=str(outputs / "overlays"), **PNG_PARTITIONS
                ),
            }
        )
        SequentialRunner().run(inference.create_pipeline(), catalog)

    return run
