"""What does a caption embedding know? Probes each attribute of the captioned scenes from the embedding
of a scene's first caption, two ways:

- nearest centroid: the class of the closest per-value mean embedding (what a G sees without learning
  any direction);
- linear: logistic regression on the standardized embedding (what one linear layer can read out, as
  G's compression or conditioning augmentation does).

    python benchmarks/caption_probe.py [--encoders data/text-encoder.safetensors,minilm]
        [--data data/captions] [--train 6000]

Trained on the first --train training scenes, scored on the 2,000 test scenes (half with held-out
(class, colour) pairs); prints a markdown table. A second table: what the matching-aware D's "wrong
text" differs in from the right caption, for ``objective.wrong_text`` roll and nearest, over 50 batches
of 64 of those training scenes. The MiniLM row needs `gankit[minilm]`. Caption
embeddings come from gankit's cache when a run already computed them.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time

ATTRIBUTES = ("class", "colour", "size", "position")


def nearest_centroid(train, labels, test):
    import numpy as np

    values = np.unique(labels)
    centroids = np.stack([train[labels == v].mean(axis=0) for v in values])
    distances = ((test[:, None, :] - centroids[None]) ** 2).sum(axis=-1)
    return values[distances.argmin(axis=1)]


def wrong_text_differences(embeddings, attributes, mode: str, batches: int = 50, batch_size: int = 64) -> dict:
    """Mean number of the four attributes in which the wrong caption differs, and how often it differs in
    the garment alone, or in nothing."""
    import torch

    from gankit.variants.gan_cls import nearest_other

    table = torch.stack([torch.as_tensor(attributes[a]) for a in ATTRIBUTES], dim=1)
    generator = torch.Generator().manual_seed(0)
    differ = []
    for _ in range(batches):
        index = torch.randperm(len(embeddings), generator=generator)[:batch_size]
        other = torch.arange(batch_size).roll(1) if mode == "roll" else nearest_other(embeddings[index])
        differ.append(table[index] != table[index][other])
    differ = torch.cat(differ)
    only_class = differ[:, 0] & ~differ[:, 1:].any(dim=1)
    return {
        "differ": differ.sum(dim=1).float().mean().item(),
        "class only": only_class.float().mean().item(),
        "same": (~differ.any(dim=1)).float().mean().item(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoders", default="data/text-encoder.safetensors,minilm")
    parser.add_argument("--data", default="data/captions")
    parser.add_argument("--train", type=int, default=6000, help="training scenes the probes are fitted on")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch
    from sklearn.linear_model import LogisticRegression

    from gankit.data import load_dataset
    from gankit.text import caption_embeddings, load_text_encoder

    torch.set_num_threads(1)
    train = load_dataset({"name": "captions", "path": args.data, "split": "train", "limit": args.train})
    test = load_dataset({"name": "captions", "path": args.data, "split": "test"})
    heldout = test.extras["attributes"]["heldout"].astype(bool)
    lines = [
        f"Caption probes, {datetime.date.today()}, {platform.machine()} CPU, one thread.",
        f"Command: python {' '.join(sys.argv)}",
        "",
        "| encoder | probe | class (held-out pairs) | colour | size | position |",
        "|---|---|---|---:|---:|---:|",
    ]
    negatives = [
        "",
        "| encoder | wrong_text | attributes that differ (of 4) | the garment alone | none |",
        "|---|---|---:|---:|---:|",
    ]
    for name in [e for e in args.encoders.split(",") if e]:
        start = time.perf_counter()
        encoder = load_text_encoder(name)
        a = caption_embeddings(encoder, train.extras["captions"])[:, 0].numpy()
        b = caption_embeddings(encoder, test.extras["captions"])[:, 0].numpy()
        mean, std = a.mean(axis=0), a.std(axis=0) + 1e-6
        scores: dict[str, dict[str, str]] = {"nearest centroid": {}, "linear": {}}
        for attribute in ATTRIBUTES:
            y, truth = train.extras["attributes"][attribute], test.extras["attributes"][attribute]
            predictions = {
                "nearest centroid": nearest_centroid(a, y, b),
                "linear": LogisticRegression(max_iter=2000).fit((a - mean) / std, y).predict((b - mean) / std),
            }
            for probe, predicted in predictions.items():
                right = predicted == truth
                text = f"{right.mean():.3f}"
                scores[probe][attribute] = text + (f" ({right[heldout].mean():.3f})" if attribute == "class" else "")
        for probe, row in scores.items():
            lines.append(f"| {name} | {probe} | " + " | ".join(row[a] for a in ATTRIBUTES) + " |")
        for mode in ("roll", "nearest"):
            d = wrong_text_differences(torch.from_numpy(a), train.extras["attributes"], mode)
            negatives.append(f"| {name} | {mode} | {d['differ']:.2f} | {d['class only']:.3f} | {d['same']:.3f} |")
        print(f"{name}: {time.perf_counter() - start:.0f} s", file=sys.stderr)
    print("\n".join(lines + negatives))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
