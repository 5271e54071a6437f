"""Memorization checks (Radford et al. 2015, section 6.1; appendix on hash collisions).

- Nearest neighbours: each generated sample's closest training images, in pixel
  space (L2) and in the evaluator's feature space. A panel shows samples next to
  their neighbours; the distance histogram compares generated -> train distances
  with the same statistic for held-out real images (test -> train). A generator
  that copies its training set sits far to the left of the held-out curve.
- Autoencoder hashes: a small denoising ReLU autoencoder is trained on the
  training set; its code, thresholded at zero, is a binary hash (the paper used
  128 bits for 3,072-value images; gankit keeps that ratio: 32 bits for 784
  values, at least 16). The collision rate of generated images with
  training images is reported next to that of test images with training images.
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


@torch.no_grad()
def nearest_neighbours(queries: torch.Tensor, keys: torch.Tensor, k: int = 1, chunk: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
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
    """Denoising ReLU autoencoder: input -> hidden -> code (ReLU) -> hidden -> input; code > 0 is the hash."""

    def __init__(self, inputs: int, bits: int, hidden: int = 512, dropout: float = 0.2):
        super().__init__()
        self.encoder = nn.Sequential(nn.Dropout(dropout), nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, bits), nn.ReLU())
        self.decoder = nn.Sequential(nn.Linear(bits, hidden), nn.ReLU(), nn.Linear(hidden, inputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


def bits_for(inputs: int) -> int:
    """The paper's ratio (128 bits for 3,072 values), rounded to a multiple of 8, at least 16."""
    return max(16, round(inputs * 128 / 3072 / 8) * 8)


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
    return model.eval()


@torch.no_grad()
def hash_codes(model: HashAutoencoder, images: torch.Tensor, batch_size: int = 2000) -> list[bytes]:
    """One binary code per image (the code layer thresholded at 0), packed into bytes."""
    codes = []
    for i in range(0, len(images), batch_size):
        x = images[i : i + batch_size].flatten(1).float().div(127.5).sub(1.0)
        codes.append((model.encoder(x) > 0).numpy())
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
    # Autoencoder hash collisions.
    bits = bits_for(train[0].numel())
    model = train_hash_autoencoder(train, bits, hash_epochs, seed=seed, log=log)
    train_codes = hash_codes(model, train)
    summary["hash"] = {
        "bits": bits,
        "distinct_training_codes": len(set(train_codes)),
        "generated_vs_train": collisions(hash_codes(model, generated), train_codes),
        "test_vs_train": collisions(hash_codes(model, test[: len(generated)]), train_codes),
    }
    summary["histograms"] = {s: {"generated_to_train": h[0].tolist(), "test_to_train": h[1].tolist()} for s, h in histograms.items()}
    return MemorizationReport(summary, panel)


def write_memorization(report: MemorizationReport, out_dir: str | Path, neighbours: int = 4) -> Path:
    from gankit.checkpoint import atomic_write_text
    from gankit.images import image_grid, line_plot, save_picture

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
        save_picture(line_plot(series, f"nearest-training-image distance ({space} space), density"), out / f"distances-{space}.png")
    summary = {k: v for k, v in report.summary.items() if k != "histograms"}
    atomic_write_text(out / "memorization.json", json.dumps(summary, indent=2) + "\n")
    return out
