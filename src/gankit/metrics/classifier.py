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
import time
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from gankit.augment import translate
from gankit.data import has_test_split, load_dataset
from gankit.networks.classifier import (  # noqa: F401 - the evaluator network and files, re-exported
    FORMAT_EVALUATOR,
    ClassifierNet,
    Evaluator,
    builtin_evaluators,
    evaluator_for_data,
    load_evaluator,
    save_evaluator,
    stem_stride_for,
    weights_sha256,
)

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
    net = ClassifierNet(train_data.x.shape[1], num_classes, options.width, stem_stride=stem_stride_for(train_data.x.shape[-1]))
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
        "stem_stride": net.stem_stride,
        "class_names": train_data.class_names or [str(i) for i in range(num_classes)],
        "dataset": {**data_section},
        "training": dataclasses.asdict(options),
        "test_accuracy": round(test_accuracy, 4),
        # what always answering the commonest test class scores: the accuracy an evaluator must beat
        "chance_accuracy": round(float(torch.bincount(test_data.labels).max()) / len(test_data.labels), 4),
        "test_split": test_protocol,
        "train_seconds": round(time.perf_counter() - start, 1),
        "preprocessing": "uint8 images scaled to [-1, 1] by x / 127.5 - 1, at the dataset's native size",
    }
    return Evaluator(net.eval().requires_grad_(False), info)
