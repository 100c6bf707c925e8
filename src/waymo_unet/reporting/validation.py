"""Overlays of a few validation images: RGB, ground truth over RGB, prediction over RGB."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from waymo_unet.data.shards import ShardStore
from waymo_unet.models.bundle import SegmentationModel
from waymo_unet.reporting.overlays import overlay_grid, overlay_panel


def pick_items(index: pd.DataFrame, split: str, count: int) -> pd.DataFrame:
    """``count`` items of a split spread evenly over it (so over segments and cameras)."""
    rows = index[index["split"] == split].sort_values(["segment", "item"])
    if rows.empty:
        raise ValueError(f"the shard index has no items of split {split!r}")
    positions = np.linspace(0, len(rows) - 1, num=min(count, len(rows))).round().astype(int)
    return rows.iloc[np.unique(positions)]


def validation_overlays(
    model: SegmentationModel,
    store: ShardStore,
    index: pd.DataFrame,
    split: str = "validation",
    count: int = 6,
    scale: int = 2,
) -> np.ndarray:
    """One RGB image stacking a panel per picked item, with each panel's class legend."""
    panels = []
    for row in pick_items(index, split, count).itertuples(index=False):
        images, labels = store.open_segment(split, row.segment)
        image, truth = np.array(images[row.item]), np.array(labels[row.item])
        predicted = model.predict_waymo_ids(torch.from_numpy(image[None]))[0]
        panels.append(overlay_panel(image, truth, predicted, scale=scale))
    return overlay_grid(panels)
