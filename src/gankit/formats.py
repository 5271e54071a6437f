"""The two file formats of a run, written and parsed here only: training checkpoints and generator exports.

Both are safetensors files (no pickled code) whose metadata says what they are:

- a **training checkpoint** (``checkpoints/ckpt-<step>.safetensors``, format ``gankit-checkpoint-1``):
  tensors ``G.*``, ``D.*``, ``G_ema.*`` (when EMA is on), ``opt_G.<i>.<name>``, ``opt_D.<i>.<name>``,
  ``rng.*`` and whatever the run's condition stores (``text_encoder.*``); metadata: the resolved config,
  step, batch count, both optimizers' parameter groups, the condition's description, gankit's version;
- a **generator export** (``generator.safetensors``, format ``gankit-generator-1``): G's (or EMA G's)
  tensors plus the condition's tensors; metadata: config, step, ``ema``, the condition's description
  (``condition``: what G takes besides z, e.g. ``{"kind": "labels", "num_classes": 10}``) and the
  condition's own entries (``text_encoder``: the encoder's name, options and vocabulary).

The step is always read from metadata, never from a file name. Files written before ``condition`` was
recorded (gankit before the redesign of issue 16) have none; readers then rebuild it from the config
(``gankit.variants.describe_condition``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable

import torch

import gankit
from gankit.errors import UsageError
from gankit.files import (
    CheckpointError,
    parse_json,
    prefixed,
    read_metadata,
    read_tensors,
    unprefixed,
    write_tensors,
)

FORMAT_CHECKPOINT = "gankit-checkpoint-1"
FORMAT_GENERATOR = "gankit-generator-1"


@dataclasses.dataclass
class GeneratorFile:
    """What an export or a checkpoint holds for sampling: G's weights and everything that rebuilds G."""

    file: Path
    config: dict[str, Any]  # the run's resolved config, as saved
    state: dict[str, torch.Tensor]  # G's (or EMA G's) state dict
    step: int
    ema: bool
    condition: dict[str, Any] | None  # the condition's description; None in files from before it was recorded
    condition_tensors: dict[str, torch.Tensor]  # what the condition stored (text encoder weights), names as saved
    metadata: dict[str, str]  # the raw metadata (condition entries such as "text_encoder" are JSON strings)
    note: str = ""  # which of a run's generators this is, in words (formats.locate_generator)


def metadata_field(file: Path, metadata: dict[str, str], key: str, kind: type, default: Any = ...) -> Any:
    """A JSON-encoded metadata entry of ``file`` checked to be of ``kind`` (int entries: >= 0); ``default``
    when it is absent (no default: a CheckpointError naming the missing entry)."""
    if key not in metadata:
        if default is not ...:
            return default
        raise CheckpointError(
            f"{file}: damaged metadata: no {key!r} entry; the file was not written by gankit or was altered"
        )
    value = parse_json(metadata[key], f"{file}: damaged metadata entry {key!r}")
    valid = isinstance(value, kind) and not (kind is int and (isinstance(value, bool) or value < 0))
    if not valid:
        raise CheckpointError(
            f"{file}: damaged metadata: {key!r} is {str(value)[:80]!r}, expected "
            f"{'a non-negative integer' if kind is int else 'a ' + kind.__name__}"
        )
    return value


def list_checkpoints(folder: Path, log: Callable[[str], None] | None = None) -> list[tuple[int, Path]]:
    """(step, path) of every readable checkpoint in ``folder``, oldest first; steps come from metadata. Files
    that are not readable checkpoints are skipped (and reported to ``log`` when given)."""
    found = []
    for path in Path(folder).glob("*.safetensors"):
        try:
            metadata = read_metadata(path)
            if metadata.get("format") != FORMAT_CHECKPOINT:
                raise CheckpointError(f"{path}: not a gankit checkpoint (format {metadata.get('format')!r})")
            found.append((metadata_field(path, metadata, "step", int), path))
        except CheckpointError as error:
            if log is not None:
                log(f"warning: skipping {error}")
    return sorted(found)


@dataclasses.dataclass
class GeneratorSource:
    """Which file a source names, and in words which of the run's generators that is."""

    file: Path
    note: str = ""  # "best: step 1,750 of 2,000 (fid 12.1; 13.3 at the last evaluation)"; empty for a plain file


SELECTORS = "best, last or a step number"


