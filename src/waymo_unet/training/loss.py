"""Segmentation loss: class-weighted cross-entropy with an ignore index, plus optional Dice."""

from __future__ import annotations

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
    """Mean soft Dice over the classes present in the batch, ignored pixels left out."""
    num_classes = logits.shape[1]
    valid = (target != ignore_index).unsqueeze(1)
    probabilities = logits.softmax(dim=1) * valid
    one_hot = F.one_hot(target.masked_fill(~valid[:, 0], 0), num_classes).permute(0, 3, 1, 2)
    one_hot = one_hot * valid
    dims = (0, 2, 3)
    intersection = (probabilities * one_hot).sum(dims)
    cardinality = probabilities.sum(dims) + one_hot.sum(dims)
    present = one_hot.sum(dims) > 0
    dice = (2 * intersection + 1.0) / (cardinality + 1.0)
    # Masked, not indexed: dice[present] and a Python test of present.any() would both
    # make the host wait for the GPU at every step.
    count = present.sum()
    mean_present = (dice * present).sum() / count.clamp(min=1)
    return torch.where(count > 0, mean_present, torch.ones_like(mean_present))
