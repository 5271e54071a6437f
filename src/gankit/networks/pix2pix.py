"""pix2pix's networks (Isola et al. 2017): a U-Net generator and a PatchGAN discriminator on (input, output).

**U-Net G** (the paper's appendix 6.1.1): an encoder of 4x4 stride-2 convolutions C64-C128-C256-C512-C512-...
down to 1 x 1 (log2(resolution) of them; no norm on the first and the innermost), LeakyReLU 0.2; a decoder of
4x4 stride-2 transposed convolutions mirroring it, ReLU, each joined (channel concatenation) with the encoder
layer of the same size; Tanh output. Dropout 0.5 in the first three decoder blocks is the paper's only noise:
G takes no z (``latent_dim`` = 0; the trainer's z is empty and ignored).

*Sampling and dropout / BatchNorm.* The paper runs G at test time "in exactly the same manner as during
training": dropout on and BatchNorm with the test batch's statistics, so outputs depend on the batch and vary
between calls. gankit samples in eval mode (dropout off, BatchNorm running statistics): a sample depends on
its input alone. ``model.sample_dropout=true`` keeps dropout on at sampling (varied outputs; BatchNorm still
uses running statistics); with ``model.norm=instance`` (statistics of each image, no running ones) eval and
training normalize alike.

**PatchGAN D** (section 3.2.2): judges (input, output) pairs, stacked along channels, on N x N patches: C64
(no norm) then n - 1 more 4x4 stride-2 convolutions doubling the width (to 512 at most), one 4x4 stride-1
convolution and a 4x4 stride-1 convolution to one logit per patch. The receptive field N of n stride-2 layers
is 16, 34, 70, 142, 286 for n = 1..5 (70 x 70 is the paper's default; 286 x 286 at 256 px is its ImageGAN);
``d_patch`` picks N ("pixel": 1 x 1 convolutions, the PixelGAN; "image": the smallest N covering the image).
:func:`receptive_field` computes N from the layers themselves.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import torch
from torch import nn

from gankit.data import DataSpec
from gankit.networks.common import DETERMINISTIC, MODELS, complete_image_options, no_heads
from gankit.networks.dcgan import init_weights
from gankit.registry import ConfigError, check_ranges

RESOLUTIONS = (32, 64, 128, 256)
PATCHES = {"16": 1, "34": 2, "70": 3, "142": 4, "286": 5}  # receptive field -> stride-2 layers


@dataclasses.dataclass
class Pix2PixConfig:
    resolution: int | None = None  # filled from the data when None
    channels: int | None = None  # of the target (output) images; filled from the data
    source_channels: int | None = None  # of the condition (input) images; filled from the data
    latent_dim: int = 0  # G takes no z (dropout is its noise); must stay 0
    g_width: int = 64
    d_width: int = 64
    max_channels: int = 512
    norm: Literal["batch", "instance"] = "batch"
    dropout: float = 0.5  # in the first three decoder blocks
    sample_dropout: bool = False  # keep dropout on at sampling (the paper's test-time noise)
    # the PatchGAN's patch side: 16, 34, 70, 142 or 286 (a number or its string), "pixel" or "image"
    d_patch: str | int = "70"
    leaky_slope: float = 0.2
    init_std: float = 0.02

    def __post_init__(self):
        check_ranges(
            self,
            "model",
            positive=("g_width", "d_width", "max_channels", "channels", "source_channels"),
            non_negative=("leaky_slope", "init_std"),
        )
        if self.latent_dim != 0:
            raise ConfigError("model.latent_dim must be 0 for pix2pix: its G takes no z (dropout is its noise)")
        self.d_patch = str(self.d_patch)
        if self.d_patch not in (*PATCHES, "pixel", "image"):
            raise ConfigError(f"model.d_patch must be one of {', '.join(PATCHES)}, pixel, image; got {self.d_patch!r}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"model.dropout must be in [0, 1), got {self.dropout}")


def norm_layer(kind: str, channels: int) -> nn.Module:
    return nn.BatchNorm2d(channels) if kind == "batch" else nn.InstanceNorm2d(channels)


class SampleDropout(nn.Dropout):
    """Dropout that can stay on in eval mode (``always``)."""

    def __init__(self, p: float, always: bool = False):
        super().__init__(p)
        self.always = always

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # An exported graph (gankit export) is G in eval mode: deterministic, dropout off.
        always = self.always and not (torch.compiler.is_exporting() or DETERMINISTIC[0])
        return nn.functional.dropout(x, self.p, self.training or always)


class UNetGenerator(nn.Module):
    """source image (N, source_channels, R, R) -> image (N, channels, R, R); called as ``G(z, source)`` with
    an empty z (the condition protocol's call)."""

    def __init__(
        self,
        resolution: int,
        channels: int,
        source_channels: int,
        width: int = 64,
        max_channels: int = 512,
        norm: str = "batch",
        dropout: float = 0.5,
        sample_dropout: bool = False,
        leaky_slope: float = 0.2,
        init_std: float = 0.02,
    ):
        super().__init__()
        if resolution not in RESOLUTIONS:
            raise ConfigError(f"pix2pix supports resolutions {', '.join(map(str, RESOLUTIONS))}, got {resolution}")
        depth = int(math.log2(resolution))  # down to 1 x 1
        self.resolution, self.channels, self.source_channels, self.latent_dim = resolution, channels, source_channels, 0
        w = [min(width * 2**i, max_channels) for i in range(depth)]
        bias = norm == "instance"  # a norm with an affine shift makes a conv bias redundant
        self.down = nn.ModuleList()
        for i in range(depth):
            layers: list[nn.Module] = [] if i == 0 else [nn.LeakyReLU(leaky_slope, inplace=True)]
            plain = i in (0, depth - 1)
            layers.append(nn.Conv2d(source_channels if i == 0 else w[i - 1], w[i], 4, 2, 1, bias=plain or bias))
            if not plain:
                layers.append(norm_layer(norm, w[i]))
            self.down.append(nn.Sequential(*layers))
        self.up = nn.ModuleList()
        for i in range(depth):  # up[i] mirrors down[i]
            c_in = w[i] if i == depth - 1 else 2 * w[i]
            layers = [nn.ReLU(inplace=True)]
            if i == 0:
                layers += [nn.ConvTranspose2d(c_in, channels, 4, 2, 1), nn.Tanh()]
            else:
                layers += [nn.ConvTranspose2d(c_in, w[i - 1], 4, 2, 1, bias=bias), norm_layer(norm, w[i - 1])]
                if depth - 1 - i < 3 and dropout > 0:  # the first three decoder blocks
                    layers.append(SampleDropout(dropout, sample_dropout))
            self.up.append(nn.Sequential(*layers))
        init_weights(self, init_std)

    def forward(self, z: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        skips = []
        x = source
        for block in self.down:
            x = block(x)
            skips.append(x)
        for i in reversed(range(len(self.up))):
            if i < len(self.up) - 1:
                x = torch.cat([x, skips[i]], dim=1)
            x = self.up[i](x)
        return x


def patch_layers(d_patch: str, resolution: int) -> int:
    """Stride-2 layers of the PatchGAN for ``d_patch`` (0: the PixelGAN)."""
    if d_patch == "pixel":
        return 0
    if d_patch == "image":  # n stride-2 layers and two stride-1 ones see 9 * 2^n - 2 pixels
        return next(n for n in range(1, 9) if 9 * 2**n - 2 >= resolution)
    return PATCHES[d_patch]


class PatchDiscriminator(nn.Module):
    """(image, source) -> logits (N, patches): one per N x N patch of the pair."""

    def __init__(
        self,
        channels: int,
        source_channels: int,
        layers: int,
        width: int = 64,
        max_channels: int = 512,
        norm: str = "batch",
        leaky_slope: float = 0.2,
        init_std: float = 0.02,
    ):
        super().__init__()
        c_in, bias = channels + source_channels, norm == "instance"
        if layers == 0:  # PixelGAN: 1 x 1 convolutions
            body = [
                nn.Conv2d(c_in, width, 1),
                nn.LeakyReLU(leaky_slope, inplace=True),
                nn.Conv2d(width, 2 * width, 1, bias=bias),
                norm_layer(norm, 2 * width),
                nn.LeakyReLU(leaky_slope, inplace=True),
                nn.Conv2d(2 * width, 1, 1),
            ]
        else:
            body, c = [nn.Conv2d(c_in, width, 4, 2, 1), nn.LeakyReLU(leaky_slope, inplace=True)], width
            for i in range(1, layers + 1):
                out = min(width * 2**i, max_channels)
                stride = 2 if i < layers else 1
                body += [
                    nn.Conv2d(c, out, 4, stride, 1, bias=bias),
                    norm_layer(norm, out),
                    nn.LeakyReLU(leaky_slope, inplace=True),
                ]
                c = out
            body.append(nn.Conv2d(c, 1, 4, 1, 1))
        self.body = nn.Sequential(*body)
        init_weights(self, init_std)

    def forward(self, x: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        return self.body(torch.cat([source.to(x.dtype), x], dim=1)).flatten(1)


def receptive_field(net: nn.Module) -> int:
    """The receptive field (pixels a side) of one output of a chain of convolutions, from its layers."""
    field, jump = 1, 1
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            field += (m.kernel_size[0] - 1) * jump
            jump *= m.stride[0]
    return field


@MODELS.register("pix2pix", Pix2PixConfig, "U-Net G and PatchGAN D on (input, output) pairs (Isola et al. 2017)")
class Pix2PixFamily:
    @staticmethod
    def output_kind(options: Pix2PixConfig) -> str:
        return "images"

    @staticmethod
    def complete(options: Pix2PixConfig, data: DataSpec) -> Pix2PixConfig:
        options = complete_image_options(options, data, "pix2pix")
        if data.source_shape is None:
            raise ConfigError("model 'pix2pix' needs paired data (data.name=pairs; gankit data make-pairs makes some)")
        if data.source_shape[1:] != data.shape[1:]:
            raise ConfigError(
                f"pix2pix translates between images of one size: sources {data.source_shape[1:]}, "
                f"targets {data.shape[1:]}"
            )
        if options.source_channels is None:
            options = dataclasses.replace(options, source_channels=data.source_shape[0])
        elif options.source_channels != data.source_shape[0]:
            raise ConfigError(
                f"model.source_channels={options.source_channels} but the source images have "
                f"{data.source_shape[0]}; set data.source_channels to convert them"
            )
        if options.resolution not in RESOLUTIONS:
            raise ConfigError(f"pix2pix supports resolutions {', '.join(map(str, RESOLUTIONS))}; set data.resolution")
        layers = patch_layers(options.d_patch, options.resolution)
        if layers and options.resolution // 2**layers - 2 < 1:  # the two stride-1 convolutions need 3 x 3 left
            largest = max((k for k, n in PATCHES.items() if options.resolution // 2**n - 2 >= 1), key=int)
            raise ConfigError(
                f"model.d_patch={options.d_patch} needs images larger than {options.resolution} px; "
                f"the largest patch at this size is {largest} (or 'image')"
            )
        return options

    @staticmethod
    def generator(o: Pix2PixConfig) -> UNetGenerator:
        return UNetGenerator(
            o.resolution,
            o.channels,
            o.source_channels,
            o.g_width,
            o.max_channels,
            o.norm,
            o.dropout,
            o.sample_dropout,
            o.leaky_slope,
            o.init_std,
        )

    @staticmethod
    def discriminator(o: Pix2PixConfig, heads=None) -> PatchDiscriminator:
        no_heads("pix2pix", heads)
        return PatchDiscriminator(
            o.channels,
            o.source_channels,
            patch_layers(o.d_patch, o.resolution),
            o.d_width,
            o.max_channels,
            o.norm,
            o.leaky_slope,
            o.init_std,
        )
