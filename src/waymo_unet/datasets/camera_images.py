"""Inference's datasets: the camera images to segment, and the images predicted for them."""

from __future__ import annotations

import logging
from typing import Any

from kedro.io import DatasetError
from kedro_datasets.partitions import PartitionedDataset

from waymo_unet.datasets.stores import LocationDataset
from waymo_unet.inference.sources import CameraImageSource

logger = logging.getLogger(__name__)


class CameraImagesDataset(LocationDataset):
    """A camera_image parquet file or folder, or a JPEG folder; loads a ``CameraImageSource``.

    Images are read as inference consumes them, a row group or a file at a time.
    """

    store_type = CameraImageSource


class LatestRunPartitionsDataset(PartitionedDataset):
    """A ``PartitionedDataset`` that holds the partitions of the latest run only.

    The first save of a run (Kedro builds a catalog per run) removes the partitions an
    earlier run left, and logs it, so old outputs never sit among new ones; later saves
    (a generator node's batches) add to the run's. ``overwrite: true`` would wipe every
    earlier batch instead, so it is refused; so is a partition saved twice in one run.
    Leans on PartitionedDataset's protected listing (``_list_partitions``), which the
    tests exercise, so a kedro-datasets upgrade that changes it fails there.
    """

    def __init__(self, **kwargs: Any) -> None:
        if kwargs.get("overwrite"):
            raise DatasetError(
                f"{type(self).__name__} replaces the previous run's partitions itself; "
                "`overwrite: true` would delete each batch with the next: remove it"
            )
        super().__init__(**kwargs)
        self._saved_this_run: set[str] | None = None  # None until the run's first save

    def save(self, data: dict[str, Any]) -> None:
        if self._saved_this_run is None:
            self._remove_earlier_run()
            self._saved_this_run = set()
        if repeated := self._saved_this_run & data.keys():
            raise DatasetError(
                f"partitions {sorted(repeated)} of {self._path} were already saved by this "
                "run; refusing to write over them"
            )
        super().save(data)
        self._saved_this_run |= data.keys()

    def _remove_earlier_run(self) -> None:
        self._invalidate_caches()
        earlier = self._list_partitions()
        if not earlier:
            return
        self._filesystem.rm(earlier)
        self._remove_empty_folders()
        self._invalidate_caches()
        logger.info(
            "Removed %d %s file(s) an earlier run left in %s",
            len(earlier),
            self._filename_suffix,
            self._path,
        )

    def _remove_empty_folders(self) -> None:
        """Sub-folders the removed partitions emptied, deepest first; other files stay."""
        fs = self._filesystem
        if not fs.isdir(self._normalized_path):  # a bucket prefix ends with its last object
            return
        root = fs.info(self._normalized_path)["name"]
        listing = fs.find(root, withdirs=True, detail=True)
        folders = [path for path, info in listing.items() if info["type"] == "directory"]
        for folder in sorted(folders, key=len, reverse=True):
            if folder != root and not fs.ls(folder):
                fs.rmdir(folder)
