"""Per-sample seeding: the draws that make sample k of a seed the same whatever the batching.

A leaf module. Sample k of seed s takes its latent from a NumPy generator seeded with the sequence (s, k);
other per-sample draws use (s, k, stream) with a stream number per kind of draw, claimed by the condition that
draws it (:func:`draw_stream`: InfoGAN's codes 1, conditioning-augmentation noise 2), so no draw depends on n,
on the batch size or on another draw.
"""

from __future__ import annotations

import numpy as np
import torch

STREAMS: dict[int, str] = {}  # stream number -> the kind of draw that owns it


def draw_stream(number: int, owner: str) -> int:
    """Claim per-sample draw stream ``number`` for ``owner`` (a condition's kind of draw) and return it; a number
    claimed twice would make two kinds of draw the same numbers, so it is refused. Numbers are part of what sample
    k of a seed is: never renumber one."""
    if number < 1:
        raise ValueError(f"draw streams are numbered from 1 (the latent has none), got {number}")
    if STREAMS.setdefault(number, owner) != owner:
        raise ValueError(f"draw stream {number} is {STREAMS[number]}'s; {owner} needs another number")
    return number


def sample_rng(seed: int, k: int, stream: int | None = None) -> np.random.Generator:
    """The generator of sample ``k`` of ``seed`` (``stream``: which kind of draw; None for the latent)."""
    return np.random.default_rng([seed, k] if stream is None else [seed, k, stream])


def latents(n: int, latent_dim: int, seed: int, start: int = 0) -> torch.Tensor:
    """Standard normal latents (n, latent_dim) for samples start .. start+n-1 of ``seed``."""
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    rows = [sample_rng(seed, start + i).standard_normal(latent_dim, dtype=np.float32) for i in range(n)]
    return torch.from_numpy(np.stack(rows)) if rows else torch.empty(0, latent_dim)


def per_sample_normal(n: int, dim: int, seed: int, start: int, stream: int) -> torch.Tensor:
    """Standard normal draws (n, dim) for samples start .. start+n-1 of ``seed`` from draw stream ``stream``."""
    rows = [sample_rng(seed, start + i, stream).standard_normal(dim, dtype=np.float32) for i in range(n)]
    return torch.from_numpy(np.stack(rows)) if rows and dim else torch.zeros(n, dim)
