"""Segmentation loss: class-weighted cross-entropy with an ignore index, plus optional Dice.

Dice builds no one-hot target: at a full batch that is an int64 tensor twice the size of
the logits, kept for backward. Its sums need only the probability of the true class, and
its backward is written out, so the only full-size tensor it keeps is the logits it was given.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn


class SegmentationLoss(nn.Module):
    """``CE(weights, ignore_index) + dice_weight * (1 - soft Dice)``, computed in fp32."""

    def __init__(
        self,
        class_weights: torch.Tensor | None = None,
        ignore_index: int = 255,
        dice_weight: float = 0.0,
    ) -> None:
        super().__init__()
        self.register_buffer("class_weights", class_weights)
        self.ignore_index = ignore_index
        self.dice_weight = dice_weight

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        loss = F.cross_entropy(
            logits, target, weight=self.class_weights, ignore_index=self.ignore_index
        )
        if self.dice_weight:
            loss = loss + self.dice_weight * (1 - soft_dice(logits, target, self.ignore_index))
        return loss


def soft_dice(logits: torch.Tensor, target: torch.Tensor, ignore_index: int) -> torch.Tensor:
    """Mean soft Dice over the classes present in the batch, ignored pixels left out.

    Computed in the logits' dtype (the loss passes fp32).
    """
    num_classes = logits.shape[1]
    valid = (target != ignore_index).unsqueeze(1)
    label = target.unsqueeze(1).masked_fill(~valid, 0)
    weight = valid.to(logits.dtype)
    bins = _row_class_bins(label, num_classes)
    counts = _sum_per_class(weight, bins, num_classes)
    intersection, probability_sum = _ClassSums.apply(logits, label, weight, bins)
    present = counts > 0
    dice = (2 * intersection + 1.0) / (probability_sum + counts + 1.0)
    # Masked, not indexed: dice[present] and a Python test of present.any() would both
    # make the host wait for the GPU at every step (so would torch.bincount on CUDA).
    count = present.sum()
    mean_present = (dice * present).sum() / count.clamp(min=1)
    return torch.where(count > 0, mean_present, torch.ones_like(mean_present))


def _row_class_bins(label: torch.Tensor, num_classes: int) -> torch.Tensor:
    """One bin per image row and class, so no float bin adds up more than a row's pixels."""
    batch, _, height, _ = label.shape
    rows = torch.arange(batch * height, device=label.device).view(batch, 1, height, 1)
    return (rows * num_classes + label).flatten()


def _sum_per_class(values: torch.Tensor, bins: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Per-class sums of per-pixel ``values``: ``index_add_`` into row bins, then a tree sum.

    A single float bin per class would stop counting at 2**24 pixels and lose precision
    well before; the rows sum pairwise.
    """
    batch, _, height, _ = values.shape
    per_row = values.new_zeros(batch * height * num_classes)
    per_row.index_add_(0, bins, values.flatten())
    return per_row.view(-1, num_classes).sum(0)


def _without_autocast(tensor: torch.Tensor) -> torch.autocast:
    return torch.autocast(tensor.device.type, enabled=False)


class _ClassSums(torch.autograd.Function):
    """Per class, the softmax probability summed over the valid pixels of that class
    (the intersection) and over all valid pixels.

    Autograd would keep the probabilities and build two full-size gradients for them;
    this backward recomputes the softmax and turns it into the gradient in place.
    """

    @staticmethod
    def forward(
        ctx: Any,
        logits: torch.Tensor,
        label: torch.Tensor,
        weight: torch.Tensor,
        bins: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        ctx.save_for_backward(logits, label, weight)
        with _without_autocast(logits):  # a matmul under autocast would leave fp32
            probabilities = logits.softmax(dim=1)
            true_class = probabilities.gather(1, label) * weight
            intersection = _sum_per_class(true_class, bins, logits.shape[1])
            probability_sum = torch.matmul(
                probabilities.flatten(2), weight.flatten(1).unsqueeze(2)
            ).sum((0, 2))
        return intersection, probability_sum

    @staticmethod
    def backward(
        ctx: Any, grad_intersection: torch.Tensor, grad_sum: torch.Tensor
    ) -> tuple[torch.Tensor, None, None, None]:
        logits, label, weight = ctx.saved_tensors
        # With h_c = grad_sum[c] + grad_intersection[c] * (c == true class), the softmax
        # gives d/dlogit_c = weight * p_c * (h_c - sum_k p_k h_k).
        gradient = logits.softmax(dim=1)
        true_term = gradient.gather(1, label) * grad_intersection[label]
        with _without_autocast(logits):
            mean = torch.matmul(grad_sum.view(1, 1, -1), gradient.flatten(2))
        mean = mean.view_as(true_term) + true_term
        # One class at a time: grad_sum[c] - mean as a whole would be a full-size tensor.
        for channel, grad in zip(gradient.unbind(1), grad_sum.unbind(0), strict=True):
            channel.mul_(grad - mean[:, 0])
        gradient.scatter_add_(1, label, true_term)
        return gradient.mul_(weight), None, None, None
