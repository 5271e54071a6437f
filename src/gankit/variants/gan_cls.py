"""Text-to-image GAN: GAN-CLS, GAN-INT and GAN-INT-CLS (Reed et al. 2016, Algorithm 1 and eq. 5).

The condition is a caption embedding phi(t) from a text encoder (``gankit/networks/text_encoders.py``):
:class:`TextCondition` embeds every training caption once (cached), picks one caption of each image per
batch (from the global generator, so resume is exact), and for sampling embeds the user's captions with the
encoder the export carries. G and D: ``gankit/networks/text_dcgan.py`` (StackGAN Stage-II: ``stackgan_stage2.py``).

One step, with t the chosen captions' embeddings and t' the caption of another image of the batch, the
"wrong text" (t rolled by one; with ``wrong_text="nearest"`` the most similar one):

    D: s_r = D(x, t), s_f = D(G(z, t), t), s_w = D(x, t')       matching-aware (GAN-CLS)
       L_D = (L(s_r, s_f) + L(s_r, s_w)) / 2                    (without matching_aware: L(s_r, s_f))
    G: L_G = g(D(G(z, t), t))
       + g(D(G(z', b t + (1 - b) t'), b t + (1 - b) t'))         interpolation (GAN-INT, beta = 0.5)
       + kl_weight * KL(N(mu, sigma^2) || N(0, I))              conditioning augmentation (StackGAN)
       + matching_weight * S(psi(G(z, t)), t)                    image-text matching (off by default)

where S is the structured joint-embedding loss the text encoder was pre-trained with and psi the image
encoder trained beside it (frozen): a term outside both papers, after AttnGAN's DAMSM loss (Xu et al. 2018).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any

import numpy as np
import torch

from gankit.data.captions import attribute_groups
from gankit.files import CheckpointError, prefixed, read_metadata, unprefixed
from gankit.formats import FORMAT_GENERATOR, find_generator_file, metadata_field
from gankit.losses import kl_to_standard_normal, matching_aware_d_loss, symmetric_structured_loss
from gankit.networks.text_dcgan import fit_text_standardization
from gankit.networks.text_encoders import (
    build_text_encoder,
    caption_embeddings,
    load_image_encoder,
    load_text_encoder,
    text_encoder_metadata,
    words,
)
from gankit.registry import ConfigError
from gankit.seeding import draw_stream, latents, per_sample_normal
from gankit.variants.base import VARIANTS, Condition, StepContext, StepOutput, frozen, register_condition, wide
from gankit.variants.standard import StandardObjective, StandardOptions

STREAM_CONDITION_NOISE = draw_stream(2, "conditioning-augmentation noise")  # sample k of seed s draws from (s, k, 2)


@dataclasses.dataclass
class TextValues:
    """A batch of text conditions: captions (sampling, embedded when G runs) or their embeddings, the
    conditioning-augmentation noise (None in training: G draws it), the attribute groups of the images."""

    text: torch.Tensor | None = None  # caption embeddings (N, text_dim)
    noise: torch.Tensor | None = None
    captions: list[str] | None = None
    groups: torch.Tensor | None = None

    def __getitem__(self, part: slice) -> "TextValues":
        def cut(x):
            return None if x is None else x[part]

        return TextValues(cut(self.text), cut(self.noise), cut(self.captions), cut(self.groups))


def caption_grid_latents(rows: int, columns: int, latent_dim: int, noise_dim: int, seed: int):
    """z and conditioning noise of a caption grid: samples 0..columns-1 of ``seed``, repeated for each of
    ``rows`` captions (row-major), so a column keeps its style while the caption changes."""
    z = latents(columns, latent_dim, seed).repeat(rows, 1)
    return z, per_sample_normal(columns, noise_dim, seed, 0, STREAM_CONDITION_NOISE).repeat(rows, 1)


@register_condition
class TextCondition(Condition):
    """A caption embedding phi(t) (and, for StackGAN's conditioning augmentation, the noise eps of
    c = mu + sigma * eps). Sample k of a seed draws eps from (seed, k, 2); ``noise_scale`` multiplies it."""

    kind = "text"
    accepts = ("text", "embeddings")
    refusal = "this generator is not text-conditional; it takes no text"
    needs_input = True
    verbs = ("text_grid", "set_condition_noise_scale")

    def __init__(self, text_encoder: torch.nn.Module, noise_dim: int, noise_scale: float = 1.0):
        self.text_encoder, self.noise_dim = text_encoder.eval(), noise_dim
        self.embeddings: torch.Tensor | None = None  # training captions (N, C, text_dim), set by prepare
        self.groups: torch.Tensor | None = None  # one id per attribute combination, when the data has them
        self.noise_scale = 1.0
        self.apply_setting("condition_noise_scale", noise_scale)

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "noise_dim": self.noise_dim,
            "text_dim": self.text_encoder.embed_dim,
            "tensors": "text_encoder",
        }

    def export_parts(self):
        metadata = {"text_encoder": text_encoder_metadata(self.text_encoder)}
        return prefixed("text_encoder", self.text_encoder.state_dict()), metadata

    @classmethod
    def from_description(cls, description, stored=None) -> "TextCondition":
        if stored is not None and "text_encoder" in stored.metadata:
            encoder = build_text_encoder(
                metadata_field(stored.file, stored.metadata, "text_encoder", dict),
                unprefixed("text_encoder", stored.condition_tensors),
                stored.file,
            )
        elif description.get("encoder_file"):  # a checkpoint from before checkpoints carried the encoder
            encoder = load_text_encoder(description["encoder_file"])
        else:
            raise CheckpointError("this text-to-image file carries no text encoder")
        return cls(encoder, int(description["noise_dim"]))

    def summary(self) -> str:
        return "a text-to-image generator"

    def to(self, device):
        self.text_encoder.to(device)
        return self

    def argument_docs(self, latent_dim):
        return [
            *super().argument_docs(latent_dim),
            {
                "name": "text_embedding",
                "description": f"phi(t): the caption's embedding (N, {self.text_encoder.embed_dim}) "
                "by the run's text encoder, which is not in the graph (its tokenizer is Python string processing): "
                "embed captions with gankit (pipeline.condition.embed(captions)) and keep a table, or export the "
                "encoder's own network separately",
            },
            {
                "name": "condition_noise",
                "description": f"eps (N, {self.noise_dim}) of the conditioning augmentation "
                f"c = mu + sigma * eps: standard normal times the sampling scale (gankit's default 1)",
            },
        ]

    def example_values(self, n, seed):
        return self.values_for(n, seed, text="a small red sandal at the top left")

    def controls(self):
        out = [{"name": "text", "type": "text", "label": "caption", "max_length": 300, "default": ""}]
        if self.noise_dim:  # StackGAN's conditioning augmentation
            out.append(
                {
                    "name": "condition_noise_scale",
                    "type": "setting",
                    "label": "conditioning noise",
                    "min": 0.0,
                    "max": 2.0,
                    "default": 1.0,
                }
            )
        return out

    # ------------------------------------------------------------------ training
    def prepare(self, dataset, nets=()) -> None:
        """Embed every caption of the training data once (cached by encoder weights and captions)."""
        captions = dataset.extras.get("captions")
        if captions is None:
            raise ConfigError(
                f"a text-to-image objective needs captioned data (data.name=captions), "
                f"but {dataset.name!r} has no captions"
            )
        self.embeddings = caption_embeddings(self.text_encoder, captions).to(dataset.device)

    def batch(self, dataset, index):
        """One caption embedding per image of the batch, the caption drawn uniformly among the image's."""
        choice = torch.randint(self.embeddings.shape[1], (len(index),)).to(index.device)
        groups = None if self.groups is None else self.groups[index]
        return TextValues(self.embeddings[index, choice], groups=groups)

    def draw(self, n, generator, device):
        """Random training captions and conditioning-augmentation noise, from ``generator`` only."""
        device = self.embeddings.device
        index = torch.randint(self.embeddings.shape[0], (n,), generator=generator, device=device)
        choice = torch.randint(self.embeddings.shape[1], (n,), generator=generator, device=device)
        noise = torch.randn(n, self.noise_dim, generator=generator, device=device)
        return TextValues(self.embeddings[index, choice], noise)

    def training_grid(self, count, latent_dim, seed, rows: int = 8):
        """``rows`` training captions (the first caption of images 0..rows-1), ``count // rows`` columns with the
        same z and noise down each column (what ``gankit sample RUN --text ...`` draws for samples 0..columns-1)."""
        columns = max(1, count // rows)
        z, noise = caption_grid_latents(rows, columns, latent_dim, self.noise_dim, seed)
        text = self.embeddings[:rows, 0].cpu().repeat_interleave(columns, dim=0)
        return z, TextValues(text, noise), columns

    # ------------------------------------------------------------------ sampling
    def captions(self, text, n: int) -> list[str]:
        """``text`` as n captions: one caption (str, or a list of one) for all, or a list of n."""
        if text is None:
            raise ValueError("this generator draws from text: pass text='a small red sandal ...' (or a list)")
        texts = [text] if isinstance(text, str) else list(text)
        if len(texts) == 1:
            texts = texts * n
        if len(texts) != n or not all(isinstance(t, str) for t in texts):
            raise ValueError(f"{len(texts)} captions for {n} samples; give one caption, or one per sample")
        self.check_words(texts)
        return texts

    def check_words(self, texts: list[str]) -> None:
        """Warn about captions the text encoder cannot read: empty ones, and words outside a word-level encoder's
        vocabulary (each read as the one unknown word, so a caption of unknown words draws from no text at all)."""
        vocabulary = getattr(self.text_encoder, "vocabulary", None)
        if vocabulary is None or not vocabulary.tokens:  # a subword encoder (MiniLM) reads any word
            return
        for text in dict.fromkeys(texts):
            found, unknown = words(text), vocabulary.unknown_words(text)
            if not found:
                warnings.warn(f"the caption {text!r} has no words: G draws from the unknown word alone", stacklevel=4)
            elif len(unknown) == len(set(found)):
                examples = ", ".join(vocabulary.tokens[:24])
                warnings.warn(
                    f"no word of the caption {text!r} is known to this text encoder (unknown: "
                    f"{', '.join(unknown)}): G draws from no text at all. Its words include: {examples}, ...",
                    stacklevel=4,
                )
            elif unknown:
                warnings.warn(
                    f"the caption {text!r} has words this text encoder does not know: {', '.join(unknown)} "
                    "(each is read as the unknown word)",
                    stacklevel=4,
                )

    def values_for(self, n, seed, start=0, text=None, embeddings=None, **given):
        """Samples start .. start+n-1 for ``text`` (or precomputed caption ``embeddings`` (n, D))."""
        self.refuse(given)
        noise = per_sample_normal(n, self.noise_dim, seed, start, STREAM_CONDITION_NOISE)
        if embeddings is not None:
            return TextValues(embeddings, noise)
        return TextValues(noise=noise, captions=self.captions(text, n))

    def default(self, n):
        return self.values_for(n, 0)  # refuses: a text-to-image G needs captions

    def grid(self, entries, columns, seed, latent_dim):
        """One row per caption, one column per (z, eps) of samples 0..columns-1 of ``seed``: along a row the
        text is fixed and the style varies; down a column the style is fixed and the text varies."""
        self.check_words(list(entries))
        phi = self.embed(list(entries)).repeat_interleave(columns, dim=0)
        z, noise = caption_grid_latents(len(entries), columns, latent_dim, self.noise_dim, seed)
        return z, TextValues(phi, noise)

    def interpolation_points(self, entries):
        """The captions' embeddings phi(t): Reed et al.'s interpolation moves through them (figure 4)."""
        return self.embed(list(entries)).cpu()

    def values_along(self, vectors, rows, seed, latent_dim):
        columns = len(vectors)
        z = latents(rows, latent_dim, seed).repeat_interleave(columns, dim=0)
        noise = per_sample_normal(rows, self.noise_dim, seed, 0, STREAM_CONDITION_NOISE)
        return z, TextValues(vectors.repeat(rows, 1), noise.repeat_interleave(columns, dim=0))

    @torch.inference_mode()
    def embed(self, texts: list[str]) -> torch.Tensor:
        """Caption embeddings phi(t) (N, text_dim) from the text encoder."""
        return self.text_encoder(texts).float()

    def text_grid(self, pipeline, texts: list[str], columns: int = 8, seed: int = 0) -> np.ndarray:
        """``pipeline.text_grid(texts)``: one row per caption, the same z and noise down each column (uint8
        images, row-major)."""
        return pipeline.grid(texts, columns, seed)

    def setting_values(self):
        return {"condition_noise_scale": self.noise_scale} if self.noise_dim else {}

    def apply_setting(self, name, value):
        """``condition_noise_scale``: c = mu + sigma * (scale * eps) at sampling time. 1 is the paper's sampling;
        0 conditions every sample on the mean mu (truer to the caption, less varied: a truncation of the
        condition, as BigGAN's truncation trick is one of z)."""
        if name != "condition_noise_scale":
            super().apply_setting(name, value)
        scale = float(value)
        if not (scale >= 0 and math.isfinite(scale)):  # also refuses NaN
            raise ValueError(f"condition_noise_scale must be a finite number >= 0, got {value}")
        if scale != 1.0 and not self.noise_dim:
            raise ValueError(
                "condition_noise_scale applies to conditioning augmentation (StackGAN); this generator has none "
                "(a gan-cls G conditions on the compressed caption without noise)"
            )
        self.noise_scale = scale

    def set_condition_noise_scale(self, pipeline, scale: float) -> None:
        """``pipeline.set_condition_noise_scale(scale)``: ``pipeline.set("condition_noise_scale", scale)``."""
        pipeline.set("condition_noise_scale", scale)

    # ------------------------------------------------------------------ G and D
    def rest_args(self, values, device):
        text = self.embed(values.captions) if values.text is None else values.text
        noise = None if values.noise is None else values.noise.to(device) * self.noise_scale
        return text.to(device), noise

    def discriminator_kwargs(self, values):
        return {"text": values.text}


@dataclasses.dataclass
class TextOptions(StandardOptions):
    # The text encoder: a file from `gankit text train-encoder`, or an export of a text-to-image G (which
    # carries the encoder it was trained with).
    text_encoder: str = ""
    # GAN-CLS: D also learns to score {real image, wrong text} as fake (Reed et al. 2016, section 4.2).
    matching_aware: bool = True
    # Which caption plays the "wrong text" of an image: "roll" (the next image's in the batch, as Reed et al.
    # draw any other caption) or "nearest" (the batch's most similar caption of another image, cosine of the
    # batch-standardized embeddings: a hard negative that often differs in one attribute only).
    wrong_text: str = "roll"
    # GAN-INT: G also learns from interpolated caption embeddings b t1 + (1 - b) t2 (section 4.3).
    interpolation: bool = False
    interpolation_beta: float = 0.5
    # Weight of the conditioning augmentation's KL term in G's loss (a G with conditioning augmentation).
    kl_weight: float = 0.0
    # Weight of the image-only (unconditional) term in both losses, for a D that has that head.
    unconditional_weight: float = 1.0
    # Center and scale each number of the caption embedding with the training captions' mean and standard
    # deviation before G's and D's first layer on the text (saved in the nets; a frozen Stage-I keeps its own).
    standardize_text: bool = True
    # Weight of an image-text matching term in G's loss, 0: off. Not in Reed et al. or StackGAN (the idea
    # of AttnGAN's DAMSM loss, Xu et al. 2018): the structured joint-embedding loss between G's images, seen
    # by the image encoder saved with objective.text_encoder (frozen), and their captions.
    matching_weight: float = 0.0

    def __post_init__(self):
        super().__post_init__()
        if self.r1_weight or self.feature_matching or self.unrolled_steps:
            raise ConfigError("the text objectives do not support r1_weight, feature_matching or unrolled_steps")
        if self.wrong_text not in ("roll", "nearest"):
            raise ConfigError(f"objective.wrong_text must be 'roll' or 'nearest', got {self.wrong_text!r}")
        if not 0.0 <= self.interpolation_beta <= 1.0:
            raise ConfigError(f"objective.interpolation_beta must be in [0, 1], got {self.interpolation_beta}")
        if self.kl_weight < 0 or self.unconditional_weight < 0 or self.matching_weight < 0:
            raise ConfigError("objective.kl_weight, unconditional_weight and matching_weight must be >= 0")


@torch.no_grad()
def nearest_other(text: torch.Tensor) -> torch.Tensor:
    """For each row of ``text`` (N, T), the index of the most similar other row: cosine similarity after
    standardizing each number over the batch; rows equal to it (itself, the same caption twice) excluded."""
    u = torch.nn.functional.normalize((text - text.mean(dim=0)) / text.std(dim=0).clamp_min(1e-6), dim=1)
    same = (text[:, None, :] == text[None, :, :]).all(dim=-1)
    return (u @ u.T).masked_fill(same, float("-inf")).argmax(dim=1)


def read_export_metadata(path: str) -> dict[str, Any]:
    """The file and config of a text-to-image generator export (StackGAN Stage-II's ``objective.stage1``)."""
    file = find_generator_file(path)
    metadata = read_metadata(file)
    if metadata.get("format") != FORMAT_GENERATOR or "text_encoder" not in metadata:
        raise CheckpointError(f"{file}: not the export of a text-to-image generator (objective.stage1 needs Stage-I's)")
    return {"file": str(file), "config": metadata_field(file, metadata, "config", dict)}


def encoder_source(options: TextOptions) -> str:
    """Where the text encoder comes from: objective.text_encoder, else (Stage-II) the Stage-I export."""
    if options.text_encoder:
        return options.text_encoder
    if getattr(options, "stage1", ""):
        return read_export_metadata(options.stage1)["file"]
    raise ConfigError("a text objective needs objective.text_encoder: a file from `gankit text train-encoder`")


def matching_image_encoder(options: TextOptions) -> torch.nn.Module:
    """The frozen image half of the joint embedding objective.text_encoder names, for matching_weight."""
    try:
        net = load_image_encoder(options.text_encoder)
    except Exception as error:  # no such file, not a text encoder file, or one saved without its image half
        raise ConfigError(
            "objective.matching_weight needs objective.text_encoder to be a file from "
            f"`gankit text train-encoder` (text and image encoder); {error}"
        ) from error
    return net.requires_grad_(False)


@VARIANTS.register("gan-cls", TextOptions, "text-to-image GAN: matching-aware D, interpolation (Reed et al. 2016)")
class TextObjective(StandardObjective):
    """GAN-CLS, GAN-INT and GAN-INT-CLS (Reed et al. 2016, Algorithm 1 and eq. 5); see the module docstring."""

    name = "gan-cls"

    def __init__(self, options: TextOptions, G, D, loss, d_optimizer=None):
        if getattr(D, "conditioning", None) != "text":
            raise ConfigError(f"objective {self.name!r} needs a text-conditional model: text-dcgan or stackgan-stage2")
        super().__init__(options, G, D, loss, d_optimizer)
        self.image_encoder = matching_image_encoder(options) if options.matching_weight > 0 else None

    def make_condition(self) -> Condition:
        return TextCondition(load_text_encoder(encoder_source(self.options)), self.G.condition_noise_dim)

    @staticmethod
    def describe_condition(options, G, stored) -> dict[str, Any]:
        """Files written before descriptions were recorded: exports carry their encoder; a checkpoint names
        the file it came from (objective.text_encoder, or the Stage-I export)."""
        description = {"kind": TextCondition.kind, "noise_dim": G.condition_noise_dim, "tensors": "text_encoder"}
        if "text_encoder" not in stored.metadata:
            description["encoder_file"] = encoder_source(options)
        return description

    @staticmethod
    def complete_model(model: Any, options: TextOptions) -> Any:
        """Set model.text_dim from the text encoder (checked when set by hand)."""
        if not hasattr(model, "text_dim"):
            raise ConfigError("a text objective needs a text-conditional model: text-dcgan or stackgan-stage2")
        dim = load_text_encoder(encoder_source(options)).embed_dim
        if model.text_dim not in (None, dim):
            raise ConfigError(f"model.text_dim is {model.text_dim} but the text encoder gives {dim}; leave it unset")
        return dataclasses.replace(model, text_dim=dim)

    def prepare(self, dataset) -> None:
        """Embed the training captions; with ``standardize_text``, set G's and D's text standardization from
        those embeddings; with ``matching_weight``, the attribute groups the structured loss keeps together."""
        self.condition.prepare(dataset)
        if self.image_encoder is not None:
            self.image_encoder.to(dataset.device)
            groups = attribute_groups(dataset.extras.get("attributes"))
            self.condition.groups = None if groups is None else groups.to(dataset.device)
        if self.options.standardize_text:
            for net in (self.G, self.D):
                fit_text_standardization(net, self.condition.embeddings)

    # ------------------------------------------------------------------ the game
    def score(self, x: torch.Tensor, text: torch.Tensor):
        logits, h = self.D(x, text, return_features=True)
        return wide(logits), h

    def wrong_captions(self, text: torch.Tensor) -> torch.Tensor:
        """The mismatched caption embedding of each image: another image's caption of the batch."""
        return text.roll(1, dims=0) if self.options.wrong_text == "roll" else text[nearest_other(text)]

    def matching(self, fake: torch.Tensor, text: torch.Tensor, groups) -> tuple[torch.Tensor, torch.Tensor]:
        """The structured joint-embedding loss of G's images (resized to the image encoder's side) and their
        captions, and the fraction of images whose own caption scores highest in the batch."""
        side = self.image_encoder.shape["resolution"]
        if fake.shape[-1] != side:
            fake = torch.nn.functional.interpolate(
                fake, size=(side, side), mode="bilinear", align_corners=False, antialias=side < fake.shape[-1]
            )
        image, text = wide(self.image_encoder(fake)), wide(text)
        with torch.no_grad():
            rank1 = ((image @ text.T).argmax(dim=1) == torch.arange(len(text), device=text.device)).float().mean()
        return symmetric_structured_loss(image, text, groups), rank1

    def unconditional(self, h: torch.Tensor) -> torch.Tensor | None:
        has_head = getattr(self.D, "unconditional_head", None) is not None
        return wide(self.D.unconditional(h)) if has_head and self.options.unconditional_weight > 0 else None

    def d_step(self, ctx: StepContext) -> StepOutput:
        text = ctx.condition.text
        fake, (mu, logvar) = self.G(ctx.z, text, return_condition=True)
        ctx.fake, ctx.saved["mu"], ctx.saved["logvar"] = fake, mu, logvar
        real_in, fake_in = self.d_input(ctx.real), self.d_input(fake.detach())
        logits_real, h_real = self.score(real_in, text)
        logits_fake, h_fake = self.score(fake_in, text)
        logits_wrong = (
            wide(self.D.conditional(h_real, self.wrong_captions(text))) if self.options.matching_aware else None
        )
        loss = matching_aware_d_loss(self.loss, logits_real, logits_fake, logits_wrong)
        stats = {
            "D(x)": self.loss.d_output(logits_real.detach()).mean(),
            "D(G(z))": self.loss.d_output(logits_fake.detach()).mean(),
            "d_accuracy": ((logits_real.detach() > 0).float().mean() + (logits_fake.detach() < 0).float().mean()) / 2,
        }
        if logits_wrong is not None:
            stats["D(x,wrong)"] = self.loss.d_output(logits_wrong.detach()).mean()
        uncond_real = self.unconditional(h_real)
        if uncond_real is not None:
            uncond = self.loss.d_loss(uncond_real, self.unconditional(h_fake))
            loss = loss + self.options.unconditional_weight * uncond
            stats["d_loss_unconditional"] = uncond.detach()
        stats["d_loss"] = loss.detach()
        return StepOutput(loss, stats)

    def g_step(self, ctx: StepContext) -> StepOutput:
        o, text, fake = self.options, ctx.condition.text, ctx.fake
        stats: dict[str, torch.Tensor] = {}
        with frozen(self.D):
            logits, h = self.score(self.d_input(fake), text)
            loss = self.loss.g_loss(logits)
            uncond = self.unconditional(h)
            if uncond is not None:
                loss = loss + o.unconditional_weight * self.loss.g_loss(uncond)
            if o.interpolation:
                mixed = o.interpolation_beta * text + (1 - o.interpolation_beta) * text.roll(1, dims=0)
                fake_mixed = self.G(torch.randn_like(ctx.z), mixed)
                term = self.loss.g_loss(self.score(self.d_input(fake_mixed), mixed)[0])
                loss = loss + term
                stats["g_loss_interpolated"] = term.detach()
        if self.image_encoder is not None:
            term, stats["matching_r1"] = self.matching(fake, text, ctx.condition.groups)
            loss = loss + o.matching_weight * term
            stats["g_loss_matching"] = term.detach()
        mu, logvar = ctx.saved["mu"], ctx.saved["logvar"]
        if mu is not None:
            kl = kl_to_standard_normal(wide(mu), wide(logvar))
            stats["kl"] = kl.detach()
            if o.kl_weight > 0:
                loss = loss + o.kl_weight * kl
        stats["g_loss"] = loss.detach()
        return StepOutput(loss, stats)
