"""Data larger than memory: ``gankit data pack`` converts any source once into a memory-mapped uint8 array
plus an index; the ``packed`` source trains from it with flat memory use.

A packed folder holds

    images.npy      uint8 (N, C, H, W), a plain .npy file read with np.load(mmap_mode="c") (no pickle)
    labels.npy      int64 (N,), when the source has labels
    captions.json   one list of captions per image, when the source has captions
    index.json      format "gankit-packed-1", count, shape, class names, the source's data section

Packing an image folder streams: one image is decoded at a time into the map, so a folder of any size packs
in constant memory. Packing is resumable: ``images.npy.partial`` and ``progress.json`` (how many images are
done, and a hash of the file list) let an interrupted pack continue where it stopped; the finished files are
renamed into place and ``index.json`` is written last, so a folder with an ``index.json`` is complete. Files
that cannot be decoded (the reliability rules of ``sources.load_image_file``) are skipped and, once every file
has been tried, listed with a count (``skipped_files.txt`` keeps the list); with ``data.strict=true`` they stop
the pack instead, all listed at once.

Batches are gathered from the map by index (``Dataset.model_input``; the trainer's ``Prefetcher`` reads batch
k + 1 on a background thread), so ranks of a several-process run read disjoint rows, and pages the OS can
drop at any time are all that training adds to memory.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from gankit.data.dataset import DATASETS, DataError, Dataset, load_dataset
from gankit.data.sources import (
    ImageOptions,
    check_class_names,
    folder_images,
    load_image_file,
    report_unreadable,
    to_labels,
)
from gankit.files import atomic_write_text, read_json, write_json
from gankit.registry import ConfigError

FORMAT_PACKED = "gankit-packed-1"


def source_section(source: str, options: dict[str, Any]) -> dict[str, Any]:
    """The data section ``gankit data pack SOURCE`` means: a dataset name (``fashion-mnist``, ``cifar10``...),
    or a path: a folder of images, an .npz file, a caption CSV."""
    if source in DATASETS:
        return {"name": source, **options}
    path = Path(source).expanduser()
    if path.is_dir():
        return {"name": "folder", "path": str(path), **options}
    if path.suffix.lower() == ".npz":
        return {"name": "npz", "path": str(path), **options}
    if path.suffix.lower() == ".csv":
        return {"name": "captions", "path": str(path), **options}
    raise ConfigError(
        f"{source}: neither a dataset name ({', '.join(DATASETS.names())}) nor an image folder, .npz or caption .csv"
    )


def pack(section: dict[str, Any], out: Path, progress: bool = True, log: Callable[[str], None] = print) -> dict:
    """Pack the data ``section`` names into ``out``; returns the index. Image folders stream one image at a
    time (resumable); every other source is loaded once and written."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if (out / "index.json").is_file():
        raise DataError(f"{out} already holds a packed dataset (index.json); choose another --out")
    if section.get("name") == "folder":
        index = pack_folder(section, out, progress, log)
    else:
        dataset = load_dataset(section)
        if dataset.kind != "images":
            raise ConfigError(f"data pack packs images; {section['name']!r} holds {dataset.kind}")
        images = np.lib.format.open_memmap(
            out / "images.npy.partial", mode="w+", dtype=np.uint8, shape=tuple(dataset.x.shape)
        )
        images[:] = dataset.x.numpy()
        images.flush()
        del images
        labels = None if dataset.labels is None else dataset.labels.numpy()
        index = finish(
            out, tuple(dataset.x.shape), labels, dataset.class_names, dataset.extras.get("captions"), section
        )
    log(f"packed {index['count']:,} images of {'x'.join(map(str, index['shape']))} into {out}")
    return index


