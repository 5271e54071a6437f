"""Files gankit writes and reads: atomic writes, safetensors with JSON metadata, the cache folder.

A core module (it imports only ``gankit.errors`` and ``gankit.ownership``). Every write goes to a temporary file in
the same folder,
is fsynced and renamed into place, so a crash never leaves half a file under the final name (a killed
process leaves the temporary file, ``.NAME.*.tmp``, which :func:`remove_stale_temporaries` clears).
No write goes over a file of a run's training state unless this process trains that run
(``gankit.ownership``).
Tensors are stored as safetensors (no pickled code); metadata values are JSON strings. Every tensor file
records a SHA-256 of its tensors (names, dtypes, shapes and bytes) and of its other metadata entries in its
metadata (``checksum``), checked when it is read: a flipped bit, in a weight or in the config, is an error,
not a silently different model.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as safetensors_bytes

from gankit.errors import CheckpointError
from gankit.ownership import check_writable


def temporary_path(path: Path) -> Path:
    """A fresh temporary file beside ``path`` (``.NAME.*.tmp``: what an interrupted write leaves, and what
    :func:`remove_stale_temporaries` clears)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    return Path(tmp)


@contextlib.contextmanager
def atomic_output(path: Path | str) -> Iterator[Path]:
    """For writers that take a file name (ONNX, torch.export, NumPy): yields a temporary path beside ``path``
    to write; when the block ends without an error it is renamed to ``path`` (else removed), so ``path`` is
    never half written and an earlier file of that name survives a failure."""
    path = Path(path)
    check_writable(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    check_writable(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = None
    try:  # everything from the temporary file's creation on: an interrupt at any point removes it
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the permissions open() would
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if tmp is not None:
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


def write_npz(path: Path, **arrays) -> None:
    """A compressed .npz, written atomically (the arrays are NumPy's own format: no pickles)."""
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def write_json(path: Path, payload: Any) -> None:
    atomic_write_text(path, json.dumps(payload, indent=2) + "\n")


def hash_tensors(digest, tensors: dict[str, torch.Tensor]):
    for name in sorted(tensors):
        value = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}|{str(value.dtype)}|{tuple(value.shape)}|".encode())
        digest.update(value.reshape(-1).view(torch.uint8).numpy().data)
    return digest


def tensor_checksum(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over every tensor's name, dtype, shape and bytes, in name order: ``"sha256:<hex>"``."""
    return "sha256:" + hash_tensors(hashlib.sha256(), tensors).hexdigest()


def file_checksum(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> str:
    """The ``checksum`` entry of a file: SHA-256 over its tensors (as :func:`tensor_checksum`) and then every
    other metadata entry (JSON of the sorted (key, value) pairs)."""
    digest = hash_tensors(hashlib.sha256(), tensors)
    digest.update(json.dumps(sorted((k, v) for k, v in metadata.items() if k != "checksum")).encode())
    return "sha256:" + digest.hexdigest()


def serialize_tensors(tensors: dict[str, torch.Tensor], metadata: dict[str, Any], where: Path | str) -> bytes:
    """The safetensors bytes of ``tensors`` with JSON-encoded metadata values (strings stay as they are) and
    the file's checksum; a CheckpointError when it cannot be serialized (e.g. a header over 100 MB)."""
    flat = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()}
    meta["checksum"] = file_checksum(flat, meta)
    try:
        return safetensors_bytes(flat, metadata=meta)
    except (SafetensorError, ValueError) as error:
        size = sum(len(k) + len(v) for k, v in meta.items())
        raise CheckpointError(
            f"{where}: cannot be written ({error}; {size:,} bytes of metadata); "
            "a config this large does not fit a file header: shorten it (e.g. the description)"
        ) from error


def write_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, Any]) -> None:
    """Write tensors with JSON-encoded metadata values and the file's checksum, atomically."""
    atomic_write_bytes(path, serialize_tensors(tensors, metadata, path))


UNREADABLE = (SafetensorError, OSError, MemoryError, OverflowError, ValueError)


def read_metadata(path: Path) -> dict[str, str]:
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except UNREADABLE as error:
        raise CheckpointError(f"{path}: not a readable safetensors file ({error})") from error


