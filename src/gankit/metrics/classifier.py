"""Domain evaluators: small CNN classifiers that gankit trains itself.

With no pretrained Inception network available offline, gankit measures
samples in the feature space of a classifier trained on the dataset's own
training split: its penultimate layer (``feature_dim`` values after global
average pooling) feeds FID, KID and precision/recall/density/coverage, and its
logits feed the Inception Score and label accuracy. Scores computed with
different evaluators are not comparable, so every score names the evaluator's
weights by their sha256.

An evaluator file is safetensors weights plus JSON metadata (architecture,
class names, the dataset it was trained on, test accuracy, weights sha256),
with the same JSON beside it as ``<name>.json`` for people to read.
"""

from __future__ import annotations

import dataclasses
import json
import time
from importlib import resources
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from gankit.augment import translate
from gankit.data import has_test_split, load_dataset
from gankit.files import CheckpointError, atomic_write_text, check_state, read_tensors, tensor_checksum, write_tensors
from gankit.formats import metadata_field

FORMAT_EVALUATOR = "gankit-evaluator-1"


class ClassifierNet(nn.Module):
    """Three conv stages (two 3x3 convs + BN + ReLU each; 2x2 max-pool between) -> global average pool -> linear.

    Works at any input size of at least 8 pixels; ``features`` returns the pooled
    ``4 * width`` values before dropout and the final linear layer.
    """

    def __init__(self, channels: int, num_classes: int, width: int = 32, dropout: float = 0.3):
        super().__init__()

        def block(c_in: int, c_out: int) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]

        w = width
        self.body = nn.Sequential(
            *block(channels, w), *block(w, w), nn.MaxPool2d(2),
            *block(w, 2 * w), *block(2 * w, 2 * w), nn.MaxPool2d(2),
            *block(2 * w, 4 * w), *block(4 * w, 4 * w),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )  # fmt: skip
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
    sizes = [info.get(k) for k in ("channels", "num_classes", "width")]
    if not all(isinstance(s, int) and 1 <= s <= 100_000 for s in sizes) or info.get("channels") not in (1, 3):
        raise CheckpointError(f"{path}: damaged metadata: channels, num_classes, width = {sizes}")
    if weights_sha256(tensors) != info.get("weights_sha256"):
        raise CheckpointError(f"{path}: weights do not match their recorded sha256; the file is corrupt")
    net = ClassifierNet(*sizes)
    check_state(path, "the evaluator's weights", tensors, net.state_dict())
    net.load_state_dict(tensors)
    return Evaluator(net.to(device).eval().requires_grad_(False), info)


@dataclasses.dataclass
class EvaluatorTraining:
    epochs: int = 10
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 5e-4
    width: int = 24
    seed: int = 0
    shift: int = 2  # random translation by up to this many pixels
    flip: bool = True  # random horizontal flips


def augment(x: torch.Tensor, shift: int, flip: bool, generator: torch.Generator) -> torch.Tensor:
    """Random translation (background-filled) and horizontal flip, per image."""
    n = x.shape[0]
    x = translate(x, shift, fill=-1.0, generator=generator)
    if flip:
        mask = torch.rand(n, generator=generator) < 0.5
        x = torch.where(mask.view(n, 1, 1, 1), x.flip(3), x)
    return x


@torch.no_grad()
def accuracy(net: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 500) -> float:
    """Top-1 accuracy on uint8 (N, C, H, W) images."""
    net.eval()
    correct = 0
    for i in range(0, len(images), batch_size):
        x = images[i : i + batch_size].float().div(127.5).sub(1.0)
        correct += (net(x).argmax(1) == labels[i : i + batch_size]).sum().item()
    return correct / len(images)


def train_evaluator(
    data_section: dict[str, Any],
    options: EvaluatorTraining | None = None,
    log: Callable[[str], None] = print,
    progress: bool = True,
) -> Evaluator:
    """Train a classifier on the dataset's train split; report accuracy on its test split."""
    from tqdm.auto import tqdm

    options = options or EvaluatorTraining()
    train_data = load_dataset({**data_section, "split": "train"})
    if train_data.kind != "images" or train_data.labels is None:
        raise ValueError(f"an evaluator needs labelled images; {train_data.name} has none")
    if has_test_split(data_section):
        test_data, test_protocol = load_dataset({**data_section, "split": "test"}), "the dataset's test split"
    else:  # no separate test split: hold out a random 10% of the images
        order = torch.randperm(len(train_data), generator=torch.Generator().manual_seed(options.seed))
        cut = max(1, len(train_data) // 10)
        test_data = dataclasses.replace(train_data, x=train_data.x[order[:cut]], labels=train_data.labels[order[:cut]])
        train_data = dataclasses.replace(train_data, x=train_data.x[order[cut:]], labels=train_data.labels[order[cut:]])
        test_protocol = f"a held-out random 10% ({cut} images, seed {options.seed})"
    num_classes = int(train_data.labels.max()) + 1
    torch.manual_seed(options.seed)
    generator = torch.Generator().manual_seed(options.seed)
    net = ClassifierNet(train_data.x.shape[1], num_classes, options.width)
    optimizer = torch.optim.AdamW(net.parameters(), lr=options.lr, weight_decay=options.weight_decay)
    steps_per_epoch = len(train_data) // options.batch_size
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, options.lr, total_steps=options.epochs * steps_per_epoch)
    start = time.perf_counter()
    for epoch in range(options.epochs):
        net.train()
        order = torch.randperm(len(train_data), generator=generator)
        bar = tqdm(range(steps_per_epoch), desc=f"evaluator epoch {epoch + 1}/{options.epochs}", disable=not progress, leave=False)
        for i in bar:
            index = order[i * options.batch_size : (i + 1) * options.batch_size]
            x = augment(train_data.model_input(index), options.shift, options.flip, generator)
            loss = F.cross_entropy(net(x), train_data.labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            if i % 50 == 0:
                bar.set_postfix(loss=f"{loss.item():.3f}")
        log(f"evaluator epoch {epoch + 1}/{options.epochs}: test accuracy {accuracy(net, test_data.x, test_data.labels):.4f}")
    test_accuracy = accuracy(net, test_data.x, test_data.labels)
    info = {
        "channels": train_data.x.shape[1],
        "resolution": train_data.x.shape[-1],
        "num_classes": num_classes,
        "width": options.width,
        "class_names": train_data.class_names or [str(i) for i in range(num_classes)],
        "dataset": {**data_section},
        "training": dataclasses.asdict(options),
        "test_accuracy": round(test_accuracy, 4),
        "test_split": test_protocol,
        "train_seconds": round(time.perf_counter() - start, 1),
        "preprocessing": "uint8 images scaled to [-1, 1] by x / 127.5 - 1, at the dataset's native size",
    }
    return Evaluator(net.eval().requires_grad_(False), info)
