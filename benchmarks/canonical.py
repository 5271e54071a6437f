"""The canonical DCGAN training step, shaped like the PyTorch examples' dcgan/main.py.

Plain float tensors, ``BCEWithLogitsLoss`` on D's logits, default Adam and
three D forward passes per step: D(x) and D(G(z).detach()) for D's update,
then D(G(z)) again for G's update (which also computes D's weight gradients,
then throws them away). Used as the baseline of ``throughput.py`` and as the
reference the trainer's update is checked against in the tests.
"""

import torch
from torch import nn


def make_optimizers(G: nn.Module, D: nn.Module, lr: float = 2e-4, betas=(0.5, 0.999), fused: bool | None = None):
    """Adam for G and D (``fused``: None is PyTorch's default, the multi-tensor update where it applies)."""
    return tuple(torch.optim.Adam(net.parameters(), lr=lr, betas=betas, fused=fused) for net in (G, D))


def canonical_step(G, D, opt_G, opt_D, real: torch.Tensor, z: torch.Tensor) -> tuple[float, float]:
    criterion = nn.BCEWithLogitsLoss()
    ones = torch.ones(real.shape[0], device=real.device)
    zeros = torch.zeros(real.shape[0], device=real.device)
    D.zero_grad()
    loss_real = criterion(D(real), ones)
    loss_real.backward()
    fake = G(z)
    loss_fake = criterion(D(fake.detach()), zeros)
    loss_fake.backward()
    opt_D.step()
    G.zero_grad()
    loss_g = criterion(D(fake), ones)
    loss_g.backward()
    opt_G.step()
    return (loss_real + loss_fake).item(), loss_g.item()
