"""What ingestion produces and how it runs, read from the ``ingestion`` parameters.

``IngestionConfig.fingerprint`` marks the shard content these settings make, so that a
committed shard is reused only while ingestion would still write it the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from waymo_unet.config import config_from_params
from waymo_unet.data.waymo import CameraName
from waymo_unet.digest import content_digest

# Bump when the shard layout or decoding changes, so old shards are rebuilt.
SHARD_FORMAT_VERSION = 1


@dataclass(frozen=True)
class IngestionConfig:
    """What ingestion produces: image size, splits, cameras and how many segments."""

    height: int
    width: int
    splits: tuple[str, ...] = ("training", "validation")
    cameras: tuple[int, ...] = tuple(int(c) for c in CameraName)
    max_segments: int | None = None
    workers: int | None = None
    dask_scheduler: str | None = None  # tcp://host:port of a Dask cluster to run on
    task_retries: int = 2  # on Dask: how often a failed segment task is retried
    read_ahead: int = 1  # image row groups read on a thread while one decodes (0: off)

    def __post_init__(self) -> None:
        if self.height < 1 or self.width < 1:
            raise ValueError(f"image size must be positive, got {self.height}x{self.width}")
        if unknown := set(self.cameras) - {int(c) for c in CameraName}:
            raise ValueError(f"unknown camera id(s) {sorted(unknown)}; valid ids are 1..5")
        if self.max_segments is not None and self.max_segments < 1:
            raise ValueError(f"max_segments must be >= 1 or null, got {self.max_segments}")
        if self.read_ahead < 0:
            raise ValueError(f"read_ahead must be >= 0, got {self.read_ahead}")

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> IngestionConfig:
        """From the ``ingestion`` parameters; an unknown key or a wrong type is named."""
        values = dict(params)
        for name in ("splits", "cameras"):
            if isinstance(values.get(name), list):
                values[name] = tuple(values[name])  # YAML lists
        return config_from_params(cls, values, "ingestion", "parameters_ingestion.yml")

    @property
    def fingerprint(self) -> str:
        """Identifies the shard content these settings produce (not how it is computed).

        The raw files' identities are checked beside it (``redo_reason``), not folded
        in: this value also marks the shard index, which must not differ between a
        local and a bucket copy of the same files.
        """
        content = [SHARD_FORMAT_VERSION, self.height, self.width, sorted(self.cameras)]
        return content_digest(content)
