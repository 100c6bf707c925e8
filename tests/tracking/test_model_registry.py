"""The deployed model as an MLflow pyfunc model: registered once per weights, loaded back."""

from __future__ import annotations

import logging

import mlflow
import numpy as np
import pytest
import torch
from kedro.io import DataCatalog, DatasetError
from kedro_mlflow.io.catalog.switch_catalog_logging import switch_catalog_logging

from tests.tiny_shards import LABEL_CATALOG
from waymo_unet.datasets import MlflowDeployedModelDataset, MlflowRegisteredModelDataset
from waymo_unet.models.bundle import SegmentationModel
from waymo_unet.models.export import DeployedModel, deployment_manifest, export_program
from waymo_unet.models.unet import UNetConfig, build_unet
from waymo_unet.tracking import model_registry
from waymo_unet.tracking.model_registry import DeployedModelPyfunc, log_deployed_model

NAME = "waymo_unet"
IMAGE_SIZE = (20, 28)


def tiny_deployed_model(seed: int) -> DeployedModel:
    torch.manual_seed(seed)
    config = UNetConfig(num_classes=3, base_channels=4, depth=2)
    network = build_unet(config).eval()
    model = SegmentationModel(network, config, LABEL_CATALOG["classes"], IMAGE_SIZE)
    return DeployedModel(export_program(model), deployment_manifest(model))


@pytest.fixture(scope="module")
def deployed() -> DeployedModel:
    return tiny_deployed_model(seed=0)


@pytest.fixture(scope="module")
def retrained() -> DeployedModel:
    return tiny_deployed_model(seed=1)


def random_images(count: int = 3) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (count, *IMAGE_SIZE, 3), dtype=np.uint8)


def waymo_ids(model: DeployedModel, images: np.ndarray) -> np.ndarray:
    return model.waymo_ids[model.predict_indices(torch.from_numpy(images)).numpy()]


def save_in_a_run(
    dataset: MlflowDeployedModelDataset, model: DeployedModel, mlflow_experiment: str
):
    """The run (finished) in which ``dataset`` saved ``model``."""
    with mlflow.start_run(experiment_id=mlflow_experiment) as run:
        dataset.save(model)
    return mlflow.get_run(run.info.run_id)


def versions(name: str = NAME) -> list[int]:
    # MLflow 3.18's search gives the version as an int, get_model_version as a str.
    found = mlflow.MlflowClient().search_model_versions(f"name = '{name}'")
    return sorted(int(version.version) for version in found)


def test_a_registered_version_predicts_the_deployed_models_waymo_ids(
    deployed, mlflow_experiment, tmp_path
):
    dataset = MlflowDeployedModelDataset(str(tmp_path / "deployed"), registered_model_name=NAME)
    run = save_in_a_run(dataset, deployed, mlflow_experiment)

    version = mlflow.MlflowClient().get_model_version(NAME, "1")
    assert version.run_id == run.info.run_id
    assert version.tags["weights_digest"] == deployed.manifest["weights_digest"]
    assert run.data.tags["registered_model_version"] == "1"
    assert dataset.load().manifest == deployed.manifest  # the folder is saved as before
    pyfunc = mlflow.pyfunc.load_model(f"models:/{NAME}/1")
    assert isinstance(pyfunc.unwrap_python_model().deployed, DeployedModel)
    images = random_images()
    predicted = pyfunc.predict(images)
    assert predicted.dtype == np.uint8
    np.testing.assert_array_equal(predicted, waymo_ids(deployed, images))


def test_the_same_weights_register_no_new_version_and_new_weights_do(
    deployed, retrained, mlflow_experiment, tmp_path, caplog
):
    dataset = MlflowDeployedModelDataset(str(tmp_path / "deployed"), registered_model_name=NAME)
    first = save_in_a_run(dataset, deployed, mlflow_experiment)

    with caplog.at_level(logging.INFO, logger=model_registry.__name__):
        again = save_in_a_run(dataset, deployed, mlflow_experiment)
    assert versions() == [1]
    assert f"{NAME} version 1 (run {first.info.run_id}) already holds" in caplog.text
    assert again.data.tags["registered_model_version"] == "1"
    assert not again.outputs.model_outputs  # nothing logged a second time

    other = save_in_a_run(dataset, retrained, mlflow_experiment)
    assert versions() == [1, 2]
    assert other.data.tags["registered_model_version"] == "2"
    tags = mlflow.MlflowClient().get_model_version(NAME, "2").tags
    assert tags["weights_digest"] == retrained.manifest["weights_digest"]


