"""Which files belong to a run's training, and who may write over them (no torch here: the CLI checks its
output paths with this before loading anything).

A run folder's training state (:data:`RUN_FILES`, and everything in :data:`RUN_FOLDERS`) is written only by
the process that holds the folder (:func:`writing_run`, taken by the training for its whole run). Every other
write there is refused before anything is written (:func:`check_writable`, called by gankit's atomic writes
and by the CLI's output-path check): ``gankit export RUN --out RUN/generator.safetensors`` cannot break a run.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

from gankit.errors import UsageError

RUN_FILES = (
    "config.json",
    "train_log.jsonl",
    "generator.safetensors",
    "samples.png",
    "losses.png",
    "progress.gif",
    "metrics.jsonl",
    "skipped_files.txt",
    ".lock",
)
RUN_FOLDERS = ("checkpoints", "samples", "best")
_held_runs: set[Path] = set()


def is_run_folder(folder: Path) -> bool:
    if not (folder / "config.json").is_file():
        return False
    return (folder / "checkpoints").is_dir() or (folder / "generator.safetensors").is_file()


def owning_run(path: Path | str) -> Path | None:
    """The run folder whose training state ``path`` would be (an existing run's config, log, checkpoints,
    export, best generator, sample grids), or None."""
    path = Path(path).expanduser()
    path = path.parent.resolve() / path.name
    if (path.name in RUN_FILES or path.name in RUN_FOLDERS) and is_run_folder(path.parent):
        return path.parent
    if path.parent.name in RUN_FOLDERS and is_run_folder(path.parent.parent):
        return path.parent.parent
    return None


@contextlib.contextmanager
def writing_run(run_dir: Path) -> Iterator[None]:
    """This process owns ``run_dir`` (it trains there): its writes may replace the run's own files."""
    run_dir = Path(run_dir).resolve()
    _held_runs.add(run_dir)
    try:
        yield
    finally:
        _held_runs.discard(run_dir)


def check_writable(path: Path | str) -> None:
    """A UsageError, before anything is written, when ``path`` is part of a run's training state and this
    process is not that run's training."""
    run = owning_run(path)
    if run is not None and run not in _held_runs:
        raise UsageError(
            f"{path} belongs to the run in {run} (gankit writes there only while training it); "
            "writing over it would break the run: choose another output path"
        )
