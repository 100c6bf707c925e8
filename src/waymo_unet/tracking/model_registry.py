"""The deployed model in MLflow: a pyfunc model that segments images, registered once per weights.

Saving the same weights again (a rerun, a resumed pipeline) registers no new version: the
run is tagged with the version that already holds them. The pyfunc model is logged from
code (``pyfunc_code.py``, MLflow's "models from code"): nothing is pickled, and serving it
needs ``waymo_unet`` installed; ``load_registered_model`` reads the logged folder back.
"""

from __future__ import annotations

import logging
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import torch
from mlflow.entities.model_registry import ModelVersion
from mlflow.models import Model, ModelSignature
from mlflow.models.model import ModelInfo
from mlflow.pyfunc import PythonModelContext
from mlflow.types import Schema, TensorSpec

from waymo_unet.models.export import MAX_BATCH, DeployedModel, load_deployed_folder
from waymo_unet.models.prediction import predict_waymo_ids
from waymo_unet.models.preprocessing import resized_images

logger = logging.getLogger(__name__)

REGISTERED_MODEL_NAME = "waymo_unet"
LOGGED_MODEL_NAME = "deployed_model"  # the model's name within its run
ARTIFACT_KEY = "deployed_model"  # the deployed folder's key among the pyfunc artifacts
DIGEST_TAG = "weights_digest"  # on model versions (to find them again) and on runs
VERSION_TAG, NAME_TAG = "registered_model_version", "registered_model_name"  # on runs
EXAMPLE_GREY, EXAMPLE_SIZE = 128, (32, 48)
PYFUNC_CODE = Path(__file__).with_name("pyfunc_code.py")


class DeployedModelPyfunc(mlflow.pyfunc.PythonModel):
    """Waymo ids (N, H, W) for uint8 RGB images (N, H, W, 3) of any one size.

    As the inference pipeline does: images are resized to the model's size, and its logits
    back to theirs (``predict_waymo_ids``), so the labels match the images given; at the
    model's own size they are the deployed model's argmax. ``deployed`` is the
    ``DeployedModel`` read from the artifacts by ``load_context``:
    ``mlflow.pyfunc.load_model(uri).unwrap_python_model().deployed``.
    """

    deployed: DeployedModel | None = None

    def load_context(self, context: PythonModelContext) -> None:
        self.deployed = load_deployed_folder(context.artifacts[ARTIFACT_KEY])

    def predict(
        self,
        context: PythonModelContext | None,
        model_input: np.ndarray,
        params: dict[str, Any] | None = None,
    ) -> np.ndarray:
        if self.deployed is None:
            raise RuntimeError("no deployed model: load it with mlflow.pyfunc.load_model")
        return segmented(self.deployed, checked_images(model_input))


def checked_images(images: Any) -> np.ndarray:
    """``images`` if they are uint8 RGB (N, H, W, 3); else a ValueError saying what they are."""
    expected = "uint8 RGB images of shape (N, height, width, 3)"
    if not isinstance(images, np.ndarray):
        raise ValueError(f"expected {expected} in a numpy array, got a {type(images).__name__}")
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected {expected}, got {images.dtype} of shape {images.shape}")
    return images


def segmented(deployed: DeployedModel, images: np.ndarray) -> np.ndarray:
    """Waymo ids (N, H, W) at the images' size, in batches the exported program accepts."""
    size = images.shape[1:3]
    batches = (images[start : start + MAX_BATCH] for start in range(0, len(images), MAX_BATCH))
    labels = [
        label
        for batch in batches
        for label in predict_waymo_ids(
            deployed,
            torch.from_numpy(resized_images(batch, deployed.image_size)),  # stacked: a copy
            [size] * len(batch),
        )
    ]
    if not labels:
        return np.empty((0, *size), dtype=np.uint8)
    return torch.stack(labels).cpu().numpy()


def model_signature() -> ModelSignature:
    """uint8 images (any N, H, W, 3) in, uint8 Waymo ids (the same N, H, W) out."""
    images = TensorSpec(np.dtype(np.uint8), (-1, -1, -1, 3))
    waymo_ids = TensorSpec(np.dtype(np.uint8), (-1, -1, -1))
    return ModelSignature(inputs=Schema([images]), outputs=Schema([waymo_ids]))


def input_example() -> np.ndarray:
    """One small mid-grey image: any size is valid, and a full-size one would take MiBs."""
    return np.full((1, *EXAMPLE_SIZE, 3), EXAMPLE_GREY, dtype=np.uint8)


