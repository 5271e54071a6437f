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
from gankit.errors import CheckpointError, ConfigError, TrainingError
from gankit.files import check_state, describe_names, serialize_tensors, unprefixed
from gankit.formats import checkpoint_payload, list_checkpoints, metadata_field, read_checkpoint, write_checkpoint
from gankit.monitor import Monitor
from gankit.training.distributed import Ranks, check_identical, gather_tensors
from gankit.training.generator_file import export_generator
from gankit.training.run_folder import SaveError, check_disk_space, create_folder


def optimizer_to_tensors(prefix: str, optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], str]:
    """Split an optimizer state dict into tensors and JSON-able parameter groups."""
    state = optimizer.state_dict()
    tensors = {}
    for index, values in state["state"].items():
        for name, value in values.items():
            tensors[f"{prefix}.{index}.{name}"] = torch.as_tensor(value)
    return tensors, json.dumps(state["param_groups"])


ADAM_STATE = ("step", "exp_avg", "exp_avg_sq")


def check_optimizer_tensors(
    file: Path, prefix: str, optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], saved_groups: list
) -> dict[int, dict[str, torch.Tensor]]:
    """The optimizer state in ``tensors``, checked against ``optimizer`` (Adam) before any of it is used:
    parameter groups of the same structure, and per parameter either no state (never updated) or exactly a
    scalar float32 ``step`` (a whole number >= 0) and two moments of the parameter's shape and dtype (the
    second >= 0). A moment of the wrong size would make the fused update write past its buffer."""
    current = optimizer.state_dict()["param_groups"]
    if (
        not isinstance(saved_groups, list)
        or len(saved_groups) != len(current)
        or any(not isinstance(s, dict) or s.get("params") != c["params"] for s, c in zip(saved_groups, current))
    ):
        raise CheckpointError(f"{file}: {prefix}'s parameter groups do not match the model its config describes")
    params = [p for group in optimizer.param_groups for p in group["params"]]
    expected, state = {}, {}
    for key in unprefixed(prefix, tensors):
        index_text, _, name = key.partition(".")
        if not index_text.isdigit() or int(index_text) >= len(params):
            raise CheckpointError(f"{file}: unexpected optimizer entry {prefix}.{key}")
        index = int(index_text)
        param = params[index]
        for entry in ADAM_STATE:
            shape, dtype = ((), torch.float32) if entry == "step" else (param.shape, param.dtype)
            expected[f"{index}.{entry}"] = torch.empty(shape, dtype=dtype, device="meta")
    got = unprefixed(prefix, tensors)
    check_state(file, f"{prefix}'s state", got, expected)
    for key, value in got.items():
        index_text, _, name = key.partition(".")
        if name == "step" and (float(value) < 0 or float(value) != int(float(value))):
            raise CheckpointError(f"{file}: {prefix}.{key} is {float(value)}, not a step count")
        if name == "exp_avg_sq" and bool((value < 0).any()):
            raise CheckpointError(f"{file}: {prefix}.{key} holds negative values (a second moment is >= 0)")
        state.setdefault(int(index_text), {})[name] = value
    return state


def load_optimizer_state(
    optimizer: torch.optim.Optimizer, state: dict[int, dict[str, torch.Tensor]], device: torch.device
) -> None:
    """Put checked state into ``optimizer``, keeping its own parameter groups (the run's config sets them)."""
    groups = optimizer.state_dict()["param_groups"]
    on_device = {i: {k: v.to(device) for k, v in values.items()} for i, values in state.items()}
    optimizer.load_state_dict({"state": on_device, "param_groups": groups})
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


def rank_key(name: str, rank: int) -> str:
    """Where rank ``rank``'s generator state ``rng.<name>`` is saved: rank 0 (and a one-process run) as
    ``rng.<name>``, rank r as ``rng.rank<r>.<name>``. The z generator is shared: ``rng.z`` only."""
    return f"rng.{name}" if rank == 0 else f"rng.rank{rank}.{name}"


def all_rng_states(state: "TrainingState") -> dict[str, torch.Tensor]:
    """Every process's generator states, gathered (a collective: every process calls it)."""
    own = rng_state(state.z_generator, state.device)
    everyone = gather_tensors(state.ranks, {k: v for k, v in own.items() if k != "rng.z"})
    saved = {"rng.z": own["rng.z"]}
    for rank, part in enumerate(everyone):
        saved.update({rank_key(k.split(".", 1)[1], rank): v for k, v in part.items()})
    return saved


