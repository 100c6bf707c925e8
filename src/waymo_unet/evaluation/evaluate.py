"""Score a model with Waymo's metric: on the raw files at the labels' size, or on shards.

A thread pool decodes the next images (JPEG at the model's size, label and coverage PNGs
at full size; the decoders release the GIL) while the device segments the current batch.
``predict_waymo_ids`` (shared with inference) upsamples the logits to each label's size;
``WaymoConfusion`` accumulates on the device, and per-image scores stay there until the
end, so the loop never waits for the device per image.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict, deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from waymo_unet.config import config_from_params
from waymo_unet.data.decode import DecodeError
from waymo_unet.data.parallel import available_cores
from waymo_unet.data.segment_result import SegmentResult
from waymo_unet.data.shards import ShardStore
from waymo_unet.data.waymo import CameraName
from waymo_unet.devices import choose_precision, resolve_device
from waymo_unet.evaluation.reading import (
    EVALUATED,
    EncodedPair,
    EvaluationSegment,
    LabelledImage,
    decode_labelled_image,
    quarantine_pair,
    read_encoded_pairs,
)
from waymo_unet.evaluation.waymo_confusion import WaymoConfusion
from waymo_unet.evaluation.waymo_scores import image_mean_iou
from waymo_unet.models.bundle import Segmenter
from waymo_unet.models.prediction import predict_waymo_ids

logger = logging.getLogger(__name__)

LOG_EVERY_S = 30.0


@dataclass(frozen=True)
class EvaluationConfig:
    """Which images to score, and how (see ``conf/base/parameters_evaluation.yml``)."""

    split: str = "validation"
    max_segments: int | None = None
    cameras: tuple[int, ...] = tuple(int(c) for c in CameraName)
    batch_size: int = 4
    device: str = "auto"
    precision: str = "auto"
    decode_threads: int | None = None  # None: one per core
    read_ahead: int = 1
    gallery_images: int = 6
    gallery_width: int = 480

    def __post_init__(self) -> None:
        if self.max_segments is not None and self.max_segments < 1:
            raise ValueError(f"max_segments must be >= 1 or null, got {self.max_segments}")
        if unknown := set(self.cameras) - {int(c) for c in CameraName}:
            raise ValueError(f"unknown camera id(s) {sorted(unknown)}; valid ids are 1..5")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.decode_threads is not None and self.decode_threads < 1:
            raise ValueError(f"decode_threads must be >= 1 or null, got {self.decode_threads}")

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> EvaluationConfig:
        """From the ``evaluation`` parameters; an unknown key or a wrong type is named."""
        values = dict(params)
        if isinstance(values.get("cameras"), list):
            values["cameras"] = tuple(values["cameras"])
        return config_from_params(cls, values, "evaluation", "parameters_evaluation.yml")


@dataclass
class WaymoEvaluation:
    """What one evaluation found: the matrices, per-image scores and what was read."""

    confusion: WaymoConfusion
    images: pd.DataFrame  # segment, timestamp, camera, weighted_miou, miou, pixels
    segments: list[SegmentResult] = field(default_factory=list)
    seconds: float = 0.0
    device: str = "cpu"
    precision: str = "fp32"

    @property
    def quarantined_rows(self) -> int:
        return sum(len(result.quarantine) for result in self.segments)


def evaluate_raw_files(
    model: Segmenter, segments: Sequence[EvaluationSegment], config: EvaluationConfig
) -> WaymoEvaluation:
    """Waymo's metric over every labelled image of ``segments``, at the labels' size."""
    results: dict[str, SegmentResult] = {}
    by_name = {segment.segment: segment for segment in segments}
    encoded = read_encoded_pairs(segments, config.cameras, results, read_ahead=config.read_ahead)

    def quarantine(pair: EncodedPair, error: DecodeError) -> None:
        quarantine_pair(results[pair.segment], by_name[pair.segment], pair, error)

    threads = config.decode_threads or available_cores()
    with ThreadPoolExecutor(threads, thread_name_prefix="evaluation-decode") as pool:
        batches = decoded_batches(
            encoded,
            lambda pair: decode_labelled_image(pair, model.image_size),
            quarantine,
            pool,
            config.batch_size,
        )
        evaluation = evaluate_batches(model, batches, config.device, config.precision)
    evaluation.segments = [results[s.segment] for s in segments if s.segment in results]
    evaluated = evaluation.images["segment"].value_counts()
    for result in evaluation.segments:
        result.pairs_written = int(evaluated.get(result.segment, 0))
        if result.status == EVALUATED and not result.pairs_written:
            result.status = "no_labelled_pairs"
            if result.quarantine and not result.no_pairs_reason:
                result.no_pairs_reason = f"all {len(result.quarantine)} pair(s) quarantined"
        if result.no_pairs_reason:
            logger.warning("Segment %s scored no image: %s", result.segment, result.no_pairs_reason)
    return evaluation


def decoded_batches(
    encoded: Iterable[EncodedPair],
    decode: Any,
    quarantine: Any,
    pool: ThreadPoolExecutor,
    batch_size: int,
    batches_ahead: int = 2,
) -> Iterator[list[LabelledImage]]:
    """Batches of decoded images, decoding up to ``batches_ahead`` batches early.

    A pair whose decoding raises ``DecodeError`` is handed to ``quarantine`` and left out
    of the batches; the order of the pairs is kept.
    """
    window = batch_size * (batches_ahead + 1)
    pending: deque[tuple[EncodedPair, Future[LabelledImage]]] = deque()
    batch: list[LabelledImage] = []

    def collect() -> Iterator[list[LabelledImage]]:
        nonlocal batch
        pair, future = pending.popleft()
        try:
            batch.append(future.result())
        except DecodeError as error:
            quarantine(pair, error)
        if len(batch) == batch_size:
            yield batch
            batch = []

    try:
        for pair in encoded:
            pending.append((pair, pool.submit(decode, pair)))
            while len(pending) > window:
                yield from collect()
        while pending:
            yield from collect()
        if batch:
            yield batch
    finally:
        for _, future in pending:
            future.cancel()


def evaluate_batches(
    model: Segmenter,
    batches: Iterable[list[LabelledImage]],
    device: str = "auto",
    precision: str = "auto",
) -> WaymoEvaluation:
    """Segment each batch at the model's size and score it at its labels' size."""
    target = resolve_device(device)
    autocast = choose_precision(precision, target)
    model.to(target)
    confusion = WaymoConfusion(target)
    keys: list[tuple[str, int, int]] = []
    scores: list[torch.Tensor] = []  # (N, 3) per group: weighted mIoU, mIoU, pixels
    start = last_log = time.perf_counter()
    for batch in batches:
        small = torch.from_numpy(np.stack([item.image for item in batch])).to(target)
        with autocast.autocast():
            predicted = predict_waymo_ids(model, small, [item.label_size for item in batch])
        for group in _same_shape_groups(batch):
            items = [batch[i] for i in group]
            coverage = None
            if items[0].coverage is not None:
                coverage = _stacked([item.coverage for item in items], target)
            matrices = confusion.update(
                _stacked([item.label for item in items], target),
                torch.stack([predicted[i] for i in group]),
                cameras=[item.camera for item in items],
                segments=[item.segment for item in items],
                coverage=coverage,
            )
            pixels = matrices.counts.sum(dim=(1, 2)).to(torch.float64)
            scores.append(
                torch.stack(
                    [image_mean_iou(matrices.weighted), image_mean_iou(matrices.counts), pixels],
                    dim=1,
                )
            )
            keys.extend((item.segment, item.timestamp, item.camera) for item in items)
        now = time.perf_counter()
        if now - last_log >= LOG_EVERY_S:
            last_log = now
            logger.info(
                "evaluated %d image(s), %.1f images/s", len(keys), len(keys) / (now - start)
            )
    seconds = time.perf_counter() - start
    values = torch.cat(scores).cpu().numpy() if scores else np.empty((0, 3))
    images = pd.DataFrame(keys, columns=["segment", "timestamp", "camera"])
    images["weighted_miou"], images["miou"] = values[:, 0], values[:, 1]
    images["pixels"] = values[:, 2].astype(np.int64)
    logger.info(
        "Evaluated %d image(s) in %.1f s (%.1f images/s) on %s, %s",
        len(images),
        seconds,
        len(images) / seconds if seconds else 0.0,
        target,
        autocast.name,
    )
    return WaymoEvaluation(
        confusion, images, seconds=seconds, device=str(target), precision=autocast.name
    )


def _same_shape_groups(batch: Sequence[LabelledImage]) -> list[list[int]]:
    """Indices of the images that can be stacked together: same label size, and coverage
    present in all or none (front and side cameras differ in size)."""
    groups: dict[tuple[tuple[int, int], bool], list[int]] = defaultdict(list)
    for index, item in enumerate(batch):
        groups[(item.label_size, item.coverage is not None)].append(index)
    return list(groups.values())


def _stacked(arrays: Sequence[np.ndarray], device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.stack(arrays)).to(device, non_blocking=True)


def shard_batches(
    store: ShardStore, index: pd.DataFrame, split: str, batch_size: int
) -> Iterator[list[LabelledImage]]:
    """The shards' images and labels (both at the training size) of ``split``, batched.

    Shards carry no ``num_cameras_covered``: every pixel counts 1.
    """
    rows = index[index["split"] == split].sort_values(["segment", "item"])
    if rows.empty:
        raise ValueError(f"the shard index has no items of split {split!r}")
    batch: list[LabelledImage] = []
    for segment, items in rows.groupby("segment", sort=False):
        images, labels = store.open_segment(split, segment)
        for row in items.itertuples(index=False):
            batch.append(
                LabelledImage(
                    segment,
                    int(row.timestamp),
                    int(row.camera),
                    np.asarray(images[row.item]),
                    np.asarray(labels[row.item]),
                    None,
                )
            )
            if len(batch) == batch_size:
                yield batch
                batch = []
    if batch:
        yield batch
