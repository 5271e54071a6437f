"""Paired images for image-to-image translation (pix2pix): the ``pairs`` source and ``gankit data make-pairs``.

A paired dataset is a :class:`~gankit.data.Dataset` whose ``x`` are the targets and whose ``sources`` are the
condition images, row for row. Three layouts are read (``data.layout``):

- ``npz``: an .npz with uint8 ``sources`` and ``targets`` (and optional ``labels``); a folder holding
  ``train.npz`` / ``test.npz`` picks the split (what ``make-pairs`` writes);
- ``aligned``: a folder of images each holding A and B side by side (pix2pix's datasets: A | B, width = 2 x
  height); ``data.direction`` says which side is the condition (AtoB: A);
- ``folders``: ``A/`` and ``B/`` subfolders with the same file names (A the condition for AtoB).

For the aligned and folders layouts a ``train/`` / ``test/`` (or ``val/``) subfolder picks the split when it
exists. Both sides are resized to ``data.resolution`` (required for image files). Super-resolution needs no
pairs: its condition makes the low-resolution inputs from any image dataset (``variants/srgan.py``).

``make_pairs`` builds synthetic paired tasks with no download: ``edges`` (an item's edge map -> the item) and
``inpaint`` (the item with its centre masked -> the item) from Fashion-MNIST, ``colorize`` (gray -> colour) from
the captioned scenes of ``make-captions``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from gankit.data.dataset import DATASETS, Dataset, load_dataset
from gankit.data.sources import (
    ImageOptions,
    check_class_names,
    check_fits_in_memory,
    finish_images,
    image_files,
    json_preview,
    nchw_images,
    read_image_file,
    read_npz,
    to_labels,
)
from gankit.errors import ConfigError, DataError
from gankit.files import read_json, write_json, write_npz

TASKS = ("edges", "inpaint", "colorize")


@dataclasses.dataclass
class PairsOptions(ImageOptions):
    path: str = ""  # an .npz, a folder with train.npz / test.npz, or a folder of images (see layout)
    layout: Literal["auto", "npz", "aligned", "folders"] = "auto"
    direction: Literal["AtoB", "BtoA"] = "AtoB"  # which side is the condition (aligned and folders layouts)
    source_channels: int | None = None  # 1 or 3 for the condition images; None keeps theirs
    has_test_split = True

    def __post_init__(self):
        super().__post_init__()
        if self.source_channels not in (None, 1, 3):
            raise ConfigError(f"data.source_channels must be 1 or 3, got {self.source_channels}")


def detect_layout(root: Path) -> str:
    if root.suffix == ".npz" or (root / "train.npz").is_file():
        return "npz"
    if root.is_dir() and any((base / "A").is_dir() for base in (root, *root.iterdir())):
        return "folders"
    return "aligned"


def split_folder(root: Path, split: str) -> Path:
    """``root/train`` (``root/test``, or ``root/val`` for test when there is no test folder) when it exists."""
    for name in (split, "val") if split == "test" else (split,):
        if (root / name).is_dir():
            return root / name
    return root


def square(image, resolution: int, path: Path) -> np.ndarray:
    """A PIL image resized to resolution x resolution (bicubic), as uint8 (C, H, W)."""
    from PIL import Image

    array = np.asarray(image.resize((resolution, resolution), Image.Resampling.BICUBIC), dtype=np.uint8)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def load_image_pairs(options: PairsOptions, root: Path, layout: str) -> tuple[np.ndarray, np.ndarray]:
    if options.resolution is None:
        raise ConfigError(f"paired image files need data.resolution (both sides are resized to it): {root}")
    mode = "L" if options.channels == 1 else "RGB"
    source_mode = "L" if options.source_channels == 1 else "RGB"
    folder = split_folder(root, options.split)
    pairs: list[tuple[Path, Path | None]]
    if layout == "folders":
        a_files = {p.relative_to(folder / "A").as_posix(): p for p in image_files(folder / "A")}
        b_files = (
            {p.relative_to(folder / "B").as_posix(): p for p in image_files(folder / "B")}
            if (folder / "B").is_dir()
            else {}
        )
        unmatched = sorted(set(a_files) ^ set(b_files))
        if unmatched:
            raise DataError(
                f"{folder}: A/ and B/ must hold the same file names; {len(unmatched)} do not pair up "
                f"(e.g. {', '.join(unmatched[:3])})"
            )
        pairs = [(a_files[k], b_files[k]) for k in sorted(a_files)]
    else:
        pairs = [(p, None) for p in image_files(folder)]
    if not pairs:
        raise DataError(f"{folder}: no paired images found (layout {layout})")
    if options.limit is not None:
        pairs = pairs[: options.limit]
    check_fits_in_memory(2 * len(pairs), 3, options.resolution, str(folder))
    sources, targets = [], []
    for a_path, b_path in pairs:
        if b_path is None:  # A | B side by side
            whole = read_image_file(a_path, "RGB")
            if whole.width != 2 * whole.height:
                raise DataError(
                    f"{a_path}: an aligned pair is A and B side by side (width = 2 x height), got "
                    f"{whole.width}x{whole.height}; use data.layout=folders for separate files"
                )
            half = whole.width // 2
            a, b = whole.crop((0, 0, half, whole.height)), whole.crop((half, 0, whole.width, whole.height))
        else:
            a, b = read_image_file(a_path, "RGB"), read_image_file(b_path, "RGB")
        source, target = (a, b) if options.direction == "AtoB" else (b, a)
        sources.append(square(source.convert(source_mode), options.resolution, a_path))
        targets.append(square(target.convert(mode), options.resolution, b_path or a_path))
    return np.stack(sources), np.stack(targets)


@DATASETS.register(
    "pairs", PairsOptions, "paired images (condition, target) for pix2pix: .npz, A|B files or A/ B/ folders"
)
def load_pairs(options: PairsOptions) -> Dataset:
    if not options.path:
        raise ConfigError("dataset 'pairs' needs data.path (an .npz, a make-pairs folder or a folder of pairs)")
    root = Path(options.path).expanduser()
    if not root.exists():
        raise DataError(f"data.path {root} does not exist")
    layout = detect_layout(root) if options.layout == "auto" else options.layout
    labels = None
    if layout == "npz":
        file = root if root.suffix == ".npz" else root / f"{options.split}.npz"
        arrays = read_npz(file, required=("sources", "targets"), optional=("labels",))
        sources = nchw_images(arrays["sources"], file, "sources")
        targets = nchw_images(arrays["targets"], file, "targets")
        if len(sources) != len(targets):
            raise DataError(f"{file}: {len(sources)} sources but {len(targets)} targets; they must pair up row for row")
        labels = None if "labels" not in arrays else to_labels(arrays["labels"], file, len(targets))
        info = file.with_name("info.json")
        class_names = None
        if info.is_file():
            described = read_json(info, DataError)
            if not isinstance(described, dict):
                raise DataError(
                    f"{info}: expected a JSON object (as gankit data make-pairs writes), got {json_preview(described)}"
                )
            class_names = check_class_names(described.get("classes"), info)
    else:
        sources, targets = load_image_pairs(options, root, layout)
        class_names = None
    target_set = finish_images(
        targets, labels, options, f"pairs:{root.stem}", class_names if labels is not None else None
    )
    source_options = dataclasses.replace(options, channels=options.source_channels)
    source_set = finish_images(sources, None, source_options, "sources")
    return dataclasses.replace(target_set, sources=source_set.x)


# --------------------------------------------------------------------------- gankit data make-pairs


def edge_map(items: torch.Tensor) -> torch.Tensor:
    """Dark edges on white (as the pix2pix edges -> photo datasets draw them) from uint8 (N, 1, H, W) items:
    the Sobel gradient magnitude of the [0, 1] image above 0.35 of its per-image maximum."""
    x = items.float() / 255
    kx = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]]).view(1, 1, 3, 3)
    gx, gy = F.conv2d(x, kx, padding=1), F.conv2d(x, kx.transpose(2, 3), padding=1)
    magnitude = (gx * gx + gy * gy).sqrt()
    peak = magnitude.amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-6)
    return torch.where(magnitude > 0.35 * peak, 0, 255).to(torch.uint8)


def masked_centre(items: torch.Tensor) -> torch.Tensor:
    """The items with the central square of half their side filled with mid gray (127)."""
    out = items.clone()
    h, w = items.shape[-2:]
    out[..., h // 4 : h - h // 4, w // 4 : w - w // 4] = 127
    return out


def make_pairs(
    task: str,
    out: str | Path,
    resolution: int = 32,
    train: int | None = None,
    test: int | None = None,
    seed: int = 0,
    progress=print,
) -> dict:
    """Write OUT/{train,test}.npz (uint8 ``sources``, ``targets``, ``labels``: the item's class) and
    OUT/info.json for ``task``: edges or inpaint (Fashion-MNIST items at ``resolution``; all 60,000 / 10,000
    unless ``train`` / ``test`` say fewer) or colorize (captioned scenes, gray -> colour; 20,000 / 2,000 by
    default)."""
    if task not in TASKS:
        raise ConfigError(f"make-pairs --task must be one of {', '.join(TASKS)}, got {task!r}")
    from gankit.data.captions import CLASSES, make_split

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    for split, n in (("train", train), ("test", test)):
        items = load_dataset({"name": "fashion-mnist", "split": split})
        if task == "colorize":
            n = n or (20000 if split == "train" else 2000)
            scenes = make_split(items.x[:, 0].numpy(), items.labels.numpy(), n, split, seed, resolution, 1)
            targets = torch.from_numpy(scenes["images"]).permute(0, 3, 1, 2).contiguous()
            weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
            sources = (targets.float() * weights).sum(1, keepdim=True).round().clamp(0, 255).to(torch.uint8)
            labels = scenes["class"]
        else:
            n = min(n or len(items), len(items))
            targets = finish_images(items.x[:n], None, ImageOptions(resolution=resolution), "items").x
            sources = edge_map(targets) if task == "edges" else masked_centre(targets)
            labels = items.labels[:n].numpy()
        # user-facing arrays are channels last, as every .npz gankit writes (README: "Array files")
        write_npz(
            out / f"{split}.npz",
            sources=sources.permute(0, 2, 3, 1).numpy(),
            targets=targets.permute(0, 2, 3, 1).numpy(),
            labels=labels,
        )
        counts[split] = int(len(targets))
        progress(f"{split}: {len(targets):,} pairs ({tuple(sources.shape[1:])} -> {tuple(targets.shape[1:])})")
    info = {
        "task": task,
        "resolution": resolution,
        "seed": seed,
        "counts": counts,
        "classes": list(CLASSES),
        "source": "Fashion-MNIST items" if task != "colorize" else "make-captions scenes",
    }
    write_json(out / "info.json", info)
    return info