def set_rng_state(
    file: Path,
    tensors: dict[str, torch.Tensor],
    z_generator: torch.Generator,
    device: torch.device,
    rank: int = 0,
    log: Callable[[str], None] = print,
) -> None:
    """Restore this process's generator states (rank ``rank``'s entries). A rank the checkpoint has no state
    for (a run continued with more processes) starts its own stream from a derived seed, with a note."""
    if rank and rank_key("torch", rank) not in tensors:
        log(
            f"{file.name} holds no random state for process {rank} (written by fewer processes): it starts a fresh "
            "stream; the continuation is not bit-identical to an uninterrupted run"
        )
        tensors = {**tensors, rank_key("torch", rank): torch.get_rng_state()}
        if device.type == "cuda":
            tensors[rank_key("cuda", rank)] = torch.cuda.get_rng_state(device)
    expected = {
        ("rng.z" if k == "rng.z" else rank_key(k.split(".", 1)[1], rank)): v
        for k, v in rng_state(z_generator, device).items()
    }
    if device.type == "cuda" and rank_key("cuda", rank) not in tensors:  # a CPU run continued on a GPU
        expected.pop(rank_key("cuda", rank))
    got = {k: v for k, v in tensors.items() if k in expected}
    check_state(file, "random number generator states", got, expected)
    try:
        torch.set_rng_state(got[rank_key("torch", rank)])
        z_generator.set_state(got["rng.z"])
        if rank_key("cuda", rank) in got:
            torch.cuda.set_rng_state(got[rank_key("cuda", rank)], device)
    except RuntimeError as error:
        raise CheckpointError(f"{file}: damaged random number generator state ({error})") from error


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
    monitor: Monitor = dataclasses.field(default_factory=Monitor)
    ranks: Ranks = Ranks()  # this process's place in a several-process run

    def weights(self) -> dict[str, nn.Module]:
        nets = {"G": self.G, "D": self.D}
        if self.ema is not None:
            nets["G_ema"] = self.ema.model
        return nets

    def non_finite(self) -> list[str]:
        """The nets holding a NaN or infinite parameter or buffer."""
        return [
            name
            for name, net in self.weights().items()
            if not all(bool(torch.isfinite(v).all()) for v in net.state_dict().values() if v.is_floating_point())
        ]


def checkpoint_parts(config: RunConfig, step: int, batches: int, state: TrainingState) -> dict:
    """The arguments of ``formats.write_checkpoint`` for ``state`` (also used to check, before training, that
    a checkpoint of this run can be written at all)."""
    optimizers = {
        "opt_G": optimizer_to_tensors("opt_G", state.opt_G),
        "opt_D": optimizer_to_tensors("opt_D", state.opt_D),
    }
    condition_tensors, condition_metadata = state.condition.export_parts()
    return dict(
        nets={name: net.state_dict() for name, net in state.weights().items()},
        optimizers=optimizers,
        rng=all_rng_states(state),
        config=config.to_dict(),
        step=step,
        batches=batches,
        condition=state.condition.describe(),
        condition_tensors=condition_tensors,
        condition_metadata=condition_metadata,
        run=run_record(state),
    )


def run_record(state: TrainingState) -> dict:
    """The run's own state beside the nets (metadata "run"): the training monitor's, and how many processes
    trained it. Older checkpoints kept the monitor at the top level of the metadata; both are read."""
    return {"monitor": state.monitor.state_dict(), "world_size": state.ranks.world}


def saved_run_record(path: Path, metadata: dict[str, str]) -> dict:
    record = metadata_field(path, metadata, "run", dict, None)
    if record is None:  # written before the run record had its own entry
        record = {
            "monitor": metadata_field(path, metadata, "monitor", dict, None),
            "world_size": metadata_field(path, metadata, "world_size", int, 1),
        }
    return record


def save_checkpoint(folder: Path, step: int, parts: dict) -> Path:
    """Write ``checkpoint_parts(...)`` as ``folder/ckpt-<step>.safetensors``."""
    path = Path(folder) / f"ckpt-{step:08d}.safetensors"
    write_checkpoint(path, **parts)
    return path


