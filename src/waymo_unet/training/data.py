"""Training input: memory-mapped shards -> uint8 batches -> normalised, augmented tensors.

No JPEG or PNG is decoded here: ingestion did that once. Items stay uint8 until they are
on the device, where normalisation and augmentation run for the whole batch at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F  # noqa: N812
from torch.utils.data import DataLoader, Dataset, DistributedSampler, get_worker_info

from waymo_unet.data.shards import ShardStore
from waymo_unet.digest import content_digest
from waymo_unet.models.preprocessing import to_model_input
from waymo_unet.training.distributed import ShardSampler


class ShardDataset(Dataset):
    """The items of one split, read from memory-mapped shards.

    An item is ``(image uint8 (H, W, 3), label uint8 (H, W))`` with labels already mapped
    from Waymo ids to training indices through ``lut`` (ignored pixels get the ignore
    index). Mappings are opened lazily in each worker process and kept open: a fresh
    mapping per item costs more in page faults than copying the item.
    """

    def __init__(self, store: ShardStore, index: pd.DataFrame, split: str, lut: np.ndarray) -> None:
        rows = index[index["split"] == split].sort_values(["segment", "item"])
        if rows.empty:
            raise ValueError(f"the shard index has no items of split {split!r}")
        self.store, self.split, self.lut = store, split, lut
        self.segments = rows["segment"].to_numpy()
        self.items = rows["item"].to_numpy()
        # Which camera frame each item is, where the index says (it does after ingestion).
        self.frames = rows[[c for c in ("timestamp", "camera") if c in rows]]
        per_segment = rows.groupby("segment")
        self.items_listed = per_segment["item"].max().add(1).to_dict()
        # Each segment's ingestion fingerprint; an index written before it had one lacks it.
        self.made_by: dict[str, str] | None = None
        if "fingerprint" in rows:
            self.made_by = per_segment["fingerprint"].first().to_dict()
        self._open: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, position: int) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = self.__getitems__([position])
        return images[0], labels[0]

    def __getitems__(self, positions: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """A whole batch, copied once from the mappings into its (shared) tensors.

        The DataLoader calls this instead of ``__getitem__`` per item, which then needs
        ``collate_batch`` as its collate function: 1.6x the images/s of stacking items.
        """
        first_images, _ = self._segment(self.segments[positions[0]])
        height, width = first_images.shape[1:3]
        images = torch.empty((len(positions), height, width, 3), dtype=torch.uint8)
        labels = torch.empty((len(positions), height, width), dtype=torch.uint8)
        if get_worker_info() is not None:  # handed to the main process without a copy
            images.share_memory_()
            labels.share_memory_()
        image_array, label_array = images.numpy(), labels.numpy()
        for slot, position in enumerate(positions):
            segment_images, segment_labels = self._segment(self.segments[position])
            item = int(self.items[position])
            image_array[slot] = segment_images[item]
            np.take(self.lut, segment_labels[item], out=label_array[slot])
        return images, labels

    @staticmethod
    def collate_batch(
        batch: tuple[torch.Tensor, torch.Tensor],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``__getitems__`` already returns a collated batch."""
        return batch

    def _segment(self, segment: str) -> tuple[np.ndarray, np.ndarray]:
        if segment not in self._open:
            images, labels = self.store.open_segment(self.split, segment)
            if len(images) < self.items_listed[segment] or len(labels) != len(images):
                raise ValueError(
                    f"shard {self.split}/{segment} holds {len(images)} images and "
                    f"{len(labels)} labels, but the shard index lists "
                    f"{self.items_listed[segment]} items: the index is not the one ingestion "
                    "wrote with these shards; run the ingestion pipeline again"
                )
            self._open[segment] = images, labels
        return self._open[segment]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(height, width, 3) of every item, read from the first shard's header."""
        images, _ = self._segment(self.segments[0])
        return tuple(images.shape[1:])

    def __getstate__(self) -> dict[str, Any]:
        # Worker processes open their own mappings.
        return {**self.__dict__, "_open": {}}

    def items_digest(self) -> str:
        """Identifies the items this dataset holds, in order, and how their shards were made.

        Each item's place and camera frame, and each segment's ingestion fingerprint (size,
        cameras, shard format): re-ingesting other frames or at other settings changes it.
        """
        # Joined column by column: a per-row join takes seconds on a full split's index.
        places = pd.Series(self.segments).astype(str) + "/" + pd.Series(self.items).astype(str)
        for column in self.frames:
            places += "/" + self.frames[column].astype(str).to_numpy()
        made_by = self.made_by
        if made_by is None:  # from each segment's committed result: a file read per segment
            made_by = {
                segment: (self.store.read_result(self.split, segment) or {}).get("fingerprint")
                for segment in set(self.segments)
            }
        return content_digest([places.tolist(), made_by])


