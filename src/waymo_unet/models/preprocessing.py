"""Input normalisation shared by training and inference, applied on the device per batch."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import cv2
import numpy as np
import torch

# ImageNet statistics in uint8 units: the usual choice, and stored with every model.
MEAN_RGB = (123.675, 116.28, 103.53)
STD_RGB = (58.395, 57.12, 57.375)


def resized_images(images: Sequence[np.ndarray], size: tuple[int, int]) -> np.ndarray:
    """uint8 RGB images of any sizes -> one (N, height, width, 3) batch at ``size``.

    Area averaging: shrinking a full-size camera image then does not alias. Images
    already at ``size`` are taken as they are.
    """
    height, width = size
    return np.stack(
        [
            image
            if image.shape[:2] == (height, width)
            else cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
            for image in images
        ]
    )


def to_model_input(
    images: torch.Tensor,
    mean: tuple[float, ...] = MEAN_RGB,
    std: tuple[float, ...] = STD_RGB,
    channels_last: bool = False,
) -> torch.Tensor:
    """uint8 (N, H, W, 3) or float (N, 3, H, W) pixels -> normalised float (N, 3, H, W)."""
    if images.dtype == torch.uint8:
        images = images.permute(0, 3, 1, 2).float()
    images = (images - per_channel(tuple(mean), images.device)) / per_channel(
        tuple(std), images.device
    )
    if channels_last:
        return images.contiguous(memory_format=torch.channels_last)
    return images.contiguous()


@lru_cache(maxsize=16)
def per_channel(values: tuple[float, ...], device: torch.device) -> torch.Tensor:
    """``values`` as a (1, C, 1, 1) constant on ``device``, made once per device.

    Made per batch, it would be a blocking copy from the host, which on CUDA makes the
    host wait for every queued kernel at each step. Made outside inference mode, so a
    constant first needed by an evaluation also serves training.
    """
    with torch.inference_mode(False):
        return torch.tensor(values, device=device).view(1, -1, 1, 1)