def load_checkpoint(
    path: Path,
    state: TrainingState,
    log: Callable[[str], None] = print,
    stored: tuple[dict[str, torch.Tensor], dict[str, str]] | None = None,
) -> tuple[int, int]:
    """Restore ``state`` from a checkpoint (or from ``stored``, its tensors and metadata already read);
    returns (step, batch count). Every tensor is checked against the rebuilt nets, optimizers and RNGs
    before any is used; a file that does not fit raises CheckpointError and leaves ``state`` untouched."""
    tensors, metadata = stored if stored is not None else read_checkpoint(path)
    step = metadata_field(path, metadata, "step", int)
    batches = metadata_field(path, metadata, "batches", int)
    nets = state.weights()
    ema_state = unprefixed("G_ema", tensors)
    for name, net in nets.items():
        if name == "G_ema" and not ema_state:
            continue
        check_state(path, f"the {name} weights", unprefixed(name, tensors), net.state_dict())
    groups = {}
    for name in ("opt_G", "opt_D"):
        groups[name] = metadata_field(path, metadata, f"{name}.param_groups", list, None)
        if groups[name] is None:
            raise CheckpointError(
                f"{path}: no {name} state (metadata '{name}.param_groups'); "
                "it is not a complete training checkpoint: resume needs one"
            )
    optimizers = {"opt_G": state.opt_G, "opt_D": state.opt_D}
    opt_state = {
        name: check_optimizer_tensors(path, name, optimizer, tensors, groups[name])
        for name, optimizer in optimizers.items()
    }
    condition_prefix = state.condition.describe().get("tensors")
    known = ("G.", "D.", "G_ema.", "opt_G.", "opt_D.", "rng.") + ((condition_prefix + ".",) if condition_prefix else ())
    strays = sorted(k for k in tensors if not k.startswith(known))
    if strays:
        raise CheckpointError(f"{path}: unexpected tensors {describe_names(strays)}; not a checkpoint of this run")
    monitor = saved_run_record(path, metadata).get("monitor")
    if monitor is not None:
        try:
            Monitor().load_state_dict(monitor)
        except ValueError as error:
            raise CheckpointError(f"{path}: {error}") from error
    # Everything checked: now put it in place.
    state.G.load_state_dict(unprefixed("G", tensors))
    state.D.load_state_dict(unprefixed("D", tensors))
    if state.ema is not None:
        if not ema_state:  # EMA turned on for a continuation: the average starts from G's weights here
            log(f"{path.name} has no EMA weights: the EMA of G starts from G's weights at step {step}")
        state.ema.model.load_state_dict(ema_state or state.G.state_dict())
    for name, optimizer in optimizers.items():
        load_optimizer_state(optimizer, opt_state[name], state.device)
    set_rng_state(path, tensors, state.z_generator, state.device, state.ranks.rank, log)
    if monitor is not None:
        state.monitor.load_state_dict(monitor)
    return step, batches


def prune_checkpoints(folder: Path, keep: int) -> None:
    for _, path in list_checkpoints(folder)[:-keep]:
        path.unlink(missing_ok=True)


def check_resume_config(saved: RunConfig, requested: RunConfig, source: Path | str = "the checkpoint") -> list[str]:
    """Sections that define the model and data must match the checkpoint's; returns the train keys that
    changed (allowed: steps, learning rates, logging...; not seed or batch size)."""
    old, new = saved.to_dict(), requested.to_dict()
    for section in SECTIONS:
        if old[section] != new[section]:
            keys = sorted(
                k for k in set(old[section]) | set(new[section]) if old[section].get(k) != new[section].get(k)
            )
            changes = ", ".join(f"{section}.{k}: {old[section].get(k)!r} -> {new[section].get(k)!r}" for k in keys[:4])
            raise TrainingError(
                f"cannot resume from {source}: the {section} section differs from the configuration saved in it "
                f"({changes}); resume with the run's own settings (gankit train RUN_DIR --resume), or start a "
                "new run in another --out"
            )
    changed = []
    for key, before in old["train"].items():
        after = new["train"][key]
        if before != after:
            if key in ("seed", "batch_size"):
                raise TrainingError(
                    f"cannot resume with a different train.{key} ({before} in {source}, "
                    f"{after} requested): the continuation would not be the same run"
                )
            changed.append(f"train.{key}: {before} -> {after}")
    return changed


def resumed_config(
    saved: RunConfig, config: RunConfig, log: Callable[[str], None], source: Path | str = "the checkpoint"
) -> RunConfig:
    """The config a resumed run continues with: the checkpoint's, with the requested train section (checked
    against the checkpoint's: config.json may have been edited since)."""
    requested = config
    # A model field left empty (None, {}) is filled when the run starts (from the data: resolution, channels; by
    # the objective: a Stage-II's first stage): the checkpoint's value stands for it. A field given is compared.
    completed = {k: saved.model.get(k) for k, v in config.model.items() if v is None or v == {}}
    if completed:
        requested = dataclasses.replace(config, model={**config.model, **completed})
    for change in check_resume_config(saved, requested, source):
        log(f"resume: {change}")
    return dataclasses.replace(saved, train=config.train, description=config.description or saved.description)


@dataclasses.dataclass
class ResumePoint:
    path: Path
    tensors: dict[str, torch.Tensor]
    metadata: dict[str, str]
    config: RunConfig
    step: int


