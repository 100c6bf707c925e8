"""Waymo's semantic-segmentation metric, the counting: coverage-weighted confusion matrices.

Every labelled pixel counts ``1 / num_cameras_covered`` (a point two cameras see is not
counted twice); ground-truth UNDEFINED (0) is left out; any prediction other than the true
class is a miss for that class, UNDEFINED and ids outside 0..28 included. Two 29x29
matrices over Waymo ids (rows ground truth, columns prediction) are kept: one weighted
(float64), one of plain pixel counts (int64), overall and per camera and per segment, so
that the groups add up to the overall matrices. ``waymo_scores`` turns them into scores.

``training.metrics.ConfusionMatrix`` cannot serve for the counting: it holds int64 counts
only (no weights), one matrix rather than one per image and group, and it refuses a
prediction outside ``[0, C)`` where Waymo's metric counts it as a miss.

Counting uses ``index_add_`` as ``training.metrics`` does, not ``torch.bincount``: CUDA's
bincount reads its input's min and max back to the host, a wait per batch. Pixels are
counted once per (cell, coverage) in int64, so the order of the device's atomic adds
cannot change the result; the weighted matrix is those counts times 1 / coverage.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from waymo_unet.data.waymo import SEMANTIC_CLASSES, UNDEFINED

__all__ = [
    "MISS_COLUMN",
    "NUM_WAYMO_IDS",
    "ImageMatrices",
    "WaymoConfusion",
    "image_matrices",
]

NUM_WAYMO_IDS = len(SEMANTIC_CLASSES)
# Predictions outside the Waymo ids land in UNDEFINED's column: a labelled pixel's ground
# truth is never UNDEFINED, so the pixel is a miss and its row still sums to its weight.
MISS_COLUMN = UNDEFINED
MAX_COVERAGE = 255  # num_cameras_covered is an 8-bit PNG

_CELLS = NUM_WAYMO_IDS * NUM_WAYMO_IDS
_UNDEFINED_BIN = _CELLS  # ground-truth UNDEFINED pixels, left out of the matrix
_INVALID_BIN = _CELLS + 1  # ground truth outside 0..28 (a decoding error), left out
_BINS = _CELLS + 2


@dataclass(frozen=True)
class ImageMatrices:
    """Per-image results of one batch, on the batch's device.

    ``weighted`` (N, 29, 29) float64 and ``counts`` (N, 29, 29) int64 are the confusion
    matrices; ``undefined_pixels`` and ``invalid_pixels`` (N,) int64 count the pixels left
    out for ground truth UNDEFINED and for ground truth outside the Waymo ids.
    """

    weighted: Tensor
    counts: Tensor
    undefined_pixels: Tensor
    invalid_pixels: Tensor


def image_matrices(
    ground_truth: Tensor, prediction: Tensor, coverage: Tensor | None = None
) -> ImageMatrices:
    """Waymo confusion matrices of each image in a batch, in one ``index_add_`` call.

    ``ground_truth`` and ``prediction`` hold Waymo semantic ids, shape (N, H, W) or (H, W);
    ``coverage`` is ``num_cameras_covered`` of the same shape, or None for coverage 1. A
    coverage below 1 (never in released files) counts as 1 rather than dividing by zero.
    Everything runs on ``ground_truth``'s device without reading back to the host.
    """
    gt = _batched(ground_truth, "ground_truth")
    pred = _batched(prediction, "prediction").to(gt.device)
    for name, tensor in (("ground_truth", gt), ("prediction", pred)):
        if tensor.is_floating_point() or tensor.is_complex() or tensor.dtype == torch.bool:
            raise TypeError(f"{name} must hold integer class ids, got {tensor.dtype}")
    if pred.shape != gt.shape:
        raise ValueError(
            f"prediction {tuple(pred.shape)} and ground_truth {tuple(gt.shape)} differ in shape"
        )
    num_images, device = gt.shape[0], gt.device
    # Ranges are tested before the cast, so a huge id cannot wrap into 0..28; int32 then
    # halves the temporaries of int64, and N * 843 bins fit easily.
    predicted = (pred >= 0) & (pred < NUM_WAYMO_IDS)
    labelled = (gt > UNDEFINED) & (gt < NUM_WAYMO_IDS)
    left_out = torch.where(gt == UNDEFINED, _UNDEFINED_BIN, _INVALID_BIN).to(torch.int32)
    gt, pred = gt.to(torch.int32), pred.to(torch.int32)
    pred = torch.where(predicted, pred, MISS_COLUMN)
    bins = torch.where(labelled, gt * NUM_WAYMO_IDS + pred, left_out)
    offsets = torch.arange(num_images, device=device, dtype=torch.int32) * _BINS
    index = (bins + offsets.view(-1, 1, 1)).reshape(-1)

    # One count per (cell, coverage) gives both matrices: the plain one sums over the
    # coverages, the weighted one weighs each count by 1 / coverage (exact in float64 for
    # 1 and 1/2), so the pixels are counted once.
    codes = _coverage_codes(coverage, gt)
    levels = 1 if codes is None else MAX_COVERAGE + 1
    if codes is not None:
        index = index * levels + codes.reshape(-1)
    ones = torch.ones((), dtype=torch.int64, device=device).expand(index.numel())
    counts = torch.zeros(num_images * _BINS * levels, dtype=torch.int64, device=device)
    counts = counts.index_add_(0, index, ones).view(num_images, _BINS, levels)
    weights = torch.ones(levels, dtype=torch.float64, device=device)
    weights[1:] = torch.arange(1, levels, dtype=torch.float64, device=device).reciprocal()
    weighted = counts.to(torch.float64) @ weights
    counts = counts.sum(dim=2)
    side = (num_images, NUM_WAYMO_IDS, NUM_WAYMO_IDS)
    return ImageMatrices(
        weighted=weighted[:, :_CELLS].reshape(side),
        counts=counts[:, :_CELLS].reshape(side),
        undefined_pixels=counts[:, _UNDEFINED_BIN],
        invalid_pixels=counts[:, _INVALID_BIN],
    )


def _batched(tensor: Tensor, name: str) -> Tensor:
    """``tensor`` as (N, H, W): a single (H, W) image gains a batch dimension."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
    if tensor.dim() == 2:
        return tensor.unsqueeze(0)
    if tensor.dim() != 3:
        raise ValueError(f"{name} must have shape (N, H, W) or (H, W), got {tuple(tensor.shape)}")
    return tensor


