"""Segmentation models: a U-Net built from a frozen, JSON-serialisable config."""

from waymo_unet.models.unet import (
    DoubleConv,
    Down,
    OutConv,
    UNet,
    UNetConfig,
    Up,
    build_unet,
    count_parameters,
)

__all__ = [
    "DoubleConv",
    "Down",
    "OutConv",
    "UNet",
    "UNetConfig",
    "Up",
    "build_unet",
    "count_parameters",
]
