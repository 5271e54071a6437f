"""Differentiable image augmentations on (N, C, H, W) batches in [-1, 1].

``diff_augment`` implements DiffAugment (Zhao et al. 2020, "Differentiable
Augmentation for Data-Efficient GAN Training"): the same random colour,
translation and cutout transforms are applied to every image D sees, real and
generated, in both D's and G's steps, so gradients flow through them to G.
Random numbers come from ``generator`` when given, else from torch's global
generator (which training checkpoints save, so resumed runs stay exact).
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from gankit.registry import ConfigError


def _rand(n: int, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype, generator=generator)


def brightness(x: torch.Tensor, generator=None) -> torch.Tensor:
    return x + (_rand(len(x), x, generator) - 0.5)


def saturation(x: torch.Tensor, generator=None) -> torch.Tensor:
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (_rand(len(x), x, generator) * 2) + mean


def contrast(x: torch.Tensor, generator=None) -> torch.Tensor:
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_rand(len(x), x, generator) + 0.5) + mean


def translate(
    x: torch.Tensor, max_shift: int, fill: float = 0.0, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Shift each image by up to ``max_shift`` pixels in each direction, filling with ``fill``."""
    if max_shift <= 0:
        return x
    n, c, h, w = x.shape
    padded = F.pad(x, (max_shift, max_shift, max_shift, max_shift), value=fill)
    dy = torch.randint(0, 2 * max_shift + 1, (n,), generator=generator).to(x.device)
    dx = torch.randint(0, 2 * max_shift + 1, (n,), generator=generator).to(x.device)
    rows = (
        (dy.view(n, 1) + torch.arange(h, device=x.device).view(1, h))
        .view(n, 1, h, 1)
        .expand(-1, c, -1, w + 2 * max_shift)
    )
    x = padded.gather(2, rows)
    cols = (dx.view(n, 1) + torch.arange(w, device=x.device).view(1, w)).view(n, 1, 1, w).expand(-1, c, h, -1)
    return x.gather(3, cols)


def translation(x: torch.Tensor, generator=None) -> torch.Tensor:
    """DiffAugment's translation: up to 1/8 of the image size, zero (mid-grey) fill."""
    return translate(x, max(1, x.shape[-1] // 8), 0.0, generator)


def cutout(x: torch.Tensor, generator=None) -> torch.Tensor:
    """Zero a random square of half the image size in each image."""
    n, _, h, w = x.shape
    size_h, size_w = h // 2, w // 2
    top = torch.randint(0, h - size_h + 1, (n, 1, 1), generator=generator).to(x.device)
    left = torch.randint(0, w - size_w + 1, (n, 1, 1), generator=generator).to(x.device)
    ys = torch.arange(h, device=x.device).view(1, h, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, w)
    inside = (ys >= top) & (ys < top + size_h) & (xs >= left) & (xs < left + size_w)
    return x * (~inside).unsqueeze(1).to(x.dtype)


POLICIES: dict[str, list[Callable]] = {
    "color": [brightness, saturation, contrast],
    "translation": [translation],
    "cutout": [cutout],
}


def parse_policy(policy: str) -> list[str]:
    names = [p.strip() for p in policy.split(",") if p.strip()]
    unknown = [p for p in names if p not in POLICIES]
    if unknown:
        raise ConfigError(f"unknown DiffAugment policy {', '.join(unknown)}; policies: {', '.join(POLICIES)}")
    return names


def diff_augment(x: torch.Tensor, policy: list[str], generator: torch.Generator | None = None) -> torch.Tensor:
    if x.dim() != 4:
        raise ConfigError("DiffAugment needs image data (N, C, H, W)")
    for name in policy:
        for fn in POLICIES[name]:
            x = fn(x, generator)
    return x