def split_source(source: str | Path) -> tuple[Path, str | None]:
    """``RUN`` -> (RUN, None); ``RUN@best`` / ``RUN@last`` / ``RUN@1500`` -> (RUN, "best" / "last" / "1500"). A
    path that exists as written is never split (a folder may have @ in its name)."""
    path = Path(source)
    if path.exists() or "@" not in path.name:
        return path, None
    base, _, which = str(source).rpartition("@")
    which = which.strip().lower()
    if which not in ("best", "last") and not which.isdigit():
        raise UsageError(f"{source}: after @ comes {SELECTORS} (RUN@best, RUN@last, RUN@1500), got {which!r}")
    if not Path(base).is_dir():
        raise UsageError(
            f"{source}: {base} is not a run folder "
            f"({'it does not exist' if not Path(base).exists() else 'not a folder'}); "
            "RUN@... picks one of a run folder's generators"
        )
    return Path(base), which


def best_note(run: Path, file: Path) -> str:
    """What the best export is, from best/metrics.json and the run's last evaluation (metrics.jsonl)."""
    try:
        best = parse_json((run / "best" / "metrics.json").read_text(), run / "best" / "metrics.json")
        key = parse_json((run / "config.json").read_text(), run / "config.json")["train"].get("eval_best", "fid")
        value = best["metrics"][key]
        rows = [line for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
        last = parse_json(rows[-1], run / "metrics.jsonl") if rows else None
        tail = ""
        if last and last.get("step") != best.get("step") and key in last.get("metrics", {}):
            tail = f"; {last['metrics'][key]:.4g} at the last evaluation, step {last['step']:,}"
        return f"the best generator: step {best.get('step', 0):,}, {key} {value:.4g}{tail} (RUN@last: the last one)"
    except (
        OSError,
        KeyError,
        TypeError,
        ValueError,
        AttributeError,
        CheckpointError,
    ):  # a damaged side file: a plainer note
        return f"the best generator ({file})"


def locate_generator(source: str | Path) -> GeneratorSource:
    """The generator file ``source`` names: a file as it is; a run folder's best export (kept by the periodic
    evaluation, ``best/generator.safetensors``) when it has one, else its last export, else its last checkpoint;
    ``RUN@best``, ``RUN@last`` (the export written at the run's last step) or ``RUN@STEP`` (the export or the
    checkpoint of that step)."""
    path, which = split_source(source)
    if not path.is_dir():
        if not path.is_file():
            raise CheckpointError(f"{path} does not exist")
        return GeneratorSource(path)
    best, last = path / "best" / "generator.safetensors", path / "generator.safetensors"
    checkpoints = list_checkpoints(path / "checkpoints")
    if which in (None, "best") and best.is_file():
        return GeneratorSource(best, best_note(path, best))
    if which == "best":
        raise UsageError(
            f"{source}: this run kept no best generator (it did not evaluate during training: "
            "train.eval_every=0); use RUN@last or RUN@STEP"
        )
    if which in (None, "last"):
        if last.is_file():
            return GeneratorSource(last, "the last generator" if which else "")
        if checkpoints:
            return GeneratorSource(checkpoints[-1][1], f"the last checkpoint (step {checkpoints[-1][0]:,})")
        raise CheckpointError(f"{path}: no generator.safetensors and no checkpoints; is this a gankit run folder?")
    step = int(which)
    found: dict[int, Path] = {}  # an export before a checkpoint of the same step: the export is what sampling uses
    for export in (last, best):
        if export.is_file():
            found.setdefault(metadata_field(export, read_metadata(export), "step", int), export)
    for s, f in checkpoints:
        found.setdefault(s, f)
    if step in found:
        return GeneratorSource(found[step], f"step {step:,}")
    steps = ", ".join(f"{s:,}" for s in sorted(found)) or "none"
    raise UsageError(
        f"{source}: the run holds no generator of step {step:,}; steps it has: {steps} "
        "(train.keep_checkpoints sets how many checkpoints a run keeps)"
    )


def find_generator_file(path: str | Path) -> Path:
    """The file :func:`locate_generator` picks."""
    return locate_generator(path).file


def run_folder_of(source: Path) -> Path | None:
    """The run folder a source belongs to: itself, or the nearest parent (up to two) with a config.json."""
    source = split_source(source)[0]
    for folder in (source, source.parent, source.parent.parent):
        if folder.is_dir() and (folder / "config.json").is_file():
            return folder
    return None


def find_checkpoint_file(path: str | Path) -> Path:
    """A checkpoint file, or a run folder's last checkpoint."""
    path = Path(path)
    if path.is_dir():
        checkpoints = list_checkpoints(path / "checkpoints")
        if not checkpoints:
            raise CheckpointError(f"{path}: no checkpoints; D is kept only in training checkpoints")
        return checkpoints[-1][1]
    return path


def write_export(
    path: Path,
    G_state: dict[str, torch.Tensor],
    config: dict[str, Any],
    step: int,
    ema: bool,
    condition: dict[str, Any],
    condition_tensors: dict[str, torch.Tensor],
    condition_metadata: dict[str, Any],
) -> None:
    """A generator export: G's tensors, the condition's tensors (under their own prefixed names), metadata."""
    tensors = {**G_state, **condition_tensors}
    metadata = {
        "format": FORMAT_GENERATOR,
        "config": config,
        "step": step,
        "ema": ema,
        "condition": condition,
        "gankit_version": gankit.__version__,
        **condition_metadata,
    }
    write_tensors(path, tensors, metadata)


def checkpoint_payload(
    nets: dict[str, dict[str, torch.Tensor]],
    optimizers: dict[str, tuple[dict, str]],
    rng: dict[str, torch.Tensor],
    config: dict[str, Any],
    step: int,
    batches: int,
    condition: dict[str, Any],
    condition_tensors: dict[str, torch.Tensor],
    condition_metadata: dict[str, Any],
    run: dict[str, Any] | None = None,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The tensors and metadata of a training checkpoint. ``nets``: {"G": state, "D": state, "G_ema": state};
    ``optimizers``: {"opt_G": (tensors, param groups JSON), ...}; ``rng``: {"rng.torch": ..., ...}; ``run``: the
    run's own state (the monitor's, the process count), kept apart from the condition's entries."""
    tensors: dict[str, torch.Tensor] = {}
    for name, state in nets.items():
        tensors.update(prefixed(name, state))
    metadata: dict[str, Any] = {"format": FORMAT_CHECKPOINT, "config": config, "step": step, "batches": batches}
    for name, (optimizer_tensors, groups) in optimizers.items():
        tensors.update(optimizer_tensors)
        metadata[f"{name}.param_groups"] = groups
    tensors.update(rng)
    tensors.update(condition_tensors)
    metadata.update({"condition": condition, "gankit_version": gankit.__version__, **condition_metadata})
    if run is not None:
        metadata["run"] = run
    return tensors, metadata


def write_checkpoint(path: Path, *parts: Any, **named: Any) -> None:
    """A training checkpoint (the parts of :func:`checkpoint_payload`), written atomically."""
    write_tensors(path, *checkpoint_payload(*parts, **named))


def read_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """All tensors and the raw metadata of a training checkpoint."""
    return read_tensors(path, FORMAT_CHECKPOINT)


def read_generator(path: str | Path, ema: bool = True) -> GeneratorFile:
    """G's weights and description from an export, a run folder or a checkpoint (EMA G when present and
    ``ema``; a checkpoint's raw G otherwise)."""
    located = locate_generator(path)
    file = located.file
    kind = read_metadata(file).get("format")
    if kind == FORMAT_GENERATOR:
        tensors, metadata = read_tensors(file, FORMAT_GENERATOR)
        is_ema = metadata_field(file, metadata, "ema", bool, False)
        state = tensors
    elif kind == FORMAT_CHECKPOINT:
        tensors, metadata = read_tensors(file, FORMAT_CHECKPOINT)
        is_ema = ema and any(k.startswith("G_ema.") for k in tensors)
        state = unprefixed("G_ema" if is_ema else "G", tensors)
    else:
        raise CheckpointError(f"{file}: not a gankit generator export or checkpoint (format {kind!r})")
    config = metadata_field(file, metadata, "config", dict)
    step = metadata_field(file, metadata, "step", int)
    condition = metadata_field(file, metadata, "condition", dict, None)
    # A condition's tensors live under the prefix its description names ("tensors"); before descriptions were
    # recorded, the text encoder of a text-to-image run was the only such part, under "text_encoder".
    prefix = (condition or {}).get("tensors") or ("text_encoder" if "text_encoder" in metadata else "")
    condition_tensors = {k: v for k, v in tensors.items() if prefix and k.startswith(prefix + ".")}
    state = {k: v for k, v in state.items() if k not in condition_tensors}
    return GeneratorFile(file, config, state, step, is_ema, condition, condition_tensors, metadata, located.note)
