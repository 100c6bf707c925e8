"""The deployable model folder: ``model.pt2`` (torch.export) and ``manifest.json``."""

from __future__ import annotations

import json
from typing import Any

import fsspec
import torch
from kedro.io import AbstractDataset, DatasetError
from kedro_datasets._typing import JSONPreview

from waymo_unet.models.export import DeployedModel

PROGRAM, MANIFEST = "model.pt2", "manifest.json"


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
        with self._fs.open(f"{self._root}/{MANIFEST}", "r") as file:
            manifest = json.load(file)
        with self._fs.open(f"{self._root}/{PROGRAM}", "rb") as file:
            program = torch.export.load(file)
        return DeployedModel(program, manifest)

    def save(self, data: DeployedModel) -> None:
        self._fs.makedirs(self._root, exist_ok=True)
        with self._fs.open(f"{self._root}/{PROGRAM}", "wb") as file:
            torch.export.save(data.program, file)
        with self._fs.open(f"{self._root}/{MANIFEST}", "w") as file:
            json.dump(data.manifest, file, indent=1)

    def preview(self) -> JSONPreview:
        """The manifest (input, output, classes) for kedro-viz, without loading the program."""
        with self._fs.open(f"{self._root}/{MANIFEST}", "r") as file:
            return JSONPreview(file.read())

    def _exists(self) -> bool:
        return self._fs.exists(f"{self._root}/{MANIFEST}")

    def _describe(self) -> dict[str, Any]:
        return {"path": self._path}
