"""StackGAN's Stage-II nets (Zhang et al. 2017, section 3.3 and figure 2).

G holds the trained Stage-I generator (a ``text-dcgan`` G with conditioning augmentation), frozen and
always in eval mode: it draws the low-resolution image from (z, text). Stage-II then encodes that image
down to a quarter of its side (a 3x3 convolution and two stride-2 4x4 convolutions), joins a condition
from its own conditioning augmentation replicated over the map, mixes them (3x3 conv), refines with
residual blocks and upsamples (nearest neighbour x2 + 3x3 conv, BatchNorm, ReLU) to 2x or 4x the
Stage-I resolution. Stage-II takes no z of its own: the randomness is in the Stage-I image and the
two conditioning augmentations (section 3.3). D is the ``text-dcgan`` D at the new resolution with both
heads, conditional and unconditional.

The whole G (Stage-I inside) is one module, so a Stage-II export samples on its own.
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn

from gankit.data import DataSpec
from gankit.networks.common import MODELS, Staged, complete_image_options, no_heads
from gankit.networks.dcgan import init_weights
from gankit.networks.text_dcgan import (
    ConditioningAugmentation,
    TextDCGANDiscriminator,
    TextDCGANGenerator,
)
from gankit.registry import ConfigError, check_ranges


@dataclasses.dataclass
class StackGANStage2Config:
    resolution: int | None = None  # filled from the data when None
    channels: int | None = None
    # The Stage-I model section (a text-dcgan with conditioning_augmentation); the stackgan objective fills
    # it from the Stage-I export it loads, with latent_dim and text_dim below.
    stage1: dict = dataclasses.field(default_factory=dict)
    latent_dim: int | None = None
    text_dim: int | None = None
    condition_dim: int = 128  # Stage-II's own conditioning augmentation
    text_compressed: int = 128  # D's compression of phi(t)
    g_width: int = 32  # channels of G's first encoder layer; 4x that in the residual blocks
    d_width: int = 32
    residual_blocks: int = 2
    max_channels: int = 512
    leaky_slope: float = 0.2
    init_std: float = 0.02

    def __post_init__(self):
        check_ranges(
            self,
            "model",
            positive=(
                "channels",
                "latent_dim",
                "text_dim",
                "condition_dim",
                "text_compressed",
                "g_width",
                "d_width",
                "max_channels",
            ),
            non_negative=("residual_blocks", "leaky_slope", "init_std"),
        )


class ResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x):
        return torch.relu(x + self.net(x))


def upsample_block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="nearest"),
        nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class StackGANStage2Generator(Staged, nn.Module):
    """(z, phi(t)) -> Stage-I image (frozen) -> refined image at ``resolution``."""

    stage_names = ("Stage-I", "Stage-II")

    def __init__(
        self,
        stage1: TextDCGANGenerator,
        resolution: int,
        channels: int,
        condition_dim: int = 128,
        width: int = 32,
        residual_blocks: int = 2,
        max_channels: int = 512,
        init_std: float = 0.02,
    ):
        super().__init__()
        low = stage1.resolution
        if resolution not in (2 * low, 4 * low) or low % 4:
            raise ConfigError(f"Stage-II makes 2x or 4x Stage-I's {low} pixels, not {resolution}")
        self.stage1 = stage1.requires_grad_(False).eval()
        self.latent_dim, self.text_dim, self.resolution, self.num_classes = (
            stage1.latent_dim,
            stage1.text_dim,
            resolution,
            0,
        )
        self.ca = ConditioningAugmentation(stage1.text_dim, condition_dim)
        self.condition_noise_dim = stage1.condition_noise_dim + condition_dim
        w = [min(width * 2**i, max_channels) for i in range(3)]
        self.encode = nn.Sequential(
            nn.Conv2d(channels, w[0], 3, 1, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(w[0], w[1], 4, 2, 1, bias=False),
            nn.BatchNorm2d(w[1]),
            nn.ReLU(inplace=True),
            nn.Conv2d(w[1], w[2], 4, 2, 1, bias=False),
            nn.BatchNorm2d(w[2]),
            nn.ReLU(inplace=True),
        )
        self.joint = nn.Sequential(
            nn.Conv2d(w[2] + condition_dim, w[2], 3, 1, 1, bias=False), nn.BatchNorm2d(w[2]), nn.ReLU(inplace=True)
        )
        self.residual = nn.Sequential(*[ResidualBlock(w[2]) for _ in range(residual_blocks)])
        ups, c = [], w[2]
        for _ in range(int(math.log2(resolution // (low // 4)))):
            ups.append(upsample_block(c, max(c // 2, 8)))
            c = max(c // 2, 8)
        self.upsample = nn.Sequential(*ups)
        self.out = nn.Sequential(nn.Conv2d(c, channels, 3, 1, 1), nn.Tanh())
        for part in (self.ca, self.encode, self.joint, self.residual, self.upsample, self.out):
            init_weights(part, init_std)

    def train(self, mode: bool = True):
        super().train(mode)
        self.stage1.eval()  # frozen: BatchNorm keeps Stage-I's running statistics
        return self

    def split_noise(self, condition_noise: torch.Tensor | None):
        if condition_noise is None:
            return None, None
        return condition_noise.split([self.stage1.condition_noise_dim, self.ca.dim], dim=1)

    def stage1_images(self, z: torch.Tensor, text: torch.Tensor, condition_noise: torch.Tensor | None = None):
        """The frozen Stage-I images G2 refines (Stage-I resolution)."""
        with torch.no_grad():
            return self.stage1(z, text, self.split_noise(condition_noise)[0])

    def stage_outputs(self, z: torch.Tensor, text: torch.Tensor, condition_noise: torch.Tensor | None = None):
        return [self.stage1_images(z, text, condition_noise), self(z, text, condition_noise)]

    def forward(
        self,
        z: torch.Tensor,
        text: torch.Tensor,
        condition_noise: torch.Tensor | None = None,
        return_condition: bool = False,
    ):
        low = self.stage1_images(z, text, condition_noise)
        c, mu, logvar = self.ca(text, self.split_noise(condition_noise)[1])
        h = self.encode(low)
        h = self.joint(torch.cat([h, c.to(h.dtype)[:, :, None, None].expand(-1, -1, *h.shape[2:])], dim=1))
        x = self.out(self.upsample(self.residual(h)))
        return (x, (mu, logvar)) if return_condition else x


@MODELS.register(
    "stackgan-stage2",
    StackGANStage2Config,
    "StackGAN Stage-II: refines a frozen Stage-I G's images 2x/4x (Zhang et al. 2017)",
)
class StackGANStage2Family:
    @staticmethod
    def output_kind(options: StackGANStage2Config) -> str:
        return "images"

    @staticmethod
    def complete(options: StackGANStage2Config, data: DataSpec) -> StackGANStage2Config:
        return complete_image_options(options, data, "stackgan-stage2")

    @staticmethod
    def stage1(o: StackGANStage2Config) -> TextDCGANGenerator:
        if not o.stage1:
            raise ConfigError(
                "model 'stackgan-stage2' needs model.stage1 (the stackgan objective fills it from "
                "objective.stage1, the Stage-I export)"
            )
        entry, options = MODELS.resolve(o.stage1, "model.stage1")
        if entry.name != "text-dcgan" or not options.conditioning_augmentation:
            raise ConfigError("Stage-I must be a text-dcgan model with conditioning_augmentation=true")
        return entry.factory.generator(options)

    @staticmethod
    def generator(o: StackGANStage2Config) -> StackGANStage2Generator:
        return StackGANStage2Generator(
            StackGANStage2Family.stage1(o),
            o.resolution,
            o.channels,
            o.condition_dim,
            o.g_width,
            o.residual_blocks,
            o.max_channels,
            o.init_std,
        )

    @staticmethod
    def discriminator(o: StackGANStage2Config, heads=None) -> TextDCGANDiscriminator:
        no_heads("stackgan-stage2", heads)
        if not o.text_dim:
            raise ConfigError("model 'stackgan-stage2' needs model.text_dim (filled from the Stage-I export)")
        return TextDCGANDiscriminator(
            o.resolution,
            o.channels,
            o.text_dim,
            o.text_compressed,
            o.d_width,
            o.max_channels,
            o.leaky_slope,
            o.init_std,
            unconditional=True,
        )