def read_resume_point(path: Path) -> ResumePoint:
    """A checkpoint's tensors, metadata, config and step, verified (a CheckpointError otherwise)."""
    tensors, metadata = read_checkpoint(path)
    raw = metadata_field(path, metadata, "config", dict)
    try:
        config = RunConfig.from_dict(raw)
    except ConfigError as error:
        raise CheckpointError(f"{path}: the configuration it holds is not valid ({error})") from error
    return ResumePoint(path, tensors, metadata, config, metadata_field(path, metadata, "step", int))


def find_resume_point(checkpoint_dir: Path, log: Callable[[str], None]) -> ResumePoint:
    """The newest checkpoint that reads, verifies and carries a valid config. A damaged newer one is renamed
    ``*.damaged`` (kept, never picked again) with a warning; none usable is a TrainingError."""
    skipped: list[str] = []
    candidates = list_checkpoints(checkpoint_dir, skipped.append) if checkpoint_dir.is_dir() else []
    for line in skipped:
        log(line)
    if not candidates:
        if skipped:
            raise TrainingError(f"{checkpoint_dir}: no usable checkpoint to resume from:\n  " + "\n  ".join(skipped))
        raise TrainingError(f"{checkpoint_dir.parent}: no checkpoint to resume from; run without --resume to start")
    reasons = []
    for step, path in reversed(candidates):
        try:
            return read_resume_point(path)
        except CheckpointError as error:
            reasons.append(str(error))
            aside = path.with_suffix(".damaged")
            path.replace(aside)
            log(f"warning: {error}\n  (moved aside to {aside.name}; trying the checkpoint before it)")
    raise TrainingError(f"{checkpoint_dir}: no usable checkpoint to resume from:\n  " + "\n  ".join(reasons))


# ---------------------------------------------------------------------------------------------- saving a run


def last_checkpoint_note(checkpoint_dir: Path) -> str:
    existing = list_checkpoints(checkpoint_dir) if checkpoint_dir.is_dir() else []
    if existing:
        return f"the last good checkpoint (step {existing[-1][0]}) is intact in {checkpoint_dir}"
    return "no checkpoint was written before it"


def check_can_save(checkpoint_dir: Path, config: RunConfig, step: int, batches: int, state: TrainingState) -> None:
    """Before the first step: a checkpoint of this run can be serialized (its header fits) and the disk can
    hold train.keep_checkpoints of them plus the export, so a run does not train for hours and then fail
    to save."""
    parts = checkpoint_parts(config, step, batches, state)  # every process: it gathers their RNG states
    if not state.ranks.main:
        return
    create_folder(checkpoint_dir, "checkpoint folder")
    checkpoint_size = len(serialize_tensors(*checkpoint_payload(**parts), checkpoint_dir / "ckpt-*.safetensors"))
    export_size = sum(t.numel() * t.element_size() for t in state.G.state_dict().values())
    existing = sum(path.stat().st_size for _, path in list_checkpoints(checkpoint_dir))
    keep = config.train.keep_checkpoints
    needed = (keep + 1) * checkpoint_size + 2 * export_size - existing
    check_disk_space(checkpoint_dir, needed, f"{keep} checkpoints of {checkpoint_size / 2**20:,.1f} MiB and the export")


def save_run_state(
    run_dir: Path, config: RunConfig, step: int, batches: int, state: TrainingState, sampler: nn.Module
) -> None:
    """The checkpoint, then the export. A failed write (a full disk, a removed folder) leaves the previous
    file in place (writes are atomic) and stops the run with a SaveError that says what is intact. Every
    process takes part (their RNG states go into the checkpoint; their weights must be identical); process 0
    writes."""
    checkpoint_dir = run_dir / "checkpoints"
    check_identical(state.ranks, state.weights(), step)
    parts = checkpoint_parts(config, step, batches, state)
    if not state.ranks.main:
        return
    try:
        save_checkpoint(checkpoint_dir, step, parts)
    except OSError as error:
        raise SaveError(
            f"could not write the checkpoint of step {step} in {checkpoint_dir} "
            f"({error.strerror or error}); {last_checkpoint_note(checkpoint_dir)}. Fix the cause "
            "(free disk space) and continue with --resume"
        ) from error
    prune_checkpoints(checkpoint_dir, config.train.keep_checkpoints)
    export = run_dir / "generator.safetensors"
    try:
        export_generator(export, sampler, state.condition, config, step, state.ema is not None)
    except OSError as error:
        raise SaveError(
            f"could not write {export} ({error.strerror or error}); the checkpoint of step {step} "
            f"is saved in {checkpoint_dir} and the previous export is intact. Fix the cause (free "
            "disk space) and continue with --resume"
        ) from error
