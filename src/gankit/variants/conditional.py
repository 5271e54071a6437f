"""Conditional GAN (Mirza & Osindero 2014, section 3.2): the standard game with the class label given to G and D.

The model decides how D sees the label (``model.d_conditioning``: label maps joined with the input, or a
projection, Miyato & Koyama 2018); this variant is the standard objective with its label condition and a
check that the model is conditional. Networks: ``gankit/networks/dcgan.py`` and ``mlp.py``.
"""

from __future__ import annotations

from gankit.registry import ConfigError
from gankit.variants.base import VARIANTS
from gankit.variants.standard import LabelCondition, StandardObjective, StandardOptions


@VARIANTS.register("conditional", StandardOptions, "conditional GAN: G(z, y), D(x, y) (Mirza & Osindero 2014)")
class ConditionalObjective(StandardObjective):
    def __init__(self, options, G, D, loss, d_optimizer=None):
        super().__init__(options, G, D, loss, d_optimizer)
        if not isinstance(self.condition, LabelCondition) or getattr(D, "conditioning", "none") == "none":
            raise ConfigError(
                "objective 'conditional' needs a class-conditional model: set model.num_classes=null (from the data) "
                "and model.d_conditioning to concat or projection"
            )
