"""Evaluation numbers for docs/results.md: the real-vs-real floor, a run's scores and their ratios,
and the time to evaluate 10,000 generated samples with cached reference features.

    python benchmarks/evaluation.py RUN_DIR [--n 10000]

Runs on Fashion-MNIST with the built-in evaluator. The first evaluation fills the reference cache
(and is timed separately); the timed evaluation then reads the cached reference features.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import tempfile
import time
from pathlib import Path

import gankit
from gankit.metrics.evaluation import evaluate_generator, evaluate_real_vs_real, format_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="a dcgan-fashion-mnist run folder")
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args()
    metrics = "fid,kid,prdc,is"
    pipeline = gankit.load_generator(args.run)
    if pipeline.config.data["name"] != "fashion-mnist":
        sys.exit("this benchmark expects a Fashion-MNIST run")

    import os

    with tempfile.TemporaryDirectory() as cache:
        os.environ["GANKIT_CACHE"] = cache  # start cold, so the first figure includes the reference features
        start = time.perf_counter()
        floor = evaluate_real_vs_real(pipeline.config.data, metrics, num_samples=args.n)
        floor_seconds = time.perf_counter() - start
        start = time.perf_counter()
        evaluate_generator(pipeline, metrics, num_samples=args.n)
        cold_seconds = time.perf_counter() - start
        start = time.perf_counter()
        row = evaluate_generator(pipeline, metrics, num_samples=args.n)
        warm_seconds = time.perf_counter() - start
    assert row["protocol"]["reference_features_cached"]

    print(f"{datetime.date.today()} | run {args.run} (step {row['step']}, ema {row['ema']})")
    print(
        f"evaluator sha256 {row['protocol']['weights_sha256']}, test accuracy "
        f"{row['protocol']['evaluator_test_accuracy']}\n"
    )
    print("real-vs-real floor (10,000 test vs 10,000 train):")
    print(format_table(floor))
    print(f"\n{args.run}:")
    print(format_table(row, floor))
    print(
        f"\nseconds: floor {floor_seconds:.1f} (cold cache), generator {cold_seconds:.1f} (cold cache), "
        f"generator {warm_seconds:.1f} (cached reference) for {args.n} samples"
    )
    if args.json:
        Path(args.json).write_text(json.dumps({"floor": floor, "row": row, "seconds_cached": warm_seconds}, indent=2))


if __name__ == "__main__":
    main()
