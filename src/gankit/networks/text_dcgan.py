"""Text-conditional DCGAN (Reed et al. 2016) and StackGAN's Stage-I nets (Zhang et al. 2017).

G: the caption embedding phi(t) is compressed to ``text_compressed`` numbers, by a linear layer and
LeakyReLU(0.2) (GAN-CLS, section 4) or by conditioning augmentation (StackGAN, section 3.1: a mean and a
log-variance, and c = mu + sigma * eps), joined with z and decoded by the DCGAN generator. D: the DCGAN
discriminator's body down to its last 4x4 (7x7) map; the compressed embedding, replicated over that map,
is joined with it, then a 1x1 convolution, BatchNorm, LeakyReLU and the final convolution give the
conditional logit. With ``unconditional`` D also keeps the plain DCGAN head, an image-only logit on
the same features (StackGAN's Stage-II D, section 3.3).

Deviations from the papers, kept small so the models fit a CPU: the text embedding comes from a
gankit text encoder (128 numbers by default, not the char-CNN-RNN's 1,024), and StackGAN's Stage-I
upsamples with the DCGAN's transposed convolutions instead of nearest-neighbour upsampling + 3x3 convs.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from gankit.data import DataSpec
from gankit.networks.common import MODELS, block_outputs, complete_image_options, no_heads
from gankit.networks.dcgan import DCGANDiscriminator, DCGANGenerator, init_weights, layer_plan
from gankit.registry import ConfigError, check_ranges


class TextStandardization(nn.Module):
    """(phi(t) - shift) / scale, per embedding number, before a net's first layer on the text.

    ``shift`` and ``scale`` are the training captions' mean and standard deviation, set by the text
    objective (``objective.standardize_text``, ``fit_text_standardization``) and saved with the net, so
    an export treats captions as training did. A pretrained encoder's embeddings differ from each other
    in a small part of their length (all-MiniLM's captions share a mean of norm 0.66 out of 1, each
    number varies by about 0.04): standardized, every number reaches the net at the scale of z. The
    identity until set, and for files saved before it existed."""

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("shift", torch.zeros(dim))
        self.register_buffer("scale", torch.ones(dim))

    def forward(self, text: torch.Tensor) -> torch.Tensor:
        return (text - self.shift.to(text.dtype)) / self.scale.to(text.dtype)

    @torch.no_grad()
    def fit(self, embeddings: torch.Tensor) -> None:
        flat = embeddings.reshape(-1, embeddings.shape[-1]).float()
        self.shift.copy_(flat.mean(dim=0))
        self.scale.copy_(flat.std(dim=0).clamp_min(1e-6))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        identity = {"shift": torch.zeros_like(self.shift), "scale": torch.ones_like(self.scale)}
        for name, value in identity.items():  # a file from before standardization loads as the identity
            state_dict.setdefault(prefix + name, value)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def fit_text_standardization(net: nn.Module, embeddings: torch.Tensor) -> None:
    """Set every ``TextStandardization`` of ``net`` to the mean and standard deviation of ``embeddings``
    (..., text_dim), except those of a frozen Stage-I inside it, which keep what Stage-I trained with."""
    frozen = {id(m) for m in net.stage1.modules()} if isinstance(getattr(net, "stage1", None), nn.Module) else set()
    for module in net.modules():
        if isinstance(module, TextStandardization) and id(module) not in frozen:
            module.fit(embeddings)


class ConditioningAugmentation(nn.Module):
    """StackGAN's conditioning augmentation (Zhang et al. 2017, section 3.1).

    A linear layer and ReLU map phi(t) to (mu, log sigma^2), ``dim`` each; the condition is
    c = mu + sigma * eps with eps ~ N(0, I) (the reparametrization trick), so a caption gives a
    neighbourhood of conditions instead of one point. ``noise`` is eps when given (sampling passes
    per-sample noise so that sample k of a seed is fixed); else it is drawn from the global generator.
    """

    def __init__(self, text_dim: int, dim: int):
        super().__init__()
        self.dim = dim
        self.standardize = TextStandardization(text_dim)
        self.fc = nn.Linear(text_dim, 2 * dim)

    def forward(self, text: torch.Tensor, noise: torch.Tensor | None = None):
        mu, logvar = torch.relu(self.fc(self.standardize(text))).chunk(2, dim=1)
        eps = torch.randn_like(mu) if noise is None else noise.to(mu)
        return mu + (0.5 * logvar).exp() * eps, mu, logvar


class TextCompression(nn.Module):
    """GAN-CLS's compression of phi(t): linear, then LeakyReLU(0.2) (Reed et al. 2016, section 4)."""

    def __init__(self, text_dim: int, dim: int, slope: float = 0.2):
        super().__init__()
        self.dim = dim
        self.standardize = TextStandardization(text_dim)
        self.fc = nn.Linear(text_dim, dim)
        self.slope = slope

    def forward(self, text: torch.Tensor, noise: torch.Tensor | None = None):
        c = nn.functional.leaky_relu(self.fc(self.standardize(text)), self.slope)
        return c, None, None