def pip_requirements() -> list[str]:
    """What ``predict`` imports, at the versions running now, so MLflow need not infer them
    in a subprocess; this package itself is not on PyPI: install it beside them."""
    # A local label (2.13.0+cpu) names a wheel index, not a version a plain pip can find.
    return [
        f"torch=={torch.__version__.split('+')[0]}",
        f"numpy=={np.__version__}",
        f"opencv-python-headless=={metadata.version('opencv-python-headless')}",
    ]


def log_deployed_model(
    folder: str | Path,
    manifest: dict[str, Any],
    registered_model_name: str | None = REGISTERED_MODEL_NAME,
) -> ModelInfo | None:
    """Log ``folder`` (a saved ``DeployedModel``) to the active run and register it.

    Returns None, logging nothing, when a version of ``registered_model_name`` already
    holds the same weights; the run is tagged with that version either way. With
    ``registered_model_name=None`` it logs without registering.
    """
    if mlflow.active_run() is None:
        raise RuntimeError("log_deployed_model logs into the active MLflow run: start one first")
    digest = manifest_digest(manifest)
    mlflow.set_tag(DIGEST_TAG, digest)
    if registered_model_name is not None:
        existing = version_with_digest(registered_model_name, digest)
        if existing is not None:
            logger.info(
                "%s version %s (run %s) already holds weights %s: not registered again",
                existing.name,
                existing.version,
                existing.run_id,
                digest,
            )
            tag_run_with_version(existing)
            return None
    info = mlflow.pyfunc.log_model(
        name=LOGGED_MODEL_NAME,
        python_model=str(PYFUNC_CODE),
        artifacts={ARTIFACT_KEY: str(folder)},
        signature=model_signature(),
        input_example=input_example(),
        pip_requirements=pip_requirements(),
    )
    if registered_model_name is not None:
        # Tagged as it is created, so no version is ever found without its digest.
        version = mlflow.register_model(
            info.model_uri, registered_model_name, tags={DIGEST_TAG: digest}
        )
        tag_run_with_version(version)
    return info


def manifest_digest(manifest: dict[str, Any]) -> str:
    if "weights_digest" not in manifest:
        raise ValueError(
            "the manifest has no weights_digest: export the model again with this version"
        )
    return manifest["weights_digest"]


def version_with_digest(name: str, digest: str) -> ModelVersion | None:
    """The first version of registered model ``name`` tagged with ``digest``, if any."""
    versions = mlflow.MlflowClient().search_model_versions(
        f"name = '{name}' and tags.{DIGEST_TAG} = '{digest}'"
    )
    return min(versions, key=lambda version: int(version.version), default=None)


def tag_run_with_version(version: ModelVersion) -> None:
    mlflow.set_tags({NAME_TAG: version.name, VERSION_TAG: str(version.version)})


def registered_version(
    name: str, version: str | int = "latest", alias: str | None = None
) -> ModelVersion:
    """The version of ``name`` that ``version`` (a number or "latest") or ``alias`` names."""
    client = mlflow.MlflowClient()
    if alias is not None:
        return client.get_model_version_by_alias(name, alias)
    if str(version) != "latest":
        return client.get_model_version(name, str(version))
    newest = client.search_model_versions(
        f"name = '{name}'", max_results=1, order_by=["version_number DESC"]
    )
    if not newest:
        raise LookupError(f"no version of {name!r} is registered at {mlflow.get_registry_uri()}")
    return newest[0]


def load_registered_model(
    name: str, version: str | int = "latest", alias: str | None = None
) -> DeployedModel:
    """The ``DeployedModel`` of a registered version, read from its logged folder.

    The folder is downloaded and read as saved, without running the logged code: it keeps
    working for versions logged before ``DeployedModelPyfunc`` changed or moved.
    """
    found = registered_version(name, version, alias)
    logger.info("loading %s version %s (run %s)", name, found.version, found.run_id)
    with tempfile.TemporaryDirectory() as scratch:
        local = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{name}/{found.version}", dst_path=scratch
            )
        )
        return load_deployed_folder(local / deployed_folder(local))


def deployed_folder(model_dir: Path) -> str:
    """Where, inside a downloaded pyfunc model, MLflow put the deployed model's folder."""
    flavor = Model.load(model_dir).flavors[mlflow.pyfunc.FLAVOR_NAME]
    return flavor["artifacts"][ARTIFACT_KEY]["path"]