def _coverage_codes(coverage: Tensor | None, gt: Tensor) -> Tensor | None:
    """``num_cameras_covered`` as int32 codes 1..MAX_COVERAGE shaped like ``gt``; 0 (never
    in released files) counts as 1 rather than dividing by zero."""
    if coverage is None:
        return None
    cameras = _batched(coverage, "coverage").to(gt.device)
    if cameras.shape != gt.shape:
        raise ValueError(
            f"coverage {tuple(cameras.shape)} and ground_truth {tuple(gt.shape)} differ in shape"
        )
    if cameras.is_floating_point() or cameras.is_complex() or cameras.dtype == torch.bool:
        raise TypeError(f"coverage must hold integer camera counts, got {cameras.dtype}")
    return cameras.clamp(1, MAX_COVERAGE).to(torch.int32)


class _Groups:
    """Weighted and plain matrices per key, kept on one device."""

    def __init__(self) -> None:
        self.weighted: dict[Hashable, Tensor] = {}
        self.counts: dict[Hashable, Tensor] = {}

    def add(self, key: Hashable, weighted: Tensor, counts: Tensor) -> None:
        if key in self.weighted:
            self.weighted[key] += weighted
            self.counts[key] += counts
        else:
            self.weighted[key] = weighted.clone()
            self.counts[key] = counts.clone()

    def copies(self) -> dict[Hashable, tuple[Tensor, Tensor]]:
        return {key: (w.clone(), self.counts[key].clone()) for key, w in self.weighted.items()}


