"""BiGAN / ALI (Donahue et al. 2017, "Adversarial Feature Learning"; Dumoulin et al. 2017, "Adversarially Learned
Inference"): G learns an encoder E with it, and D judges pairs: (x, E(x)) for real images against (G(z), z).

min_{G,E} max_D E_x[log D(x, E(x))] + E_z[log(1 - D(G(z), z))] (Donahue et al., eq. 3). At the optimum E inverts
G, so E maps images to latents G understands: a representation learned without labels (``gankit probe`` reads
it beside D's) and a start for ``gankit project``. G and E take the non-saturating form of their losses, each on
its side of the pair: G wants D(G(z), z) called real, E wants D(x, E(x)) called fake; E lives in G's module (the
``bigan`` networks), so G's optimizer trains it. The condition is the unconditional one: G takes z only.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from gankit.variants.base import VARIANTS, Condition, Objective, StepContext, StepOutput, frozen, wide


@dataclasses.dataclass
class BiGANOptions:
    pass


@VARIANTS.register("bigan", BiGANOptions, "BiGAN / ALI: an encoder learned with G, D of (x, z) pairs")
class BiGANObjective(Objective):
    def __init__(self, options: BiGANOptions, G, D, loss, d_optimizer=None):
        super().__init__(options, G, D, loss, d_optimizer)
        self.condition = Condition()

    @staticmethod
    def describe_condition(options, G, stored) -> dict[str, Any]:
        return Condition().describe()

    def d_step(self, ctx: StepContext) -> StepOutput:
        """D's loss on (x, E(x)) against (G(z), z); leaves G(z) and E(x), with their graphs, for G's step."""
        fake = ctx.fake = self.G(ctx.z)
        encoded = ctx.saved["encoded"] = self.G.encode(ctx.real)
        logits_real = wide(self.D(ctx.real, encoded.detach()))
        logits_fake = wide(self.D(fake.detach(), ctx.z))
        loss = self.loss.d_loss(logits_real, logits_fake)
        return StepOutput(
            loss,
            {
                "d_loss": loss.detach(),
                "D(x)": self.loss.d_output(logits_real.detach()).float().mean(),
                "D(G(z))": self.loss.d_output(logits_fake.detach()).float().mean(),
                "d_accuracy": ((logits_real.detach() > 0).float().mean() + (logits_fake.detach() < 0).float().mean())
                / 2,
            },
        )

    def g_step(self, ctx: StepContext) -> StepOutput:
        """G's and E's loss: each wants D to mistake its side of the pair."""
        with frozen(self.D):
            generator_loss = self.loss.g_loss(wide(self.D(ctx.fake, ctx.z)))
            encoder_loss = self.loss.g_loss(-wide(self.D(ctx.real, ctx.saved["encoded"])))
        loss = generator_loss + encoder_loss
        # E(x)'s mean square: 1 when the encoded latents have the prior's scale
        scale = ctx.saved["encoded"].detach().pow(2).mean()
        return StepOutput(loss, {"g_loss": loss.detach(), "encoder_loss": encoder_loss.detach(), "E(x)^2": scale})
