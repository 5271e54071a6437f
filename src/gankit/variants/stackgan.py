"""StackGAN (Zhang et al. 2017), stage I or II: the text-to-image game with conditioning augmentation.

The same game as GAN-CLS (``gan_cls.py``, whose caption condition it shares) with StackGAN's defaults (KL
weight 2) and, for a D with an unconditional head (Stage-II), an image-only term in both losses. For
Stage-II (``objective.stage1`` = the Stage-I export) ``complete_model`` fills the model section from the
Stage-I export, the objective loads the Stage-I weights into G (frozen) and the text encoder comes from
that export unless one is given. Networks: ``gankit/networks/text_dcgan.py`` (Stage-I) and
``gankit/networks/stackgan_stage2.py`` (Stage-II).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from gankit.files import check_state
from gankit.formats import read_generator
from gankit.networks.text_encoders import load_text_encoder, text_encoder_metadata
from gankit.registry import ConfigError
from gankit.variants.base import VARIANTS
from gankit.variants.gan_cls import TextObjective, TextOptions, read_export_metadata


@dataclasses.dataclass
class StackGANOptions(TextOptions):
    kl_weight: float = 2.0  # StackGAN's coefficient of its (element-mean) KL term
    # Stage-II: the Stage-I generator export to refine (frozen); "" trains Stage-I.
    stage1: str = ""


def same_text_encoder(a, b) -> bool:
    """Whether two loaded text encoders embed captions alike: same registry name, options, vocabulary, weights."""
    if text_encoder_metadata(a) != text_encoder_metadata(b):
        return False
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@VARIANTS.register(
    "stackgan", StackGANOptions, "StackGAN stage I or II: conditioning augmentation, KL term (Zhang et al. 2017)"
)
class StackGANObjective(TextObjective):
    name = "stackgan"

    def __init__(self, options: StackGANOptions, G, D, loss, d_optimizer=None):
        super().__init__(options, G, D, loss, d_optimizer)
        if options.stage1:
            if not hasattr(G, "stage1"):
                raise ConfigError("objective.stage1 is set: the model must be stackgan-stage2")
            stored = read_generator(options.stage1)
            check_state(stored.file, "the Stage-I generator's weights", stored.state, G.stage1.state_dict())
            G.stage1.load_state_dict(stored.state)
            if options.text_encoder and not same_text_encoder(
                self.condition.text_encoder, load_text_encoder(stored.file)
            ):
                raise ConfigError(
                    f"objective.text_encoder ({options.text_encoder}) is not the text encoder the Stage-I "
                    "export carries: the frozen Stage-I would get captions embedded another way; "
                    "leave it unset or name a file with the same text encoder"
                )
        elif hasattr(G, "stage1"):
            raise ConfigError("model stackgan-stage2 needs objective.stage1: the Stage-I generator export")
        if not getattr(G, "condition_noise_dim", 0):
            raise ConfigError(
                "objective 'stackgan' needs a G with conditioning augmentation (model.conditioning_augmentation=true)"
            )

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
