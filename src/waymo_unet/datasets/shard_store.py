"""The location of the training shards, handed to the nodes that write and read them."""

from __future__ import annotations

from typing import Any

from kedro.io import AbstractDataset, DatasetError

from waymo_unet.data.shards import ShardStore


class ShardStoreDataset(AbstractDataset[None, ShardStore]):
    """Loads a ``ShardStore`` handle for a folder or bucket prefix.

    Shards are written by ingestion workers themselves, segment by segment, so that no
    image passes through the Kedro process; the node's catalog outputs are the shard
    index and reports. Loading returns the handle, not the arrays.
    """

    def __init__(
        self,
        path: str,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._store = ShardStore(path.rstrip("/"), {**(fs_args or {}), **(credentials or {})})
        self.metadata = metadata

    def load(self) -> ShardStore:
        return self._store

    def save(self, data: None) -> None:
        raise DatasetError(
            f"{type(self).__name__} is written segment by segment through ShardStore, not saved"
        )

    def _exists(self) -> bool:
        return True

    def _describe(self) -> dict[str, Any]:
        return {"path": self._store.root}
