"""Stand-in segmenters whose logits are known, so expected scores can be worked out by hand."""

from __future__ import annotations

import numpy as np
import torch

from waymo_unet.data.waymo import CLASS_ID

SKY, ROAD = CLASS_ID["SKY"], CLASS_ID["ROAD"]


class HalvesModel:
    """Predicts ``top`` above the middle row and ``bottom`` below, for any image.

    Its logits are a vertical ramp, so the class boundary of the upsampled logits falls
    exactly at the middle row of the label, whatever its height.
    """

    def __init__(
        self,
        top: int = SKY,
        bottom: int = ROAD,
        image_size: tuple[int, int] = (8, 12),
        classes: tuple[int, ...] = (0, ROAD, SKY),
    ) -> None:
        self.image_size = image_size
        self.classes = classes
        self.top, self.bottom = classes.index(top), classes.index(bottom)
        self.device = torch.device("cpu")
        self.calls: list[tuple[int, ...]] = []

    @property
    def waymo_ids(self) -> np.ndarray:
        return np.array(self.classes, dtype=np.uint8)

    def to(self, device: torch.device | str) -> HalvesModel:
        self.device = torch.device(device)
        return self

    def predict_logits(self, images: torch.Tensor) -> torch.Tensor:
        self.calls.append(tuple(images.shape))
        count, height, width = images.shape[0], *self.image_size
        ramp = torch.linspace(1.0, -1.0, height).view(1, height, 1).expand(count, height, width)
        logits = torch.full((count, len(self.classes), height, width), -5.0)
        logits[:, self.top] = ramp
        logits[:, self.bottom] = -ramp if self.top != self.bottom else ramp
        return logits.to(self.device)

    def predict_indices(self, images: torch.Tensor) -> torch.Tensor:
        return self.predict_logits(images).argmax(dim=1)
