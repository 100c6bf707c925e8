"""The deployable model folder (``model.pt2`` and ``manifest.json``), and its MLflow twins.

``MlflowDeployedModelDataset`` saves the folder as ``DeployedModelDataset`` does, then logs
and registers it in the MLflow run that kedro-mlflow started; ``MlflowRegisteredModelDataset``
loads a registered version, so a pipeline can run on it in place of the folder.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import fsspec
import mlflow
from kedro.io import AbstractDataset, DatasetError
from kedro_datasets._typing import JSONPreview

from waymo_unet.models.export import (
    MANIFEST_FILE,
    DeployedModel,
    load_deployed_folder,
    save_deployed_folder,
)
from waymo_unet.tracking.model_registry import (
    REGISTERED_MODEL_NAME,
    load_registered_model,
    log_deployed_model,
)

logger = logging.getLogger(__name__)


class DeployedModelDataset(AbstractDataset[DeployedModel, DeployedModel]):
    """Saves a ``DeployedModel`` as a folder; loads it back, needing torch only to run."""

    def __init__(
        self,
        path: str,
        credentials: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._path = path.rstrip("/")
        self._fs, self._root = fsspec.core.url_to_fs(self._path, **(credentials or {}))
        self.metadata = metadata

    def load(self) -> DeployedModel:
        if not self._exists():
            raise DatasetError(
                f"no deployed model in {self._path}: run `kedro run --pipelines training` first"
            )
        return load_deployed_folder(self._root, self._fs)

    def save(self, data: DeployedModel) -> None:
        save_deployed_folder(data, self._root, self._fs)

    def preview(self) -> JSONPreview:
        """The manifest (input, output, classes) for kedro-viz, without loading the program."""
        with self._fs.open(f"{self._root}/{MANIFEST_FILE}", "r") as file:
            return JSONPreview(file.read())

    def _exists(self) -> bool:
        return self._fs.exists(f"{self._root}/{MANIFEST_FILE}")

    def _describe(self) -> dict[str, Any]:
        return {"path": self._path}


class MlflowDeployedModelDataset(DeployedModelDataset):
    """``DeployedModelDataset`` that also logs the model to the active MLflow run and registers it.

    kedro-mlflow sets ``_logging_activated`` on every catalog dataset whose class name starts
    with "Mlflow": off when tracking is off. Without an active run (a bare ``save``, or a
    ``ParallelRunner`` worker) it only writes the folder. ``registered_model_name=None``
    logs the model without registering it.
    """

    def __init__(
        self,
        path: str,
        registered_model_name: str | None = REGISTERED_MODEL_NAME,
        credentials: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(path, credentials, metadata)
        self._registered_model_name = registered_model_name
        self._logging_activated = True

    def save(self, data: DeployedModel) -> None:
        super().save(data)
        if not self._logging_activated:
            logger.debug("MLflow logging is off: %s saved to its folder only", self._path)
        elif mlflow.active_run() is None:
            logger.debug("no active MLflow run: %s saved to its folder only", self._path)
        else:
            self._log(data)

    def _log(self, data: DeployedModel) -> None:
        # MLflow copies artifacts from a local folder; ``path`` may be remote (gs://).
        with tempfile.TemporaryDirectory() as scratch:
            folder = Path(scratch) / "deployed_model"
            save_deployed_folder(data, folder)
            log_deployed_model(folder, data.manifest, self._registered_model_name)

    def _describe(self) -> dict[str, Any]:
        return {"path": self._path, "registered_model_name": self._registered_model_name}


class MlflowRegisteredModelDataset(AbstractDataset[DeployedModel, DeployedModel]):
    """Loads the ``DeployedModel`` of a registered version; it cannot save.

    ``version`` is a version number or "latest"; ``alias`` (e.g. "champion") picks the
    version the alias points to instead. Leaving both out loads the latest version.
    """

    def __init__(
        self,
        model_name: str = REGISTERED_MODEL_NAME,
        version: str | int | None = None,
        alias: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        if version is not None and alias is not None:
            raise DatasetError(
                f"give {model_name!r} a version ({version!r}) or an alias ({alias!r}), not both"
            )
        self._model_name = model_name
        self._version = "latest" if version is None and alias is None else version
        self._alias = alias
        self._logging_activated = True  # set by kedro-mlflow; loading logs nothing anyway
        self.metadata = metadata

    def load(self) -> DeployedModel:
        return load_registered_model(self._model_name, self._version, alias=self._alias)

    def save(self, data: DeployedModel) -> None:
        raise DatasetError(
            f"{type(self).__name__} only loads registered versions of {self._model_name!r};"
            " save through MlflowDeployedModelDataset, which logs and registers the model"
        )

    def _describe(self) -> dict[str, Any]:
        return {"model_name": self._model_name, "version": self._version, "alias": self._alias}
