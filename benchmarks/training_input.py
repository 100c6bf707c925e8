"""Training input: images/s the DataLoader delivers, from shards or decoding parquet per item.

The project decodes once (ingestion) and trains from memory-mapped uint8 shards
(``ShardDataset`` + ``make_loader``, batches normalised and augmented by
``prepare_batch``). A notebook that decodes every epoch instead reads each item's row
from parquet (decompressing the row group that holds it) and decodes the JPEG and PNG at
full size with PIL, or holds the encoded bytes in memory and decodes them. No model runs
here: this is the rate the input side can feed a model at.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from benchmarks.encoded_pairs import EncodedPair, EncodedPairReader, RowLocation, pair_locations
from benchmarks.ingestion_runs import ProjectRun, naive_decode_pair
from benchmarks.input_data import SPLIT, BenchmarkInput
from waymo_unet.data.parallel import available_cores
from waymo_unet.data.results import shard_index
from waymo_unet.training.data import AugmentConfig, ShardDataset, make_loader, prepare_batch

logger = logging.getLogger(__name__)

COLUMNS = ["source", "workers", "batch", "images", "seconds", "images_per_s", "speedup"]


def training_lut(num_classes: int = 28) -> np.ndarray:
    """Waymo ids 1..num_classes to training indices 0..num_classes-1; the rest ignored (255)."""
    lut = np.full(256, 255, np.uint8)
    lut[1 : num_classes + 1] = np.arange(num_classes, dtype=np.uint8)
    return lut


class ParquetRowDataset(Dataset):
    """Each item reads its image and label rows from parquet and decodes them with PIL.

    Reading one row decompresses its whole row group (of the one column needed): that
    is what reading a row of a BROTLI parquet file costs. Files stay open per worker.
    """

    def __init__(
        self, locations: list[RowLocation], height: int, width: int, lut: np.ndarray
    ) -> None:
        self.locations, self.height, self.width, self.lut = locations, height, width, lut
        self.reader = EncodedPairReader()

    def __len__(self) -> int:
        return len(self.locations)

    def encoded(self, position: int) -> EncodedPair:
        return self.reader.read(self.locations[position])

    def __getitem__(self, position: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, label = naive_decode_pair(*self.encoded(position), self.height, self.width)
        return torch.from_numpy(image.copy()), torch.from_numpy(self.lut[label])

    def close(self) -> None:
        self.reader.close()


class EncodedPairDataset(Dataset):
    """Encoded pairs held in memory, decoded with PIL on every access (every epoch)."""

    def __init__(
        self, pairs: list[tuple[bytes, bytes, int]], height: int, width: int, lut: np.ndarray
    ) -> None:
        self.pairs, self.height, self.width, self.lut = pairs, height, width, lut

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, position: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, label = naive_decode_pair(*self.pairs[position], self.height, self.width)
        return torch.from_numpy(image.copy()), torch.from_numpy(self.lut[label])


Prepare = Callable[[torch.Tensor, torch.Tensor], object]


@dataclass(frozen=True)
class LoaderRate:
    """What one DataLoader case delivered, timed from its first batch."""

    source: str
    workers: int
    batch: int
    images: int
    seconds: float
    images_per_s: float
    speedup: float  # over the notebook's per-item decoding


@dataclass(frozen=True)
class TrainingInputBenchmark:
    """The section's results: one ``LoaderRate`` per input path, in the table's order."""

    size: tuple[int, int]
    items: int
    notebook: LoaderRate  # parquet row per item, PIL at full size
    in_memory: LoaderRate  # encoded bytes in memory, PIL at full size
    shards: LoaderRate  # ShardDataset + make_loader, loader workers
    in_process: LoaderRate  # the same, num_workers=0
    prepared: LoaderRate  # the same as ``shards``, with prepare_batch on the CPU

    def rows(self) -> list[dict[str, Any]]:
        cases = (self.notebook, self.in_memory, self.shards, self.in_process, self.prepared)
        return [asdict(case) for case in cases]

    def title(self) -> str:
        height, width = self.size
        return f"2. Training input: images/s delivered at {height}x{width} ({self.items} items)"

    @staticmethod
    def notes() -> list[str]:
        return [
            "make_loader with the training default of min(4, cores) workers, except the row "
            "in the training process (num_workers=0: no batch crosses processes); no model runs",
            "ShardDataset fetches a whole batch per call (__getitems__), one copy per item",
            "parquet row per item: each item decompresses its row group (one column) and "
            "decodes at full size with PIL; timing starts at the first batch",
            "shards were just written, so they are in the page cache",
        ]


def measure_loader(
    loader: DataLoader, epochs: int, prepare: Prepare | None = None
) -> tuple[int, float]:
    """Images and seconds over ``epochs`` passes, timed from the first batch (worker
    start-up left out)."""
    images, start = 0, None
    for epoch in range(epochs):
        loader.sampler.set_epoch(epoch)
        for batch_images, batch_labels in loader:
            if prepare is not None:
                prepare(batch_images, batch_labels)
            if start is None:
                start = time.perf_counter()
                continue
            images += len(batch_images)
    return images, time.perf_counter() - start if start is not None else 0.0


def run_training_input_benchmark(
    data: BenchmarkInput,
    shards_run: ProjectRun,
    batch_size: int,
    shard_epochs: int,
    decode_epochs: int = 1,
    workers: int | None = None,
) -> TrainingInputBenchmark:
    """DataLoader throughput of the shards against per-item parquet decoding, same size."""
    height, width = _shard_size(shards_run)
    workers = workers if workers is not None else min(4, available_cores())
    lut = training_lut()
    index = shard_index(shards_run.results)
    locations = pair_locations(data)
    from_parquet = ParquetRowDataset(locations, height, width, lut)
    in_memory = EncodedPairDataset(from_parquet.reader.read_all(locations), height, width, lut)
    from_parquet.close()  # the loader's workers open their own files
    augment, generator = AugmentConfig(), torch.Generator().manual_seed(0)
    cpu = torch.device("cpu")

    def prepare(images: torch.Tensor, labels: torch.Tensor) -> object:
        return prepare_batch(images, labels, cpu, augment=augment, generator=generator)

    def shards() -> ShardDataset:
        return ShardDataset(shards_run.store, index, SPLIT, lut)

    notebook = "parquet row per item + PIL decode (notebook)"
    cases: list[tuple[str, Dataset, int, int, Prepare | None]] = [
        (notebook, from_parquet, workers, decode_epochs, None),
        ("encoded bytes in memory + PIL decode", in_memory, workers, decode_epochs, None),
        ("shards: ShardDataset + make_loader", shards(), workers, shard_epochs, None),
        ("shards, in the training process", shards(), 0, shard_epochs, None),
        ("shards + prepare_batch (augment, CPU)", shards(), workers, decode_epochs, prepare),
    ]
    measured = []
    for name, dataset, case_workers, epochs, prepare_fn in cases:
        logger.info("Training input: %s", name)
        loader = make_loader(dataset, batch_size, True, 0, case_workers, pin_memory=False)
        images, seconds = measure_loader(loader, epochs, prepare_fn)
        measured.append((name, case_workers, images, seconds))
        del loader
    notebook_rate = _rate(*measured[0][2:])
    rates = [
        LoaderRate(
            name,
            case_workers,
            batch_size,
            images,
            seconds,
            _rate(images, seconds),
            _rate(images, seconds) / notebook_rate if notebook_rate else 0.0,
        )
        for name, case_workers, images, seconds in measured
    ]
    return TrainingInputBenchmark((height, width), len(index), *rates)


def _rate(images: int, seconds: float) -> float:
    return images / seconds if seconds else 0.0


def _shard_size(run: ProjectRun) -> tuple[int, int]:
    images, _ = run.store.open_segment(run.results[0].split, run.results[0].segment)
    return int(images.shape[1]), int(images.shape[2])
