"""Fully connected G and D of Goodfellow et al. 2014, "Generative Adversarial Nets".

The paper's MNIST nets: G a stack of rectifier layers, D maxout layers with
dropout (section 5). Two deliberate differences, both for consistency with the
rest of gankit: G's output is Tanh for images (data scaled to [-1, 1]) and
linear for low-dimensional points, instead of the paper's sigmoid; and G's
hidden layers are all ReLU (the paper mixed rectifier and sigmoid units).
D returns logits. ``g_batchnorm`` and ``d_activation`` make the PacGAN/VEEGAN
benchmark nets (4 x 400 ReLU + BatchNorm in G, maxout with 5 pieces in D).
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
    check_matches,
    complete_classes,
    projection_embedding,
    require_labels,
)
from gankit.registry import ConfigError, check_ranges


@dataclasses.dataclass
class MLPConfig:
    shape: list[int] | None = None  # data shape, filled from the data when None
    output: Literal["tanh", "linear"] | None = None  # tanh for images, linear for points
    latent_dim: int = 100
    g_hidden: list[int] = dataclasses.field(default_factory=lambda: [1200, 1200])
    g_batchnorm: bool = False
    d_hidden: list[int] = dataclasses.field(default_factory=lambda: [240, 240])
    d_activation: Literal["maxout", "leaky_relu", "relu"] = "maxout"
    maxout_pieces: int = 5
    dropout: float = 0.5  # dropout on D's hidden layers, as in the paper
    d_spectral_norm: bool = False  # spectral normalization of D's layers (Miyato et al. 2018)
    d_minibatch_std: int = 0  # group size of a minibatch-std feature before D's last layer (Karras et al. 2018); 0: off
    d_pack: int = 1  # PacGAN (Lin et al. 2018): D judges this many samples at once, concatenated
    # Class conditioning (Mirza & Osindero 2014): labels 0..num_classes-1 go to G (and D); None: the data's
    # number of classes; 0: unconditional.
    num_classes: int | None = 0
    label_embedding: int = 0  # G: labels as a learned embedding of this size joined with z; 0: one-hot
    # How a conditional D sees the label: one-hot joined with the input (the cGAN paper), a projection
    # (Miyato & Koyama 2018), or not at all (AC-GAN).
    d_conditioning: Literal["concat", "projection", "none"] = "concat"
    RETIRED: ClassVar[dict[str, str]] = RETIRED_HEAD_OPTIONS  # older configs' keys, read and dropped

    def __post_init__(self):
        check_ranges(
            self,
            "model",
            positive=("shape", "latent_dim", "g_hidden", "d_hidden", "maxout_pieces", "d_pack"),
            non_negative=("num_classes", "label_embedding", "dropout", "d_minibatch_std"),
        )
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"model.dropout must be in [0, 1), got {self.dropout}")


class Maxout(nn.Module):
    """Linear layer whose output unit is the max over ``pieces`` affine pieces."""

    def __init__(self, in_features: int, out_features: int, pieces: int):
        super().__init__()
        self.out_features, self.pieces = out_features, pieces
        self.linear = nn.Linear(in_features, out_features * pieces)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.linear(x).view(x.shape[0], self.out_features, self.pieces)
        return y.max(dim=-1).values  # max, not amax: its backward is a cheap scatter (2x faster steps here)


class MLPGenerator(nn.Module):
    """z (N, latent_dim) -> samples of ``shape`` (images in [-1, 1] with a Tanh output)."""

    def __init__(
        self,
        shape: list[int],
        latent_dim: int = 100,
        hidden: list[int] = (1200, 1200),
        batchnorm: bool = False,
        output: str = "tanh",
        num_classes: int = 0,
        label_embedding: int = 0,
    ):
        super().__init__()
        self.shape, self.latent_dim, self.num_classes = tuple(shape), latent_dim, num_classes
        self.label_input = LabelInput(num_classes, label_embedding) if num_classes else None
        layers: list[nn.Module] = []
        width = latent_dim + (self.label_input.dim if num_classes else 0)
        for h in hidden:
            layers.append(nn.Linear(width, h, bias=not batchnorm))
            if batchnorm:
                layers.append(nn.BatchNorm1d(h))
            layers.append(nn.ReLU(inplace=True))
            width = h
        layers.append(nn.Linear(width, math.prod(shape)))
        if output == "tanh":
            layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        z = z.view(z.shape[0], self.latent_dim)
        if self.label_input is not None:
            z = torch.cat([z, self.label_input(require_labels(labels, self.num_classes, "G"))], dim=1)
        return self.net(z).view(z.shape[0], *self.shape)


class MLPDiscriminator(HeadedD, nn.Module):
    """samples of ``shape`` -> logits (N,)."""

    def __init__(
        self,
        shape: list[int],
        hidden: list[int] = (240, 240),
        activation: str = "maxout",
        pieces: int = 5,
        dropout: float = 0.5,
        spectral_norm: bool = False,
        minibatch_std: int = 0,
        pack: int = 1,
        num_classes: int = 0,
        conditioning: str = "concat",
        heads: dict[str, HeadBuilder] | None = None,
    ):
        super().__init__()
        blocks = []
        self.pack, self.num_classes = pack, num_classes
        self.conditioning = conditioning if num_classes else "none"
        width = math.prod(shape) * pack + (num_classes if self.conditioning == "concat" else 0)
        for h in hidden:
            if activation == "maxout":
                layer: list[nn.Module] = [Maxout(width, h, pieces)]
            else:
                act = nn.LeakyReLU(0.2) if activation == "leaky_relu" else nn.ReLU()
                layer = [nn.Linear(width, h), act]
            if dropout > 0:
                layer.append(nn.Dropout(dropout))
            blocks.append(nn.Sequential(*layer))
            width = h
        self.body = nn.Sequential(*blocks)
        self.minibatch_std = MinibatchStd(minibatch_std) if minibatch_std else nn.Identity()
        head_in = width + (1 if minibatch_std else 0)
        self.head = nn.Linear(head_in, 1)
        # at the scale of nn.Linear's default initialization, like the head's weights
        self.projection = (
            projection_embedding(num_classes, width, width**-0.5) if self.conditioning == "projection" else None
        )
        self.add_heads(heads, FeatureShape(head_in))  # a variant's (AC-GAN, InfoGAN)
        self.feature_dim = width
        if spectral_norm:
            apply_spectral_norm(self)

    def with_labels(self, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """D's input as one vector per sample, joined with the one-hot label for the concat conditioning."""
        x = x.flatten(1)
        if self.conditioning != "concat":
            return x
        labels = require_labels(labels, self.num_classes, "D")
        return torch.cat([x, nn.functional.one_hot(labels, self.num_classes).to(x.dtype)], dim=1)

    def features(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Every hidden layer's output, input side first."""
        return block_outputs(self.body, self.with_labels(x, labels))

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None, return_features: bool = False):
        """Logits (N,); with ``return_features``, also the last hidden layer (feature matching, heads)."""
        h = self.body(self.with_labels(x, labels))
        logits = self.head(self.minibatch_std(h)).flatten()
        if self.projection is not None:
            logits = logits + (self.projection(require_labels(labels, self.num_classes, "D")) * h).sum(dim=1)
        return (logits, h) if return_features else logits


