"""What every network family shares: the MODELS registry, the Family protocol, common layers.

Network families: each registers an options dataclass and builds a (G, D) pair.

A family is registered in ``MODELS`` (the config's ``model`` section) with an options dataclass and a
:class:`Family` factory. Networks know nothing about losses, variants or training: G maps its inputs
(z, and whatever condition the variant gives: labels, codes joined with z, a caption embedding) to
samples in the data's range, D maps samples to unbounded logits. Shared building blocks live here.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any, Callable, Protocol

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from gankit.data import DataSpec
from gankit.registry import ConfigError, Registry, memory_bytes


class Family(Protocol):
    def complete(self, options: Any, data: DataSpec) -> Any:
        """Fill options left as None from the data, and check the rest against it."""

    def generator(self, options: Any) -> nn.Module: ...

    def discriminator(self, options: Any, heads: dict[str, HeadBuilder] | None = None) -> nn.Module:
        """D; ``heads``: what a variant adds on its last features (built in D's constructor, see HeadedD)."""

    def output_kind(self, options: Any) -> str:
        """What G draws: "images" or "points"."""


MODELS: Registry[Family] = Registry("model")


def check_matches(options: Any, field: str, value: Any, how_to_fix: str) -> Any:
    """Return ``options`` with ``field`` set to ``value`` if it was None; error on a mismatch."""
    current = getattr(options, field)
    if current is None:
        return dataclasses.replace(options, **{field: value})
    if current != value:
        raise ConfigError(f"model.{field} is {current!r} but the data has {value!r}; {how_to_fix}")
    return options


def complete_image_options(options: Any, data: DataSpec, family: str, hint: str = "") -> Any:
    """Fill ``channels`` and ``resolution`` from square image data, and check them (every image family)."""
    if data.kind != "images":
        raise ConfigError(f"model {family!r} needs image data, but the data is {data.kind}{hint}")
    channels, height, width = data.shape
    if height != width:
        raise ConfigError(f"model {family!r} needs square images, the data is {height}x{width}")
    options = check_matches(options, "channels", channels, "set data.channels to convert the images")
    return check_matches(options, "resolution", height, "set data.resolution to resize the images")


def check_discriminator_options(options: Any) -> None:
    """Checks shared by every family's D options (packing, minibatch std, conditioning)."""
    if options.d_pack < 1:
        raise ConfigError(f"model.d_pack must be at least 1, got {options.d_pack}")
    if options.d_minibatch_std == 1 or options.d_minibatch_std < 0:
        raise ConfigError(
            f"model.d_minibatch_std is a group size of at least 2 (0: off), got {options.d_minibatch_std}"
        )
    if options.num_classes and options.d_pack > 1 and options.d_conditioning != "none":
        raise ConfigError("model.d_pack > 1 with a D that sees labels is not supported; use d_pack=1")


# Model options that once built D's heads; the variant that needs a head now adds it (``Objective.d_heads``).
# Older configs (files, run folders) still carry them: they are read and dropped (registry.build_dataclass).
RETIRED_HEAD_OPTIONS = {
    "d_aux_classifier": "AC-GAN's class head is added by objective 'acgan'",
    "d_q_outputs": "InfoGAN's Q head is added by objective 'infogan'",
}


def complete_classes(options: Any, data: DataSpec) -> Any:
    """Fill ``num_classes`` from the data when it is None (a conditional preset), and check it."""
    if options.num_classes is None:
        if not data.num_classes:
            raise ConfigError("this model is conditional on class labels (model.num_classes), but the data has none")
        return dataclasses.replace(options, num_classes=data.num_classes)
    if options.num_classes < 0:
        raise ConfigError(f"model.num_classes must be >= 0 (0: unconditional), got {options.num_classes}")
    if options.num_classes and data.num_classes > options.num_classes:
        raise ConfigError(f"model.num_classes is {options.num_classes} but the data has {data.num_classes} classes")
    return options


def projection_embedding(num_classes: int, width: int, std: float) -> nn.Embedding:
    """The projection discriminator's class embeddings (Miyato & Koyama 2018), drawn N(0, std).

    PyTorch's default N(0, 1) would make the projection term <embed(y), h> dwarf the rest of D's
    logit at the start (tens of units on a 128-channel DCGAN D), so it is drawn at the scale of D's
    other weights."""
    embedding = nn.Embedding(num_classes, width)
    nn.init.normal_(embedding.weight, 0.0, std)
    return embedding


class LabelInput(nn.Module):
    """Class labels as a vector joined with G's z: one-hot, or a learned embedding of ``size`` (size > 0)."""

    def __init__(self, num_classes: int, size: int = 0):
        super().__init__()
        self.num_classes = num_classes
        self.embedding = nn.Embedding(num_classes, size) if size else None
        self.dim = size or num_classes

    def forward(self, labels: torch.Tensor) -> torch.Tensor:
        if self.embedding is not None:
            return self.embedding(labels)
        return nn.functional.one_hot(labels, self.num_classes).float()


@dataclasses.dataclass(frozen=True)
class FeatureShape:
    """D's last features as a head reads them (after the minibatch-std channel, when there is one)."""

    channels: int
    side: int = 0  # the spatial side of a convolutional D's features (a head spans it); 0: a flat vector
    leaky_slope: float = 0.2  # D's own LeakyReLU slope, for a head that has hidden layers


HeadBuilder = Callable[[FeatureShape], nn.Module]


def no_heads(family: str, heads: dict[str, HeadBuilder] | None) -> None:
    """A family whose D carries no variant heads refuses a variant that would add some."""
    if heads:
        raise ConfigError(
            f"model {family!r}: its D carries no extra heads ({', '.join(heads)}); use model 'dcgan' or 'mlp'"
        )


class HeadedD:
    """A D that carries the heads its variant adds on its last features ``h`` (AC-GAN's class head, InfoGAN's Q).

    The variant names each head and gives its builder (``Objective.d_heads``); D builds them in its constructor,
    so they are initialized, spectrally normalized and saved with it under those names, and the variant reads
    one with ``read_head(name, h)``. D itself knows no variant."""

    def add_heads(self, heads: dict[str, HeadBuilder] | None, shape: FeatureShape) -> None:
        self.head_names = tuple(heads or {})
        for name, build in (heads or {}).items():
            self.add_module(name, build(shape))

    def read_head(self, name: str, h: torch.Tensor) -> torch.Tensor:
        """Head ``name``'s outputs (N, outputs) from the last features ``h``."""
        if name not in getattr(self, "head_names", ()):
            raise ValueError(f"this D has no head {name!r} (the variant that reads it adds it)")
        return getattr(self, name)(self.minibatch_std(h)).flatten(1)


DETERMINISTIC = [False]  # inside `deterministic_sampling()`: sampling noise layers are off


@contextlib.contextmanager
def deterministic_sampling():
    """Within the block, layers that add noise at sampling time (pix2pix's ``sample_dropout``) add none: what
    an exported graph computes, so its parity check compares like with like."""
    DETERMINISTIC[0] = True
    try:
        yield
    finally:
        DETERMINISTIC[0] = False


class Staged:
    """A generator built in stages (StackGAN: Stage-I, then Stage-II refining it). ``stage_outputs`` takes G's
    arguments and returns every stage's output, named ``stage_names``; the last is what ``forward`` returns.
    Front ends show the stages side by side (``GeneratorPipeline.stages``); a one-stage G is not Staged."""

    stage_names: tuple[str, ...] = ()

    def stage_outputs(self, *args) -> list[torch.Tensor]:
        raise NotImplementedError


def require_labels(labels: torch.Tensor | None, num_classes: int, who: str) -> torch.Tensor:
    if labels is None:
        raise ValueError(f"this {who} is conditional on {num_classes} classes: pass labels (int64, one per sample)")
    return labels


def block_outputs(body: nn.Sequential, x: torch.Tensor) -> list[torch.Tensor]:
    """The output of every block of ``body``, input side first (D's features for analysis)."""
    out = []
    for block in body:
        x = block(x)
        out.append(x)
    return out


class MinibatchStd(nn.Module):
    """Minibatch standard deviation (Karras et al. 2018, section 3): one extra feature per sample.

    Samples are split into groups of ``group_size``; for each group the standard
    deviation of every feature (and location) across the group is averaged to one
    number, appended to each member's features as an extra channel (or value).
    A collapsed G, whose samples barely differ, is easy for D to spot this way.
    """

    def __init__(self, group_size: int = 4):
        super().__init__()
        self.group_size = group_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        group = min(self.group_size, n)
        if n % group:
            group = 1 if n < 2 else next(g for g in range(group, 0, -1) if n % g == 0)
        y = x.float().view(group, n // group, *x.shape[1:])
        std = (y.var(dim=0, unbiased=False) + 1e-8).sqrt()  # (n / group, ...)
        feature = std.flatten(1).mean(dim=1)  # one value per group
        feature = feature.repeat(group).to(x.dtype)  # sample i belongs to group i % (n / group)
        if x.dim() == 4:
            return torch.cat([x, feature.view(n, 1, 1, 1).expand(n, 1, *x.shape[2:])], dim=1)
        return torch.cat([x, feature.view(n, 1)], dim=1)


@contextlib.contextmanager
def averaged_batchnorm(net: nn.Module):
    """Within the block: ``net`` in train mode, every BatchNorm's running statistics reset and then set
    to the plain average over the batches it sees. On exit the momenta and the mode are restored.

    Used after training (or to give EMA weights statistics of their own): the exponential running
    averages lag the last optimizer steps. A BatchNorm that stays in eval mode when ``net`` is put in
    train mode belongs to a frozen part (StackGAN Stage-II's Stage-I) and keeps its statistics."""
    was_training = net.training
    net.train()
    norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    try:
        with torch.no_grad():
            yield norms
    finally:
        net.train(was_training)
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum


def apply_spectral_norm(module: nn.Module) -> nn.Module:
    """Spectral normalization (Miyato et al. 2018) on every conv and linear layer of ``module``."""

    for child_name, child in list(module.named_children()):
        if isinstance(child, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            setattr(module, child_name, spectral_norm(child))
        else:
            apply_spectral_norm(child)
    return module


def build_network(entry: Any, options: Any, part: str, heads: dict[str, HeadBuilder] | None = None) -> nn.Module:
    """``entry.factory.generator(options)`` or ``.discriminator(options, heads)`` ("G" / "D"), after building it on
    the meta device (no memory, no random draws) to check that its weights fit in memory: a config asking
    for terabytes (num_classes=1e9, g_width=1e6) is a ConfigError, not a crash."""

    def build(options: Any) -> nn.Module:
        return entry.factory.generator(options) if part == "G" else entry.factory.discriminator(options, heads)

    try:
        with torch.device("meta"):
            probe = build(options)
    except (TypeError, ValueError, RuntimeError) as error:
        if isinstance(error, ConfigError):
            raise
        raise ConfigError(f"model {entry.name!r}: cannot build {part} from these options ({error})") from error
    size = sum(t.numel() * t.element_size() for t in probe.state_dict().values())
    limit = memory_bytes() // 2
    if limit and size > limit:
        raise ConfigError(
            f"model {entry.name!r}: {part} would need {size / 2**30:,.1f} GiB of weights, more than half "
            f"this machine's {memory_bytes() / 2**30:,.1f} GiB of memory; check the model's sizes "
            "(widths, num_classes, latent_dim)"
        )
    return build(options)
