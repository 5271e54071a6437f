"""pix2pix (Isola et al. 2017): image-to-image translation with a conditional GAN and an L1 term.

G maps a condition image x to an output G(x) (no z: dropout is its noise); D judges (x, y) pairs on patches.
With L_cGAN the usual adversarial loss on pairs, G minimizes L_cGAN + lambda * E||y - G(x)||_1 (lambda = 100,
the paper's eq. 4); D's loss is halved (the paper's section 3.3: "divide the objective by 2 while optimizing
D"). ``gan_weight=0`` is the paper's "L1 alone" ablation, ``l1_weight=0`` its "cGAN alone". The standard
game's stability options (R1, instance noise, the loss choice) apply; packing and DiffAugment do not (they
would separate an output from its input). Networks: ``gankit/networks/pix2pix.py``.

**The image condition** is the condition image itself: values are :class:`ImageValues` (the sources in
[-1, 1], and for pictures the targets), G is called as ``G(z, source)`` with an empty z, and D gets
``source=``. Sampling needs the user's images: ``pipeline.sample(n, images=...)`` or ``pipeline.translate``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from gankit.registry import ConfigError
from gankit.seeding import latents
from gankit.variants.base import VARIANTS, Condition, StepContext, StepOutput, register_condition
from gankit.variants.standard import StandardObjective, StandardOptions

GRID_ROWS = 8  # input | output | target rows in the training grid


@dataclasses.dataclass
class ImageValues:
    """Condition images (N, C, H, W) in [-1, 1]; ``target`` (the paired images, when known) is for pictures."""

    source: torch.Tensor
    target: torch.Tensor | None = None

    def __getitem__(self, item: slice) -> "ImageValues":
        return ImageValues(self.source[item], None if self.target is None else self.target[item])

    def __len__(self) -> int:
        return len(self.source)


def as_source_images(
    images: Any, shape: tuple[int, int, int], what: str = "input images", any_size: bool = False
) -> torch.Tensor:
    """User images as float (N, C, H, W) in [-1, 1]: uint8 arrays (N, H, W), (N, H, W, C) or (N, C, H, W), or
    float tensors already in [-1, 1]; checked against ``shape`` (C, H, W) (the size too unless ``any_size``),
    gray expanded to colour if needed."""
    x = torch.from_numpy(np.array(images)) if not isinstance(images, torch.Tensor) else images
    if x.dtype == torch.uint8:
        if x.ndim == 3:
            x = x[:, None]
        elif x.ndim == 4 and x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
            x = x.permute(0, 3, 1, 2)
        x = x.float().div(127.5).sub(1.0)
    elif not torch.is_floating_point(x):
        raise ValueError(f"{what} must be uint8 pixels or floats in [-1, 1], got {x.dtype}")
    if x.ndim != 4:
        raise ValueError(f"{what} must be a batch (N, H, W, C) or (N, C, H, W), got shape {tuple(x.shape)}")
    if not bool(torch.isfinite(x).all()) or x.numel() and (x.min() < -1.001 or x.max() > 1.001):
        raise ValueError(f"{what}: float images must be finite and in [-1, 1]")
    channels, height, width = shape
    if any_size and min(x.shape[2:]) < 4:
        raise ValueError(f"{what} must be at least 4x4 pixels, got {x.shape[2]}x{x.shape[3]}")
    if not any_size and tuple(x.shape[2:]) != (height, width):
        raise ValueError(
            f"{what} must be {height}x{width} pixels (this generator's input size), got "
            f"{x.shape[2]}x{x.shape[3]}; resize them first"
        )
    if x.shape[1] != channels:
        if x.shape[1] == 1 and channels == 3:
            x = x.expand(-1, 3, -1, -1)
        elif x.shape[1] == 3 and channels == 1:
            x = (x * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
        else:
            raise ValueError(f"{what} must have {channels} channel(s), got {x.shape[1]}")
    return x.float().contiguous()


def side_by_side(outputs: np.ndarray, values: ImageValues) -> tuple[np.ndarray, int]:
    """(input | output | target) per sample, as uint8 images the size of the outputs; columns per row."""
    n, height, width, channels = outputs.shape

    def cells_of(images: torch.Tensor) -> np.ndarray:
        images = F.interpolate(images.float().cpu(), size=(height, width), mode="nearest")
        pixels = ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
        if pixels.shape[-1] != channels:  # gray beside colour: repeat; colour beside gray: its mean
            pixels = (
                np.repeat(pixels, channels, -1)
                if pixels.shape[-1] == 1
                else pixels.mean(-1, keepdims=True).astype(np.uint8)
            )
        return pixels

    columns = [cells_of(values.source), outputs] + ([] if values.target is None else [cells_of(values.target)])
    return np.stack([column[i] for i in range(n) for column in columns]), len(columns)


@register_condition
class ImageCondition(Condition):
    """A condition image per sample (pix2pix); D sees it beside the output."""

    kind = "image"
    accepts = ("images",)
    needs_input = True
    evaluates_on_training_inputs = True
    refusal = "this generator does not take input images (not an image-to-image generator)"
    verbs = ("translate", "upscale")
    d_sees_source = True
    fixed_size = True  # inputs must have source_shape's size (a fully convolutional G may take any size)

    def __init__(self, source_shape: tuple[int, int, int]):
        self.source_shape = tuple(int(v) for v in source_shape)
        self.dataset = None  # the training data, for BatchNorm re-estimation draws and the training grid

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "source_shape": list(self.source_shape)}

    @classmethod
    def from_description(cls, description, stored=None) -> "ImageCondition":
        return cls(tuple(description["source_shape"]))

    def summary(self) -> str:
        c, h, w = self.source_shape
        return f"an image-to-image generator ({c}x{h}x{w} inputs)"

    def controls(self):
        return [
            {
                "name": "images",
                "type": "image",
                "label": "input image",
                "shape": list(self.source_shape),
                "any_size": not self.fixed_size,  # a fully convolutional G takes any height and width
            }
        ]

    def noise_dims(self, latent_dim: int) -> int:
        return 0

    def argument_docs(self, latent_dim):
        c, h, w = self.source_shape
        size = f"{h}x{w}" if self.fixed_size else "any height and width of 4 pixels or more"
        return [
            {"name": "z", "description": "none: this generator takes no z"},
            {
                "name": "source",
                "description": f"input images (N, {c}, H, W) in [-1, 1] (uint8 / 127.5 - 1), {size}",
                **({} if self.fixed_size else {"dynamic": {2: "height", 3: "width"}}),
            },
        ]

    def example_values(self, n, seed):
        generator = torch.Generator().manual_seed(seed)
        pixels = torch.randint(0, 256, (n, *self.source_shape), generator=generator, dtype=torch.uint8)
        return ImageValues(pixels.float() / 127.5 - 1)

    # ------------------------------------------------------------------ training
    def prepare(self, dataset, nets=()) -> None:
        self.dataset = dataset

    def sources(self, dataset, index: torch.Tensor) -> torch.Tensor:
        """The condition images of rows ``index`` of the training data."""
        return dataset.source_input(index)

    def batch(self, dataset, index):
        return ImageValues(self.sources(dataset, index))

    def draw(self, n, generator, device):
        index = torch.randint(len(self.dataset), (n,), generator=generator, device=generator.device).to(
            self.dataset.device
        )
        return ImageValues(self.sources(self.dataset, index).to(device))

    def training_grid(self, count, latent_dim, seed):
        index = torch.arange(min(GRID_ROWS, len(self.dataset)), device=self.dataset.device)
        values = ImageValues(self.sources(self.dataset, index).cpu(), self.dataset.model_input(index).cpu())
        return latents(len(index), latent_dim, seed), values, None

    def evaluation_inputs(self, n, targets):
        """During training (``prepare``d with the data): the inputs of the training pairs' first ``n`` rows (taken
        again from the start when the data has fewer), and their classes where a metric reads ``labels``. Its
        outputs are then scored against the training targets: a yardstick for picking checkpoints, not a test.
        Elsewhere nothing: sampling then asks for the input images."""
        if self.dataset is None:
            return {}, {}
        index = torch.arange(n, device=self.dataset.device) % len(self.dataset)
        given = {"images": self.sources(self.dataset, index).cpu().numpy()}
        labels = self.dataset.labels
        known = {"labels": labels[index].cpu().numpy()} if "labels" in targets and labels is not None else {}
        return given, known

    def pairs(self, dataset, index: torch.Tensor) -> ImageValues:
        """Inputs and targets of rows ``index`` of ``dataset`` (the explorer's and the report's triplets)."""
        return ImageValues(self.sources(dataset, index).cpu(), dataset.model_input(index).cpu())

    # ------------------------------------------------------------------ sampling and pictures
    def values_for(self, n, seed, start=0, images=None, **given):
        self.refuse(given)
        if images is None:
            raise ValueError(
                "this generator translates images: pass images=... (uint8 (N, H, W, C) or floats in [-1, 1])"
            )
        source = as_source_images(images, self.source_shape, any_size=not self.fixed_size)
        if len(source) != n:
            raise ValueError(f"{len(source)} input images for {n} samples; give one per sample")
        return ImageValues(source)

    def default(self, n):
        return self.values_for(n, 0)  # refuses: the generator needs input images

    def translate(self, pipeline, images, batch_size: int = 64) -> np.ndarray:
        """``pipeline.translate(images)`` (``upscale`` for a super-resolution G): G's uint8 outputs (N, H, W, C) for
        ``images`` (uint8 (N, H, W, C) / (N, H, W) / (N, C, H, W), or floats in [-1, 1]) at its input size."""
        return pipeline.sample(len(images), images=images, batch_size=batch_size)

    def upscale(self, pipeline, images, batch_size: int = 64) -> np.ndarray:
        """``pipeline.upscale(images)``: :meth:`translate`, under the name super-resolution users look for."""
        return self.translate(pipeline, images, batch_size)

    def picture(self, outputs: np.ndarray, values, columns: int | None = None) -> tuple[np.ndarray, int | None]:
        return side_by_side(outputs, values)

    # ------------------------------------------------------------------ G and D
    def rest_args(self, values, device):
        return (values.source.to(device),)

    def discriminator_kwargs(self, values):
        return {"source": values.source} if self.d_sees_source else {}


@dataclasses.dataclass
class Pix2PixOptions(StandardOptions):
    l1_weight: float = 100.0  # lambda of the L1 term (the paper's eq. 4); 0: cGAN alone
    gan_weight: float = 1.0  # weight of the adversarial term in G's loss; 0: L1 alone
    d_loss_scale: float = 0.5  # D's loss halved, as in the paper's section 3.3

    def __post_init__(self):
        super().__post_init__()
        if min(self.l1_weight, self.gan_weight, self.d_loss_scale) < 0 or self.l1_weight + self.gan_weight == 0:
            raise ConfigError("objective.l1_weight, gan_weight, d_loss_scale must be >= 0, and not both weights 0")
        if self.diffaugment or self.unrolled_steps or self.feature_matching:
            raise ConfigError(
                "pix2pix takes no diffaugment, unrolled_steps or feature_matching (they would judge "
                "outputs apart from their inputs)"
            )


class ImageObjective(StandardObjective):
    """The standard game on image-conditioned G and D, plus a reconstruction term in G's loss
    (:meth:`reconstruction`) weighted against the adversarial one."""

    reconstruction_name = "l1"

    def __init__(self, options, G, D, loss, d_optimizer=None):
        super().__init__(options, G, D, loss, d_optimizer)
        if self.pack != 1:
            raise ConfigError(f"objective {type(self).__name__}: model.d_pack must be 1")

    def make_condition(self) -> Condition:
        return ImageCondition((self.G.source_channels, self.G.resolution, self.G.resolution))

    @staticmethod
    def describe_condition(options, G, stored) -> dict[str, Any]:
        return ImageCondition((G.source_channels, G.resolution, G.resolution)).describe()

    def weights(self) -> tuple[float, float]:
        """(adversarial weight, reconstruction weight) in G's loss."""
        return self.options.gan_weight, self.options.l1_weight

    def reconstruction(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        return (fake.float() - real.float()).abs().mean()

    def d_loss_scale(self) -> float:
        """The factor on D's loss (pix2pix halves it)."""
        return self.options.d_loss_scale

    def d_step(self, ctx: StepContext) -> StepOutput:
        out = super().d_step(ctx)
        return StepOutput(self.d_loss_scale() * out.loss, out.stats)

    def g_step(self, ctx: StepContext) -> StepOutput:
        adversarial_weight, reconstruction_weight = self.weights()
        out = super().g_step(ctx)
        recon = self.reconstruction(ctx.fake, ctx.real)
        loss = adversarial_weight * out.loss + reconstruction_weight * recon
        stats = {
            **out.stats,
            "g_loss_adversarial": out.loss.detach(),
            f"g_loss_{self.reconstruction_name}": recon.detach(),
            "g_loss": loss.detach(),
        }
        return StepOutput(loss, stats)


@VARIANTS.register(
    "pix2pix", Pix2PixOptions, "pix2pix: G(x) -> y, D judges (x, y) patches, + lambda L1 (Isola et al. 2017)"
)
class Pix2PixObjective(ImageObjective):
    pass
