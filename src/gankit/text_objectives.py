"""Objectives of the text-to-image GANs: GAN-CLS / GAN-INT (Reed et al. 2016) and StackGAN (Zhang et al. 2017).

The trainer stays generic: it calls ``attach(dataset)`` once (the objective embeds every training caption
with its text encoder, cached), then per batch ``batch_conditions(dataset, index)`` (one caption of each
image, drawn from the global generator so resume is exact) and hands the result to ``d_step`` where
class-conditional objectives get labels.

One step of ``gan-cls``, with t the chosen captions' embeddings and t' the caption of another image of
the batch, the "wrong text" (t rolled by one; with ``wrong_text="nearest"`` the most similar one):

    D: s_r = D(x, t), s_f = D(G(z, t), t), s_w = D(x, t')       matching-aware (GAN-CLS)
       L_D = (L(s_r, s_f) + L(s_r, s_w)) / 2                    (without matching_aware: L(s_r, s_f))
    G: L_G = g(D(G(z, t), t))
       + g(D(G(z', b t + (1 - b) t'), b t + (1 - b) t'))         interpolation (GAN-INT, beta = 0.5)
       + kl_weight * KL(N(mu, sigma^2) || N(0, I))              conditioning augmentation (StackGAN)
       + matching_weight * S(psi(G(z, t)), t)                    image-text matching (off by default)

where S is the structured joint-embedding loss the text encoder was pre-trained with and psi the image
encoder trained beside it (frozen): a term outside both papers, after AttnGAN's DAMSM loss (Xu et al. 2018).

``stackgan`` is the same game with StackGAN's defaults (KL weight 2) and, for a D with an unconditional
head (Stage-II), an image-only term added to both losses. For Stage-II (``objective.stage1`` = the
Stage-I export) it fills the model section from the Stage-I export, loads the Stage-I weights into G
(frozen) and takes the text encoder from that export unless one is given.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import torch
from gankit.losses import matching_aware_d_loss
from gankit.models.text import fit_text_standardization, kl_to_standard_normal
from gankit.objectives import OBJECTIVES, StandardObjective, StandardOptions, StepOutput, frozen, wide
from gankit.registry import ConfigError


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


@dataclasses.dataclass
class StackGANOptions(TextOptions):
    kl_weight: float = 2.0  # StackGAN's coefficient of its (element-mean) KL term
    # Stage-II: the Stage-I generator export to refine (frozen); "" trains Stage-I.
    stage1: str = ""


@torch.no_grad()
def nearest_other(text: torch.Tensor) -> torch.Tensor:
    """For each row of ``text`` (N, T), the index of the most similar other row: cosine similarity after
    standardizing each number over the batch; rows equal to it (itself, the same caption twice) excluded."""
    u = torch.nn.functional.normalize((text - text.mean(dim=0)) / text.std(dim=0).clamp_min(1e-6), dim=1)
    same = (text[:, None, :] == text[None, :, :]).all(dim=-1)
    return (u @ u.T).masked_fill(same, float("-inf")).argmax(dim=1)


def read_export_metadata(path: str) -> dict[str, Any]:
    from gankit.checkpoint import FORMAT_GENERATOR, CheckpointError, read_metadata
    from gankit.sampling import find_generator_file

    file = find_generator_file(path)
    metadata = read_metadata(file)
    if metadata.get("format") != FORMAT_GENERATOR or "text_encoder" not in metadata:
        raise CheckpointError(f"{file}: not the export of a text-to-image generator (objective.stage1 needs Stage-I's)")
    return {"file": str(file), "config": json.loads(metadata["config"])}


def encoder_source(options: TextOptions) -> str:
    """Where the text encoder comes from: objective.text_encoder, else (Stage-II) the Stage-I export."""
    if options.text_encoder:
        return options.text_encoder
    if getattr(options, "stage1", ""):
        return read_export_metadata(options.stage1)["file"]
    raise ConfigError("a text objective needs objective.text_encoder: a file from `gankit text train-encoder`")


def matching_image_encoder(options: TextOptions) -> torch.nn.Module:
    """The frozen image half of the joint embedding objective.text_encoder names, for matching_weight."""
    from gankit.text import load_image_encoder

    try:
        net = load_image_encoder(options.text_encoder)
    except Exception as error:  # no such file, not a text encoder file, or one saved without its image half
        raise ConfigError("objective.matching_weight needs objective.text_encoder to be a file from "
                          f"`gankit text train-encoder` (text and image encoder); {error}") from error  # fmt: skip
    return net.requires_grad_(False)


def same_text_encoder(a, b) -> bool:
    """Whether two loaded text encoders embed captions alike: same registry name, options, vocabulary, weights."""
    from gankit.text import text_encoder_metadata

    if text_encoder_metadata(a) != text_encoder_metadata(b):
        return False
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@OBJECTIVES.register("gan-cls", TextOptions, "text-to-image GAN: matching-aware D, interpolation (Reed et al. 2016)")
class TextObjective(StandardObjective):
    """GAN-CLS, GAN-INT and GAN-INT-CLS (Reed et al. 2016, Algorithm 1 and eq. 5); see the module docstring."""

    name = "gan-cls"

    def __init__(self, options: TextOptions, G, D, loss, d_optimizer=None):
        super().__init__(options, G, D, loss, d_optimizer)
        from gankit.text import load_text_encoder

        if getattr(D, "conditioning", None) != "text":
            raise ConfigError(f"objective {self.name!r} needs a text-conditional model: text-dcgan or stackgan-stage2")
        self.text_encoder = load_text_encoder(encoder_source(options))
        self.embeddings: torch.Tensor | None = None
        self.text: torch.Tensor | None = None
        self.image_encoder = matching_image_encoder(options) if options.matching_weight > 0 else None
        self.groups: torch.Tensor | None = None  # one id per attribute combination, when the data has them
        self.batch_groups: torch.Tensor | None = None

    @staticmethod
    def complete_model(model: Any, options: TextOptions) -> Any:
        """Set model.text_dim from the text encoder (checked when set by hand)."""
        from gankit.text import load_text_encoder

        if not hasattr(model, "text_dim"):
            raise ConfigError("a text objective needs a text-conditional model: text-dcgan or stackgan-stage2")
        dim = load_text_encoder(encoder_source(options)).embed_dim
        if model.text_dim not in (None, dim):
            raise ConfigError(f"model.text_dim is {model.text_dim} but the text encoder gives {dim}; leave it unset")
        return dataclasses.replace(model, text_dim=dim)

    # ------------------------------------------------------------------ data
    def attach(self, dataset) -> None:
        """Embed every caption of the training data once (cached by encoder weights and captions); with
        ``standardize_text``, set G's and D's text standardization from those embeddings."""
        from gankit.text import caption_embeddings

        captions = dataset.extras.get("captions")
        if captions is None:
            raise ConfigError(f"objective {self.name!r} needs captioned data (data.name=captions), "
                              f"but {dataset.name!r} has no captions")  # fmt: skip
        self.embeddings = caption_embeddings(self.text_encoder, captions).to(dataset.x.device)
        if self.image_encoder is not None:
            from gankit.text import attribute_groups

            self.image_encoder.to(dataset.x.device)
            groups = attribute_groups(dataset.extras.get("attributes"))
            self.groups = None if groups is None else groups.to(dataset.x.device)
        if self.options.standardize_text:
            for net in (self.G, self.D):
                fit_text_standardization(net, self.embeddings)

    def batch_conditions(self, dataset, index: torch.Tensor) -> torch.Tensor:
        """One caption embedding per image of the batch, the caption drawn uniformly among the image's."""
        choice = torch.randint(self.embeddings.shape[1], (len(index),)).to(index.device)
        self.batch_groups = None if self.groups is None else self.groups[index]
        return self.embeddings[index, choice]

    def sample_conditions(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """G's inputs after z for ``n`` random training captions, drawn from ``generator`` only (the global
        RNG is left alone): caption embeddings and conditioning-augmentation noise. Used to re-estimate the
        BatchNorm statistics of G's EMA."""
        device = self.embeddings.device
        index = torch.randint(self.embeddings.shape[0], (n,), generator=generator, device=device)
        choice = torch.randint(self.embeddings.shape[1], (n,), generator=generator, device=device)
        noise = torch.randn(n, self.G.condition_noise_dim, generator=generator, device=device)
        return self.embeddings[index, choice], noise

    # ------------------------------------------------------------------ the game
    def score(self, x: torch.Tensor, text: torch.Tensor):
        logits, h = self.D(x, text, return_features=True)
        return wide(logits), h

    def wrong_captions(self, text: torch.Tensor) -> torch.Tensor:
        """The mismatched caption embedding of each image: another image's caption of the batch."""
        return text.roll(1, dims=0) if self.options.wrong_text == "roll" else text[nearest_other(text)]

    def matching(self, fake: torch.Tensor, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The structured joint-embedding loss of G's images (resized to the image encoder's side) and their
        captions, and the fraction of images whose own caption scores highest in the batch."""
        from gankit.text import symmetric_structured_loss

        side = self.image_encoder.shape["resolution"]
        if fake.shape[-1] != side:
            fake = torch.nn.functional.interpolate(fake, size=(side, side), mode="bilinear", align_corners=False,
                                                   antialias=side < fake.shape[-1])  # fmt: skip
        image, text = wide(self.image_encoder(fake)), wide(text)
        with torch.no_grad():
            rank1 = ((image @ text.T).argmax(dim=1) == torch.arange(len(text), device=text.device)).float().mean()
        return symmetric_structured_loss(image, text, self.batch_groups), rank1

    def unconditional(self, h: torch.Tensor) -> torch.Tensor | None:
        has_head = getattr(self.D, "unconditional_head", None) is not None
        return wide(self.D.unconditional(h)) if has_head and self.options.unconditional_weight > 0 else None

    def d_step(self, real: torch.Tensor, z: torch.Tensor, text: torch.Tensor | None = None) -> StepOutput:
        if text is None:
            raise ValueError(f"objective {self.name!r}: d_step needs the batch's caption embeddings")
        self.text, self.z = text, z
        fake, (self.mu, self.logvar) = self.G(z, text, return_condition=True)
        real_in, fake_in = self.d_input(real), self.d_input(fake.detach())
        logits_real, h_real = self.score(real_in, text)
        logits_fake, h_fake = self.score(fake_in, text)
        logits_wrong = wide(self.D.conditional(h_real, self.wrong_captions(text))) if self.options.matching_aware else None
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
        return StepOutput(loss, stats, fake)

    def g_step(self, fake: torch.Tensor) -> StepOutput:
        o, text = self.options, self.text
        stats: dict[str, torch.Tensor] = {}
        with frozen(self.D):
            logits, h = self.score(self.d_input(fake), text)
            loss = self.loss.g_loss(logits)
            uncond = self.unconditional(h)
            if uncond is not None:
                loss = loss + o.unconditional_weight * self.loss.g_loss(uncond)
            if o.interpolation:
                mixed = o.interpolation_beta * text + (1 - o.interpolation_beta) * text.roll(1, dims=0)
                fake_mixed = self.G(torch.randn_like(self.z), mixed)
                term = self.loss.g_loss(self.score(self.d_input(fake_mixed), mixed)[0])
                loss = loss + term
                stats["g_loss_interpolated"] = term.detach()
        if self.image_encoder is not None:
            term, stats["matching_r1"] = self.matching(fake, text)
            loss = loss + o.matching_weight * term
            stats["g_loss_matching"] = term.detach()
        if self.mu is not None:
            kl = kl_to_standard_normal(wide(self.mu), wide(self.logvar))
            stats["kl"] = kl.detach()
            if o.kl_weight > 0:
                loss = loss + o.kl_weight * kl
        stats["g_loss"] = loss.detach()
        return StepOutput(loss, stats)

    # ------------------------------------------------------------------ samples and exports
    def grid_conditions(self, rows: int) -> torch.Tensor:
        """Text embeddings of the training grid's rows: the first caption of images 0..rows-1."""
        return self.embeddings[:rows, 0]


@OBJECTIVES.register("stackgan", StackGANOptions,
                     "StackGAN stage I or II: conditioning augmentation, KL term (Zhang et al. 2017)")  # fmt: skip
class StackGANObjective(TextObjective):
    name = "stackgan"

    def __init__(self, options: StackGANOptions, G, D, loss, d_optimizer=None):
        super().__init__(options, G, D, loss, d_optimizer)
        if options.stage1:
            from gankit.sampling import load_generator

            if not hasattr(G, "stage1"):
                raise ConfigError("objective.stage1 is set: the model must be stackgan-stage2")
            stage1 = load_generator(options.stage1)
            G.stage1.load_state_dict(stage1.G.state_dict())
            if options.text_encoder and not same_text_encoder(self.text_encoder, stage1.text_encoder):
                raise ConfigError(f"objective.text_encoder ({options.text_encoder}) is not the text encoder the Stage-I "
                                  "export carries: the frozen Stage-I would get captions embedded another way; "
                                  "leave it unset or name a file with the same text encoder")  # fmt: skip
        elif hasattr(G, "stage1"):
            raise ConfigError("model stackgan-stage2 needs objective.stage1: the Stage-I generator export")
        if not getattr(G, "condition_noise_dim", 0):
            raise ConfigError("objective 'stackgan' needs a G with conditioning augmentation "
                              "(model.conditioning_augmentation=true)")

    @staticmethod
    def complete_model(model: Any, options: StackGANOptions) -> Any:
        if options.stage1:
            stage1 = read_export_metadata(options.stage1)["config"]["model"]
            if not hasattr(model, "stage1"):
                raise ConfigError("objective.stage1 is set: use model.name=stackgan-stage2")
            model = dataclasses.replace(model, stage1=stage1, latent_dim=stage1["latent_dim"])
        elif hasattr(model, "stage1"):
            raise ConfigError("model stackgan-stage2 needs objective.stage1: the Stage-I generator export")
        elif not getattr(model, "conditioning_augmentation", False):
            raise ConfigError("StackGAN Stage-I is a text-dcgan with model.conditioning_augmentation=true")
        return TextObjective.complete_model(model, options)
