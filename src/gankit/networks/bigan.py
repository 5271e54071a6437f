"""BiGAN / ALI networks (Donahue et al. 2017; Dumoulin et al. 2017): G with an encoder E, and a D of pairs (x, z).

G is the DCGAN generator; the encoder E (held by G, so it is trained with G, averaged by EMA and exported with it)
maps an image back to a latent: strided convolutions with LeakyReLU, as D's body, without BatchNorm (its
statistics would differ between the data it encodes and G's samples), then a convolution spanning the last
feature map to ``latent_dim`` outputs. D reads the image with the DCGAN D's body (dropout after each block, as
in ALI), the latent with two fully connected layers, and joins both in two more to one logit.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from gankit.data import DataSpec
from gankit.networks.common import (
    MODELS,
    HeadBuilder,
    block_outputs,
    complete_image_options,
    no_heads,
)
from gankit.networks.dcgan import DCGANGenerator, init_weights, layer_plan
from gankit.registry import check_ranges


@dataclasses.dataclass
class BiGANConfig:
    resolution: int | None = None  # None: from the data
    channels: int | None = None  # None: from the data
    latent_dim: int = 64
    g_width: int = 64
    e_width: int = 64  # the encoder's first convolution's channels (doubling per block)
    d_width: int = 64
    z_hidden: int = 256  # D's latent path and joint layers
    max_channels: int = 512
    leaky_slope: float = 0.2
    d_dropout: float = 0.2  # after every block of D (ALI uses dropout in D)
    init_std: float = 0.02

    def __post_init__(self):
        check_ranges(
            self,
            "model",
            positive=("latent_dim", "g_width", "e_width", "d_width", "z_hidden", "max_channels", "channels"),
            non_negative=("leaky_slope", "d_dropout", "init_std"),
        )


def conv_body(channels: int, width: int, resolution: int, max_channels: int, slope: float, dropout: float):
    """Strided 4x4 convolutions halving the image to the DCGAN start size; returns (body, last width, start)."""
    start, n = layer_plan(resolution)
    widths = [min(width * 2**i, max_channels) for i in range(n)]
    blocks, c_in = [], channels
    for c_out in widths:
        layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 4, 2, 1), nn.LeakyReLU(slope, inplace=True)]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        blocks.append(nn.Sequential(*layers))
        c_in = c_out
    return nn.Sequential(*blocks), widths[-1], start


class Encoder(nn.Module):
    """Images (N, C, H, W) in [-1, 1] -> latents (N, latent_dim)."""

    def __init__(self, resolution: int, channels: int, latent_dim: int, width: int, max_channels: int, slope: float):
        super().__init__()
        self.body, last, start = conv_body(channels, width, resolution, max_channels, slope, 0.0)
        self.out = nn.Conv2d(last, latent_dim, start, 1, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(x)).flatten(1)


class BiGANGenerator(nn.Module):
    """z (N, latent_dim) -> images, as the DCGAN G; ``encode(x)`` -> z: the inverse BiGAN learns with it."""

    def __init__(self, o: BiGANConfig):
        super().__init__()
        self.latent_dim, self.num_classes = o.latent_dim, 0
        self.generator = DCGANGenerator(o.resolution, o.channels, o.latent_dim, o.g_width, o.max_channels, o.init_std)
        self.encoder = Encoder(o.resolution, o.channels, o.latent_dim, o.e_width, o.max_channels, o.leaky_slope)
        init_weights(self.encoder, o.init_std)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.generator(z)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The latents of images ``x`` (N, C, H, W) in [-1, 1]: G's first input for them."""
        return self.encoder(x)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every block of the encoder's output, input side first (its representation, for ``gankit probe``)."""
        return block_outputs(self.encoder.body, x)


class BiGANDiscriminator(nn.Module):
    """D(x, z) -> logits (N,): the image through a convolutional body, the latent through two layers, joined."""

    def __init__(self, o: BiGANConfig):
        super().__init__()
        slope = o.leaky_slope
        self.body, last, start = conv_body(o.channels, o.d_width, o.resolution, o.max_channels, slope, o.d_dropout)
        self.latent = nn.Sequential(
            nn.Linear(o.latent_dim, o.z_hidden),
            nn.LeakyReLU(slope, inplace=True),
            nn.Linear(o.z_hidden, o.z_hidden),
            nn.LeakyReLU(slope, inplace=True),
        )
        self.joint = nn.Sequential(
            nn.Linear(last * start * start + o.z_hidden, 2 * o.z_hidden),
            nn.LeakyReLU(slope, inplace=True),
            nn.Dropout(o.d_dropout),
            nn.Linear(2 * o.z_hidden, 1),
        )
        self.feature_dim = last * start * start
        init_weights(self, o.init_std)

    def features(self, x: torch.Tensor, labels=None) -> list[torch.Tensor]:
        """Every block of the image path's output, input side first (D's features for analysis)."""
        return block_outputs(self.body, x)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        h = self.body(x).flatten(1)
        return self.joint(torch.cat([h, self.latent(z.flatten(1))], dim=1)).flatten()


@MODELS.register("bigan", BiGANConfig, "BiGAN / ALI: DCGAN G with an encoder, D of (image, latent) pairs")
class BiGANFamily:
    @staticmethod
    def output_kind(options: BiGANConfig) -> str:
        return "images"

    @staticmethod
    def complete(options: BiGANConfig, data: DataSpec) -> BiGANConfig:
        options = complete_image_options(options, data, "bigan")
        layer_plan(options.resolution)
        return options

    @staticmethod
    def generator(o: BiGANConfig) -> BiGANGenerator:
        return BiGANGenerator(o)

    @staticmethod
    def discriminator(o: BiGANConfig, heads: dict[str, HeadBuilder] | None = None) -> BiGANDiscriminator:
        no_heads("bigan", heads)
        return BiGANDiscriminator(o)