def pack_folder(section: dict[str, Any], out: Path, progress: bool, log: Callable[[str], None]) -> dict:
    _, options = DATASETS.resolve(section, "data")
    root, files, labels, classes = folder_images(options)
    shape = (len(files), options.channels, options.resolution, options.resolution)
    listing = hashlib.sha256(
        "\n".join(str(p.relative_to(root)) for p in files).encode() + repr(shape).encode()
    ).hexdigest()
    partial, progress_file = out / "images.npy.partial", out / "progress.json"
    done, written, skipped = 0, 0, []  # files read, rows written, [path, why] of the files that could not be read
    if partial.is_file() and progress_file.is_file():
        saved = read_json(progress_file, DataError)
        if saved.get("listing") == listing:
            done = int(saved.get("done", 0))
            written, skipped = int(saved.get("written", done)), [list(item) for item in saved.get("skipped", [])]
            log(f"resuming the pack of {root} at image {done:,} of {len(files):,}")
    # The .npy header is written once through a map; the images are then written with plain file writes at
    # their offsets (page cache only: the packing process's own memory stays flat however large the folder).
    images = np.lib.format.open_memmap(partial, mode="r+" if done else "w+", dtype=np.uint8, shape=shape)
    if images.shape != shape:
        raise DataError(f"{partial}: holds {images.shape}, expected {shape}; delete it to pack again")
    header, row = images.offset, int(np.prod(shape[1:]))
    del images
    from tqdm.auto import tqdm

    mode = "L" if options.channels == 1 else "RGB"
    bar = tqdm(total=len(files), initial=done, desc=f"packing {root.name}", unit="image", disable=not progress)
    last_save = time.monotonic()
    with open(partial, "r+b") as f:
        f.seek(header + written * row)
        for i in range(done, len(files)):
            try:
                f.write(load_image_file(files[i], options.resolution, mode).tobytes())
                written += 1
            except DataError as error:  # listed (and, in strict mode, refused) once every file has been tried
                skipped.append([str(files[i]), str(error).removeprefix(f"{files[i]}: ")])
            bar.update(1)
            if time.monotonic() - last_save > 10 or i == len(files) - 1:  # resumable from here on
                f.flush()
                os.fsync(f.fileno())
                write_json(progress_file, {"listing": listing, "done": i + 1, "written": written, "skipped": skipped})
                last_save = time.monotonic()
    bar.close()
    report_unreadable(root, len(files), [tuple(item) for item in skipped], options.strict)
    if skipped:  # the rows written are the first `written` of the map: copy them into a map of that size
        bad = {path for path, _ in skipped}
        kept = np.array([i for i, path in enumerate(files) if str(path) not in bad], dtype=np.int64)
        labels = None if labels is None else labels[kept]
        shape = (written, *shape[1:])
        shrink(partial, shape)
        atomic_write_text(out / "skipped_files.txt", "".join(f"{path}\t{why}\n" for path, why in skipped))
    index = finish(out, shape, labels, classes, None, section)
    progress_file.unlink(missing_ok=True)
    return index


def shrink(path: Path, shape: tuple[int, ...], chunk: int = 4096) -> None:
    """Rewrite the .npy map at ``path`` keeping its first shape[0] rows (streamed, chunk rows at a time)."""
    source = np.load(path, mmap_mode="r")
    smaller = path.with_name(path.name + ".shrunk")
    target = np.lib.format.open_memmap(smaller, mode="w+", dtype=np.uint8, shape=shape)
    for start in range(0, shape[0], chunk):
        end = min(start + chunk, shape[0])
        target[start:end] = source[start:end]
    target.flush()
    del source, target
    smaller.replace(path)


def finish(
    out: Path,
    shape: tuple[int, ...],
    labels: np.ndarray | None,
    class_names: list[str] | None,
    captions: list[list[str]] | None,
    section: dict[str, Any],
) -> dict:
    """Put the finished files in place; index.json last (its presence means the pack is complete)."""
    if labels is not None:
        np.save(out / "labels.npy", np.asarray(labels, dtype=np.int64))
    if captions is not None:
        atomic_write_text(out / "captions.json", json.dumps(captions))
    (out / "images.npy.partial").replace(out / "images.npy")
    index = {
        "format": FORMAT_PACKED,
        "count": shape[0],
        "shape": list(shape[1:]),
        "class_names": class_names,
        "labels": labels is not None,
        "captions": captions is not None,
        "source": section,
    }
    write_json(out / "index.json", index)
    return index


