import json

import numpy as np
import pytest
import torch

from tests.tiny_shards import LABEL_CATALOG
from waymo_unet.datasets import DeployedModelDataset
from waymo_unet.models.bundle import SegmentationModel
from waymo_unet.models.export import DeployedModel, deployment_manifest, export_program
from waymo_unet.models.unet import UNetConfig, build_unet


@pytest.fixture(scope="module")
def model() -> SegmentationModel:
    torch.manual_seed(0)
    config = UNetConfig(num_classes=3, base_channels=4, depth=2)
    return SegmentationModel(build_unet(config).eval(), config, LABEL_CATALOG["classes"], (20, 28))


@pytest.fixture(scope="module")
def deployed(model, tmp_path_factory) -> DeployedModel:
    dataset = DeployedModelDataset(str(tmp_path_factory.mktemp("deployed")))
    dataset.save(DeployedModel(export_program(model), deployment_manifest(model)))
    return dataset.load()


@pytest.mark.parametrize("batch", [1, 3])
def test_the_exported_program_gives_the_eager_logits(model, deployed, batch):
    inputs = torch.randn(batch, 3, 20, 28)
    with torch.inference_mode():
        eager = model.network(inputs)
        exported = deployed.program.module()(inputs)
    torch.testing.assert_close(exported, eager, rtol=1e-5, atol=1e-5)


def test_the_deployed_model_predicts_like_the_trained_one(model, deployed):
    images = torch.randint(0, 256, (4, 20, 28, 3), dtype=torch.uint8)
    assert torch.equal(deployed.predict_indices(images), model.predict_indices(images))
    np.testing.assert_array_equal(deployed.waymo_ids, model.waymo_ids)
    assert deployed.image_size == (20, 28)


def test_the_manifest_describes_input_and_classes(model):
    manifest = json.loads(json.dumps(deployment_manifest(model)))
    assert manifest["input"]["shape"] == ["batch", 3, 20, 28]
    assert [c["name"] for c in manifest["classes"]] == ["CAR", "ROAD", "SKY"]
    assert all(c["colour"].startswith("#") for c in manifest["classes"])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_the_deployed_model_runs_on_cuda_like_on_the_cpu(deployed):
    images = torch.randint(0, 256, (4, 20, 28, 3), dtype=torch.uint8)
    on_cpu = deployed.predict_indices(images)
    try:
        on_gpu = deployed.to("cuda").predict_indices(images)
    finally:
        deployed.to("cpu")
    assert on_gpu.device.type == "cuda"
    assert (on_gpu.cpu() == on_cpu).float().mean() > 0.99  # TF32 convolutions may differ
