"""Devices and per-sample seeding: the draws that make sample k of a seed the same whatever the batching.

A leaf module. Sample k of seed s takes its latent from a NumPy generator seeded with the sequence (s, k);
other per-sample draws use (s, k, stream) with a stream number per kind of draw (1: InfoGAN's codes,
2: conditioning-augmentation noise), so no draw depends on n, on the batch size or on another draw.
"""

from __future__ import annotations

import numpy as np
import torch

STREAM_CODES = 1
STREAM_CONDITION_NOISE = 2


def fast_bf16(device: torch.device) -> str:
    """Why bf16 arithmetic is fast on ``device`` ("" when it is not): GPUs with bf16 tensor cores (compute
    capability 8.0 and up), CPUs with AMX or AVX-512 BF16 units."""
    if device.type == "cuda":
        major, _ = torch.cuda.get_device_capability(device)
        return f"{torch.cuda.get_device_name(device)} has bf16 tensor cores" if major >= 8 else ""
    if device.type == "cpu":
        if getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)():
            return "this CPU has AMX units"
        if getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)():
            return "this CPU has AVX-512 BF16"
    return ""


def resolve_precision(setting: str, device: torch.device) -> tuple[str, str]:
    """``train.precision`` as run: "auto" becomes bf16 where the hardware computes it fast, else fp32;
    returns (precision, why) (why: "" when the setting was explicit)."""
    if setting != "auto":
        return setting, ""
    reason = fast_bf16(device)
    return ("bf16", reason) if reason else ("fp32", f"no fast bf16 units on {device}")


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' -> CUDA when available, else CPU; anything else is checked and returned."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise ValueError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available here; use device=cpu")
    return device


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