def data_signature(dataset: Dataset) -> dict[str, Any]:
    """What a checkpoint or a tuning study was made on: item count, image shape, which items.

    Re-ingesting at another size, or from other segments, changes it.
    """
    if isinstance(dataset, ShardDataset):
        return {
            "items": len(dataset),
            "image_shape": list(dataset.image_shape),
            "items_digest": dataset.items_digest(),
        }
    image, _ = dataset[0]
    return {"items": len(dataset), "image_shape": list(image.shape)}


@dataclass(frozen=True)
class AugmentConfig:
    """Training-only augmentation: horizontal flip and a random zoom-in crop."""

    horizontal_flip: bool = True
    min_crop_scale: float = 0.75  # the crop keeps at least this fraction of each side

    def __post_init__(self) -> None:
        if not 0 < self.min_crop_scale <= 1:
            raise ValueError(f"min_crop_scale must be in (0, 1], got {self.min_crop_scale}")


def augment_batch(
    images: torch.Tensor, labels: torch.Tensor, config: AugmentConfig, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Flip and crop-resize every sample of a float (N, 3, H, W) batch and its labels.

    One affine grid per sample: bilinear for the image, nearest for the label, so label
    values stay valid ids. Random draws come from ``generator`` (on the CPU), which makes
    a run repeatable whatever the device.
    """
    n = images.shape[0]
    scale = config.min_crop_scale + (1 - config.min_crop_scale) * torch.rand(n, generator=generator)
    shift = (1 - scale) * (2 * torch.rand(2, n, generator=generator) - 1)
    flip = torch.ones(n)
    if config.horizontal_flip:
        flip = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1] = scale * flip, scale
    theta[:, 0, 2], theta[:, 1, 2] = shift[0], shift[1]
    grid = F.affine_grid(to_device(theta, images.device), list(images.shape), align_corners=False)
    images = F.grid_sample(images, grid, mode="bilinear", align_corners=False)
    labels = F.grid_sample(labels[:, None].float(), grid, mode="nearest", align_corners=False)
    return images, labels[:, 0].to(torch.uint8)


def to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A small host tensor on ``device`` without making the host wait for the GPU.

    A copy from pageable memory to CUDA waits for the stream's queued kernels; one from
    pinned memory with ``non_blocking`` is queued behind them instead.
    """
    if device.type != "cuda":
        return tensor.to(device)
    return tensor.pin_memory().to(device, non_blocking=True)


def prepare_batch(
    images: torch.Tensor,
    labels: torch.Tensor,
    device: torch.device,
    channels_last: bool = False,
    augment: AugmentConfig | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Move a uint8 batch to the device, augment it there, and normalise it."""
    images = images.to(device, non_blocking=True).permute(0, 3, 1, 2).float()
    labels = labels.to(device, non_blocking=True)
    if augment is not None:
        images, labels = augment_batch(images, labels, augment, generator or torch.Generator())
    return to_model_input(images, channels_last=channels_last), labels.long()


def loader_workers(cores: int) -> int:
    """DataLoader workers for a rank with ``cores`` cores: one per core, at most 4.

    A few workers keep up with a GPU, since they only copy uint8 items out of
    memory-mapped shards. A rank with a single core loads in its own process (0): a
    worker would only take turns with it on that core, and while the rank reads the
    next batch its GPU is still busy with the steps queued before.
    """
    return min(4, cores) if cores > 1 else 0


def make_loader(
    dataset: Dataset,
    batch_size: int,
    train: bool,
    seed: int,
    num_workers: int,
    pin_memory: bool,
    rank: int = 0,
    world_size: int = 1,
) -> DataLoader:
    """A DataLoader of this rank's share; training order depends only on (seed, epoch).

    Training uses a ``DistributedSampler`` in a single process too (world size 1), so
    one process and many shuffle alike: call ``sampler.set_epoch`` every epoch.
    Evaluation takes every ``world_size``-th item, so no item is counted twice. A dataset
    that fetches whole batches (``__getitems__``) brings its ``collate_batch``.
    Training workers persist across epochs; evaluation ones are started for each pass,
    so they are not kept idle (a process each, per rank) through every training epoch.
    """
    sampler = (
        DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed)
        if train
        else ShardSampler(len(dataset), rank, world_size)
    )
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        pin_memory=pin_memory,
        persistent_workers=train and num_workers > 0,
        drop_last=train and len(dataset) > batch_size * world_size,
        collate_fn=getattr(dataset, "collate_batch", None),
        # Worker seeds from their own generator: drawn from the global one, they would be
        # drawn in a resumed run's first epoch but not in an unbroken run's same epoch.
        generator=torch.Generator().manual_seed(seed),
    )


def subsample_index(
    index: pd.DataFrame, split: str, max_items: int | None, seed: int = 0
) -> pd.DataFrame:
    """At most ``max_items`` rows of a split, drawn without replacement (all if None)."""
    rows = index[index["split"] == split]
    if max_items is None or len(rows) <= max_items:
        return rows
    return rows.sample(n=max_items, random_state=seed).sort_values(["segment", "item"])
