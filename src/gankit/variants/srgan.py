"""SRGAN and SRResNet (Ledig et al. 2017): super-resolution by a factor of 2, 4 or 8.

G maps a low-resolution image to a high-resolution one; D (unconditional) judges high-resolution images.
G's loss is the perceptual loss of the paper's eq. 3: a content loss + 1e-3 x the adversarial loss
(``adversarial_weight=0`` is the SRResNet baseline trained on the content loss alone). The content loss is

- ``pixel``: the pixel-wise MSE (the paper's SRResNet-MSE);
- ``features``: the MSE between the feature maps of a fixed, pretrained network, the paper's "VGG loss"
  idea. VGG19's weights cannot be downloaded here, so the network is a gankit evaluator (a small CNN trained
  on the dataset's classes: ``content_network=fashion-mnist`` or an evaluator file); its last convolutional
  stage's maps, divided by ``content_scale`` (the paper divides VGG maps by 12.75), are compared;
- ``vgg``: the paper's VGG54 loss, on phi_{5,4} of VGG19 (``networks/vgg.py``) when the user has its ImageNet
  weights (``content_network=VGG19_FEATURES.safetensors``).

The run's config.json records ``objective.content`` and ``content_network``: every result says which one it used.

**SRResNet first** (``pretrain_steps``): the paper initializes SRGAN with the trained SRResNet-MSE. With
``pretrain_steps=K`` the first K steps of the run are SRResNet's (G on the pixel MSE alone; D is neither run nor
updated, and its optimizer state stays untouched), and the perceptual loss takes over from step K on: one run,
one preset, and the same number of G updates as an SRResNet trained for the whole run.

**The low-resolution condition** needs no paired data: every batch's inputs are made from its real images by
a documented kernel (:func:`downsample`: bicubic with antialiasing, quantized to 8 bits, as a user's
low-resolution images would be), so any image dataset trains SR. Networks: ``gankit/networks/srgan.py``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import torch
import torch.nn.functional as F

from gankit.registry import ConfigError
from gankit.variants.base import VARIANTS, Condition, StepContext, StepOutput, register_condition
from gankit.variants.pix2pix import ImageCondition, ImageObjective
from gankit.variants.standard import StandardOptions


def downsample(x: torch.Tensor, scale: int) -> torch.Tensor:
    """High-resolution images in [-1, 1] (N, C, H, W) -> (N, C, H / scale, W / scale): bicubic interpolation with
    antialiasing (``torch.nn.functional.interpolate``, align_corners=False), clamped and rounded to the 256
    levels of an 8-bit image. The kernel SRGAN's LR inputs are made with (the paper: bicubic, factor r)."""
    low = F.interpolate(x.float(), scale_factor=1 / scale, mode="bicubic", antialias=True, align_corners=False)
    return ((low.clamp(-1, 1) + 1) * 127.5).round() / 127.5 - 1


@register_condition
class LowResolutionCondition(ImageCondition):
    """The low-resolution image per sample; D does not see it (it judges high-resolution images alone)."""

    kind = "low-resolution"
    refusal = "this generator does not upscale images (not a super-resolution generator)"
    d_sees_source = False
    fixed_size = False  # SRResNet is fully convolutional: any image of 4 x 4 pixels or more is upscaled

    def __init__(self, source_shape: tuple[int, int, int], scale: int):
        super().__init__(source_shape)
        self.scale = int(scale)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "scale": self.scale}

    @classmethod
    def from_description(cls, description, stored=None) -> "LowResolutionCondition":
        return cls(tuple(description["source_shape"]), int(description["scale"]))

    def summary(self) -> str:
        c, h, w = self.source_shape
        return f"a {self.scale}x super-resolution generator ({c}x{h}x{w} inputs)"

    def sources(self, dataset, index: torch.Tensor) -> torch.Tensor:
        return downsample(dataset.model_input(index), self.scale)


