"""How long the full run would take: measured rates applied to the real dataset's counts.

Ingestion once, then every epoch trains on all labelled training images and evaluates
on all labelled validation images. Each stage runs at the slower of its compute and its
input; the stage that takes longest bounds the run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

COLUMNS = ["stage", "images", "images_per_s", "seconds", "duration", "bound_by"]


@dataclass(frozen=True)
class DatasetCounts:
    """The real Waymo v2 camera data: its labelled images (5 cameras a frame), its bytes."""

    train_images: int = 66_030  # 13,206 labelled frames x 5 cameras
    train_frames: int = 13_206
    train_segments: int = 696
    val_images: int = 9_650
    camera_image_bytes: float = 387e9  # all camera_image parquet files
    issue_train_flop_per_image: float = 0.44e12  # estimated up front: base-32 U-Net, 512x768

    @property
    def pairs(self) -> int:
        return self.train_images + self.val_images


@dataclass(frozen=True)
class Rates:
    """Rates at the target size, per second, on one machine."""

    machine: str
    ingestion_pairs_per_s: float  # project ingestion, all workers
    train_images_per_s: float  # optimiser steps, best precision case
    eval_images_per_s: float  # forward passes
    input_images_per_s: float  # DataLoader from shards
    notebook_input_images_per_s: float | None = None  # decoding parquet per item
    train_case: str = ""


def duration(seconds: float) -> str:
    """Seconds as a short human duration."""
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:,.1f} {unit}"
    return f"{seconds:.1f} s"


@dataclass(frozen=True)
class Stage:
    """One row of the estimate: a stage limited by the slowest of its rates."""

    stage: str
    images: int | None
    images_per_s: float | None  # None on the total
    seconds: float
    duration: str
    bound_by: str

    def table_row(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None}


@dataclass(frozen=True)
class FullRunEstimate:
    """Stage times, total and the bounding stage of ingestion + ``epochs`` epochs.

    ``rows``: ingestion, a training epoch, a validation epoch, the full run; then, given
    the notebook's input rate, a notebook epoch and the notebook's run.
    """

    machine: str
    epochs: int
    counts: DatasetCounts
    rates: Rates
    rows: tuple[Stage, ...]
    total_seconds: float
    bound_by: str
    share_of_total: dict[str, float]  # by what bounds each part of the total
    notes: tuple[str, ...] = ()

    def table_rows(self) -> list[dict[str, Any]]:
        return [row.table_row() for row in self.rows]


def _stage(name: str, images: int, rates: dict[str, float]) -> Stage:
    """A stage limited by the slowest of ``rates`` (name -> images/s)."""
    bound = min(rates, key=rates.get)
    rate = rates[bound]
    seconds = images / rate if rate > 0 else float("inf")
    return Stage(name, images, rate, seconds, duration(seconds), bound)


def estimate_full_run(
    rates: Rates, epochs: int, counts: DatasetCounts = DatasetCounts()
) -> FullRunEstimate:
    """Stage times, total and the bounding stage of ingestion + ``epochs`` epochs."""
    ingestion = _stage(
        "ingestion (once, all labelled pairs)",
        counts.pairs,
        {"ingestion decode": rates.ingestion_pairs_per_s},
    )
    train = _stage(
        "training, one epoch",
        counts.train_images,
        {"training compute": rates.train_images_per_s, "input pipeline": rates.input_images_per_s},
    )
    evaluate = _stage(
        "validation, one epoch",
        counts.val_images,
        {"eval compute": rates.eval_images_per_s, "input pipeline": rates.input_images_per_s},
    )
    epoch_seconds = train.seconds + evaluate.seconds
    total = ingestion.seconds + epochs * epoch_seconds
    contributions = {
        ingestion.bound_by: ingestion.seconds,
        train.bound_by: epochs * train.seconds,
    }
    contributions[evaluate.bound_by] = (
        contributions.get(evaluate.bound_by, 0.0) + epochs * evaluate.seconds
    )
    bound_by = max(contributions, key=contributions.get)
    full = Stage(
        f"full run: ingestion + {epochs} epochs", None, None, total, duration(total), bound_by
    )
    rows = [ingestion, train, evaluate, full]
    if rates.notebook_input_images_per_s:
        notebook = _stage(
            "notebook: decode from parquet every epoch, one epoch",
            counts.pairs,
            {
                "training compute": 1
                / (
                    counts.train_images / counts.pairs / rates.train_images_per_s
                    + counts.val_images / counts.pairs / rates.eval_images_per_s
                ),
                "input pipeline": rates.notebook_input_images_per_s,
            },
        )
        seconds = epochs * notebook.seconds
        rows += [
            notebook,
            Stage(
                f"notebook: {epochs} epochs, no ingestion",
                epochs * counts.pairs,
                None,
                seconds,
                duration(seconds),
                notebook.bound_by,
            ),
        ]
    shares = {name: seconds / total for name, seconds in contributions.items()}
    return FullRunEstimate(
        rates.machine, epochs, counts, rates, tuple(rows), total, bound_by, shares
    )
