"""Semantic-segmentation metrics from an accumulated confusion matrix.

Modelled on the ``ConfusionMatrix`` of torchvision's segmentation references: count
``(target, prediction)`` pairs, then derive per-class IoU, mean IoU and pixel accuracy,
skipping an ignore index. Two differences, both for training on a GPU:

* Counting uses ``index_add_`` into a flat vector of ``C*C + 2`` bins instead of
  ``torch.bincount`` over a boolean-masked selection. The counts are the same as
  ``torch.bincount(C * target + prediction, minlength=C*C)``, but CUDA's bincount reads
  the input's min and max back to the host, and boolean masking needs the selection's
  size on the host: three host-device syncs per batch. Here ignored pixels go to one
  extra bin and invalid ones to another, so an update only launches kernels.
* Invalid labels are therefore found without a read-back: on CPU, ``update`` raises at
  once (the read is free); on any other device the invalid pixels are counted on the
  device and ``compute()`` / ``matrix`` raise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = [
    "ConfusionMatrix",
    "SegmentationMetrics",
    "majority_class_metrics",
    "metrics_from_matrix",
]


@dataclass(frozen=True)
class SegmentationMetrics:
    """Scores derived from one confusion matrix (rows = target class, cols = prediction).

    * ``pixel_accuracy``: correctly labelled pixels / counted pixels.
    * ``per_class_iou[c]``: ``TP / (TP + FP + FN)``; NaN where class ``c`` occurs in
      neither targets nor predictions (``TP + FP + FN == 0``). A class that is predicted
      but never in the targets scores 0.
    * ``mean_iou``: mean of ``per_class_iou`` over the classes that are not NaN, i.e.
      the classes occurring in the targets *or* the predictions.
    * ``per_class_accuracy[c]``: recall, ``TP / target pixels of c``; NaN where ``c``
      has no target pixels.
    * ``pixels``: counted pixels (ignored and invalid ones excluded).

    With no pixels at all, ``pixel_accuracy`` and ``mean_iou`` are NaN.
    """

    pixel_accuracy: float
    mean_iou: float
    per_class_iou: list[float]
    per_class_accuracy: list[float]
    pixels: int

    def to_dict(self, class_names: Sequence[str] | None = None) -> dict[str, float]:
        """Flat ``name -> float`` mapping, as Kedro/MLflow metric datasets want.

        Keys: ``pixel_accuracy``, ``mean_iou``, ``pixels``, then ``iou/<class>`` and
        ``accuracy/<class>`` per class, named by ``class_names`` or by index. NaNs stay
        NaN.
        """
        num_classes = len(self.per_class_iou)
        names = [str(c) for c in range(num_classes)] if class_names is None else class_names
        if len(names) != num_classes:
            raise ValueError(f"{len(names)} class names for {num_classes} classes")
        result = {
            "pixel_accuracy": float(self.pixel_accuracy),
            "mean_iou": float(self.mean_iou),
            "pixels": float(self.pixels),
        }
        for name, iou, accuracy in zip(
            names, self.per_class_iou, self.per_class_accuracy, strict=True
        ):
            result[f"iou/{name}"] = float(iou)
            result[f"accuracy/{name}"] = float(accuracy)
        return result


def _check_matrix(matrix: Tensor) -> Tensor:
    """The matrix as a float64 CPU tensor, after checking it is square."""
    if matrix.dim() != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"confusion matrix must be square, got shape {tuple(matrix.shape)}")
    return matrix.detach().to("cpu", torch.float64)


def metrics_from_matrix(matrix: Tensor) -> SegmentationMetrics:
    """Metrics of a ``C x C`` confusion matrix (rows = target, cols = prediction)."""
    counts = _check_matrix(matrix)
    true_positives = counts.diagonal()
    target_pixels = counts.sum(dim=1)
    predicted_pixels = counts.sum(dim=0)
    union = target_pixels + predicted_pixels - true_positives
    nan = torch.full_like(true_positives, math.nan)
    # Division only where the denominator is positive, so no 0/0 warnings or infs.
    iou = torch.where(union > 0, true_positives / union.clamp(min=1), nan)
    recall = torch.where(target_pixels > 0, true_positives / target_pixels.clamp(min=1), nan)
    total = counts.sum().item()
    present = ~iou.isnan()
    return SegmentationMetrics(
        pixel_accuracy=true_positives.sum().item() / total if total > 0 else math.nan,
        mean_iou=iou[present].mean().item() if bool(present.any()) else math.nan,
        per_class_iou=iou.tolist(),
        per_class_accuracy=recall.tolist(),
        pixels=int(total),
    )


def majority_class_metrics(matrix: Tensor) -> SegmentationMetrics:
    """Metrics of the trivial model that always predicts the most frequent target class.

    Only the matrix's row sums (target pixels per class) matter; ties go to the lower
    class index. This is the floor a trained model has to beat.
    """
    target_pixels = _check_matrix(matrix).sum(dim=1)
    majority = int(target_pixels.argmax().item())
    num_classes = len(target_pixels)
    baseline = torch.zeros(num_classes, num_classes, dtype=torch.float64)
    baseline[:, majority] = target_pixels
    return metrics_from_matrix(baseline)


class ConfusionMatrix:
    """Running ``C x C`` pixel confusion matrix for semantic segmentation.

    ``matrix[t, p]`` counts pixels of target class ``t`` predicted as ``p``. Pixels whose
    target is ``ignore_index`` are skipped. A target outside ``[0, C)`` that is not the
    ignore index, or a prediction outside ``[0, C)``, is an error: raised by ``update``
    on CPU, and by ``compute()`` / ``matrix`` on other devices (see the module doc); the
    instance then stays in error until ``reset()``.

    The counts live on ``device``; with ``device=None`` they move to the device of the
    first update's targets (a one-time copy). Inputs on another device are copied over.
    """

    def __init__(
        self,
        num_classes: int,
        ignore_index: int = 255,
        device: torch.device | str | None = None,
    ) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self._follow_inputs = device is None
        # Bins [0, C*C) are the matrix, then one for invalid pixels, one for ignored.
        self._invalid_bin = num_classes * num_classes
        self._ignored_bin = self._invalid_bin + 1
        self._counts = torch.zeros(
            self._ignored_bin + 1, dtype=torch.int64, device="cpu" if device is None else device
        )

    @property
    def device(self) -> torch.device:
        """Device holding the counts."""
        return self._counts.device

    @torch.no_grad()
    def update(self, predictions: Tensor, targets: Tensor) -> None:
        """Add a batch: ``targets`` of integer class ids, shape ``(N, H, W)``.

        ``predictions`` are class ids of the same shape, or scores/logits of shape
        ``(N, C, H, W)``, reduced by argmax over dim 1.
        """
        if self._follow_inputs:
            self._counts = self._counts.to(targets.device)
            self._follow_inputs = False
        predictions = self._class_ids(predictions, targets)
        counts = self._count(predictions.to(self.device), targets.to(self.device))
        if self._validates_eagerly():
            _raise_if_invalid(counts[self._invalid_bin], self.num_classes)
        self._counts += counts

    def _class_ids(self, predictions: Tensor, targets: Tensor) -> Tensor:
        """Predicted class ids with ``targets``' shape; logits are argmaxed over dim 1."""
        if targets.is_floating_point() or targets.is_complex():
            raise TypeError(f"targets must be integer class ids, got {targets.dtype}")
        if predictions.dim() == targets.dim() + 1:
            if predictions.dim() < 2 or predictions.shape[1] != self.num_classes:
                raise ValueError(
                    f"logits of shape {tuple(predictions.shape)} need {self.num_classes} "
                    "channels in dim 1"
                )
            predictions = predictions.argmax(dim=1)
        if predictions.shape != targets.shape:
            raise ValueError(
                f"predictions {tuple(predictions.shape)} and targets "
                f"{tuple(targets.shape)} differ in shape"
            )
        if predictions.is_floating_point() or predictions.is_complex():
            raise TypeError(
                f"predictions of targets' shape must be class ids, got {predictions.dtype}"
            )
        return predictions

    def _count(self, predictions: Tensor, targets: Tensor) -> Tensor:
        """Per-bin pixel counts of one batch, computed without reading the device."""
        num_classes = self.num_classes
        target = targets.reshape(-1).long()
        prediction = predictions.reshape(-1).long()
        valid = (target >= 0) & (target < num_classes) & (prediction >= 0)
        valid &= prediction < num_classes
        index = torch.where(valid, num_classes * target + prediction, self._invalid_bin)
        index = torch.where(target == self.ignore_index, self._ignored_bin, index)
        ones = torch.ones((), dtype=torch.int64, device=index.device).expand(index.numel())
        return torch.zeros_like(self._counts).index_add_(0, index, ones)

    def _validates_eagerly(self) -> bool:
        """Whether ``update`` checks labels at once: only where reading back is free."""
        return self.device.type == "cpu"

    def reset(self) -> None:
        """Forget all counts, errors included."""
        self._counts.zero_()

    @property
    def matrix(self) -> Tensor:
        """A copy of the int64 ``C x C`` matrix, rows = target class, cols = prediction."""
        _raise_if_invalid(self._counts[self._invalid_bin], self.num_classes)
        side = self.num_classes
        return self._counts[: side * side].reshape(side, side).clone()

    def compute(self) -> SegmentationMetrics:
        """Metrics of everything counted since construction or the last ``reset()``."""
        return metrics_from_matrix(self.matrix)

    def merge(self, other: ConfusionMatrix) -> ConfusionMatrix:
        """Add ``other``'s counts (e.g. another split or worker) to these; returns self."""
        if (other.num_classes, other.ignore_index) != (self.num_classes, self.ignore_index):
            raise ValueError(
                f"cannot merge a {other.num_classes}-class matrix ignoring "
                f"{other.ignore_index} into a {self.num_classes}-class one ignoring "
                f"{self.ignore_index}"
            )
        self._counts += other._counts.to(self.device)
        return self

    def __iadd__(self, other: ConfusionMatrix) -> ConfusionMatrix:
        return self.merge(other)

    def all_reduce(self) -> None:
        """Sum the counts over all ``torch.distributed`` ranks; a no-op without a group.

        Collective: every rank must call it. With NCCL the counts must be on this rank's
        GPU (pass ``device``). Invalid-label counts are summed too, so all ranks raise.
        """
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(self._counts, op=dist.ReduceOp.SUM)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(num_classes={self.num_classes}, "
            f"ignore_index={self.ignore_index}, device={self.device})"
        )


def _raise_if_invalid(invalid: Tensor, num_classes: int) -> None:
    """Raise if ``invalid`` (a scalar count) is non-zero; reads it back to the host."""
    count = int(invalid.item())
    if count:
        raise ValueError(
            f"{count} pixels have a target outside [0, {num_classes}) that is not the "
            f"ignore index, or a prediction outside [0, {num_classes}); reset() to go on"
        )
