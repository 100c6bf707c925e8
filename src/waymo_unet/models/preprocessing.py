"""Input normalisation shared by training and inference, applied on the device per batch."""

from __future__ import annotations

import torch

# ImageNet statistics in uint8 units: the usual choice, and stored with every model.
MEAN_RGB = (123.675, 116.28, 103.53)
STD_RGB = (58.395, 57.12, 57.375)


def to_model_input(
    images: torch.Tensor,
    mean: tuple[float, ...] = MEAN_RGB,
    std: tuple[float, ...] = STD_RGB,
    channels_last: bool = False,
) -> torch.Tensor:
    """uint8 (N, H, W, 3) or float (N, 3, H, W) pixels -> normalised float (N, 3, H, W)."""
    if images.dtype == torch.uint8:
        images = images.permute(0, 3, 1, 2).float()
    mean_t = torch.tensor(mean, device=images.device).view(1, -1, 1, 1)
    std_t = torch.tensor(std, device=images.device).view(1, -1, 1, 1)
    images = (images - mean_t) / std_t
    if channels_last:
        return images.contiguous(memory_format=torch.channels_last)
    return images.contiguous()
