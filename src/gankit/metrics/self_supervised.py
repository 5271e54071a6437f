"""An evaluator for images without labels: a contrastive encoder gankit trains itself (SimCLR, Chen et al. 2020).

FID, KID and precision/recall/density/coverage need a feature space in which distances mean something about
the images. Without labels (a folder of one's own photos) gankit learns one by contrastive self-supervision: two
random augmentations of each image (a random resized crop of 60-100% of its area, a horizontal flip, brightness
and contrast jitter, and for colour images saturation jitter) pass through the evaluator network
(``networks/classifier.py``'s CNN: the same body as the classifier evaluators) and a 2-layer projection head,
and the NT-Xent loss (temperature 0.5, the paper's eq. 1) pulls the two views of an image together and pushes
the other 2N - 2 images of the batch away. The metrics use the body's pooled features (before the projection
head, as the paper finds them the better representation).

The result is saved like a classifier evaluator (safetensors + JSON, hashed), with ``kind: self-supervised``
and no class logits (so no Inception Score or class metrics from it). When the data happens to have labels, the
labels are never used in training; a 5-nearest-neighbour accuracy on the held-out images is reported as a sanity
figure of the features.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from gankit.data import has_test_split, load_dataset
from gankit.metrics.classifier import TrainingEstimate, separation
from gankit.networks.classifier import ClassifierNet, Evaluator, stem_stride_for

PROJECTION = 64


@dataclasses.dataclass
class SelfSupervisedTraining:
    epochs: int = 20
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 1e-4
    width: int = 24
    temperature: float = 0.5
    min_crop: float = 0.6  # smallest share of the image's area a random crop keeps
    limit: int = 30000  # images used for training (the first ones of a random order); 0: all
    seed: int = 0


def augment(x: torch.Tensor, options: SelfSupervisedTraining, generator: torch.Generator) -> torch.Tensor:
    """One random view of each image in [-1, 1] (N, C, H, W): resized crop, flip, brightness / contrast (and
    saturation for colour) jitter, applied per image with one batched resampling."""
    n, channels = x.shape[0], x.shape[1]
    area = torch.empty(n).uniform_(options.min_crop, 1.0, generator=generator)
    aspect = torch.exp(torch.empty(n).uniform_(math.log(3 / 4), math.log(4 / 3), generator=generator))
    scale_x, scale_y = (area * aspect).sqrt().clamp(max=1.0), (area / aspect).sqrt().clamp(max=1.0)
    shift_x = (torch.rand(n, generator=generator) * 2 - 1) * (1 - scale_x)
    shift_y = (torch.rand(n, generator=generator) * 2 - 1) * (1 - scale_y)
    flip = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2] = scale_x * flip, shift_x
    theta[:, 1, 1], theta[:, 1, 2] = scale_y, shift_y
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    view = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    brightness = (torch.rand(n, 1, 1, 1, generator=generator) * 2 - 1) * 0.4
    contrast = 1 + (torch.rand(n, 1, 1, 1, generator=generator) * 2 - 1) * 0.4
    mean = view.mean(dim=(1, 2, 3), keepdim=True)
    view = (view - mean) * contrast + mean + brightness
    if channels == 3:
        gray = view.mean(dim=1, keepdim=True)
        saturation = 1 + (torch.rand(n, 1, 1, 1, generator=generator) * 2 - 1) * 0.4
        view = gray + (view - gray) * saturation
    return view.clamp(-1, 1)


def nt_xent(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent (Chen et al. 2020, eq. 1) over the 2N projections of N pairs (a_i, b_i), averaged over all 2N."""
    z = F.normalize(torch.cat([a, b]), dim=1)
    similarity = z @ z.T / temperature
    n = a.shape[0]
    similarity.fill_diagonal_(float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
    return F.cross_entropy(similarity, targets)


@torch.no_grad()
def pair_accuracy(
    net: ClassifierNet, images: torch.Tensor, options: SelfSupervisedTraining, batch: int = 256, seed: int = 1
) -> tuple[float, float]:
    """How often an image's second augmented view is the nearest (cosine, in the body's features: those the
    metrics use) of the other 2N - 1 views of its batch, over held-out uint8 images; and the chance of that,
    1 / (2N - 1).
    Needs no labels: the evaluator's skill on any folder."""
    generator = torch.Generator().manual_seed(seed)
    hits, total, n = 0, 0, min(batch, len(images))
    for i in range(0, len(images) - n + 1, n):
        x = images[i : i + n].float() / 127.5 - 1
        a = F.normalize(net.features(augment(x, options, generator)), dim=1)
        b = F.normalize(net.features(augment(x, options, generator)), dim=1)
        z = torch.cat([a, b])
        similarity = z @ z.T
        similarity.fill_diagonal_(float("-inf"))
        partner = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
        hits += int((similarity.argmax(1) == partner).sum())
        total += 2 * n
    return hits / max(1, total), 1.0 / (2 * n - 1)


@torch.no_grad()
def knn_accuracy(
    net: ClassifierNet,
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    k: int = 5,
) -> float:
    """Accuracy of a k-nearest-neighbour vote (cosine similarity of the features) on held-out images."""

    def embed(images):
        return F.normalize(
            torch.cat([net.features(images[i : i + 1000].float() / 127.5 - 1) for i in range(0, len(images), 1000)]),
            dim=1,
        )

    bank, queries = embed(train_x), embed(test_x)
    votes = train_y[(queries @ bank.T).topk(k, dim=1).indices]
    predicted = torch.mode(votes, dim=1).values
    return float((predicted == test_y).float().mean())


def train_self_supervised(
    data_section: dict[str, Any],
    options: SelfSupervisedTraining | None = None,
    log: Callable[[str], None] = print,
    progress: bool = True,
) -> Evaluator:
    """Train the contrastive evaluator on the images of ``data_section`` (its train split); labels are not read."""
    from tqdm.auto import tqdm

    options = options or SelfSupervisedTraining()
    data = load_dataset({**data_section, "split": "train"} if has_test_split(data_section) else data_section)
    if data.kind != "images":
        raise ValueError(f"a self-supervised evaluator needs images; {data.name} holds points")
    generator = torch.Generator().manual_seed(options.seed)
    order = torch.randperm(len(data), generator=generator)
    held_out = order[: min(2000, len(data) // 10)]
    pool = order[len(held_out) :]
    if options.limit:
        pool = pool[: options.limit]
    if len(pool) < 2 * options.batch_size:
        options = dataclasses.replace(options, batch_size=max(2, len(pool) // 2))
    torch.manual_seed(options.seed)
    net = ClassifierNet(
        data.x.shape[1], PROJECTION, options.width, dropout=0.0, stem_stride=stem_stride_for(data.x.shape[-1])
    )
    projector = nn.Sequential(nn.Linear(net.feature_dim, net.feature_dim), nn.ReLU(inplace=True), net.head)
    parameters = [*net.body.parameters(), *projector.parameters()]
    optimizer = torch.optim.AdamW(parameters, lr=options.lr, weight_decay=options.weight_decay)
    steps_per_epoch = len(pool) // options.batch_size
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, options.lr, total_steps=options.epochs * steps_per_epoch)
    start = time.perf_counter()
    estimate = TrainingEstimate(options.epochs * steps_per_epoch, "training the self-supervised evaluator", log)
    for epoch in range(options.epochs):
        net.train()
        shuffled = pool[torch.randperm(len(pool), generator=generator)]
        bar = tqdm(
            range(steps_per_epoch),
            desc=f"self-supervised evaluator epoch {epoch + 1}/{options.epochs}",
            disable=not progress,
            leave=False,
        )
        total = 0.0
        for i in bar:
            x = data.model_input(shuffled[i * options.batch_size : (i + 1) * options.batch_size])
            a, b = augment(x, options, generator), augment(x, options, generator)
            loss = nt_xent(projector(net.body(a)), projector(net.body(b)), options.temperature)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            estimate.tick()
            total += loss.item()
            if i % 20 == 0:
                bar.set_postfix(loss=f"{loss.item():.3f}")
        log(
            f"self-supervised evaluator epoch {epoch + 1}/{options.epochs}: "
            f"NT-Xent {total / max(1, steps_per_epoch):.4f}"
        )
    net.head = projector[-1]  # the file holds the body and the projection's last layer (the metrics read the body)
    net.eval().requires_grad_(False)
    pairs, pair_chance = pair_accuracy(net, data.x[held_out], options) if len(held_out) >= 2 else (None, None)
    if pairs is not None:
        log(
            "held-out pair accuracy (the other view of an image found "
            f"among {round(1 / pair_chance)} views): {pairs:.3f}, "
            f"chance {pair_chance:.4f}"
        )
    knn = None
    if data.labels is not None and len(held_out) >= 10:
        knn = round(
            knn_accuracy(net, data.x[pool[:20000]], data.labels[pool[:20000]], data.x[held_out], data.labels[held_out]),
            4,
        )
        log(
            "5-nearest-neighbour accuracy of the features on "
            f"{len(held_out)} held-out images (labels used only here): {knn}"
        )
    info = {
        "kind": "self-supervised",
        "channels": data.x.shape[1],
        "resolution": data.x.shape[-1],
        "num_classes": PROJECTION,
        "width": options.width,
        "stem_stride": net.stem_stride,
        "class_names": None,
        "dataset": {**data_section},
        "training": {**dataclasses.asdict(options), "method": "SimCLR NT-Xent (Chen et al. 2020)", "images": len(pool)},
        "test_accuracy": None,
        "knn_accuracy_heldout": knn,
        "pair_accuracy_heldout": None if pairs is None else round(pairs, 4),
        "pair_chance": None if pair_chance is None else round(pair_chance, 6),
        "separation": separation(net, data.x[held_out], options.seed),
        "train_seconds": round(time.perf_counter() - start, 1),
        "preprocessing": "uint8 images scaled to [-1, 1] by x / 127.5 - 1, at the dataset's native size",
    }
    return Evaluator(net, info)
