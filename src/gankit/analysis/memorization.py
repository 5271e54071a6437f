"""Memorization checks (Radford et al. 2015, section 6.1; appendix on hash collisions).

- Nearest neighbours: each generated sample's closest training images, in pixel
  space (L2) and in the evaluator's feature space. A panel shows samples next to
  their neighbours; the distance histogram compares generated -> train distances
  with the same statistic for held-out real images (test -> train). A generator
  that copies its training set sits far to the left of the held-out curve.
- Autoencoder hashes: a small denoising autoencoder is trained on the training
  set and its code, binarized, is a hash; the collision rate of generated images
  with training images is reported next to that of test images with training
  images. Two departures from the paper (a 3,072-128-3,072 ReLU autoencoder,
  codes thresholded at zero), both measured on Fashion-MNIST: a small ReLU code
  leaves units dead (11 of 32), giving 200 distinct codes for 60,000 training
  images and a test-train collision rate of 100%, so gankit uses a linear code
  thresholded at each unit's median training value (every bit splits the
  training set in half) and about one bit per 12 input values (64 for 28x28,
  the paper's 128 at 3,072): 58,867 distinct codes, 2.5% test-train collisions.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gankit.files import atomic_write_text
from gankit.images import image_grid, line_plot, save_picture


@torch.no_grad()
def nearest_neighbours(
    queries: torch.Tensor, keys: torch.Tensor, k: int = 1, chunk: int = 500
) -> tuple[torch.Tensor, torch.Tensor]:
    """(distances, indices) of the ``k`` nearest rows of ``keys`` for each row of ``queries`` (L2)."""
    q = queries.flatten(1).float()
    keys = keys.flatten(1).float()
    key_norms = (keys**2).sum(1)
    distances, indices = [], []
    for i in range(0, len(q), chunk):
        part = q[i : i + chunk]
        d2 = (part**2).sum(1, keepdim=True) + key_norms.unsqueeze(0) - 2 * part @ keys.T
        d2, index = d2.clamp_min_(0).topk(k, dim=1, largest=False)
        distances.append(d2.sqrt())
        indices.append(index)
    return torch.cat(distances), torch.cat(indices)


# --------------------------------------------------------------------------- autoencoder hashes


class HashAutoencoder(nn.Module):
    """Denoising autoencoder: input -> hidden (ReLU) -> linear code -> hidden (ReLU) -> input.

    After training, ``thresholds`` holds each code unit's median over the
    training set; the hash is ``code > thresholds``.
    """

    def __init__(self, inputs: int, bits: int, hidden: int = 512, dropout: float = 0.2):
        super().__init__()
        self.encoder = nn.Sequential(nn.Dropout(dropout), nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, bits))
        self.decoder = nn.Sequential(nn.Linear(bits, hidden), nn.ReLU(), nn.Linear(hidden, inputs))
        self.register_buffer("thresholds", torch.zeros(bits))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


def bits_for(inputs: int) -> int:
    """About one bit per 12 input values, a multiple of 8, between 16 and the paper's 128."""
    return int(min(128, max(16, round(inputs / 12 / 8) * 8)))


