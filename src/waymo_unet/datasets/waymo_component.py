"""A folder of Waymo v2 per-segment parquet files of one component, local or ``gs://``."""

from __future__ import annotations

from typing import Any

from fsspec.core import url_to_fs
from kedro.io import AbstractDataset, DatasetError

from waymo_unet.data.ingest import SourceTree
from waymo_unet.data.parquet import ParquetSource


class WaymoComponentDataset(AbstractDataset[None, SourceTree]):
    """Lists ``<path>/<split>/<component>/<segment>.parquet`` without reading them.

    Loading returns ``{split: {segment: ParquetSource}}``: small picklable handles that
    ingestion workers open themselves, reading only the columns and row groups they
    need (a camera_image file is about 1 GB). Each carries the file's identity from the
    same listing (size and modification time; on GCS its md5 or crc32c checksum), so
    ingestion notices a changed file without a request per file. Read-only.

    Example::

        raw_camera_images:
          type: waymo_unet.datasets.WaymoComponentDataset
          path: gs://my-bucket/waymo/v2
          component: camera_image
          credentials: gcs
    """

    def __init__(
        self,
        path: str,
        component: str,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._path = path.rstrip("/")
        self._component = component
        self._storage_options = {**(fs_args or {}), **(credentials or {})}
        self.metadata = metadata

    def load(self) -> SourceTree:
        fs, root = url_to_fs(self._path, **self._storage_options)
        try:
            listing = fs.glob(f"{root}/*/{self._component}/*.parquet", detail=True)
        except FileNotFoundError as error:
            raise DatasetError(
                f"cannot list {self._path}: the bucket or folder does not exist ({error})"
            ) from error
        except PermissionError as error:
            raise DatasetError(
                f"cannot list {self._path}: permission denied; check the `gcs` entry of "
                f"conf/local/credentials.yml or your default credentials ({error})"
            ) from error
        if not listing:
            raise DatasetError(
                f"no {self._component} parquet files under {self._path} (expected "
                f"{self._path}/<split>/{self._component}/<segment>.parquet)"
            )
        tree: SourceTree = {}
        for path, info in sorted(listing.items()):
            split = path.rsplit("/", 3)[-3]
            source = ParquetSource.listed(fs.unstrip_protocol(path), info, self._storage_options)
            tree.setdefault(split, {})[source.segment] = source
        return tree

    def save(self, data: None) -> None:
        raise DatasetError(f"{type(self).__name__} is read-only: raw data is never overwritten")

    def _exists(self) -> bool:
        fs, root = url_to_fs(self._path, **self._storage_options)
        return bool(fs.glob(f"{root}/*/{self._component}/*.parquet"))

    def _describe(self) -> dict[str, Any]:
        # Storage options can hold credentials: never describe them.
        return {"path": self._path, "component": self._component}