def check_npy(path: Path, shape: tuple[int, ...]) -> None:
    """A DataError unless ``path`` is a .npy file of C-ordered uint8 ``shape`` whose size is exactly its header plus
    that many bytes (a Fortran-ordered array would be read as scrambled images; a short file as a crash later)."""
    redo = "pack the data again (gankit data pack)"
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            header = (
                np.lib.format.read_array_header_1_0(f) if version == (1, 0) else np.lib.format.read_array_header_2_0(f)
            )
            offset = f.tell()
    except (OSError, ValueError, EOFError) as error:
        raise DataError(f"{path}: not a readable .npy file ({error or 'empty'}); {redo}") from None
    stored, fortran, dtype = tuple(header[0]), header[1], header[2]
    if fortran:
        raise DataError(
            f"{path}: the header says fortran_order: True (column-major); gankit reads row-major uint8 "
            f"(N, C, H, W) only: {redo}"
        )
    if dtype != np.uint8 or stored != shape:
        raise DataError(f"{path}: holds {dtype} {stored}, the index says uint8 {shape}; {redo}")
    expected = offset + int(np.prod(shape))
    size = path.stat().st_size
    if size != expected:
        raise DataError(
            f"{path}: {size:,} bytes, but its header and index.json need {expected:,} "
            f"({'truncated' if size < expected else 'extra bytes at the end'}); {redo}"
        )


@dataclasses.dataclass
class PackedOptions(ImageOptions):
    path: str = ""  # a folder written by `gankit data pack`


@DATASETS.register("packed", PackedOptions, "a folder from `gankit data pack`: memory-mapped, larger than memory")
def load_packed(options: PackedOptions) -> Dataset:
    if not options.path:
        raise ConfigError("dataset 'packed' needs data.path=FOLDER written by gankit data pack")
    root = Path(options.path).expanduser()
    if not (root / "index.json").is_file():
        hint = (
            " (an unfinished pack: run gankit data pack again to finish it)"
            if (root / "progress.json").is_file()
            else ""
        )
        raise DataError(f"{root}: no index.json; not a folder written by gankit data pack{hint}")
    index = read_json(root / "index.json", DataError)
    if not isinstance(index, dict) or index.get("format") != FORMAT_PACKED:
        raise DataError(f"{root / 'index.json'}: not a gankit packed-data index (format {index.get('format')!r})")
    count, image_shape = index.get("count"), index.get("shape")
    if not (
        isinstance(count, int)
        and count >= 0
        and isinstance(image_shape, list)
        and len(image_shape) == 3
        and all(isinstance(v, int) and v > 0 for v in image_shape)
    ):
        raise DataError(
            f"{root / 'index.json'}: damaged: count {count!r} and shape {image_shape!r} should be a whole number "
            "and [channels, height, width]; pack the data again (gankit data pack)"
        )
    shape = (count, *image_shape)
    check_npy(root / "images.npy", shape)
    try:
        images = np.load(root / "images.npy", mmap_mode="c", allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise DataError(
            f"{root / 'images.npy'}: cannot map ({error}); pack the data again (gankit data pack)"
        ) from None
    for name, value in (("resolution", shape[-1]), ("channels", shape[1])):
        wanted = getattr(options, name)
        if wanted is not None and wanted != value:
            raise ConfigError(
                f"data.{name} is {wanted} but {root} was packed at {value}; pack again with --{name} {wanted}"
            )
    labels = None
    if index.get("labels"):
        labels = to_labels(np.load(root / "labels.npy", allow_pickle=False), root / "labels.npy", shape[0])
    x = torch.from_numpy(images)
    if options.limit is not None:
        x, labels = x[: options.limit], None if labels is None else labels[: options.limit]
    class_names = check_class_names(index.get("class_names"), root / "index.json")
    dataset = Dataset(
        x, None if labels is None else torch.from_numpy(labels), root.name, class_names, memory_mapped=True
    )
    if index.get("captions"):
        captions = read_json(root / "captions.json", DataError)
        dataset.extras["captions"] = captions[: len(x)]
    return dataset
