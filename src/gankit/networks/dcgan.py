"""DCGAN generator and discriminator (Radford, Metz & Chintala 2015).

The architecture follows the paper's guidelines (section 3):
strided convolutions instead of pooling in D, fractional-strided (transposed)
convolutions in G, BatchNorm in both nets except G's output layer and D's input
layer, no fully connected hidden layers, ReLU in G with a Tanh output, and
LeakyReLU(0.2) in D. Weights are drawn from N(0, 0.02) (section 4).

One parameterized pair covers square images of 16, 28, 32, 64, 128 and 256 pixels:
G projects z to a ``start`` x ``start`` map (4, or 7 for 28-pixel images) and
doubles the resolution with each transposed convolution; D mirrors it and ends
in a ``start`` x ``start`` convolution that returns one logit per image. With
``g_width=128`` at 64 pixels G is the network of the paper's figure 1
(z of 100 -> 4x4x1024 -> 8x8x512 -> 16x16x256 -> 32x32x128 -> 64x64x3).
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar, Literal

import torch
from torch import nn

from gankit.data import DataSpec
from gankit.networks.common import (
    MODELS,
    RETIRED_HEAD_OPTIONS,
    FeatureShape,
    HeadBuilder,
    HeadedD,
    LabelInput,
    MinibatchStd,
    apply_spectral_norm,
    block_outputs,
    check_discriminator_options,
    complete_classes,
    complete_image_options,
    projection_embedding,
    require_labels,
)
from gankit.registry import ConfigError, check_ranges

RESOLUTIONS = (16, 28, 32, 64, 128, 256)


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
    # Class conditioning (Mirza & Osindero 2014): labels 0..num_classes-1 go to G (and D); None: the data's
    # number of classes; 0: unconditional.
    num_classes: int | None = 0
    label_embedding: int = 0  # G: labels as a learned embedding of this size joined with z; 0: one-hot
    # How a conditional D sees the label: one-hot label maps joined with the image channels (the cGAN
    # paper's concatenation), a projection (Miyato & Koyama 2018), or not at all (AC-GAN).
    d_conditioning: Literal["concat", "projection", "none"] = "concat"
    RETIRED: ClassVar[dict[str, str]] = RETIRED_HEAD_OPTIONS  # older configs' keys, read and dropped

    def __post_init__(self):
        check_ranges(
            self,
            "model",
            positive=("latent_dim", "g_width", "d_width", "max_channels", "channels", "d_pack"),
            non_negative=("num_classes", "label_embedding", "leaky_slope", "init_std", "d_minibatch_std"),
        )


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
        num_classes: int = 0,
        label_embedding: int = 0,
    ):
        super().__init__()
        start, n = layer_plan(resolution)
        self.latent_dim, self.num_classes = latent_dim, num_classes
        self.label_input = LabelInput(num_classes, label_embedding) if num_classes else None
        in_dim = latent_dim + (self.label_input.dim if num_classes else 0)
        widths = [min(width * 2 ** (n - 1 - i), max_channels) for i in range(n)]
        # "Project and reshape": a transposed convolution over a 1x1 input is a
        # linear map from z (joined with the label vector) to a start x start x widths[0] tensor.
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(in_dim, widths[0], start, 1, 0, bias=False),
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

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.label_input is not None:
            z = torch.cat(
                [z.view(z.shape[0], -1), self.label_input(require_labels(labels, self.num_classes, "G"))], dim=1
            )
        return self.net(z.view(z.shape[0], -1, 1, 1))


class DCGANDiscriminator(HeadedD, nn.Module):
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
        num_classes: int = 0,
        conditioning: str = "concat",
        heads: dict[str, HeadBuilder] | None = None,
    ):
        super().__init__()
        start, n = layer_plan(resolution)
        widths = [min(width * 2**i, max_channels) for i in range(n)]
        self.pack, self.num_classes = pack, num_classes
        self.conditioning = conditioning if num_classes else "none"
        label_maps = num_classes if self.conditioning == "concat" else 0
        blocks = [
            nn.Sequential(  # no BatchNorm on D's input layer
                nn.Conv2d(channels * pack + label_maps, widths[0], 4, 2, 1),
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
        head_in = widths[-1] + (1 if minibatch_std else 0)
        self.head = nn.Conv2d(head_in, 1, start, 1, 0)
        # Projection: logit += <embed(y), sum over locations of the last features>.
        self.projection = (
            projection_embedding(num_classes, widths[-1], init_std) if self.conditioning == "projection" else None
        )
        self.add_heads(heads, FeatureShape(head_in, start, leaky_slope))  # a variant's (AC-GAN, InfoGAN)
        self.feature_dim = widths[-1] * start * start
        init_weights(self, init_std)
        if spectral_norm:
            apply_spectral_norm(self)

    def with_labels(self, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """D's input: the images, joined with one-hot label maps for the concat conditioning."""
        if self.conditioning != "concat":
            return x
        labels = require_labels(labels, self.num_classes, "D")
        maps = nn.functional.one_hot(labels, self.num_classes).to(x.dtype)[:, :, None, None]
        joined = torch.cat([x, maps.expand(-1, -1, *x.shape[2:])], dim=1)
        channels_last = x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
        return joined.contiguous(memory_format=torch.channels_last) if channels_last else joined

    def features(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Every convolutional block's output, input side first."""
        return block_outputs(self.body, self.with_labels(x, labels))

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None, return_features: bool = False):
        """Logits (N,); with ``return_features``, also the last block's output (feature matching, heads)."""
        h = self.body(self.with_labels(x, labels))
        logits = self.head(self.minibatch_std(h)).flatten()
        if self.projection is not None:
            logits = logits + (self.projection(require_labels(labels, self.num_classes, "D")) * h.sum(dim=(2, 3))).sum(
                dim=1
            )
        return (logits, h) if return_features else logits


@MODELS.register("dcgan", DCGANConfig, "DCGAN conv G and D, 16/28/32/64/128/256 px (Radford et al. 2015)")
class DCGANFamily:
    @staticmethod
    def output_kind(options: DCGANConfig) -> str:
        return "images"

    @staticmethod
    def complete(options: DCGANConfig, data: DataSpec) -> DCGANConfig:
        options = complete_image_options(options, data, "dcgan", "; use model 'mlp'")
        layer_plan(options.resolution)
        options = complete_classes(options, data)
        check_discriminator_options(options)
        return options

    @staticmethod
    def generator(o: DCGANConfig) -> DCGANGenerator:
        return DCGANGenerator(
            o.resolution,
            o.channels,
            o.latent_dim,
            o.g_width,
            o.max_channels,
            o.init_std,
            o.num_classes or 0,
            o.label_embedding,
        )

    @staticmethod
    def discriminator(o: DCGANConfig, heads: dict[str, HeadBuilder] | None = None) -> DCGANDiscriminator:
        return DCGANDiscriminator(
            o.resolution,
            o.channels,
            o.d_width,
            o.max_channels,
            o.leaky_slope,
            o.init_std,
            o.d_spectral_norm,
            o.d_minibatch_std,
            o.d_pack,
            o.num_classes or 0,
            o.d_conditioning,
            heads,
        )
