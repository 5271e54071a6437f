"""Unsupervised representation learning, measured as in Radford et al. 2015, section 5.1.

D's convolutional features from every layer are max-pooled to a 4x4 grid,
flattened and concatenated; a linear L2-SVM (one-vs-rest, squared hinge loss,
L2 penalty) is trained on a labelled subset and scored on the test split.
Baselines in the same table: raw pixels, and the same D architecture with
random weights. Label budgets of 10, 100 and 1,000 per class use several random
subsets (mean and standard deviation); "all" uses every training label once.

The SVM is solved in its primal with full-batch L-BFGS (the squared hinge is
differentiable), which fits 60,000 x 3,072 features in seconds where liblinear
needs minutes. Its penalty is chosen once per feature type on a validation
split of the training set (1,000 labels per class to fit, 5,000 other training
images to score), never on the test split.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gankit.files import atomic_write_text
from gankit.images import line_plot, save_picture
from gankit.progress import ticking

PENALTIES = (1e-2, 1e-1, 1.0, 10.0)


@dataclasses.dataclass
class LinearSVM:
    """One-vs-rest linear SVM: mean_i sum_c max(0, 1 - y_ic (x_i . w_c + b_c))^2 + penalty / 2 * ||W||^2."""

    penalty: float = 1e-1
    max_iter: int = 100  # on Fashion-MNIST D features, within 0.4 points of 200 iterations at a third of the time
    weight: torch.Tensor | None = None
    bias: torch.Tensor | None = None
    mean: torch.Tensor | None = None
    scale: torch.Tensor | None = None

    def fit(self, x: np.ndarray, y: np.ndarray, num_classes: int) -> "LinearSVM":
        X = torch.as_tensor(x, dtype=torch.float32)
        self.mean, self.scale = X.mean(0), X.std(0).clamp_min(1e-6)  # standardize on the labelled subset
        X = (X - self.mean) / self.scale
        targets = -torch.ones(len(X), num_classes)
        targets[torch.arange(len(X)), torch.as_tensor(y)] = 1.0
        W = torch.zeros(X.shape[1], num_classes, requires_grad=True)
        b = torch.zeros(num_classes, requires_grad=True)
        optimizer = torch.optim.LBFGS(
            [W, b],
            lr=1,
            max_iter=self.max_iter,
            line_search_fn="strong_wolfe",
            tolerance_grad=1e-6,
            tolerance_change=1e-9,
            history_size=20,
        )

        def closure():
            optimizer.zero_grad()
            margins = F.relu(1 - targets * (X @ W + b))
            loss = (margins**2).sum(1).mean() + 0.5 * self.penalty * (W**2).sum()
            loss.backward()
            return loss

        optimizer.step(closure)
        self.weight, self.bias = W.detach(), b.detach()
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        X = (torch.as_tensor(x, dtype=torch.float32) - self.mean) / self.scale
        return (X @ self.weight + self.bias).argmax(1).numpy()

    def accuracy(self, x: np.ndarray, y: np.ndarray) -> float:
        return float((self.predict(x) == np.asarray(y)).mean())


@torch.no_grad()
def discriminator_features(
    D: nn.Module, images: torch.Tensor, batch_size: int = 1000, grid: int = 4, progress: str = ""
) -> np.ndarray:
    """Every conv layer's output max-pooled to grid x grid, flattened and concatenated (uint8 images in).
    ``progress``: a progress bar with that label."""
    from tqdm.auto import tqdm

    if getattr(D, "pack", 1) > 1:
        raise ValueError("this analysis reads single images; a PacGAN D (model.d_pack > 1) judges groups of them")
    D.eval()
    parts = []
    starts = range(0, len(images), batch_size)
    for i in tqdm(starts, desc=progress, unit="batch", leave=False, disable=not progress or len(starts) < 4):
        x = images[i : i + batch_size].float().div(127.5).sub(1.0)
        layers = D.features(x)
        pooled = [F.adaptive_max_pool2d(f, grid).flatten(1) if f.dim() == 4 else f.flatten(1) for f in layers]
        parts.append(torch.cat(pooled, dim=1))
    return torch.cat(parts).numpy()


def pixel_features(images: torch.Tensor) -> np.ndarray:
    return images.float().div(255.0).flatten(1).numpy()


def subset(
    labels: np.ndarray, per_class: int, rng: np.random.Generator, exclude: np.ndarray | None = None
) -> np.ndarray:
    """``per_class`` random indices of each class (outside ``exclude``)."""
    available = np.ones(len(labels), bool)
    if exclude is not None:
        available[exclude] = False
    chosen = []
    for c in np.unique(labels):
        pool = np.flatnonzero((labels == c) & available)
        chosen.append(rng.choice(pool, min(per_class, len(pool)), replace=False))
    return np.concatenate(chosen)


def choose_penalty(
    features: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    seed: int,
    penalties: tuple[float, ...] = PENALTIES,
    done: Callable[[], None] = lambda: None,
) -> tuple[float, dict]:
    """The penalty with the best accuracy on a validation split of the training set (``done`` is called after
    each penalty's fit)."""
    if len(penalties) == 1:
        return penalties[0], {}
    rng = np.random.default_rng(seed + 10_000)
    fit_index = subset(labels, 1000, rng)
    rest = np.setdiff1d(np.arange(len(labels)), fit_index)
    if len(rest) == 0:
        raise ValueError("too few training images to choose the penalty on a validation split; give one penalty")
    val_index = rng.choice(rest, min(5000, len(rest)), replace=False)
    scores = {}
    for penalty in penalties:
        svm = LinearSVM(penalty).fit(features[fit_index], labels[fit_index], num_classes)
        scores[penalty] = svm.accuracy(features[val_index], labels[val_index])
        done()
    return max(scores, key=scores.get), scores


def run_probe(
    D: nn.Module,
    random_D: nn.Module,
    train_images: torch.Tensor,
    train_labels: np.ndarray,
    test_images: torch.Tensor,
    test_labels: np.ndarray,
    budgets: tuple[int | None, ...] = (10, 100, 1000, None),
    repeats: dict[int | None, int] | None = None,
    seed: int = 0,
    log: Callable[[str], None] = print,
    penalties: tuple[float, ...] = PENALTIES,
    progress: bool = False,
    extra: dict[str, nn.Module] | None = None,
) -> dict:
    """Test accuracy of linear SVMs on D features, random-D features and pixels, per label budget; ``extra``: more
    networks with a ``features(x)`` method (BiGAN's encoder), each probed the same way under its name. Each result
    is logged as it comes; ``progress`` adds bars (features, then every SVM fit, weighted by its size so the
    time left is honest: a fit on every label costs far more than one on 10 per class)."""
    from tqdm.auto import tqdm

    repeats = repeats or {10: 5, 100: 5, 1000: 3, None: 1}
    num_classes = int(max(train_labels.max(), test_labels.max())) + 1
    bar = "" if not progress else "D features ({}, {} images)"
    feature_sets = {
        "gan_discriminator": (
            discriminator_features(D, train_images, progress=bar.format("trained", len(train_images))),
            discriminator_features(D, test_images, progress=bar.format("trained", len(test_images))),
        ),
        "random_discriminator": (
            discriminator_features(random_D, train_images, progress=bar.format("random", len(train_images))),
            discriminator_features(random_D, test_images, progress=bar.format("random", len(test_images))),
        ),
        "pixels": (pixel_features(train_images), pixel_features(test_images)),
    }
    for name, net in (extra or {}).items():
        feature_sets[name] = (
            discriminator_features(net, train_images, progress=bar.format(name, len(train_images))),
            discriminator_features(net, test_images, progress=bar.format(name, len(test_images))),
        )

    def fit_rows(budget: int | None) -> int:  # labelled rows one SVM fit of this budget trains on: its cost
        return len(train_labels) if budget is None else min(len(train_labels), budget * num_classes)

    search_rows = 0 if len(penalties) == 1 else 1000 * num_classes * len(penalties)
    rows_per_set = search_rows + sum(fit_rows(b) * repeats.get(b, 1) for b in budgets)
    fits = sum(repeats.get(b, 1) for b in budgets) + (0 if len(penalties) == 1 else len(penalties))
    log(
        f"probe: {len(feature_sets)} feature sets x {fits} SVM fits "
        f"({', '.join(f'{n}: {t.shape[1]:,} features' for n, (t, _) in feature_sets.items())})"
    )
    work = tqdm(
        total=sum(t.shape[1] * rows_per_set for t, _ in feature_sets.values()),
        disable=not progress,
        desc="probe",
        bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed} elapsed, about {remaining} left",
        leave=False,
    )
    say = work.write if progress else log
    results: dict = {"budgets": {}, "penalty": {}, "feature_dims": {}}

    def probe_features(name: str, train_x: np.ndarray, test_x: np.ndarray) -> None:
        start = time.perf_counter()
        work.set_description(f"probe: {name}, choosing the penalty")
        per_penalty = train_x.shape[1] * search_rows // max(1, len(penalties))
        penalty, validation = choose_penalty(
            train_x, train_labels, num_classes, seed, penalties, done=lambda: work.update(per_penalty)
        )
        results["penalty"][name] = {"chosen": penalty, "validation_accuracy": validation}
        results["feature_dims"][name] = train_x.shape[1]
        for budget in budgets:
            key = "all" if budget is None else str(budget)
            work.set_description(f"probe: {name}, {key} labels/class")
            accuracies, begun = [], time.perf_counter()
            for r in range(repeats.get(budget, 1)):
                rng = np.random.default_rng(seed * 1000 + r)
                index = np.arange(len(train_labels)) if budget is None else subset(train_labels, budget, rng)
                svm = LinearSVM(penalty).fit(train_x[index], train_labels[index], num_classes)
                accuracies.append(svm.accuracy(test_x, test_labels))
                work.update(train_x.shape[1] * fit_rows(budget))
            results["budgets"].setdefault(key, {})[name] = {
                "mean": float(np.mean(accuracies)),
                "std": float(np.std(accuracies)),
                "runs": accuracies,
            }
            say(
                f"probe: {name}, {key} labels/class: test accuracy {np.mean(accuracies) * 100:.2f}% +- "
                f"{np.std(accuracies) * 100:.2f} ({len(accuracies)} fits, {time.perf_counter() - begun:.0f} s)"
            )
        say(
            f"probe: {name} ({train_x.shape[1]} features, penalty "
            f"{penalty:g}) done in {time.perf_counter() - start:.0f} s"
        )

    with ticking(work):  # one fit can take minutes: the elapsed time keeps moving meanwhile
        for name, (train_x, test_x) in feature_sets.items():
            probe_features(name, train_x, test_x)
    work.close()
    return results


