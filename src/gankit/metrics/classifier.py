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


NOISE_STD = 0.1  # the degraded copy: Gaussian noise of this std on pixels in [-1, 1] (about 13 grey levels)


@torch.no_grad()
def separation(net: nn.Module, images: torch.Tensor, seed: int = 0) -> dict[str, Any]:
    """What an evaluator can tell apart, in the unit every score it gives is in: the FID between two halves of
    held-out real images (its floor) and between one half and a noisy copy of the other. Their ratio says whether
    its features see a degradation a person sees at once: below 2 they do not (gankit refuses the evaluator),
    below 5 only coarsely (a warning). (Random convolutional features pass it: they do see noise; what it refuses
    is an evaluator whose features say nothing, such as one that collapsed in training.)"""
    from gankit.metrics.scores import fid

    n = min(len(images), 2000) // 2 * 2
    if n < 20:
        return {}
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:n]
    x = images[order].float().div(127.5).sub(1.0)
    a, b = x[: n // 2], x[n // 2 :]
    noisy = (b + NOISE_STD * torch.randn(b.shape, generator=torch.Generator().manual_seed(seed + 1))).clamp(-1, 1)
    net.eval()
    embed = lambda t: torch.cat([net.features(t[i : i + 500]) for i in range(0, len(t), 500)]).double().numpy()  # noqa: E731
    fa = embed(a)
    floor, degraded = fid(fa, embed(b)), fid(fa, embed(noisy))
    return {
        "floor_fid": round(floor, 6),
        "noisy_fid": round(degraded, 6),
        "ratio": round(degraded / max(floor, 1e-12), 3),
        "noise_std": NOISE_STD,
        "images": n,
    }


class TrainingEstimate:
    """Says once, after the first batches, how long a training will take at the measured speed."""

    def __init__(
        self, total_steps: int, what: str, log: Callable[[str], None], after_steps: int = 10, after_seconds: float = 3.0
    ):
        self.total, self.what, self.log = total_steps, what, log
        self.after_steps, self.after_seconds = after_steps, after_seconds
        self.start, self.steps, self.told = time.perf_counter(), 0, False

    def tick(self) -> None:
        self.steps += 1
        if self.told:
            return
        seconds = time.perf_counter() - self.start
        if self.steps >= self.after_steps and seconds >= self.after_seconds or self.steps >= self.total:
            self.told = True
            left = seconds / self.steps * (self.total - self.steps)
            self.log(
                f"{self.what}: {self.total:,} steps, about {left / 60:.0f} min left at the speed of the first "
                f"{self.steps} ({seconds / self.steps * 1000:.0f} ms a step)"
                if left >= 90
                else f"{self.what}: {self.total:,} steps, about {left:.0f} s left"
            )


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
    net = ClassifierNet(
        train_data.x.shape[1], num_classes, options.width, stem_stride=stem_stride_for(train_data.x.shape[-1])
    )
    optimizer = torch.optim.AdamW(net.parameters(), lr=options.lr, weight_decay=options.weight_decay)
    steps_per_epoch = max(1, len(train_data) // options.batch_size)  # fewer images than a batch: one batch of all
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, options.lr, total_steps=options.epochs * steps_per_epoch)
    start = time.perf_counter()
    estimate = TrainingEstimate(options.epochs * steps_per_epoch, "training the evaluator", log)
    for epoch in range(options.epochs):
        net.train()
        order = torch.randperm(len(train_data), generator=generator)
        bar = tqdm(
            range(steps_per_epoch),
            desc=f"evaluator epoch {epoch + 1}/{options.epochs}",
            disable=not progress,
            leave=False,
        )
        for i in bar:
            index = order[i * options.batch_size : (i + 1) * options.batch_size]
            x = augment(train_data.model_input(index), options.shift, options.flip, generator)
            loss = F.cross_entropy(net(x), train_data.labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            estimate.tick()
            if i % 50 == 0:
                bar.set_postfix(loss=f"{loss.item():.3f}")
        log(
            f"evaluator epoch {epoch + 1}/{options.epochs}: test accuracy "
            f"{accuracy(net, test_data.x, test_data.labels):.4f}"
        )
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
        "separation": separation(net, test_data.x, options.seed),
        "train_seconds": round(time.perf_counter() - start, 1),
        "preprocessing": "uint8 images scaled to [-1, 1] by x / 127.5 - 1, at the dataset's native size",
    }
    return Evaluator(net.eval().requires_grad_(False), info)
