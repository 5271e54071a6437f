"""The exponential moving average of G's weights, and BatchNorm re-estimation for it."""

from __future__ import annotations

import copy

import torch
from torch import nn

from gankit.networks import averaged_batchnorm
from gankit.variants import Condition


class EMA:
    """Exponential moving average of G's weights.

    The decay warms up as min(decay, (1 + t) / (10 + t)) after t updates, so the average is not dominated by
    the random initialization early in a run. The averaged weights do not match the raw G's BatchNorm
    statistics, so :meth:`recalibrate` re-estimates them from the EMA net's own activations before it is
    sampled or exported.
    """

    def __init__(self, G: nn.Module, decay: float, condition: Condition):
        self.decay, self.condition = decay, condition
        self.model = copy.deepcopy(G).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, G: nn.Module, step: int) -> None:
        decay = min(self.decay, (1 + step) / (10 + step))
        ema_params = list(self.model.parameters())
        torch._foreach_lerp_(ema_params, [p.detach() for p in G.parameters()], 1.0 - decay)

    @torch.no_grad()
    def recalibrate(self, latent_dim: int, batch_size: int, seed: int, device: torch.device, batches: int = 16) -> None:
        recalibrate_batchnorm(self.model, self.condition, latent_dim, batch_size, seed, device, batches)


@torch.no_grad()
def recalibrate_batchnorm(
    G: nn.Module,
    condition: Condition,
    latent_dim: int,
    batch_size: int,
    seed: int,
    device: torch.device,
    batches: int = 16,
) -> None:
    """Set G's BatchNorm running statistics to their average over ``batches`` fresh batches.

    The latents and the condition's values come from their own generator seeded with ``seed``, so the result
    depends only on G's weights (and on the data the condition draws its values from).
    """
    if not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in G.modules()):
        return
    generator = torch.Generator(device).manual_seed(seed)
    with averaged_batchnorm(G):
        for _ in range(batches):
            z = torch.randn(batch_size, latent_dim, device=device, generator=generator)
            G(*condition.generator_args(z, condition.draw(batch_size, generator, device)))
