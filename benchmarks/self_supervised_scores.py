"""Do the self-supervised evaluator's scores behave? (issue 22)

Trains the contrastive evaluator on Fashion-MNIST's training images with the labels hidden, then scores sets of
test images degraded in three ways, each at increasing strength: Gaussian noise, Gaussian blur, and dropped
classes (the test images of the first k classes removed: a mode-collapse stand-in). Every set (5,000 images) is
scored against 5,000 training images by FID under the self-supervised evaluator and under the shipped classifier
evaluator. Reported: the real-vs-real floor, FID per set for both, whether each ladder is monotonic, the Spearman
rank correlation of the two FID columns over all sets, and the 5-NN accuracy of the self-supervised features
(labels used only there), plus the time to embed 10,000 images.

    python benchmarks/self_supervised_scores.py [--epochs 10] [--images 20000] [--out runs/bench-ssl] [--run RUN]
                                                [--techniques DIR]

With ``--run RUN`` (a Fashion-MNIST run keeping several checkpoints) it also scores each checkpoint's generator
(5,000 samples of seed 0 against the same 5,000 training images) under both evaluators and reports the Spearman
rank correlation over the checkpoints. With ``--techniques DIR`` (``benchmarks/techniques_fashion.py``'s output:
one run per stability technique) it does the same for each technique's final generator.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from gankit.data import load_dataset
from gankit.metrics.extractors import build_extractor
from gankit.metrics.scores import fid
from gankit.metrics.self_supervised import SelfSupervisedTraining, train_self_supervised
from gankit.networks.classifier import save_evaluator

N = 5000


def noisy(x: torch.Tensor, sigma: float, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (x.float() + 255 * sigma * torch.randn(x.shape, generator=g)).round().clamp(0, 255).to(torch.uint8)


def blurred(x: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = max(1, int(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = k / k.sum()
    y = F.conv2d(x.float(), k.view(1, 1, 1, -1), padding=(0, radius))
    y = F.conv2d(y, k.view(1, 1, -1, 1), padding=(radius, 0))
    return y.round().clamp(0, 255).to(torch.uint8)


def spearman(a: list[float], b: list[float]) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--images", type=int, default=20000, help="training images for the evaluator")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-ssl"))
    parser.add_argument("--run", type=Path, help="a Fashion-MNIST run whose checkpoints to rank")
    parser.add_argument(
        "--skip-degraded", action="store_true", help="only rank --run's checkpoints and --techniques' runs"
    )
    parser.add_argument(
        "--techniques",
        type=Path,
        nargs="+",
        help="a folder of Fashion-MNIST runs (benchmarks/techniques_fashion.py's --out) whose final generators to rank",
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "fashion-mnist-ssl.safetensors"
    if not path.is_file():
        options = SelfSupervisedTraining(epochs=args.epochs, limit=args.images)
        evaluator = train_self_supervised({"name": "fashion-mnist"}, options, progress=False)
        save_evaluator(evaluator, path)
        print(
            f"trained in {evaluator.info['train_seconds']:.0f} s; "
            f"5-NN accuracy {evaluator.info['knn_accuracy_heldout']}"
        )
    extractors = {
        "self-supervised": build_extractor({"name": "evaluator", "weights": str(path)}),
        "classifier": build_extractor({"name": "evaluator", "weights": "fashion-mnist"}),
    }
    train = load_dataset({"name": "fashion-mnist", "split": "train"})
    test = load_dataset({"name": "fashion-mnist", "split": "test"})
    g = torch.Generator().manual_seed(0)
    reference = train.x[torch.randperm(len(train), generator=g)[:N]]
    results = {} if args.skip_degraded else degraded_sets(test, g, reference, extractors)
    if args.run:
        results["checkpoints"] = checkpoints(args.run, extractors, reference)
    if args.techniques:
        runs = {
            f"{folder.name}/{p.name}": p
            for folder in args.techniques
            for p in sorted(folder.iterdir())
            if (p / "generator.safetensors").is_file()
        }
        results["techniques"] = rank_generators(runs, extractors, reference, "technique")
    (args.out / ("ranking.json" if args.skip_degraded else "results.json")).write_text(json.dumps(results, indent=2))


def degraded_sets(test, g: torch.Generator, reference: torch.Tensor, extractors: dict) -> dict:
    """FID of noisy, blurred and class-dropped test sets under both evaluators; ladders and rank correlation."""
    base_index = torch.randperm(len(test), generator=g)
    base = test.x[base_index[:N]]
    sets = {"real vs real (test)": base}
    for sigma in (0.05, 0.1, 0.2, 0.4):
        sets[f"noise {sigma}"] = noisy(base, sigma)
    for sigma in (0.5, 1.0, 1.5, 2.0):
        sets[f"blur {sigma}"] = blurred(base, sigma)
    for k in (2, 4, 6, 8):
        keep = test.x[base_index][test.labels[base_index] >= k][:N]
        sets[f"classes {k}..9 only"] = keep
    rows = {name: {} for name in sets}
    start = time.perf_counter()
    timing = {}
    for kind, extractor in extractors.items():
        t = time.perf_counter()
        real = extractor(reference).features
        timing[kind] = (time.perf_counter() - t) / len(reference) * 10000
        for name, images in sets.items():
            rows[name][kind] = fid(real, extractor(images).features)
    print("| set | FID, self-supervised | FID, classifier |\n|---|---|---|")
    for name, row in rows.items():
        print(f"| {name} | {row['self-supervised']:.3f} | {row['classifier']:.3f} |")
    ladders = {
        "noise": [f"noise {s}" for s in (0.05, 0.1, 0.2, 0.4)],
        "blur": [f"blur {s}" for s in (0.5, 1.0, 1.5, 2.0)],
        "classes": [f"classes {k}..9 only" for k in (2, 4, 6, 8)],
    }
    for kind in extractors:
        monotonic = {
            ladder: all(rows[a][kind] < rows[b][kind] for a, b in zip(names, names[1:]))
            for ladder, names in ladders.items()
        }
        print(f"{kind}: monotonic ladders {monotonic}; 10,000 images embedded in {timing[kind]:.1f} s")
    names = [n for n in sets if n != "real vs real (test)"]
    rho = spearman([rows[n]["self-supervised"] for n in names], [rows[n]["classifier"] for n in names])
    print(f"Spearman rank correlation of the two FIDs over the {len(names)} degraded sets: {rho:.3f}")
    return {"rows": rows, "spearman": rho, "seconds_per_10k": timing, "total_seconds": time.perf_counter() - start}


def checkpoints(run: Path, extractors: dict, reference: torch.Tensor) -> dict:
    """FID of each checkpoint's generator under both evaluators, and their rank correlation."""
    from gankit.formats import list_checkpoints

    return rank_generators(
        {f"{step:,}": path for step, path in list_checkpoints(run / "checkpoints")},
        extractors,
        reference,
        "checkpoint step",
    )


def rank_generators(sources: dict[str, Path], extractors: dict, reference: torch.Tensor, what: str) -> dict:
    """FID of each generator (name -> run folder, export or checkpoint) under both evaluators, and the Spearman
    rank correlation of the two columns."""
    from gankit.inference import load_generator

    reals = {kind: extractor(reference).features for kind, extractor in extractors.items()}
    rows = {}
    for name, path in sources.items():
        start = time.perf_counter()
        images = torch.from_numpy(load_generator(path).sample(N, seed=0)).permute(0, 3, 1, 2).contiguous()
        rows[name] = {kind: fid(reals[kind], extractor(images).features) for kind, extractor in extractors.items()}
        rows[name]["seconds"] = time.perf_counter() - start
    print(f"\n| {what} | FID, self-supervised | FID, classifier |\n|---|---|---|")
    for name, row in rows.items():
        print(f"| {name} | {row['self-supervised']:.3f} | {row['classifier']:.3f} |")
    rho = spearman([r["self-supervised"] for r in rows.values()], [r["classifier"] for r in rows.values()])
    print(f"Spearman rank correlation over the {len(rows)} generators: {rho:.3f}")
    return {"rows": rows, "spearman": rho}


if __name__ == "__main__":
    main()