@MODELS.register("mlp", MLPConfig, "fully connected G and maxout D (Goodfellow et al. 2014)")
class MLPFamily:
    @staticmethod
    def output_kind(options: MLPConfig) -> str:
        return "images" if len(options.shape or ()) == 3 else "points"

    @staticmethod
    def complete(options: MLPConfig, data: DataSpec) -> MLPConfig:
        options = check_matches(options, "shape", list(data.shape), "leave model.shape unset")
        default_output = "tanh" if data.kind == "images" else "linear"
        options = check_matches(options, "output", options.output or default_output, "")
        if not 0 <= options.dropout < 1:
            raise ConfigError(f"model.dropout must be in [0, 1), got {options.dropout}")
        if options.d_activation == "maxout" and options.maxout_pieces < 2:
            raise ConfigError(f"model.maxout_pieces must be at least 2, got {options.maxout_pieces}")
        options = complete_classes(options, data)
        check_discriminator_options(options)
        return options

    @staticmethod
    def generator(o: MLPConfig) -> MLPGenerator:
        return MLPGenerator(
            o.shape, o.latent_dim, o.g_hidden, o.g_batchnorm, o.output, o.num_classes or 0, o.label_embedding
        )

    @staticmethod
    def discriminator(o: MLPConfig, heads: dict[str, HeadBuilder] | None = None) -> MLPDiscriminator:
        return MLPDiscriminator(
            o.shape,
            o.d_hidden,
            o.d_activation,
            o.maxout_pieces,
            o.dropout,
            o.d_spectral_norm,
            o.d_minibatch_std,
            o.d_pack,
            o.num_classes or 0,
            o.d_conditioning,
            heads,
        )