def read_tensors(path: Path, expected_format: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a safetensors file whose metadata ``format`` is ``expected_format``, its
    checksum verified (files written before checksums were recorded load with a warning)."""
    metadata = read_metadata(path)
    if metadata.get("format") != expected_format:
        raise CheckpointError(f"{path}: format is {metadata.get('format')!r}, expected {expected_format!r}")
    try:
        with safe_open(str(path), framework="pt") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except UNREADABLE as error:
        raise CheckpointError(f"{path}: not a readable safetensors file ({error})") from error
    recorded = metadata.get("checksum")
    if recorded is None:
        warnings.warn(
            f"{path} was written before gankit recorded checksums: its tensors cannot be verified", stacklevel=2
        )
    elif file_checksum(tensors, metadata) != recorded:
        raise CheckpointError(
            f"{path}: its data does not match the checksum recorded when it was written; "
            "the file is corrupt (a damaged disk or copy) or was altered: use another checkpoint or export"
        )
    return tensors, metadata


def describe_names(names: list[str], limit: int = 4) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def read_weights_file(path: Path | str, what: str, hint: str) -> dict[str, torch.Tensor]:
    """The tensors of a weights file a user converted for gankit (not one gankit wrote: no checksum to verify):
    a readable .safetensors file, else a CheckpointError naming ``what`` and ``hint`` (how to make one)."""
    from safetensors.torch import load_file

    path = Path(path).expanduser()
    if not path.is_file() or path.suffix != ".safetensors":
        raise CheckpointError(f"{path} is not a .safetensors file of {what} ({hint}); gankit reads no pickles")
    try:
        return load_file(str(path))
    except Exception as error:  # a third-party reader on arbitrary bytes
        raise CheckpointError(f"{path}: not a readable safetensors file ({error})") from None


def check_state(file: Path | str, what: str, got: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    """Check tensors read from ``file`` against what a rebuilt module (or optimizer) expects, before any is
    used: the same names, shapes and dtypes, and finite values in floating-point tensors."""
    problems = []
    missing = sorted(set(expected) - set(got))
    unexpected = sorted(set(got) - set(expected))
    if missing:
        problems.append(f"missing {describe_names(missing)}")
    if unexpected:
        problems.append(f"unexpected {describe_names(unexpected)}")
    for name in sorted(set(expected) & set(got)):
        want, have = expected[name], got[name]
        if tuple(have.shape) != tuple(want.shape):
            problems.append(f"{name} has shape {tuple(have.shape)}, expected {tuple(want.shape)}")
        elif have.dtype != want.dtype:
            problems.append(f"{name} is {have.dtype}, expected {want.dtype}")
        elif have.is_floating_point() and not bool(torch.isfinite(have).all()):
            problems.append(f"{name} holds NaN or infinite values")
    if problems:
        raise CheckpointError(
            f"{file}: {what} do not fit the model its config describes: {'; '.join(problems[:6])}"
            + (f" (and {len(problems) - 6} more problems)" if len(problems) > 6 else "")
        )


def parse_json(text: str, where: Path | str, error: type[Exception] = CheckpointError) -> Any:
    """JSON from ``text``; an ``error`` naming ``where`` and the position of the mistake."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as failure:
        raise error(
            f"{where}: not valid JSON ({failure.msg} at line {failure.lineno}, column {failure.colno})"
        ) from None
    except RecursionError:
        raise error(f"{where}: not valid JSON (nested too deeply)") from None


def read_text(path: Path, error: type[Exception] = CheckpointError) -> str:
    """A UTF-8 text file; an ``error`` naming the file for a missing file or bytes that are not UTF-8."""
    try:
        data = Path(path).read_bytes()
    except OSError as failure:
        raise error(f"{path}: cannot read ({failure.strerror or failure})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as failure:
        bad = data[failure.start : failure.start + 1].hex()
        raise error(
            f"{path}: not UTF-8 text (byte 0x{bad} at offset {failure.start}); save it as UTF-8, e.g. "
            f"`iconv -f latin1 -t utf-8 {Path(path).name}`"
        ) from None


def read_json(path: Path, error: type[Exception] = CheckpointError) -> Any:
    return parse_json(read_text(path, error), path, error)


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete the temporary files that killed writes left in ``folder`` (only while no other process can be
    writing there: the caller holds the folder's lock)."""
    removed = []
    for path in Path(folder).glob(".*.tmp"):
        if path.is_file():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def prefixed(prefix: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v for k, v in state.items()}


def unprefixed(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    start = len(prefix) + 1
    return {k[start:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}


def cache_dir() -> Path:
    """gankit's cache: $GANKIT_CACHE, else $XDG_CACHE_HOME/gankit, else ~/.cache/gankit."""
    if os.environ.get("GANKIT_CACHE"):
        return Path(os.environ["GANKIT_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "gankit"
