"""The dataset contract and the batch stream.

Every source loads into one :class:`Dataset`: images as a uint8 tensor
(N, C, H, W) kept whole in memory, or low-dimensional points as float32 (N, D),
with optional integer labels. Conversion of images to floats in [-1, 1]
happens in exactly one place, :meth:`Dataset.model_input`, on the training
device, one batch at a time.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import threading
from pathlib import Path
from typing import Any

import torch

from gankit.errors import DataError
from gankit.registry import Registry, field_names


@dataclasses.dataclass(frozen=True)
class DataSpec:
    """What a network family needs to know about the data it is built for."""

    kind: str  # "images" or "points"
    shape: tuple[int, ...]  # (C, H, W) for images, (D,) for points
    num_classes: int = 0  # label values 0..num_classes-1; 0 when the data has no labels
    source_shape: tuple[int, ...] | None = None  # (C, H, W) of the condition images of paired data


@dataclasses.dataclass
class Dataset:
    x: torch.Tensor  # uint8 (N, C, H, W) images or float32 (N, D) points
    labels: torch.Tensor | None = None  # int64 (N,)
    name: str = ""
    class_names: list[str] | None = None
    extras: dict[str, Any] = dataclasses.field(default_factory=dict)
    # Memory-mapped images (the ``packed`` source) stay in host memory whatever the training device: each
    # batch is gathered from the map and copied to ``device`` (through pinned memory on a GPU).
    memory_mapped: bool = False
    device: torch.device = torch.device("cpu")  # where model_input delivers batches (and labels live)
    # Paired data (image-to-image translation): uint8 (N, C, H, W) condition images, sources[i] goes with x[i].
    sources: torch.Tensor | None = None

    def __post_init__(self):
        if self.x.dtype == torch.uint8:
            if self.x.ndim != 4:
                raise DataError(f"{self.name}: images must be (N, C, H, W), got shape {tuple(self.x.shape)}")
            if self.x.shape[1] not in (1, 3):
                raise DataError(f"{self.name}: images must have 1 or 3 channels, got {self.x.shape[1]}")
        elif self.x.dtype == torch.float32:
            if self.x.ndim != 2:
                raise DataError(f"{self.name}: points must be (N, D), got shape {tuple(self.x.shape)}")
        else:
            raise DataError(f"{self.name}: data must be uint8 images or float32 points, got {self.x.dtype}")
        if len(self.x) == 0:
            raise DataError(f"{self.name}: the dataset is empty")
        if self.labels is not None:
            if self.labels.dtype != torch.int64 or self.labels.ndim != 1 or len(self.labels) != len(self.x):
                raise DataError(
                    f"{self.name}: labels must be int64 (N,) = ({len(self.x)},), got {self.labels.dtype} "
                    f"{tuple(self.labels.shape)}"
                )
            low, high = int(self.labels.min()), int(self.labels.max())
            if low < 0 or (self.class_names and high >= len(self.class_names)):
                raise DataError(
                    f"{self.name}: labels {low}..{high} out of range for "
                    f"{len(self.class_names) if self.class_names else 'its'} classes (0..K-1)"
                )

        if self.sources is not None:
            s = self.sources
            if s.dtype != torch.uint8 or s.ndim != 4 or len(s) != len(self.x) or s.shape[1] not in (1, 3):
                raise DataError(
                    f"{self.name}: source images must be uint8 (N, 1 or 3, H, W) with N = {len(self.x)}, "
                    f"got {s.dtype} {tuple(s.shape)}"
                )
            if self.x.dtype != torch.uint8:
                raise DataError(f"{self.name}: paired data pairs images with images, not with points")

    @property
    def kind(self) -> str:
        return "images" if self.x.dtype == torch.uint8 else "points"

    @property
    def num_classes(self) -> int:
        if self.labels is None:
            return 0
        return len(self.class_names) if self.class_names else int(self.labels.max()) + 1

    @property
    def spec(self) -> DataSpec:
        sources = None if self.sources is None else tuple(self.sources.shape[1:])
        return DataSpec(self.kind, tuple(self.x.shape[1:]), self.num_classes, sources)

    def __len__(self) -> int:
        return len(self.x)

    def to(self, device: torch.device | str) -> "Dataset":
        device = torch.device(device)
        labels = None if self.labels is None else self.labels.to(device)
        x = self.x if self.memory_mapped else self.x.to(device)
        sources = None if self.sources is None else self.sources.to(device)
        return dataclasses.replace(self, x=x, labels=labels, device=device, sources=sources)

    def model_input(self, index: torch.Tensor, channels_last: bool = False) -> torch.Tensor:
        """Rows ``index`` as model input on ``device``: images scaled to [-1, 1] floats, points as they are."""
        if self.memory_mapped:
            x = self.x[index.cpu()]
            if self.device.type == "cuda":
                x = x.pin_memory().to(self.device, non_blocking=True)
        else:
            x = self.x[index]
        if self.kind == "points":
            return x
        x = x.float().div_(127.5).sub_(1.0)
        return x.contiguous(memory_format=torch.channels_last) if channels_last else x

    def source_input(self, index: torch.Tensor) -> torch.Tensor:
        """The condition images of rows ``index`` (paired data) on ``device``, scaled to [-1, 1]."""
        if self.sources is None:
            raise DataError(f"{self.name} is not paired data: it has no source images (data.name=pairs makes pairs)")
        return self.sources[index.to(self.sources.device)].float().div_(127.5).sub_(1.0)


def to_uint8_images(x: torch.Tensor) -> torch.Tensor:
    """Model output in [-1, 1] (N, C, H, W) -> uint8 (N, H, W, C), rounding to nearest."""
    return ((x.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous()


class BatchStream:
    """The k-th batch of a run is a pure function of (seed, k).

    Each epoch visits the data in a fresh permutation drawn from a generator
    seeded with (seed, epoch); the last incomplete batch is dropped. Resuming a
    run at any batch count therefore needs no sampler state.
    """

    def __init__(self, dataset: Dataset, batch_size: int, seed: int):
        if batch_size > len(dataset):
            raise DataError(
                f"batch size {batch_size} is larger than the dataset ({len(dataset)} samples); lower train.batch_size"
            )
        self.dataset, self.batch_size, self.seed = dataset, batch_size, seed
        self.batches_per_epoch = len(dataset) // batch_size
        self._perms: dict[int, torch.Tensor] = {}  # the last two epochs' permutations
        self._lock = threading.Lock()  # a Prefetcher asks for batch k + 1 from its own thread

    def indices(self, k: int) -> torch.Tensor:
        epoch, i = divmod(k, self.batches_per_epoch)
        with self._lock:
            if epoch not in self._perms:
                g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
                self._perms[epoch] = torch.randperm(len(self.dataset), generator=g).to(self.dataset.device)
                for old in [e for e in self._perms if e < epoch - 1]:
                    del self._perms[old]
            perm = self._perms[epoch]
        return perm[i * self.batch_size : (i + 1) * self.batch_size]


class Prefetcher:
    """The model input of batch k (this process's ``part`` of it), with batch k + 1 gathered on a background
    thread meanwhile when the images are memory-mapped (reading the map and, on a GPU, the pinned copy then
    overlap the training step). Data already in memory on the device needs no help: batches come directly."""

    def __init__(self, dataset: Dataset, stream: BatchStream, part: slice, channels_last: bool):
        self.dataset, self.stream, self.part, self.channels_last = dataset, stream, part, channels_last
        self.pool = (
            concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="gankit-batches")
            if dataset.memory_mapped
            else None
        )
        self.pending: tuple[int, concurrent.futures.Future] | None = None

    def load(self, k: int) -> torch.Tensor:
        return self.dataset.model_input(self.stream.indices(k)[self.part], self.channels_last)

    def get(self, k: int) -> torch.Tensor:
        if self.pool is None:
            return self.load(k)
        x = self.pending[1].result() if self.pending and self.pending[0] == k else self.load(k)
        self.pending = (k + 1, self.pool.submit(self.load, k + 1))
        return x

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)


DATASETS: Registry = Registry("dataset")


def load_dataset(section: dict[str, Any], where: str = "data") -> Dataset:
    """Load the dataset a config section names, e.g. ``{"name": "digits", "resolution": 32}``."""
    entry, options = DATASETS.resolve(section, where)
    return entry.factory(options)


def data_identity(section: dict[str, Any]) -> dict[str, Any]:
    """What images a data section names, independent of how it was written: every option resolved to its
    value (defaults filled in), a path made absolute, and the options that pick among or read the same images
    (split, limit, strict, download) left out. Two sections with the same identity train and score on the same
    data (``gankit evaluator train`` and a run's config find the same evaluator)."""
    _, options = DATASETS.resolve(section, "data")
    values = {"name": section["name"], **dataclasses.asdict(options)}
    for key in ("split", "limit", "strict", "download"):
        values.pop(key, None)
    if isinstance(values.get("path"), str) and values["path"]:
        values["path"] = str(Path(values["path"]).expanduser().resolve())
    return values


def has_test_split(section: dict[str, Any]) -> bool:
    """Whether the source a data section names has a test split of its own (``data.split=test``): the
    property of each source's options (``has_test_split``); sources without one (folders, .npz, user caption
    files, 2D mixtures) have a train split only."""
    _, options = DATASETS.resolve(section, "data")
    return bool(getattr(options, "has_test_split", False))


def with_split(section: dict[str, Any], split: str) -> dict[str, Any]:
    """The data section with ``split`` set, for sources that have splits (point mixtures do not)."""
    has_split = "split" in field_names(DATASETS.get(section["name"]).config_cls)
    return {**section, "split": split} if has_split else dict(section)
