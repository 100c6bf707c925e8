"""A trained model with everything needed to use it: weights, config, classes, input settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from waymo_unet.models.preprocessing import MEAN_RGB, STD_RGB, to_model_input
from waymo_unet.models.unet import UNet, UNetConfig, build_unet

FORMAT_VERSION = 1


class Segmenter(Protocol):
    """What inference needs of a model: the trained bundle and the exported one alike."""

    image_size: tuple[int, int]

    @property
    def waymo_ids(self) -> np.ndarray: ...

    def to(self, device: torch.device | str) -> Segmenter: ...

    def predict_logits(self, images: torch.Tensor) -> torch.Tensor: ...

    def predict_indices(self, images: torch.Tensor) -> torch.Tensor: ...


@dataclass
class SegmentationModel:
    """A U-Net plus its class map (training index -> Waymo id and name) and input settings.

    ``classes`` is the label catalogue's list of ``{"index", "id", "name", ...}``;
    ``image_size`` is (height, width) of the training shards, the size it works best at.
    """

    network: UNet
    config: UNetConfig
    classes: list[dict[str, Any]]
    image_size: tuple[int, int]
    mean: tuple[float, ...] = MEAN_RGB
    std: tuple[float, ...] = STD_RGB

    def __post_init__(self) -> None:
        if [c["index"] for c in self.classes] != list(range(self.config.num_classes)):
            raise ValueError("classes must list indices 0..num_classes-1 in order")

    @property
    def waymo_ids(self) -> np.ndarray:
        """uint8 lookup from training index to Waymo semantic id."""
        return np.array([c["id"] for c in self.classes], dtype=np.uint8)

    def to_checkpoint(self) -> dict[str, Any]:
        """Tensors and plain types only, loadable with ``torch.load(weights_only=True)``."""
        return {
            "format_version": FORMAT_VERSION,
            "unet_config": self.config.to_dict(),
            "state_dict": {k: v.detach().cpu() for k, v in self.network.state_dict().items()},
            "classes": self.classes,
            "image_size": list(self.image_size),
            "mean": list(self.mean),
            "std": list(self.std),
        }

    @classmethod
    def from_checkpoint(cls, data: dict[str, Any]) -> SegmentationModel:
        if data.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"unsupported model format {data.get('format_version')!r}")
        config = UNetConfig.from_dict(data["unet_config"])
        network = build_unet(config)
        network.load_state_dict(data["state_dict"])
        network.eval()
        return cls(
            network=network,
            config=config,
            classes=list(data["classes"]),
            image_size=tuple(data["image_size"]),
            mean=tuple(data["mean"]),
            std=tuple(data["std"]),
        )

    def to(self, device: torch.device | str) -> SegmentationModel:
        self.network.to(device)
        return self

    @torch.inference_mode()
    def predict_logits(self, images: torch.Tensor) -> torch.Tensor:
        """Logits (N, num_classes, H, W) for uint8 RGB images (N, H, W, 3) of any size."""
        device = next(self.network.parameters()).device
        inputs = to_model_input(images.to(device), self.mean, self.std)
        return self.network.eval()(inputs)

    def predict_indices(self, images: torch.Tensor) -> torch.Tensor:
        """Training indices (N, H, W) for uint8 RGB images (N, H, W, 3) of any size."""
        return self.predict_logits(images).argmax(dim=1)

    def predict_waymo_ids(self, images: torch.Tensor) -> np.ndarray:
        """Waymo semantic ids (uint8, N x H x W) for uint8 RGB images (N, H, W, 3)."""
        return self.waymo_ids[self.predict_indices(images).cpu().numpy()]
