"""Training shards: per segment, uint8 image and label arrays plus a commit record.

Layout under the store's root (a local folder or a bucket prefix)::

    <split>/<segment>/images.npy   (N, H, W, 3) uint8 RGB
    <split>/<segment>/labels.npy   (N, H, W)    uint8 semantic ids
    <split>/<segment>/result.json  what ingestion found; written last

``result.json`` is the commit marker: a segment without it, or with one written under
other parameters, is not done, so a worker killed mid-segment never leaves a shard
that a later run counts as complete.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
from fsspec.implementations.local import LocalFileSystem

from waymo_unet.data.location import Location

RESULT_FILE = "result.json"
IMAGES_FILE = "images.npy"
LABELS_FILE = "labels.npy"


@dataclass(frozen=True)
class ShardStore(Location):
    """The folder (or bucket prefix) that holds every segment's shard."""

    def segment_path(self, split: str, segment: str, name: str = "") -> str:
        return self.join(split, segment, name)

    def read_result(self, split: str, segment: str) -> dict[str, Any] | None:
        """The committed result of a segment, or None if it was never completed."""
        path = self.segment_path(split, segment, RESULT_FILE)
        fs = self.filesystem
        if not fs.exists(path):
            return None
        with fs.open(path, "r") as file:
            return json.load(file)

    def write_arrays(
        self, split: str, segment: str, images: np.ndarray, labels: np.ndarray
    ) -> None:
        """Write a segment's arrays, uncommitting it first; ``commit`` completes it."""
        fs = self.filesystem
        marker = self.segment_path(split, segment, RESULT_FILE)
        if fs.exists(marker):
            fs.rm(marker)  # uncommit first: a crash below must not leave a stale commit
        fs.makedirs(self.segment_path(split, segment), exist_ok=True)
        for name, array in ((IMAGES_FILE, images), (LABELS_FILE, labels)):
            with fs.open(self.segment_path(split, segment, name), "wb") as file:
                np.save(file, np.ascontiguousarray(array), allow_pickle=False)

    def commit(self, split: str, segment: str, result: dict[str, Any]) -> None:
        """Mark a segment complete by writing its result record (atomically, by rename)."""
        fs = self.filesystem
        marker = self.segment_path(split, segment, RESULT_FILE)
        temporary = f"{marker}.tmp"
        with fs.open(temporary, "w") as file:
            json.dump(result, file, indent=1)
        fs.mv(temporary, marker)

    def open_segment(self, split: str, segment: str) -> tuple[np.ndarray, np.ndarray]:
        """(images, labels) of a segment, memory-mapped when the store is local."""
        fs = self.filesystem
        arrays = []
        for name in (IMAGES_FILE, LABELS_FILE):
            path = self.segment_path(split, segment, name)
            if isinstance(fs, LocalFileSystem):  # a local root is a plain path (Location)
                arrays.append(np.load(path, mmap_mode="r"))
            else:
                with fs.open(path, "rb") as file:
                    arrays.append(np.load(file, allow_pickle=False))
        return arrays[0], arrays[1]