def probed(results: dict) -> list[str]:
    """The feature sets a probe's results hold, in their order."""
    return list(next(iter(results["budgets"].values())))


def format_probe_table(results: dict) -> str:
    names = probed(results)
    lines = [f"{'labels/class':>12s} " + " ".join(f"{n:>24s}" for n in names)]
    for key, row in results["budgets"].items():
        cells = [f"{row[n]['mean'] * 100:6.2f}% ± {row[n]['std'] * 100:4.2f} (n={len(row[n]['runs'])})" for n in names]
        lines.append(f"{key:>12s} " + " ".join(f"{c:>24s}" for c in cells))
    return "\n".join(lines)


def write_probe(results: dict, out: str | Path) -> Path:
    """JSON summary and an accuracy-vs-labels chart (x: log10 labels per class; 'all' at the full count)."""
    out = Path(out).with_suffix(".png")
    keys = list(results["budgets"])
    per_class = [float(k) if k != "all" else results.get("labels_per_class_all", 6000.0) for k in keys]
    xs = [float(np.log10(v)) for v in per_class]
    series = {name: (xs, [results["budgets"][k][name]["mean"] * 100 for k in keys]) for name in probed(results)}
    save_picture(line_plot(series, "test accuracy (%) vs log10 labels per class: linear L2-SVM probe"), out)
    atomic_write_text(out.with_suffix(".json"), json.dumps(results, indent=2) + "\n")
    return out
