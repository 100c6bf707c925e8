"""The tests' inference settings, and what a run wrote, read back from disk."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

PARAMS = {"batch_size": 3, "device": "cpu", "precision": "auto", "overlay_alpha": 0.5}
PNG_PARTITIONS = {"dataset": "pillow.ImageDataset", "filename_suffix": ".png"}  # as the catalog


def written_pngs(folder: Path) -> dict[str, Image.Image]:
    """Every PNG under ``folder``, by its '/'-joined path relative to it, loaded."""
    return {
        path.relative_to(folder).as_posix(): Image.open(path)
        for path in sorted(folder.rglob("*.png"))
    }
