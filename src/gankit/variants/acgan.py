"""AC-GAN (Odena et al. 2017, eq. 2-3): G draws samples for given labels; D does not see the label but
predicts it with an auxiliary head on its last features.

With L_S the usual source loss and L_C = log P(C = c | X_real) + log P(C = c | X_fake), D maximizes
L_S + L_C and G maximizes L_C - L_S: both add the class cross-entropy to their loss, D on real and
generated samples, G on its own. The condition is the standard game's labels. Networks: ``dcgan`` or
``mlp`` with ``model.num_classes=null`` and ``model.d_conditioning="none"``; the class head on D's last features
is this variant's own (``d_heads``): a layer spanning them (a convolution over the whole feature map, or a
linear layer on a flat vector) to one logit per class.
"""

from __future__ import annotations

import dataclasses

from typing import Any

from torch import nn

from gankit.registry import ConfigError
from gankit.variants.base import VARIANTS, StepContext, wide
from gankit.variants.standard import LabelCondition, StandardObjective, StandardOptions


@dataclasses.dataclass
class ACGANOptions(StandardOptions):
    # Weight of the class log-likelihood L_C in both nets' losses (Odena et al. 2017, section 3).
    class_weight: float = 1.0


@VARIANTS.register("acgan", ACGANOptions, "AC-GAN: G(z, y); D scores real/fake and classifies (Odena et al. 2017)")
class ACGANObjective(StandardObjective):
    def __init__(self, options: ACGANOptions, G, D, loss, d_optimizer=None):
        super().__init__(options, G, D, loss, d_optimizer)
        if not isinstance(self.condition, LabelCondition):
            raise ConfigError("objective 'acgan' needs model.num_classes=null (labels to G)")

    @staticmethod
    def complete_model(model: Any, options: ACGANOptions) -> Any:
        if getattr(model, "d_pack", 1) > 1:
            raise ConfigError("objective 'acgan' reads one sample per class prediction: use model.d_pack=1")
        return model

    @staticmethod
    def d_heads(options: ACGANOptions, model: Any) -> dict[str, Any]:
        classes = getattr(model, "num_classes", 0) or 0
        if not classes:
            return {}  # the objective refuses the run (no labels)

        def class_head(f):
            return nn.Conv2d(f.channels, classes, f.side, 1, 0) if f.side else nn.Linear(f.channels, classes)

        return {"aux_head": class_head}

    def classify(self, h):
        return wide(self.D.read_head("aux_head", h))

    @property
    def wants_features(self) -> bool:
        return True

    def extra_d_loss(self, ctx: StepContext, h_real, h_fake, stats):
        labels = ctx.condition
        logits_real, logits_fake = self.classify(h_real), self.classify(h_fake)
        loss_real = nn.functional.cross_entropy(logits_real, labels)
        loss_fake = nn.functional.cross_entropy(logits_fake, labels)
        stats["class_loss_real"] = loss_real.detach()
        stats["class_accuracy_real"] = (logits_real.detach().argmax(dim=1) == labels).float().mean()
        return self.options.class_weight * (loss_real + loss_fake)

    def extra_g_loss(self, ctx: StepContext, h_fake, stats):
        labels = ctx.condition
        logits = self.classify(h_fake)
        loss = nn.functional.cross_entropy(logits, labels)
        stats["class_loss_fake"] = loss.detach()
        stats["class_accuracy_fake"] = (logits.detach().argmax(dim=1) == labels).float().mean()
        return self.options.class_weight * loss
