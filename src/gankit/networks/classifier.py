"""The evaluator network and its files: a small CNN classifier gankit trains itself (``metrics/classifier.py``
trains it; ``metrics`` scores samples in its feature space). It lives with the networks because objectives use
it too: SRGAN's content loss can compare images in its features (``variants/srgan.py``).

An evaluator file is safetensors weights plus JSON metadata (architecture, class names, the dataset it was
trained on, test accuracy, weights sha256), with the same JSON beside it as ``<name>.json`` for people to read.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from gankit.data import data_identity
from gankit.errors import ConfigError
from gankit.files import (
    CheckpointError,
    atomic_write_text,
    cache_dir,
    check_state,
    read_tensors,
    tensor_checksum,
    write_tensors,
)
from gankit.formats import metadata_field

FORMAT_EVALUATOR = "gankit-evaluator-1"


class ClassifierNet(nn.Module):
    """Three conv stages (two 3x3 convs + BN + ReLU each; 2x2 max-pool between) -> global average pool -> linear.

    Works at any input size of at least 8 pixels; ``features`` returns the pooled
    ``4 * width`` values before dropout and the final linear layer. ``stem_stride`` 2 makes the first conv
    strided (a learned downsampling, as ResNet's stem): for images of 64 px and more, where it makes training
    and embedding 4x cheaper (:func:`stem_stride_for`).
    """

    def __init__(self, channels: int, num_classes: int, width: int = 32, dropout: float = 0.3, stem_stride: int = 1):
        super().__init__()

        def block(c_in: int, c_out: int, stride: int = 1) -> list[nn.Module]:
            return [
                nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
            ]

        w = width
        self.stem_stride = stem_stride
        self.body = nn.Sequential(
            *block(channels, w, stem_stride),
            *block(w, w),
            nn.MaxPool2d(2),
            *block(w, 2 * w),
            *block(2 * w, 2 * w),
            nn.MaxPool2d(2),
            *block(2 * w, 4 * w),
            *block(4 * w, 4 * w),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(4 * w, num_classes)
        self.feature_dim = 4 * w

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.body(x)))

    def features_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.body(x)
        return f, self.head(f)


@dataclasses.dataclass
class Evaluator:
    """A trained classifier with everything needed to name and reuse it."""

    net: ClassifierNet
    info: dict[str, Any]  # channels, resolution, num_classes, width, class_names, dataset, test_accuracy, ...

    @property
    def sha256(self) -> str:
        return self.info["weights_sha256"]

    @property
    def resolution(self) -> int:
        return self.info["resolution"]

    @property
    def channels(self) -> int:
        return self.info["channels"]


def stem_stride_for(resolution: int) -> int:
    """The evaluator network's first stride for images of this size: 2 from 64 px (its three stages then work at
    32, 16 and 8 px, as for 32 px images), else 1."""
    return 2 if resolution >= 64 else 1


def skill(info: dict[str, Any]) -> tuple[str, float, float] | None:
    """(what, score, chance) of an evaluator: a classifier's test accuracy against always answering the commonest
    class (1 / classes when not recorded); a self-supervised one's held-out pair accuracy (finding the other view
    of an image among a batch's 2N - 1 views) against 1 / (2N - 1). None when the file records neither."""
    if info.get("kind", "classifier") == "classifier":
        if info.get("test_accuracy") is None:
            return None
        chance = info.get("chance_accuracy") or 1.0 / max(1, int(info.get("num_classes") or 1))
        return "test accuracy", float(info["test_accuracy"]), float(chance)
    if info.get("pair_accuracy_heldout") is None:
        return None
    return "held-out pair accuracy", float(info["pair_accuracy_heldout"]), float(info["pair_chance"])


REFUSE_RATIO, WEAK_RATIO = 2.0, 5.0  # noisy-copy FID over the floor FID (metrics.classifier.separation)


