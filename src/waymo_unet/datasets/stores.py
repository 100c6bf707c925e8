"""Folders that workers write into themselves, handed to nodes as small picklable handles.

Ingestion workers write shards segment by segment and training writes a checkpoint
every epoch, so no image or tensor has to pass through the Kedro process; the catalog
still decides where those folders are (local path or bucket) and with which credentials.
"""

from __future__ import annotations

from typing import Any, ClassVar

from kedro.io import AbstractDataset, DatasetError

from waymo_unet.data.shards import ShardStore
from waymo_unet.training.checkpoint import CheckpointStore
from waymo_unet.tuning.study import StudyStore


class LocationDataset(AbstractDataset[None, Any]):
    """Loads a ``Location`` handle for ``path``; writing goes through the handle, not here."""

    store_type: ClassVar[type]

    def __init__(
        self,
        path: str,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._store = self.store_type(path.rstrip("/"), {**(fs_args or {}), **(credentials or {})})
        self.metadata = metadata

    def load(self) -> Any:
        return self._store

    def save(self, data: None) -> None:
        raise DatasetError(f"{type(self).__name__} is written through its handle, not saved")

    def _exists(self) -> bool:
        return True

    def _describe(self) -> dict[str, Any]:
        return {"path": self._store.root}  # never the storage options: they hold credentials


class ShardStoreDataset(LocationDataset):
    """The training shards' folder; loads a ``ShardStore``."""

    store_type = ShardStore


class CheckpointStoreDataset(LocationDataset):
    """A training run's checkpoint folder; loads a ``CheckpointStore``."""

    store_type = CheckpointStore


class StudyStoreDataset(LocationDataset):
    """The folder of the persisted Optuna study; loads a ``StudyStore``."""

    store_type = StudyStore