def test_with_logging_off_or_no_run_the_dataset_only_saves_its_folder(
    deployed, mlflow_experiment, tmp_path
):
    dataset = MlflowDeployedModelDataset(str(tmp_path / "deployed"), registered_model_name=NAME)
    catalog = DataCatalog({"models_deployed_model": dataset})
    switch_catalog_logging(catalog, False)  # what kedro-mlflow does when tracking is off
    assert dataset._logging_activated is False
    off = save_in_a_run(dataset, deployed, mlflow_experiment)

    switch_catalog_logging(catalog, True)
    dataset.save(deployed)  # no active run

    assert mlflow.active_run() is None  # no run was started implicitly
    assert mlflow.MlflowClient().search_registered_models() == []
    assert "weights_digest" not in off.data.tags
    assert dataset.load().manifest == deployed.manifest


def test_the_registered_model_dataset_loads_a_version_and_refuses_to_save(
    deployed, retrained, mlflow_experiment, tmp_path
):
    dataset = MlflowDeployedModelDataset(str(tmp_path / "deployed"), registered_model_name=NAME)
    save_in_a_run(dataset, deployed, mlflow_experiment)
    save_in_a_run(dataset, retrained, mlflow_experiment)
    images = random_images()

    first = MlflowRegisteredModelDataset(model_name=NAME, version=1).load()
    latest = MlflowRegisteredModelDataset(model_name=NAME).load()

    np.testing.assert_array_equal(waymo_ids(first, images), waymo_ids(deployed, images))
    assert first.manifest == deployed.manifest
    assert latest.manifest == retrained.manifest
    with pytest.raises(DatasetError, match="only loads"):
        MlflowRegisteredModelDataset(model_name=NAME).save(deployed)


def test_a_registered_version_is_loaded_by_its_alias(
    deployed, retrained, mlflow_experiment, tmp_path
):
    dataset = MlflowDeployedModelDataset(str(tmp_path / "deployed"), registered_model_name=NAME)
    save_in_a_run(dataset, deployed, mlflow_experiment)
    save_in_a_run(dataset, retrained, mlflow_experiment)
    mlflow.MlflowClient().set_registered_model_alias(NAME, "champion", "1")

    champion = MlflowRegisteredModelDataset(model_name=NAME, alias="champion").load()

    assert champion.manifest == deployed.manifest
    with pytest.raises(DatasetError, match="not both"):
        MlflowRegisteredModelDataset(model_name=NAME, version=2, alias="champion")


@pytest.mark.parametrize(
    "images",
    [
        np.zeros((2, 3, *IMAGE_SIZE), dtype=np.uint8),  # channels first
        np.zeros((2, *IMAGE_SIZE), dtype=np.uint8),  # no channels
        np.zeros((2, *IMAGE_SIZE, 3), dtype=np.float32),
    ],
    ids=["channels-first", "grey", "float"],
)
def test_predict_refuses_what_is_not_a_batch_of_rgb_images(deployed, images):
    pyfunc = DeployedModelPyfunc()
    pyfunc.deployed = deployed
    with pytest.raises(ValueError, match=r"uint8 RGB images of shape \(N, height, width, 3\)"):
        pyfunc.predict(None, images)


def test_images_of_another_size_get_labels_of_their_own_size(deployed):
    # Twice the model's size, pixel-doubled: area resizing gives the model's images back,
    # and the labels are the argmax of the logits upsampled bilinearly to the images' size.
    pyfunc = DeployedModelPyfunc()
    pyfunc.deployed = deployed
    small = random_images(2)
    large = small.repeat(2, axis=1).repeat(2, axis=2)

    labels = pyfunc.predict(None, large)

    logits = deployed.predict_logits(torch.from_numpy(small))
    upsampled = torch.nn.functional.interpolate(logits, size=large.shape[1:3], mode="bilinear")
    assert labels.shape == large.shape[:3]
    np.testing.assert_array_equal(labels, deployed.waymo_ids[upsampled.argmax(dim=1).numpy()])


def test_predict_splits_batches_the_program_refuses(deployed, monkeypatch):
    # The program accepts 1 to MAX_BATCH images: more go in several calls, none in none.
    pyfunc = DeployedModelPyfunc()
    pyfunc.deployed = deployed
    images = random_images(5)
    monkeypatch.setattr(model_registry, "MAX_BATCH", 2)
    np.testing.assert_array_equal(pyfunc.predict(None, images), waymo_ids(deployed, images))
    assert pyfunc.predict(None, images[:0]).shape == (0, *IMAGE_SIZE)


def test_the_server_finds_the_version_that_holds_the_same_weights(
    deployed, mlflow_server, monkeypatch, tmp_path
):
    # The tag filter of search_model_versions, through the REST API rather than sqlite.
    name = "waymo_unet_server_dedupe"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    mlflow.set_tracking_uri(mlflow_server)
    folder = tmp_path / "deployed"
    MlflowDeployedModelDataset(str(folder), registered_model_name=None).save(deployed)
    try:
        experiment = mlflow.create_experiment("registry-dedupe")
        for _ in range(2):
            with mlflow.start_run(experiment_id=experiment):
                log_deployed_model(folder, deployed.manifest, name)
        assert versions(name) == [1]
    finally:
        while mlflow.active_run() is not None:
            mlflow.end_run()
        mlflow.set_tracking_uri(None)
