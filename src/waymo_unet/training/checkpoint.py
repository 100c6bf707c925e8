"""Checkpoints: one dict per run, replaced atomically after every epoch."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import torch

from waymo_unet.data.location import Location

logger = logging.getLogger(__name__)

LAST_CHECKPOINT = "last.pt"


@dataclass(frozen=True)
class CheckpointStore(Location):
    """A folder (local or remote) holding the latest checkpoint of a training run.

    ``run_info`` goes into every checkpoint beside the training state: what makes it
    usable on its own, such as the class map (training index -> Waymo id and name).
    """

    run_info: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def path(self) -> str:
        return self.join(LAST_CHECKPOINT)

    def save(self, checkpoint: dict[str, Any]) -> None:
        """Write to a temporary name, then rename: a kill mid-write keeps the last good one."""
        fs = self.filesystem
        fs.makedirs(self.root, exist_ok=True)
        temporary = f"{self.path}.tmp"
        with fs.open(temporary, "wb") as file:
            torch.save({**self.run_info, **checkpoint}, file)
        fs.mv(temporary, self.path)

    def load(self) -> dict[str, Any] | None:
        """The latest checkpoint, on the CPU, or None if there is none."""
        fs = self.filesystem
        if not fs.exists(self.path):
            return None
        with fs.open(self.path, "rb") as file:
            return torch.load(file, map_location="cpu", weights_only=True)
