import json

import numpy as np
import pytest
import torch

from tests.tiny_shards import LABEL_CATALOG
from waymo_unet.datasets import DeployedModelDataset
from waymo_unet.models.bundle import SegmentationModel
from waymo_unet.models.export import (
    DeployedModel,
    deployment_manifest,
    export_program,
    weights_digest,
)
from waymo_unet.models.unet import UNetConfig, build_unet


@pytest.fixture(scope="module")
def model() -> SegmentationModel:
    torch.manual_seed(0)
    config = UNetConfig(num_classes=3, base_channels=4, depth=2)
    return SegmentationModel(build_unet(config).eval(), config, LABEL_CATALOG["classes"], (20, 28))


@pytest.fixture(scope="module")
def folder(model, tmp_path_factory) -> DeployedModelDataset:
    dataset = DeployedModelDataset(str(tmp_path_factory.mktemp("deployed")))
    dataset.save(DeployedModel(export_program(model), deployment_manifest(model)))
    return dataset


@pytest.fixture
def deployed(folder) -> DeployedModel:
    return folder.load()


def state_of(program: torch.export.ExportedProgram) -> dict[str, torch.Tensor]:
    """A copy of the program's parameters and buffers, to compare with later."""
    return {name: tensor.detach().clone() for name, tensor in program.state_dict.items()}


def assert_same_state(program: torch.export.ExportedProgram, expected: dict[str, torch.Tensor]):
    state = program.state_dict
    assert state.keys() == expected.keys()
    for name, tensor in state.items():
        assert (tensor.device, tensor.dtype) == (expected[name].device, expected[name].dtype), name
        torch.testing.assert_close(tensor, expected[name], rtol=0, atol=0, msg=name)


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


def test_the_weights_digest_depends_on_the_weights_alone(model):
    twin = build_unet(model.config).eval()
    twin.load_state_dict(model.network.state_dict())
    assert weights_digest(twin) == weights_digest(model.network)

    with torch.no_grad():
        next(twin.parameters()).view(-1)[0] += 1e-3
    assert weights_digest(twin) != weights_digest(model.network)


def test_the_manifest_carries_the_weights_digest(model):
    manifest = json.loads(json.dumps(deployment_manifest(model)))
    assert manifest["weights_digest"] == weights_digest(model.network)
    assert len(manifest["weights_digest"]) == 16


def test_moving_the_deployed_model_leaves_its_program_as_exported(deployed):
    # "meta" is a real device move that runs without a GPU: the program's parameters
    # and its BatchNorm buffers must stay float32 on the CPU, as they were loaded.
    images = torch.randint(0, 256, (2, 20, 28, 3), dtype=torch.uint8)
    on_cpu = deployed.predict_indices(images)
    before = state_of(deployed.program)
    assert any(name.endswith("running_mean") for name in before)

    logits = deployed.to("meta").predict_logits(images)

    assert (logits.device.type, logits.shape) == ("meta", (2, 3, 20, 28))
    assert_same_state(deployed.program, before)
    assert torch.equal(deployed.to("cpu").predict_indices(images), on_cpu)
    assert_same_state(deployed.program, before)


def test_a_moved_deployed_model_saves_the_program_it_loaded(deployed, tmp_path):
    before = state_of(deployed.program)
    again = DeployedModelDataset(str(tmp_path / "again"))
    again.save(deployed.to("meta"))
    reloaded = again.load()
    assert_same_state(reloaded.program, before)
    assert reloaded.manifest == deployed.manifest


def test_the_module_that_runs_shares_no_tensor_with_the_program(deployed):
    # On a GPU, Module.to moves parameters in place but replaces buffers; a dtype cast
    # does the same on the CPU, so it shows whether the module aliases the program.
    images = torch.randint(0, 256, (2, 20, 28, 3), dtype=torch.uint8)
    on_cpu = deployed.predict_indices(images)
    before = state_of(deployed.program)

    deployed.module.to(torch.float64)
    deployed.to("cpu").module.to(torch.float64)

    assert_same_state(deployed.program, before)
    assert torch.equal(deployed.to("cpu").predict_indices(images), on_cpu)


def test_the_deployed_model_moves_between_devices_but_keeps_its_dtype(deployed):
    # The program was traced for float32 input (the manifest says so); a dtype cast
    # would need a new export, so ``to`` refuses one instead of half-converting.
    before = state_of(deployed.program)
    with pytest.raises(TypeError, match="float32"):
        deployed.to(torch.float64)
    assert_same_state(deployed.program, before)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_the_deployed_model_runs_on_cuda_like_on_the_cpu(deployed):
    images = torch.randint(0, 256, (4, 20, 28, 3), dtype=torch.uint8)
    on_cpu = deployed.predict_indices(images)
    before = state_of(deployed.program)
    on_gpu = deployed.to("cuda").predict_indices(images)
    assert on_gpu.device.type == "cuda"
    assert_same_state(deployed.program, before)  # still CPU float32: saves as exported
    assert (on_gpu.cpu() == on_cpu).float().mean() > 0.99  # TF32 convolutions may differ
