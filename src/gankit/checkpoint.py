"""Checkpoints and generator exports: safetensors tensors + JSON metadata, no pickled code.

A training checkpoint (``checkpoints/ckpt-<step>.safetensors``) holds G, D, the
EMA of G, both optimizers' states and every RNG state, with the resolved run
config, the step and the batch count in its metadata. A generator export
(``generator.safetensors``) holds only G's (or EMA G's) tensors and the config:
everything :func:`gankit.load_generator` needs. The step is always read from
metadata, never from a file name. Every write is atomic: a temporary file in
the same folder, fsync, rename.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as safetensors_bytes

FORMAT_CHECKPOINT = "gankit-checkpoint-1"
FORMAT_GENERATOR = "gankit-generator-1"


class CheckpointError(ValueError):
    """A checkpoint or export is missing, corrupt or of another format."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the permissions open() would
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def write_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, Any]) -> None:
    """Write tensors with JSON-encoded metadata values, atomically."""
    flat = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()}
    atomic_write_bytes(path, safetensors_bytes(flat, metadata=meta))


def read_metadata(path: Path) -> dict[str, str]:
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError) as error:
        raise CheckpointError(f"{path}: not a readable safetensors file ({error})") from error


def read_tensors(path: Path, expected_format: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError) as error:
        raise CheckpointError(f"{path}: not a readable safetensors file ({error})") from error
    if metadata.get("format") != expected_format:
        raise CheckpointError(
            f"{path}: format is {metadata.get('format')!r}, expected {expected_format!r}"
        )
    return tensors, metadata


def prefixed(prefix: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v for k, v in state.items()}


def unprefixed(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    start = len(prefix) + 1
    return {k[start:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}


def optimizer_to_tensors(prefix: str, optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], str]:
    """Split an optimizer state dict into tensors and JSON-able parameter groups."""
    state = optimizer.state_dict()
    tensors = {}
    for index, values in state["state"].items():
        for name, value in values.items():
            tensors[f"{prefix}.{index}.{name}"] = torch.as_tensor(value)
    return tensors, json.dumps(state["param_groups"])


def optimizer_from_tensors(
    prefix: str, optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], groups: str
) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in unprefixed(prefix, tensors).items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": json.loads(groups)})
    # Saved tensors are contiguous; give each moment buffer its parameter's memory
    # layout again (channels-last), or the fused update no longer matches bit for bit.
    for param, values in optimizer.state.items():
        for name, value in values.items():
            if torch.is_tensor(value) and value.shape == param.shape:
                values[name] = torch.empty_like(param, dtype=value.dtype).copy_(value)


def list_checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """(step, path) of every checkpoint in ``folder``, oldest first; steps come from metadata."""
    found = []
    for path in Path(folder).glob("*.safetensors"):
        try:
            metadata = read_metadata(path)
        except CheckpointError:
            continue
        if metadata.get("format") == FORMAT_CHECKPOINT:
            found.append((int(metadata["step"]), path))
    return sorted(found)


def export_generator(path: Path, G: torch.nn.Module, config: dict[str, Any], step: int, ema: bool,
                     text_encoder: torch.nn.Module | None = None) -> None:  # fmt: skip
    """G's tensors with its config, step and EMA flag; a text-to-image G also carries its ``text_encoder``
    (tensors ``text_encoder.*`` and metadata ``text_encoder``), so the export alone turns captions into images."""
    from gankit import __version__

    tensors = dict(G.state_dict())
    metadata = {"format": FORMAT_GENERATOR, "config": config, "step": step, "ema": ema, "gankit_version": __version__}
    if text_encoder is not None:
        from gankit.text import text_encoder_metadata

        tensors.update(prefixed("text_encoder", text_encoder.state_dict()))
        metadata["text_encoder"] = text_encoder_metadata(text_encoder)
    write_tensors(path, tensors, metadata)
