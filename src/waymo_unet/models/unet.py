"""A U-Net for semantic segmentation, built from a frozen config.

The layout follows Ronneberger et al. (2015) as written in milesial's Pytorch-UNet: small
blocks (``DoubleConv``, ``Down``, ``Up``, ``OutConv``) and, in the bilinear variant, the
halving of channels before each up-sampling so the bilinear model is about half the size
of the transposed-convolution one. Widths double at every down-sampling step starting from
``base_channels``; ``depth`` counts those steps. ``num_classes`` always comes from the label
catalogue, never from a constant here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812 (the conventional alias)
from torch import Tensor, nn

from waymo_unet.config import checked_config, config_from_params, value_fits

PARAMETERS_FILE = "parameters_training.yml"


@dataclass(frozen=True)
class UNetConfig:
    """Architecture of a :class:`UNet`; validated on construction.

    ``depth`` is the number of 2x down-sampling steps, so inputs are padded internally to a
    multiple of ``2 ** depth``. ``bilinear`` selects bilinear up-sampling plus convolution
    (fewer parameters) instead of ``ConvTranspose2d``. ``dropout`` is the ``Dropout2d``
    probability at the bottleneck (0 disables it). The defaults are those of
    ``training.model`` in ``conf/base/parameters_training.yml`` (a test keeps them equal).
    """

    num_classes: int
    in_channels: int = 3
    base_channels: int = 16
    depth: int = 4
    bilinear: bool = True
    dropout: float = 0.0

    def __post_init__(self) -> None:
        for name in ("num_classes", "in_channels", "base_channels", "depth"):
            value = getattr(self, name)
            if not value_fits(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if not isinstance(self.bilinear, bool):
            raise ValueError(f"bilinear must be a bool, got {self.bilinear!r}")
        if not value_fits(self.dropout, float) or not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be a number in [0, 1), got {self.dropout!r}")
        # Store a float even when JSON gave an int (0), so to_dict round-trips stably.
        object.__setattr__(self, "dropout", float(self.dropout))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types, for a checkpoint or a JSON file."""
        return asdict(self)

    @classmethod
    def from_params(cls, params: Mapping[str, Any], num_classes: int) -> UNetConfig:
        """From ``training.model`` and the catalogue's class count; a bad key or type is named."""
        if isinstance(params, Mapping) and "num_classes" in params:
            raise ValueError(
                f"training.model.num_classes={params['num_classes']!r} is not a setting: the "
                f"label catalogue gives it (see conf/base/{PARAMETERS_FILE})"
            )
        values = {**params, "num_classes": num_classes} if isinstance(params, Mapping) else params
        return config_from_params(cls, values, "training.model", PARAMETERS_FILE)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "the model checkpoint") -> UNetConfig:
        """Inverse of :meth:`to_dict`; an unknown or missing key is named, with ``source``."""
        return checked_config(cls, data, "unet_config", source)

    @property
    def size_multiple(self) -> int:
        """Height and width the network itself needs to be divisible by."""
        return 2**self.depth


class DoubleConv(nn.Module):
    """(3x3 conv, BatchNorm, ReLU) twice; conv bias is off because BatchNorm adds one."""

    def __init__(self, in_channels: int, out_channels: int, mid_channels: int | None = None):
        super().__init__()
        mid_channels = mid_channels or out_channels
        self.block = nn.Sequential(
            nn.Conv2d(in_channels, mid_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(mid_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.block(x)


class Down(nn.Module):
    """Halve the resolution with 2x2 max pooling, then a :class:`DoubleConv`."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.block = nn.Sequential(nn.MaxPool2d(2), DoubleConv(in_channels, out_channels))

    def forward(self, x: Tensor) -> Tensor:
        return self.block(x)


class Up(nn.Module):
    """Double the resolution, concatenate the skip connection, then a :class:`DoubleConv`.

    ``in_channels`` is the width after concatenation. Bilinear: the input already has
    ``in_channels // 2`` channels (the encoder halved them) and the middle conv halves again.
    Transposed: ``ConvTranspose2d`` maps ``in_channels`` to ``in_channels // 2``. The skip
    must be exactly twice the input's size; :class:`UNet` pads its input so it always is.
    """

    def __init__(self, in_channels: int, out_channels: int, bilinear: bool = True):
        super().__init__()
        self.up: nn.Module
        if bilinear:
            self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
            self.conv = DoubleConv(in_channels, out_channels, in_channels // 2)
        else:
            self.up = nn.ConvTranspose2d(in_channels, in_channels // 2, kernel_size=2, stride=2)
            self.conv = DoubleConv(in_channels, out_channels)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        return self.conv(torch.cat([skip, self.up(x)], dim=1))


class OutConv(nn.Module):
    """1x1 convolution to one logit per class (with bias: no BatchNorm follows)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class UNet(nn.Module):
    """U-Net mapping ``[N, in_channels, H, W]`` images to ``[N, num_classes, H, W]`` logits.

    Any H and W work: the input is padded on the bottom and right to a multiple of
    ``2 ** depth`` and the logits are cropped back. ``forward`` branches on shapes only,
    never on tensor values, so it traces cleanly under ``torch.compile`` and
    ``torch.export``.
    """

    def __init__(self, config: UNetConfig):
        super().__init__()
        self.config = config
        factor = 2 if config.bilinear else 1
        widths = [config.base_channels * 2**i for i in range(config.depth + 1)]

        self.inc = DoubleConv(config.in_channels, widths[0])
        # The deepest Down is narrowed by `factor` so that, after bilinear up-sampling
        # (which keeps the width), the concatenation with its skip is widths[-2] * 2.
        self.downs = nn.ModuleList(
            Down(widths[i - 1], widths[i] // (factor if i == config.depth else 1))
            for i in range(1, config.depth + 1)
        )
        self.dropout: nn.Module = (
            nn.Dropout2d(config.dropout) if config.dropout > 0 else nn.Identity()
        )
        self.ups = nn.ModuleList(
            Up(widths[i], widths[i - 1] // (factor if i > 1 else 1), config.bilinear)
            for i in range(config.depth, 0, -1)
        )
        self.outc = OutConv(widths[0], config.num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming-normal convs (fan-out, ReLU) with zero bias; BatchNorm weight 1, bias 0."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.config.in_channels:
            raise ValueError(
                f"expected input [N, {self.config.in_channels}, H, W], got {tuple(x.shape)}"
            )
        height, width = x.shape[-2], x.shape[-1]
        multiple = self.config.size_multiple
        # Zero padding, not replicate/reflect: every 3x3 conv already zero-pads its borders,
        # so the bottom/right edges look to the network like the top/left ones; it also works
        # for any size (reflect needs pad < size), dtype and memory format, and exports as a
        # plain constant pad. The padded pixels are cropped from the logits below.
        x = F.pad(x, (0, -width % multiple, 0, -height % multiple))

        x = self.inc(x)
        skips: list[Tensor] = []
        for down in self.downs:
            skips.append(x)
            x = down(x)
        x = self.dropout(x)
        for up, skip in zip(self.ups, reversed(skips), strict=True):
            x = up(x, skip)
        return self.outc(x)[:, :, :height, :width]


def build_unet(config: UNetConfig) -> UNet:
    """The one place a U-Net is made, so checkpoints can rebuild it from ``config``."""
    return UNet(config)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters (those with ``requires_grad``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
