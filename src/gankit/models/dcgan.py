"""DCGAN generator and discriminator (Radford, Metz & Chintala 2015).

The architecture follows the paper's guidelines (section 3):
strided convolutions instead of pooling in D, fractional-strided (transposed)
convolutions in G, BatchNorm in both nets except G's output layer and D's input
layer, no fully connected hidden layers, ReLU in G with a Tanh output, and
LeakyReLU(0.2) in D. Weights are drawn from N(0, 0.02) (section 4).

One parameterized pair covers square images of 16, 28, 32, 64 and 128 pixels:
G projects z to a ``start`` x ``start`` map (4, or 7 for 28-pixel images) and
doubles the resolution with each transposed convolution; D mirrors it and ends
in a ``start`` x ``start`` convolution that returns one logit per image. With
``g_width=128`` at 64 pixels G is the network of the paper's figure 1
(z of 100 -> 4x4x1024 -> 8x8x512 -> 16x16x256 -> 32x32x128 -> 64x64x3).
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn

from gankit.models import MODELS, DataSpec, MinibatchStd, check_discriminator_options, apply_spectral_norm, block_outputs, check_matches
from gankit.registry import ConfigError

RESOLUTIONS = (16, 28, 32, 64, 128)


@dataclasses.dataclass
class DCGANConfig:
    resolution: int | None = None  # filled from the data when None
    channels: int | None = None  # filled from the data when None
    latent_dim: int = 100
    g_width: int = 64  # feature maps of G's last hidden layer; doubled towards z
    d_width: int = 64  # feature maps of D's first layer; doubled towards the logit
    max_channels: int = 1024
    leaky_slope: float = 0.2
    init_std: float = 0.02
    d_spectral_norm: bool = False  # spectral normalization of D's layers (Miyato et al. 2018)
    d_minibatch_std: int = 0  # group size of a minibatch-std feature before D's last layer (Karras et al. 2018); 0: off
    d_pack: int = 1  # PacGAN (Lin et al. 2018): D judges this many samples at once, stacked along channels


def layer_plan(resolution: int) -> tuple[int, int]:
    """Return (start size, number of stride-2 layers) for a square resolution."""
    if resolution not in RESOLUTIONS:
        raise ConfigError(
            f"DCGAN supports resolutions {', '.join(map(str, RESOLUTIONS))}, got {resolution}; "
            "resize the data with data.resolution=..."
        )
    start = 7 if resolution == 28 else 4
    return start, int(math.log2(resolution // start))


def init_weights(module: nn.Module, std: float) -> None:
    """The paper's initialization: conv weights N(0, std), BatchNorm scales N(1, std)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)


class DCGANGenerator(nn.Module):
    """z (N, latent_dim) -> images (N, channels, resolution, resolution) in [-1, 1]."""

    def __init__(
        self,
        resolution: int,
        channels: int,
        latent_dim: int = 100,
        width: int = 64,
        max_channels: int = 1024,
        init_std: float = 0.02,
    ):
        super().__init__()
        start, n = layer_plan(resolution)
        self.latent_dim = latent_dim
        widths = [min(width * 2 ** (n - 1 - i), max_channels) for i in range(n)]
        # "Project and reshape": a transposed convolution over a 1x1 input is a
        # linear map from z to a start x start x widths[0] tensor.
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(latent_dim, widths[0], start, 1, 0, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        ]
        for c_in, c_out in zip(widths, widths[1:]):
            layers += [
                nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
            ]
        layers += [nn.ConvTranspose2d(widths[-1], channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        init_weights(self, init_std)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.view(z.shape[0], self.latent_dim, 1, 1))


class DCGANDiscriminator(nn.Module):
    """images (N, channels, resolution, resolution) -> logits (N,)."""

    def __init__(
        self,
        resolution: int,
        channels: int,
        width: int = 64,
        max_channels: int = 1024,
        leaky_slope: float = 0.2,
        init_std: float = 0.02,
        spectral_norm: bool = False,
        minibatch_std: int = 0,
        pack: int = 1,
    ):
        super().__init__()
        start, n = layer_plan(resolution)
        widths = [min(width * 2**i, max_channels) for i in range(n)]
        self.pack = pack
        blocks = [
            nn.Sequential(  # no BatchNorm on D's input layer
                nn.Conv2d(channels * pack, widths[0], 4, 2, 1),
                nn.LeakyReLU(leaky_slope, inplace=True),
            )
        ]
        for c_in, c_out in zip(widths, widths[1:]):
            blocks.append(
                nn.Sequential(
                    nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False),
                    nn.BatchNorm2d(c_out),
                    nn.LeakyReLU(leaky_slope, inplace=True),
                )
            )
        self.body = nn.Sequential(*blocks)
        self.minibatch_std = MinibatchStd(minibatch_std) if minibatch_std else nn.Identity()
        self.head = nn.Conv2d(widths[-1] + (1 if minibatch_std else 0), 1, start, 1, 0)
        self.feature_dim = widths[-1] * start * start
        init_weights(self, init_std)
        if spectral_norm:
            apply_spectral_norm(self)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every convolutional block's output, input side first."""
        return block_outputs(self.body, x)

    def forward(self, x: torch.Tensor, return_features: bool = False):
        """Logits (N,); with ``return_features``, also the last block's output (for feature matching)."""
        h = self.body(x)
        logits = self.head(self.minibatch_std(h)).flatten()
        return (logits, h) if return_features else logits


@MODELS.register("dcgan", DCGANConfig, "DCGAN conv G and D, 16/28/32/64/128 px (Radford et al. 2015)")
class DCGANFamily:
    @staticmethod
    def complete(options: DCGANConfig, data: DataSpec) -> DCGANConfig:
        if data.kind != "images":
            raise ConfigError(f"model 'dcgan' needs image data, but the data is {data.kind}; use model 'mlp'")
        channels, height, width = data.shape
        if height != width:
            raise ConfigError(f"DCGAN needs square images, the data is {height}x{width}")
        options = check_matches(options, "channels", channels, "set data.channels to convert the images")
        options = check_matches(options, "resolution", height, "set data.resolution to resize the images")
        layer_plan(options.resolution)
        check_discriminator_options(options)
        return options

    @staticmethod
    def generator(o: DCGANConfig) -> DCGANGenerator:
        return DCGANGenerator(o.resolution, o.channels, o.latent_dim, o.g_width, o.max_channels, o.init_std)

    @staticmethod
    def discriminator(o: DCGANConfig) -> DCGANDiscriminator:
        return DCGANDiscriminator(o.resolution, o.channels, o.d_width, o.max_channels, o.leaky_slope, o.init_std,
                                  o.d_spectral_norm, o.d_minibatch_std, o.d_pack)  # fmt: skip