def text_condition(text_dim: int, dim: int, augmentation: bool) -> nn.Module:
    return ConditioningAugmentation(text_dim, dim) if augmentation else TextCompression(text_dim, dim)


@dataclasses.dataclass
class TextDCGANConfig:
    resolution: int | None = None  # filled from the data when None
    channels: int | None = None
    latent_dim: int = 100
    g_width: int = 64
    d_width: int = 64
    max_channels: int = 1024
    leaky_slope: float = 0.2
    init_std: float = 0.02
    text_dim: int | None = None  # the text encoder's embedding size; filled by the objective from its encoder
    text_compressed: int = 128  # size of the compressed embedding in G and in D (Reed et al.: 128)
    # StackGAN's conditioning augmentation in G instead of the plain compression (mean, log-variance, noise).
    conditioning_augmentation: bool = False
    d_unconditional: bool = False  # D also returns an image-only logit (StackGAN's Stage-II D)

    def __post_init__(self):
        check_ranges(
            self,
            "model",
            positive=("channels", "latent_dim", "g_width", "d_width", "max_channels", "text_dim", "text_compressed"),
            non_negative=("leaky_slope", "init_std"),
        )


class TextDCGANGenerator(nn.Module):
    """(z (N, latent_dim), phi(t) (N, text_dim)) -> images (N, channels, resolution, resolution)."""

    def __init__(
        self,
        resolution: int,
        channels: int,
        latent_dim: int,
        text_dim: int,
        text_compressed: int = 128,
        augmentation: bool = False,
        width: int = 64,
        max_channels: int = 1024,
        init_std: float = 0.02,
    ):
        super().__init__()
        self.latent_dim, self.text_dim, self.resolution, self.num_classes = latent_dim, text_dim, resolution, 0
        self.condition = text_condition(text_dim, text_compressed, augmentation)
        self.condition_noise_dim = text_compressed if augmentation else 0  # entries of CA's eps per sample
        self.decoder = DCGANGenerator(resolution, channels, latent_dim + text_compressed, width, max_channels, init_std)
        init_weights(self.condition, init_std)

    def forward(
        self,
        z: torch.Tensor,
        text: torch.Tensor,
        condition_noise: torch.Tensor | None = None,
        return_condition: bool = False,
    ):
        """Images; with ``return_condition`` also (mu, logvar) of the conditioning augmentation (Nones without it)."""
        c, mu, logvar = self.condition(text, condition_noise)
        x = self.decoder(torch.cat([z.flatten(1), c.to(z.dtype)], dim=1))
        return (x, (mu, logvar)) if return_condition else x


