"""GAN variants, one file each: options, condition and phase losses (see ``base.py`` for the protocol).

Adding a variant: a file here that registers its objective in ``VARIANTS`` (and, if it feeds G something
new, a :class:`Condition` with ``register_condition``), its networks in one file under ``gankit/networks``,
and one import line below.
"""

from gankit.variants.base import CONDITIONS, VARIANTS, Condition, Objective, StepContext, StepOutput, build_condition

# Importing the variant files registers them.
from gankit.variants import standard, conditional, acgan, infogan, gan_cls, stackgan, pix2pix, srgan, bigan  # noqa: E402,F401,I001

__all__ = [
    "CONDITIONS",
    "VARIANTS",
    "Condition",
    "Objective",
    "StepContext",
    "StepOutput",
    "build_condition",
    "build_objective",
    "describe_condition",
    "discriminator_heads",
]


def build_objective(section: dict, G, D, loss, d_optimizer=None) -> Objective:
    """The objective ``section`` names; ``d_optimizer`` is D's optimizer, for objectives that look ahead."""
    entry, options = VARIANTS.resolve(section, "objective")
    return entry.factory(options, G, D, loss, d_optimizer)


def describe_condition(objective_section: dict, G, stored) -> dict:
    """The condition description of a file written before descriptions were recorded, asked of its variant."""
    entry, options = VARIANTS.resolve(objective_section, "objective")
    return entry.factory.describe_condition(options, G, stored)


def discriminator_heads(objective_section: dict, model_options) -> dict:
    """The heads the variant adds on D (``Objective.d_heads``), for every place that builds a D of a run."""
    entry, options = VARIANTS.resolve(objective_section, "objective")
    return entry.factory.d_heads(options, model_options)