@dataclasses.dataclass
class SRGANOptions(StandardOptions):
    content: Literal["pixel", "features", "vgg"] = "features"
    # features: a built-in evaluator's name or an evaluator file; vgg: a safetensors file of VGG19's features.*
    content_network: str = "fashion-mnist"
    content_scale: float = 12.75  # feature maps divided by this (the paper's VGG rescaling)
    content_weight: float = 1.0
    adversarial_weight: float = 1e-3  # 0: SRResNet (content loss alone)
    pretrain_steps: int = 0  # the run's first steps train SRResNet-MSE (pixel MSE alone, D idle): the paper's start

    def __post_init__(self):
        super().__post_init__()
        if min(self.content_weight, self.adversarial_weight, self.pretrain_steps) < 0 or self.content_scale <= 0:
            raise ConfigError(
                "objective.content_weight, adversarial_weight and pretrain_steps must be >= 0, content_scale > 0"
            )
        if self.diffaugment or self.unrolled_steps or self.feature_matching:
            raise ConfigError("srgan takes no diffaugment, unrolled_steps or feature_matching")


@VARIANTS.register(
    "srgan",
    SRGANOptions,
    "SRGAN / SRResNet: low-resolution image -> high; content + 1e-3 adversarial (Ledig et al. 2017)",
)
class SRGANObjective(ImageObjective):
    reconstruction_name = "content"

    def __init__(self, options: SRGANOptions, G, D, loss, d_optimizer=None):
        super().__init__(options, G, D, loss, d_optimizer)
        self.features = None
        if options.content == "vgg":
            from gankit.networks.vgg import load_vgg19_features

            self.features = load_vgg19_features(options.content_network)
        elif options.content == "features":
            from gankit.networks.classifier import load_evaluator

            evaluator = load_evaluator(options.content_network)
            if evaluator.channels != G.channels:
                raise ConfigError(
                    f"objective.content_network {options.content_network!r} reads {evaluator.channels}-channel "
                    f"images, the data has {G.channels}; use content=pixel or a matching evaluator"
                )
            self.features = evaluator.net.body[:-2]  # the last conv's maps after its activation, before pooling
        if self.features is not None:  # frozen, on G's device, once (not on every step)
            self.features.requires_grad_(False).eval().to(next(G.parameters()).device)
        self.pretraining = False

    def begin_step(self, step: int) -> None:
        super().begin_step(step)
        self.pretraining = step < self.options.pretrain_steps

    def make_condition(self) -> Condition:
        low = self.G.resolution // self.G.scale
        return LowResolutionCondition((self.G.channels, low, low), self.G.scale)

    @staticmethod
    def describe_condition(options, G, stored) -> dict[str, Any]:
        low = G.resolution // G.scale
        return LowResolutionCondition((G.channels, low, low), G.scale).describe()

    def weights(self) -> tuple[float, float]:
        return self.options.adversarial_weight, self.options.content_weight

    def d_loss_scale(self) -> float:
        return 1.0 if self.options.adversarial_weight else 0.0  # SRResNet: D is not part of the objective

    def d_step(self, ctx: StepContext) -> StepOutput:
        if not self.pretraining:
            return super().d_step(ctx)
        # SRResNet's steps: G's output for its own step; D is not run, and a loss with no path to D's weights
        # leaves their gradients unset, so D's optimizer skips them (no moment, no step count, no decay).
        ctx.fake = self.G(*self.condition.generator_args(ctx.z, ctx.condition))
        idle = torch.zeros((), device=ctx.real.device, requires_grad=True)
        return StepOutput(idle, {"d_loss": ctx.real.new_zeros(())})

    def g_step(self, ctx: StepContext) -> StepOutput:
        if not self.pretraining:
            return super().g_step(ctx)
        mse = F.mse_loss(ctx.fake.float(), ctx.real.float())
        return StepOutput(mse, {"g_loss_pixel_mse": mse.detach(), "g_loss": mse.detach()})

    def reconstruction(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        if self.features is None:
            return F.mse_loss(fake.float(), real.float())
        scale = self.options.content_scale
        return F.mse_loss(self.features(fake.float()) / scale, self.features(real.float()) / scale)
