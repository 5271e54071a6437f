"""Does bf16 autocast keep sample quality? (issue 18: the evidence behind ``train.precision=auto``)

Trains ``dcgan-fashion-mnist`` for ``--steps`` steps in fp32 and in bf16 for each seed, then scores each
final generator with ``gankit evaluate``'s protocol (the built-in Fashion-MNIST evaluator, 10,000 samples
against 10,000 training images: FID, precision, recall, density, coverage), and prints each run and the
mean and spread per precision, with the training speed.

    python benchmarks/precision_quality.py [--seeds 0 1 2] [--steps 2000] [--out runs/precision]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import gankit
from gankit.inference import load_generator
from gankit.metrics.evaluation import evaluate_generator

METRICS = ("fid", "precision", "recall", "density", "coverage")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--out", default="runs/precision")
    args = parser.parse_args()
    results: dict[str, list[dict]] = {"fp32": [], "bf16": []}
    for seed in args.seeds:
        for precision in results:
            run = Path(args.out) / f"{precision}-seed{seed}"
            row_path = run / "precision_quality.json"
            if row_path.is_file():
                results[precision].append(json.loads(row_path.read_text()))
                continue
            config = gankit.load_config(
                "dcgan-fashion-mnist",
                [
                    f"train.seed={seed}",
                    f"train.precision={precision}",
                    f"train.steps={args.steps}",
                    "train.tensorboard=false",
                ],
            )
            start = time.perf_counter()
            result = gankit.train(config, run, progress=False, log=lambda s: None)
            seconds = time.perf_counter() - start
            scored = evaluate_generator(load_generator(run), "fid,prdc", 10000, "train", 10000, 0)
            row = {
                "seed": seed,
                "autocast": precision,  # "precision" is a metric below
                "train_seconds": round(seconds, 1),
                "images_per_second_last_interval": result.images_per_second,
                **{m: scored["metrics"][m] for m in METRICS},
            }
            row_path.write_text(json.dumps(row, indent=2) + "\n")
            results[precision].append(row)
            print(json.dumps(row), flush=True)
    print(f"\ndcgan-fashion-mnist, {args.steps} steps, seeds {args.seeds}; evaluator protocol as gankit evaluate\n")
    print("| precision | " + " | ".join(METRICS) + " | training time |\n|---|" + "---|" * (len(METRICS) + 1))
    for precision, rows in results.items():
        cells = []
        for metric in METRICS:
            values = [r[metric] for r in rows]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{statistics.mean(values):.3f} ± {spread:.3f}")
        seconds = statistics.mean(r["train_seconds"] for r in rows)
        print(f"| {precision} | " + " | ".join(cells) + f" | {seconds:.0f} s |")
    for precision, rows in results.items():
        print(precision, "per seed FID:", [round(r["fid"], 2) for r in rows])


if __name__ == "__main__":
    main()
