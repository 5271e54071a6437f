"""Saving and restoring a training run's state: nets, EMA, optimizers, RNG states, the step and batch count.

The file format itself is ``gankit.formats`` (written and parsed there only); this module gathers what a
checkpoint holds and puts it back, checks that a resumed run has the saved run's settings, and prunes old
checkpoints. N steps + resume + M steps gives the weights of N + M steps bit for bit on the CPU.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from gankit.config import SECTIONS, RunConfig
from gankit.files import unprefixed
from gankit.formats import list_checkpoints, read_checkpoint, write_checkpoint


class TrainingError(RuntimeError):
    """Training cannot start or cannot go on (bad run folder, divergence)."""


def optimizer_to_tensors(prefix: str, optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], str]:
    """Split an optimizer state dict into tensors and JSON-able parameter groups."""
    state = optimizer.state_dict()
    tensors = {}
    for index, values in state["state"].items():
        for name, value in values.items():
            tensors[f"{prefix}.{index}.{name}"] = torch.as_tensor(value)
    return tensors, json.dumps(state["param_groups"])


def optimizer_from_tensors(prefix: str, optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor],
                           groups: str) -> None:  # fmt: skip
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


def rng_state(z_generator: torch.Generator, device: torch.device) -> dict[str, torch.Tensor]:
    state = {"rng.torch": torch.get_rng_state(), "rng.z": z_generator.get_state()}
    if device.type == "cuda":
        state["rng.cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(tensors: dict[str, torch.Tensor], z_generator: torch.Generator, device: torch.device) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    z_generator.set_state(tensors["rng.z"])
    if device.type == "cuda" and "rng.cuda" in tensors:
        torch.cuda.set_rng_state(tensors["rng.cuda"], device)


@dataclasses.dataclass
class TrainingState:
    """Everything a checkpoint saves and restores."""

    G: nn.Module
    D: nn.Module
    ema: object | None  # training.ema.EMA
    opt_G: torch.optim.Optimizer
    opt_D: torch.optim.Optimizer
    z_generator: torch.Generator
    device: torch.device
    condition: object  # the variant's Condition: its description and tensors go into the file


def save_checkpoint(folder: Path, config: RunConfig, step: int, batches: int, state: TrainingState) -> Path:
    nets = {"G": state.G.state_dict(), "D": state.D.state_dict()}
    if state.ema is not None:
        nets["G_ema"] = state.ema.model.state_dict()
    optimizers = {"opt_G": optimizer_to_tensors("opt_G", state.opt_G), "opt_D": optimizer_to_tensors("opt_D", state.opt_D)}
    condition_tensors, condition_metadata = state.condition.export_parts()
    path = Path(folder) / f"ckpt-{step:08d}.safetensors"
    write_checkpoint(path, nets, optimizers, rng_state(state.z_generator, state.device), config.to_dict(), step,
                     batches, state.condition.describe(), condition_tensors, condition_metadata)  # fmt: skip
    return path


def load_checkpoint(path: Path, state: TrainingState, log: Callable[[str], None] = print) -> tuple[int, int]:
    """Restore ``state`` from a checkpoint; returns (step, batch count)."""
    tensors, metadata = read_checkpoint(path)
    state.G.load_state_dict(unprefixed("G", tensors))
    state.D.load_state_dict(unprefixed("D", tensors))
    if state.ema is not None:
        ema_state = unprefixed("G_ema", tensors)
        if not ema_state:  # EMA turned on for a continuation: the average starts from G's weights here
            log(f"{path.name} has no EMA weights: the EMA of G starts from G's weights at step {metadata['step']}")
        state.ema.model.load_state_dict(ema_state or state.G.state_dict())
    on_device = {k: v.to(state.device) for k, v in tensors.items()}
    optimizer_from_tensors("opt_G", state.opt_G, on_device, metadata["opt_G.param_groups"])
    optimizer_from_tensors("opt_D", state.opt_D, on_device, metadata["opt_D.param_groups"])
    set_rng_state(tensors, state.z_generator, state.device)
    return int(metadata["step"]), int(metadata["batches"])


def prune_checkpoints(folder: Path, keep: int) -> None:
    for _, path in list_checkpoints(folder)[:-keep]:
        path.unlink(missing_ok=True)


def without_completion(config: RunConfig) -> RunConfig:
    """The model section with the data-derived fields removed, for comparing configs."""
    filled = ("resolution", "channels", "shape", "output", "d_q_outputs", "stage1")
    model = {k: v for k, v in config.model.items() if k not in filled}
    return dataclasses.replace(config, model=model)


def check_resume_config(saved: RunConfig, requested: RunConfig) -> list[str]:
    """Sections that define the model and data must match; returns the train keys that changed."""
    old, new = saved.to_dict(), requested.to_dict()
    for section in SECTIONS:
        if old[section] != new[section]:
            raise TrainingError(
                f"cannot resume: the {section} section differs from the run's config.json "
                f"(saved {old[section]}, requested {new[section]}); "
                "resume with the run folder as the config (gankit train RUN_DIR --resume)"
            )
    changed = []
    for key, before in old["train"].items():
        after = new["train"][key]
        if before != after:
            if key in ("seed", "batch_size"):
                raise TrainingError(f"cannot resume with a different train.{key} ({before} -> {after})")
            changed.append(f"train.{key}: {before} -> {after}")
    return changed


def resumed_config(run_dir: Path, config: RunConfig, log: Callable[[str], None]) -> RunConfig:
    """The config a resumed run continues with: the saved one, with the requested train section (checked)."""
    saved = RunConfig.from_dict(json.loads((run_dir / "config.json").read_text()))
    requested = config
    completed = {k: saved.model.get(k) for k, v in config.model.items() if v is None}  # "from the data": saved values
    if completed:
        requested = dataclasses.replace(config, model={**config.model, **completed})
    for change in check_resume_config(without_completion(saved), without_completion(requested)):
        log(f"resume: {change}")
    return dataclasses.replace(saved, train=config.train, description=config.description or saved.description)
