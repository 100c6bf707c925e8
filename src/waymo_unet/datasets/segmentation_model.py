"""A trained segmentation model as one file: weights, config, class map, input settings."""

from __future__ import annotations

import json
from pathlib import PurePosixPath
from typing import Any

import fsspec
import torch
from kedro.io import AbstractDataset, DatasetError
from kedro_datasets._typing import JSONPreview

from waymo_unet.models.bundle import SegmentationModel


class SegmentationModelDataset(AbstractDataset[SegmentationModel, SegmentationModel]):
    """Saves ``SegmentationModel.to_checkpoint()`` with ``torch.save``; loads it back.

    The file holds only tensors and plain types (``weights_only`` loading), so it can be
    loaded without the training code's state, or pickled classes, or trusting the file.
    """

    def __init__(
        self,
        filepath: str,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._filepath = filepath
        self._storage_options = {**(fs_args or {}), **(credentials or {})}
        self.metadata = metadata

    def load(self) -> SegmentationModel:
        if not self._exists():
            raise DatasetError(
                f"no trained model at {self._filepath}: run `kedro run --pipelines training` first"
            )
        with fsspec.open(self._filepath, "rb", **self._storage_options) as file:
            return SegmentationModel.from_checkpoint(
                torch.load(file, map_location="cpu", weights_only=True)
            )

    def save(self, data: SegmentationModel) -> None:
        fs, path = fsspec.core.url_to_fs(self._filepath, **self._storage_options)
        fs.makedirs(str(PurePosixPath(path).parent), exist_ok=True)
        with fs.open(f"{path}.tmp", "wb") as file:
            torch.save(data.to_checkpoint(), file)
        fs.mv(f"{path}.tmp", path)

    def preview(self) -> JSONPreview:
        """Everything but the weights (config, classes, input settings) for kedro-viz."""
        with fsspec.open(self._filepath, "rb", **self._storage_options) as file:
            checkpoint = torch.load(file, map_location="cpu", weights_only=True)
        weights = checkpoint.pop("state_dict")
        checkpoint["parameter_count"] = sum(tensor.numel() for tensor in weights.values())
        return JSONPreview(json.dumps(checkpoint))

    def _exists(self) -> bool:
        fs, path = fsspec.core.url_to_fs(self._filepath, **self._storage_options)
        return fs.exists(path)

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath}