class TextDCGANDiscriminator(nn.Module):
    """(images, phi(t)) -> conditional logits (N,). ``conditional(h, text)`` and ``unconditional(h)`` score
    the last features that ``forward(..., return_features=True)`` returns."""

    def __init__(
        self,
        resolution: int,
        channels: int,
        text_dim: int,
        text_compressed: int = 128,
        width: int = 64,
        max_channels: int = 1024,
        leaky_slope: float = 0.2,
        init_std: float = 0.02,
        unconditional: bool = False,
    ):
        super().__init__()
        start, _ = layer_plan(resolution)
        self.pack, self.num_classes, self.conditioning = 1, 0, "text"
        image = DCGANDiscriminator(resolution, channels, width, max_channels, leaky_slope, init_std)
        self.body = image.body
        last = self.body[-1][0].out_channels
        self.unconditional_head = image.head if unconditional else None
        self.text = TextCompression(text_dim, text_compressed, leaky_slope)
        self.joint = nn.Sequential(
            nn.Conv2d(last + text_compressed, last, 1, bias=False),
            nn.BatchNorm2d(last),
            nn.LeakyReLU(leaky_slope),
            nn.Conv2d(last, 1, start),
        )
        init_weights(self.text, init_std)
        init_weights(self.joint, init_std)
        self.feature_dim = last * start * start

    def features(self, x: torch.Tensor, text: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Every convolutional block's output (image side only), input side first."""
        return block_outputs(self.body, x)

    def forward(self, x: torch.Tensor, text: torch.Tensor, return_features: bool = False):
        h = self.body(x)
        logits = self.conditional(h, text)
        return (logits, h) if return_features else logits

    def conditional(self, h: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """The conditional logits of last features ``h`` with the text ``phi(t)`` (the matching-aware
        D scores one image's features against another caption without a second pass through the body)."""
        c, _, _ = self.text(text)
        joined = torch.cat([h, c.to(h.dtype)[:, :, None, None].expand(-1, -1, *h.shape[2:])], dim=1)
        if h.is_contiguous(memory_format=torch.channels_last) and not h.is_contiguous():
            joined = joined.contiguous(memory_format=torch.channels_last)
        return self.joint(joined).flatten()

    def unconditional(self, h: torch.Tensor) -> torch.Tensor:
        if self.unconditional_head is None:
            raise ValueError("this D has no unconditional head (model.d_unconditional=false)")
        return self.unconditional_head(h).flatten()


def require_text_dim(options, family: str) -> int:
    if not options.text_dim:
        raise ConfigError(f"model {family!r} needs model.text_dim (a text objective fills it from its text encoder)")
    return options.text_dim


@MODELS.register(
    "text-dcgan",
    TextDCGANConfig,
    "text-conditional DCGAN: GAN-CLS (Reed et al. 2016), StackGAN Stage-I with conditioning_augmentation",
)
class TextDCGANFamily:
    @staticmethod
    def output_kind(options: TextDCGANConfig) -> str:
        return "images"

    @staticmethod
    def complete(options: TextDCGANConfig, data: DataSpec) -> TextDCGANConfig:
        options = complete_image_options(options, data, "text-dcgan")
        layer_plan(options.resolution)
        return options

    @staticmethod
    def generator(o: TextDCGANConfig) -> TextDCGANGenerator:
        return TextDCGANGenerator(
            o.resolution,
            o.channels,
            o.latent_dim,
            require_text_dim(o, "text-dcgan"),
            o.text_compressed,
            o.conditioning_augmentation,
            o.g_width,
            o.max_channels,
            o.init_std,
        )

    @staticmethod
    def discriminator(o: TextDCGANConfig, heads=None) -> TextDCGANDiscriminator:
        no_heads("text-dcgan", heads)
        return TextDCGANDiscriminator(
            o.resolution,
            o.channels,
            require_text_dim(o, "text-dcgan"),
            o.text_compressed,
            o.d_width,
            o.max_channels,
            o.leaky_slope,
            o.init_std,
            o.d_unconditional,
        )