def train_hash_autoencoder(
    images: torch.Tensor, bits: int, epochs: int = 3, batch_size: int = 256, seed: int = 0, log: Callable = print
) -> HashAutoencoder:
    torch.manual_seed(seed)
    x = images.flatten(1).float().div(127.5).sub(1.0)
    model = HashAutoencoder(x.shape[1], bits)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(seed)
    batch_size = min(batch_size, len(x))
    for epoch in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        total = 0.0
        for i in range(0, len(x) - batch_size + 1, batch_size):
            batch = x[order[i : i + batch_size]]
            loss = F.mse_loss(model(batch), batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item()
        log(f"hash autoencoder epoch {epoch + 1}/{epochs}: reconstruction MSE {total / (len(x) // batch_size):.4f}")
    model.eval()
    with torch.no_grad():
        codes = torch.cat([model.encoder(x[i : i + 5000]) for i in range(0, len(x), 5000)])
        model.thresholds.copy_(codes.median(dim=0).values)
    return model


@torch.no_grad()
def hash_codes(model: HashAutoencoder, images: torch.Tensor, batch_size: int = 2000) -> list[bytes]:
    """One binary code per image (each code unit above its median training value), packed into bytes."""
    codes = []
    for i in range(0, len(images), batch_size):
        x = images[i : i + batch_size].flatten(1).float().div(127.5).sub(1.0)
        codes.append((model.encoder(x) > model.thresholds).numpy())
    return pack_bits(np.concatenate(codes))


def pack_bits(bits: np.ndarray) -> list[bytes]:
    """(N, B) booleans -> N byte strings."""
    return [row.tobytes() for row in np.packbits(bits.astype(bool), axis=1)]


def collisions(queries: list[bytes], reference: list[bytes]) -> dict[str, float]:
    """How many query codes equal some reference code."""
    known = set(reference)
    hits = sum(code in known for code in queries)
    return {"colliding": hits, "total": len(queries), "rate": hits / len(queries) if queries else 0.0}


# --------------------------------------------------------------------------- the report


@dataclasses.dataclass
class MemorizationReport:
    summary: dict
    panel: np.ndarray  # uint8 images for the neighbour panel


def memorization_report(
    generated: torch.Tensor,
    train: torch.Tensor,
    test: torch.Tensor,
    feature_fn: Callable[[torch.Tensor], np.ndarray] | None = None,
    panel_samples: int = 12,
    neighbours: int = 4,
    hash_epochs: int = 3,
    seed: int = 0,
    log: Callable = print,
) -> MemorizationReport:
    """Nearest-neighbour and hash-collision statistics; all inputs uint8 (N, C, H, W)."""
    import time

    start = time.perf_counter()
    summary: dict = {"num_generated": len(generated), "num_train": len(train), "num_test": len(test)}
    histograms = {}
    spaces = {"pixel": lambda x: x.float().div(255.0)}
    if feature_fn is not None:
        spaces["feature"] = lambda x: torch.as_tensor(feature_fn(x))
    train_repr = {}
    for space, represent in spaces.items():
        keys = represent(train)
        train_repr[space] = keys
        gen_d, _ = nearest_neighbours(represent(generated), keys)
        test_d, _ = nearest_neighbours(represent(test[: len(generated)]), keys)
        gen_d, test_d = gen_d[:, 0].numpy(), test_d[:, 0].numpy()
        summary[space] = {
            "generated_to_train_median": float(np.median(gen_d)),
            "test_to_train_median": float(np.median(test_d)),
            "generated_to_train_min": float(gen_d.min()),
            "test_to_train_min": float(test_d.min()),
            # Fraction of generated samples nearer to a training image than 99% of held-out real images are.
            "generated_below_test_1st_percentile": float((gen_d < np.percentile(test_d, 1)).mean()),
        }
        histograms[space] = (gen_d, test_d)
    # Panel: each of the first samples, then its nearest training images in pixel space.
    _, index = nearest_neighbours(spaces["pixel"](generated[:panel_samples]), train_repr["pixel"], k=neighbours)
    rows = [torch.cat([generated[i : i + 1], train[index[i]]]) for i in range(min(panel_samples, len(generated)))]
    panel = torch.cat(rows).permute(0, 2, 3, 1).contiguous().numpy()
    summary["seconds_neighbours"] = round(time.perf_counter() - start, 1)
    # Autoencoder hash collisions.
    start = time.perf_counter()
    bits = bits_for(train[0].numel())
    model = train_hash_autoencoder(train, bits, hash_epochs, seed=seed, log=log)
    train_codes = hash_codes(model, train)
    summary["hash"] = {
        "bits": bits,
        "distinct_training_codes": len(set(train_codes)),
        "generated_vs_train": collisions(hash_codes(model, generated), train_codes),
        "test_vs_train": collisions(hash_codes(model, test[: len(generated)]), train_codes),
    }
    summary["seconds_hash"] = round(time.perf_counter() - start, 1)
    summary["histograms"] = {
        s: {"generated_to_train": h[0].tolist(), "test_to_train": h[1].tolist()} for s, h in histograms.items()
    }
    return MemorizationReport(summary, panel)


def write_memorization(report: MemorizationReport, out_dir: str | Path, neighbours: int = 4) -> Path:

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_picture(image_grid(report.panel, columns=neighbours + 1), out / "neighbours.png")
    for space, h in report.summary["histograms"].items():
        gen, test = np.array(h["generated_to_train"]), np.array(h["test_to_train"])
        edges = np.linspace(0, max(gen.max(), test.max()) * 1.02, 41)
        centres = ((edges[1:] + edges[:-1]) / 2).tolist()
        series = {
            "generated -> train": (centres, np.histogram(gen, edges, density=True)[0].tolist()),
            "held-out test -> train": (centres, np.histogram(test, edges, density=True)[0].tolist()),
        }
        save_picture(
            line_plot(series, f"nearest-training-image distance ({space} space), density"),
            out / f"distances-{space}.png",
        )
    summary = {k: v for k, v in report.summary.items() if k != "histograms"}
    atomic_write_text(out / "memorization.json", json.dumps(summary, indent=2) + "\n")
    return out
