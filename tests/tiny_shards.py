"""A tiny learnable shard store: the label of every pixel is given by its colour."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from waymo_unet.data.shards import ShardStore

# Waymo ids drawn, and the colour each one gets.
COLOURS = {25: (70, 130, 230), 20: (60, 60, 60), 2: (200, 30, 30)}
LUT = np.full(256, 255, np.uint8)
LUT[[2, 20, 25]] = [0, 1, 2]  # CAR, ROAD, SKY -> training indices; the rest ignored


def make_segment(rng: np.random.Generator, items: int, height: int = 16, width: int = 24):
    labels = np.full((items, height, width), 20, np.uint8)
    labels[:, : height // 2] = 25
    for item in range(items):
        top, left = rng.integers(height // 3, height - 4), rng.integers(0, width - 6)
        labels[item, top : top + 4, left : left + 6] = 2
    labels[:, 0, 0] = 0  # an UNDEFINED pixel, ignored
    images = np.zeros((items, height, width, 3), np.uint8)
    for class_id, colour in COLOURS.items():
        images[labels == class_id] = colour
    noise = rng.integers(-20, 21, images.shape)
    return np.clip(images + noise, 0, 255).astype(np.uint8), labels


LABEL_CATALOG = {
    "num_classes": 3,
    "ignore_id": 0,
    "ignore_index": 255,
    "classes": [
        {"index": 0, "id": 2, "name": "CAR", "weight": 2.0, "pixels": 1},
        {"index": 1, "id": 20, "name": "ROAD", "weight": 1.0, "pixels": 1},
        {"index": 2, "id": 25, "name": "SKY", "weight": 1.0, "pixels": 1},
    ],
    "id_to_index": {"2": 0, "20": 1, "25": 2},
}


def write_shard(
    store: ShardStore,
    split: str,
    segment: str,
    images: np.ndarray,
    labels: np.ndarray,
    result: dict[str, Any],
) -> None:
    """Write a segment's shard as ingestion does: the arrays, then the commit record."""
    store.write_arrays(split, segment, images, labels)
    store.commit(split, segment, result)


def write_tiny_shards(root, height: int = 16, width: int = 24) -> tuple[ShardStore, pd.DataFrame]:
    """Two training segments and one validation segment of 16x24 items, and their index."""
    store = ShardStore(str(root))
    rng = np.random.default_rng(0)
    rows = []
    for split, segment, items in (
        ("training", "a", 12),
        ("training", "b", 12),
        ("validation", "c", 8),
    ):
        images, labels = make_segment(rng, items, height, width)
        write_shard(store, split, segment, images, labels, {"fingerprint": "test"})
        rows += [
            {"split": split, "segment": segment, "item": i, "fingerprint": "test"}
            for i in range(items)
        ]
    return store, pd.DataFrame(rows)