class WaymoConfusion:
    """Running Waymo confusion matrices, overall, per camera and per segment.

    The matrices live on ``device``; with ``device=None`` they follow the first update's
    ground truth. ``update`` only launches kernels (a few per image for the groups), so
    the device never waits on the host; reading a count back is left to the caller.
    """

    def __init__(self, device: torch.device | str | None = None) -> None:
        self._device = None if device is None else torch.device(device)
        self._weighted: Tensor | None = None
        self._counts: Tensor | None = None
        self._left_out: Tensor | None = None  # [undefined, invalid] pixels
        self._cameras = _Groups()
        self._segments = _Groups()
        self.images = 0
        self.images_without_coverage = 0

    @property
    def device(self) -> torch.device | None:
        """Device holding the matrices; None before the first update without a device."""
        return self._device

    @torch.no_grad()
    def update(
        self,
        ground_truth: Tensor,
        prediction: Tensor,
        *,
        cameras: Sequence[Hashable],
        segments: Sequence[Hashable],
        coverage: Tensor | None = None,
    ) -> ImageMatrices:
        """Add a batch, one camera and one segment key per image; returns its matrices.

        ``coverage`` is None where the batch's file has no ``num_cameras_covered``: its
        pixels count 1 and its images are counted in ``images_without_coverage``.
        """
        gt = _batched(ground_truth, "ground_truth")
        num_images = gt.shape[0]
        cameras = _keys(cameras, num_images, "cameras")
        segments = _keys(segments, num_images, "segments")
        if self._device is None:
            self._device = gt.device
        device = self._device
        # image_matrices moves prediction and coverage to the ground truth's device.
        matrices = image_matrices(gt.to(device), prediction, coverage)
        left_out = torch.stack([matrices.undefined_pixels.sum(), matrices.invalid_pixels.sum()])
        if self._weighted is None or self._counts is None or self._left_out is None:
            self._weighted = matrices.weighted.sum(dim=0)
            self._counts = matrices.counts.sum(dim=0)
            self._left_out = left_out
        else:
            self._weighted += matrices.weighted.sum(dim=0)
            self._counts += matrices.counts.sum(dim=0)
            self._left_out += left_out
        for i, (camera, segment) in enumerate(zip(cameras, segments, strict=True)):
            self._cameras.add(camera, matrices.weighted[i], matrices.counts[i])
            self._segments.add(segment, matrices.weighted[i], matrices.counts[i])
        self.images += num_images
        if coverage is None:
            self.images_without_coverage += num_images
        return matrices

    @property
    def weighted(self) -> Tensor:
        """A copy of the overall float64 29x29 matrix weighted by 1 / num_cameras_covered."""
        return self._overall(self._weighted, torch.float64)

    @property
    def counts(self) -> Tensor:
        """A copy of the overall int64 29x29 matrix of pixel counts."""
        return self._overall(self._counts, torch.int64)

    def _overall(self, matrix: Tensor | None, dtype: torch.dtype) -> Tensor:
        if matrix is None:
            shape = (NUM_WAYMO_IDS, NUM_WAYMO_IDS)
            return torch.zeros(shape, dtype=dtype, device=self._device or "cpu")
        return matrix.clone()

    @property
    def by_camera(self) -> dict[Hashable, tuple[Tensor, Tensor]]:
        """Per camera key, copies of its (weighted, counts) matrices."""
        return self._cameras.copies()

    @property
    def by_segment(self) -> dict[Hashable, tuple[Tensor, Tensor]]:
        """Per segment key, copies of its (weighted, counts) matrices."""
        return self._segments.copies()

    @property
    def undefined_pixels(self) -> int:
        """Ground-truth UNDEFINED pixels left out (reads the device)."""
        return 0 if self._left_out is None else int(self._left_out[0].item())

    @property
    def invalid_pixels(self) -> int:
        """Ground-truth pixels outside the Waymo ids, left out (reads the device)."""
        return 0 if self._left_out is None else int(self._left_out[1].item())

    def merge(self, other: WaymoConfusion) -> WaymoConfusion:
        """Add ``other``'s matrices and counts (another worker's, say); returns self."""
        if other._weighted is None or other._counts is None or other._left_out is None:
            return self
        if self._device is None:
            self._device = other._device
        device = self._device
        if self._weighted is None or self._counts is None or self._left_out is None:
            self._weighted = other._weighted.to(device, copy=True)
            self._counts = other._counts.to(device, copy=True)
            self._left_out = other._left_out.to(device, copy=True)
        else:
            self._weighted += other._weighted.to(device)
            self._counts += other._counts.to(device)
            self._left_out += other._left_out.to(device)
        for mine, theirs in ((self._cameras, other._cameras), (self._segments, other._segments)):
            for key, weighted in theirs.weighted.items():
                mine.add(key, weighted.to(device), theirs.counts[key].to(device))
        self.images += other.images
        self.images_without_coverage += other.images_without_coverage
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}(device={self._device}, images={self.images})"


def _keys(keys: Sequence[Hashable], num_images: int, name: str) -> Sequence[Hashable]:
    """``keys`` after checking there is one per image (a bare string is refused)."""
    if isinstance(keys, str | bytes) or not isinstance(keys, Sequence):
        raise TypeError(f"{name} must be a sequence of one key per image, got {keys!r}")
    if len(keys) != num_images:
        raise ValueError(f"{len(keys)} {name} keys for {num_images} images")
    return keys
