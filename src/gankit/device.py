"""Devices and arithmetic: which device a run uses and whether bf16 is fast there. A leaf module."""

from __future__ import annotations

import torch


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
