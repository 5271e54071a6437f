"""A run folder is owned by one training process at a time.

:func:`hold_run_folder` creates the folder (a clear error when ``--out`` is a file or not writable), takes an
exclusive ``flock`` on ``RUN/.lock`` (POSIX; the kernel releases it when the process ends, however it ends,
so a crashed run never leaves the folder stuck), writes the owner's pid, host and start time into it for
the message a second process gets, and removes the temporary files that killed writes left behind.
Then it checks that the disk can hold the run's checkpoints.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import os
import shutil
import socket
from pathlib import Path
from typing import Callable, Iterator

from gankit.errors import TrainingError
from gankit.files import remove_stale_temporaries
from gankit.ownership import writing_run


class RunFolderBusy(TrainingError):
    """Another process is training in this run folder."""


class SaveError(TrainingError):
    """A checkpoint or export could not be written (the previous checkpoint is intact)."""


def create_folder(folder: Path, what: str = "run folder") -> None:
    """``mkdir -p`` with a TrainingError that says why it failed and what to do."""
    if folder.exists() and not folder.is_dir():
        raise TrainingError(f"the {what} {folder} is a file, not a folder; choose another --out")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise TrainingError(
            f"cannot create the {what} {folder} ({error.strerror or error}); choose another --out"
        ) from None


@contextlib.contextmanager
def hold_run_folder(run_dir: Path, log: Callable[[str], None] = print) -> Iterator[None]:
    """Own ``run_dir`` for the duration of the block; a RunFolderBusy error at once when another process does."""
    create_folder(run_dir)
    lock_path = run_dir / ".lock"
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        raise TrainingError(
            f"cannot write in the run folder {run_dir} ({error.strerror or error}); "
            "check its permissions or choose another --out"
        ) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 512, 0).decode(errors="replace").strip() or "unknown"
            raise RunFolderBusy(
                f"{run_dir} is in use by another gankit training ({owner}); two runs in one folder would mix "
                "their checkpoints and logs: wait for it to end (or stop it), or choose another --out"
            ) from None
        os.ftruncate(fd, 0)
        started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}, since {started}\n".encode(), 0)
        for folder in run_subfolders(run_dir):
            removed = remove_stale_temporaries(folder)
            if removed:
                log(f"removed {len(removed)} temporary file(s) an interrupted write left in {folder}")
        try:
            with writing_run(run_dir):
                yield
        finally:  # a write cut short by a second Ctrl-C leaves no temporary file behind either
            for folder in run_subfolders(run_dir):
                remove_stale_temporaries(folder)
    finally:
        os.close(fd)  # releases the lock


def run_subfolders(run_dir: Path) -> list[Path]:
    """The folders of a run that gankit writes files into (those that exist)."""
    return [f for f in (run_dir, run_dir / "checkpoints", run_dir / "samples", run_dir / "best") if f.is_dir()]


def check_disk_space(folder: Path, needed: int, what: str) -> None:
    """A TrainingError before training starts when ``folder``'s disk has less than ``needed`` bytes free."""
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise TrainingError(
            f"the disk holding {folder} has {free / 2**20:,.1f} MiB free; {what} need about "
            f"{needed / 2**20:,.1f} MiB: free some space, lower train.keep_checkpoints, or choose "
            "another --out"
        )
