"""SRGAN's networks (Ledig et al. 2017, figure 4): the SRResNet generator and the VGG-style discriminator.

**SRResNet G**: a 9x9 convolution (64 maps) + PReLU; B residual blocks (3x3 conv, BN, PReLU, 3x3 conv, BN, plus
the block's input); a 3x3 conv + BN added to the first layer's output (the long skip); per factor 2 of the
upscaling a 3x3 conv to 256 maps, a sub-pixel convolution (``PixelShuffle(2)``: 256 maps -> 64 maps at twice the
size) and PReLU; a 9x9 convolution to the image. The paper's output layer is linear; gankit ends in Tanh so
that every G draws in [-1, 1] (a deviation, stated in the presets). Called as ``G(z, low_resolution)`` with an
empty z (the condition protocol's call).

**D**: 3x3 convolutions 64, 64 (stride 2), 128, 128 (s2), 256, 256 (s2), 512, 512 (s2), LeakyReLU 0.2, BN on
all but the first, then Dense 1024, LeakyReLU, Dense 1 (a logit; the paper's sigmoid is in the loss). ``d_width``
scales the widths (64 in the paper).
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn

from gankit.data import DataSpec
from gankit.networks.common import MODELS, complete_image_options, no_heads
from gankit.registry import ConfigError, check_ranges


@dataclasses.dataclass
class SRGANConfig:
    resolution: int | None = None  # of the high-resolution images; filled from the data
    channels: int | None = None  # filled from the data
    scale: int = 4  # upscaling factor: 2 or 4 (2x2x) as in the paper
    latent_dim: int = 0  # G takes no z; must stay 0
    g_width: int = 64
    g_blocks: int = 16  # residual blocks (B = 16 in the paper)
    d_width: int = 64
    d_dense: int = 1024
    leaky_slope: float = 0.2

    def __post_init__(self):
        check_ranges(
            self,
            "model",
            positive=("g_width", "g_blocks", "d_width", "d_dense", "channels"),
            non_negative=("leaky_slope",),
        )
        if self.scale not in (2, 4, 8):
            raise ConfigError(f"model.scale must be 2, 4 or 8, got {self.scale}")
        if self.latent_dim != 0:
            raise ConfigError("model.latent_dim must be 0 for srgan: its G takes no z")

    @property
    def input_resolution(self) -> int:
        return self.resolution // self.scale


class ResidualBlock(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(width, width, 3, 1, 1),
            nn.BatchNorm2d(width),
            nn.PReLU(width),
            nn.Conv2d(width, width, 3, 1, 1),
            nn.BatchNorm2d(width),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def subpixel_upsample(width: int) -> nn.Sequential:
    """3x3 conv to 4 * width maps, then PixelShuffle(2): (N, 4w, H, W) -> (N, w, 2H, 2W), PReLU."""
    return nn.Sequential(nn.Conv2d(width, 4 * width, 3, 1, 1), nn.PixelShuffle(2), nn.PReLU(width))


class SRResNetGenerator(nn.Module):
    def __init__(self, channels: int, scale: int, width: int = 64, blocks: int = 16, resolution: int = 0):
        super().__init__()
        self.channels, self.scale, self.resolution, self.latent_dim = channels, scale, resolution, 0
        self.source_channels = channels
        self.head = nn.Sequential(nn.Conv2d(channels, width, 9, 1, 4), nn.PReLU(width))
        self.blocks = nn.Sequential(*[ResidualBlock(width) for _ in range(blocks)])
        self.merge = nn.Sequential(nn.Conv2d(width, width, 3, 1, 1), nn.BatchNorm2d(width))
        self.upsample = nn.Sequential(*[subpixel_upsample(width) for _ in range(int(math.log2(scale)))])
        self.out = nn.Sequential(nn.Conv2d(width, channels, 9, 1, 4), nn.Tanh())

    def forward(self, z: torch.Tensor, low: torch.Tensor) -> torch.Tensor:
        h = self.head(low)
        return self.out(self.upsample(h + self.merge(self.blocks(h))))


class SRGANDiscriminator(nn.Module):
    def __init__(self, channels: int, resolution: int, width: int = 64, dense: int = 1024, leaky_slope: float = 0.2):
        super().__init__()
        widths = [width * m for m in (1, 1, 2, 2, 4, 4, 8, 8)]
        layers: list[nn.Module] = [nn.Conv2d(channels, widths[0], 3, 1, 1), nn.LeakyReLU(leaky_slope, inplace=True)]
        size = resolution
        for i in range(1, 8):
            stride = 2 if i % 2 else 1
            layers += [
                nn.Conv2d(widths[i - 1], widths[i], 3, stride, 1),
                nn.BatchNorm2d(widths[i]),
                nn.LeakyReLU(leaky_slope, inplace=True),
            ]
            size = (size + 2 - 3) // stride + 1
        self.body = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(widths[-1] * size * size, dense),
            nn.LeakyReLU(leaky_slope, inplace=True),
            nn.Linear(dense, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x)).flatten()


@MODELS.register("srgan", SRGANConfig, "SRResNet G (sub-pixel upsampling) and a VGG-style D (Ledig et al. 2017)")
class SRGANFamily:
    @staticmethod
    def output_kind(options: SRGANConfig) -> str:
        return "images"

    @staticmethod
    def complete(options: SRGANConfig, data: DataSpec) -> SRGANConfig:
        options = complete_image_options(options, data, "srgan")
        if options.resolution % options.scale or options.resolution // options.scale < 4:
            raise ConfigError(
                f"model.scale={options.scale} must divide the resolution {options.resolution} and leave "
                "at least 4 pixels; set data.resolution"
            )
        return options

    @staticmethod
    def generator(o: SRGANConfig) -> SRResNetGenerator:
        return SRResNetGenerator(o.channels, o.scale, o.g_width, o.g_blocks, o.resolution)

    @staticmethod
    def discriminator(o: SRGANConfig, heads=None) -> SRGANDiscriminator:
        no_heads("srgan", heads)
        return SRGANDiscriminator(o.channels, o.resolution, o.d_width, o.d_dense, o.leaky_slope)