def check_skill(info: dict[str, Any], name: str, warn: Callable[[str], None]) -> None:
    """Refuse an evaluator whose features cannot tell real images from a noisy copy of them (a ConfigError:
    distances in its features mean nothing, so a tiny FID would be a lie); warn about one that tells them apart
    only coarsely. Files from before the separation test was recorded are judged by their accuracy: refused
    under a tenth of the way from chance to perfect, warned under halfway."""
    measured = info.get("separation") or {}
    if measured.get("ratio") is not None:
        ratio = float(measured["ratio"])
        numbers = (
            f"FID {measured['noisy_fid']:.4g} between real images and a copy with noise of std "
            f"{measured['noise_std']:g}, {measured['floor_fid']:.4g} between two halves of the real images: "
            f"ratio {ratio:.3g}"
        )
        if ratio < REFUSE_RATIO:
            raise ConfigError(
                f"the evaluator {name} cannot tell real images from a noisy copy ({numbers}, under "
                f"{REFUSE_RATIO:g}): scores in its feature space would mean nothing. Train it longer or on "
                "more images (gankit evaluator train ... --epochs N) and evaluate again"
            )
        if ratio < WEAK_RATIO:
            warn(
                f"the evaluator {name} is weak: it tells real images from a noisy copy only coarsely ({numbers}, "
                f"under {WEAK_RATIO:g}); a longer-trained evaluator (--epochs) gives sharper scores"
            )
        return
    measured = skill(info)
    if measured is None:
        return
    what, score, chance = measured
    progress = (score - chance) / max(1e-12, 1 - chance)  # 0 at chance, 1 at perfect
    numbers = f"{what} {score:.3f}, chance {chance:.4g}: {max(progress, 0):.0%} of the way from chance to perfect"
    if progress < 0.1:
        raise ConfigError(
            f"the evaluator {name} is scarcely better than chance ({numbers}, under 10%): scores in its "
            "feature space would mean nothing. Train it longer or on more images "
            "(gankit evaluator train ... --epochs N) and evaluate again"
        )
    if progress < 0.5:
        also = " (near-duplicate images in the data lower this figure too)" if what.startswith("held-out pair") else ""
        warn(
            f"the evaluator {name} is weak ({numbers}, under halfway){also}: its scores separate only coarse "
            "differences; a longer-trained evaluator (--epochs) gives sharper ones"
        )


def weights_sha256(state: dict[str, torch.Tensor]) -> str:
    """sha256 over the tensors' names, dtypes, shapes and bytes, in sorted name order (the file checksum of
    ``gankit.files``): the evaluator's identity in every reported number."""
    return tensor_checksum(state).removeprefix("sha256:")


def save_evaluator(evaluator: Evaluator, path: Path) -> Path:
    path = Path(path).with_suffix(".safetensors")
    state = evaluator.net.state_dict()
    info = {**evaluator.info, "weights_sha256": weights_sha256(state)}
    evaluator.info = info
    write_tensors(path, state, {"format": FORMAT_EVALUATOR, "info": info})
    atomic_write_text(path.with_suffix(".json"), json.dumps(info, indent=2) + "\n")
    return path


def builtin_evaluators() -> dict[str, Path]:
    folder = resources.files("gankit") / "evaluators"
    if not folder.is_dir():
        return {}
    return {p.name[: -len(".safetensors")]: Path(str(p)) for p in folder.iterdir() if p.name.endswith(".safetensors")}


def evaluator_for_data(data_section: dict[str, Any]) -> Path:
    """Where ``gankit evaluator train`` keeps the evaluator it trains for a data section (gankit's cache, one
    file per section), so that ``gankit evaluate`` finds it for runs trained on that data."""
    canonical = json.dumps(data_identity(data_section), sort_keys=True, default=str)
    key = hashlib.sha256(canonical.encode()).hexdigest()[:16]
    return cache_dir() / "evaluators" / f"{data_section.get('name', 'data')}-{key}.safetensors"


def load_evaluator(name_or_path: str | Path, device: str | torch.device = "cpu") -> Evaluator:
    """Load a built-in evaluator by dataset name (``fashion-mnist``) or any evaluator file."""
    builtin = builtin_evaluators()
    path = builtin.get(str(name_or_path), Path(name_or_path))
    if not path.is_file():
        raise CheckpointError(
            f"no evaluator {name_or_path!r}: built-in ones are {', '.join(sorted(builtin)) or 'none'}; "
            "train one with `gankit evaluator train --dataset NAME`"
        )
    tensors, metadata = read_tensors(path, FORMAT_EVALUATOR)
    info = metadata_field(path, metadata, "info", dict)
    if info.get("kind", "classifier") not in ("classifier", "self-supervised"):
        raise CheckpointError(f"{path}: unknown evaluator kind {info.get('kind')!r}")
    sizes = [info.get(k) for k in ("channels", "num_classes", "width")]
    if not all(isinstance(s, int) and 1 <= s <= 100_000 for s in sizes) or info.get("channels") not in (1, 3):
        raise CheckpointError(f"{path}: damaged metadata: channels, num_classes, width = {sizes}")
    if weights_sha256(tensors) != info.get("weights_sha256"):
        raise CheckpointError(f"{path}: weights do not match their recorded sha256; the file is corrupt")
    stem_stride = info.get("stem_stride", 1)  # files written before strided stems existed have none
    if stem_stride not in (1, 2):
        raise CheckpointError(f"{path}: damaged metadata: stem_stride {stem_stride!r} (1 or 2)")
    net = ClassifierNet(*sizes, stem_stride=stem_stride)
    check_state(path, "the evaluator's weights", tensors, net.state_dict())
    net.load_state_dict(tensors)
    return Evaluator(net.to(device).eval().requires_grad_(False), info)
