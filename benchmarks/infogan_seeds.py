"""InfoGAN's categorical code on Fashion-MNIST over several seeds (issue 29: code accuracy >= 0.65, mean of 5).

Each variant is the ``infogan-fashion-mnist`` preset with its ``--variant`` overrides, trained once per seed by
``gankit train`` (one thread per run, ``--parallel`` runs side by side). Its generator (``RUN``: the best checkpoint
where the preset keeps one) draws 10,000 samples, sample k with the first categorical code set to k mod 10, and each
evaluator classifies them; code values are matched one-to-one to classes by the Hungarian algorithm and the share
of samples whose class is their code value's match is the code accuracy. Two evaluators: ``shipped`` (gankit's
built-in Fashion-MNIST classifier: what tuning and the preset's best-checkpoint choice read) and ``heldout``
(benchmarks/heldout_evaluator.py, which no tuning decision reads). FID (shipped evaluator, 10,000 samples against
10,000 training images) is reported beside them, so a code bought with worse pictures shows.

    python benchmarks/infogan_seeds.py --seeds 0 1 2 3 4 [--variant "NAME:KEY=VALUE,..."] [--out runs/infogan-seeds]
    python benchmarks/infogan_seeds.py --seeds 0 --variant "NAME:..." --tune    # shipped evaluator only

A run folder that already holds generator.safetensors is scored, not trained again. Writes OUT/results.json and
OUT/results.md (mean ± sd per variant and evaluator, every seed's value, and whether the target is met).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from vs_recipe import parse_candidate as parse_variant  # NAME[:KEY=VALUE,...], as vs_recipe's --try

PRESET = "infogan-fashion-mnist"
TARGET = 0.65
NUM_SAMPLES = 10000


def score(folder: Path, held_out=None) -> dict:
    from gankit import load_generator
    from gankit.metrics.evaluation import evaluate_generator
    from gankit.metrics.scores import matched_accuracy

    pipeline = load_generator(folder)
    shipped = evaluate_generator(pipeline, "fid,code_accuracy", num_samples=NUM_SAMPLES)
    row = {
        "step": pipeline.step,
        "ema": pipeline.ema,
        "shipped_code_accuracy": shipped["metrics"]["code_accuracy"],
        "code_to_class": shipped["metrics"]["code_to_class"],
        "fid": shipped["metrics"]["fid"],
    }
    if held_out is not None:
        given, targets = pipeline.condition.evaluation_inputs(NUM_SAMPLES, {"codes"})
        samples = pipeline.sample(NUM_SAMPLES, seed=0, batch_size=500, **given)
        predicted = held_out.predict(samples.transpose(0, 3, 1, 2))
        row["heldout_code_accuracy"] = matched_accuracy(targets["codes"], predicted)["code_accuracy"]
    return row


def summary(results: list[dict]) -> str:
    keys = ("shipped_code_accuracy", "heldout_code_accuracy", "fid")
    lines = [
        "| variant | seeds | shipped code acc. | held-out code acc. | FID (shipped) | checkpoint steps "
        "| per seed (shipped / held-out) |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    verdicts = []
    for variant in dict.fromkeys(r["variant"] for r in results):
        mine = [r for r in results if r["variant"] == variant]
        cells = [f"{np.mean([r[k] for r in mine]):.3f} ± {np.std([r[k] for r in mine], ddof=1):.3f}" for k in keys]
        steps = ", ".join(str(r["step"]) for r in mine)
        seeds = ", ".join(
            f"{r['seed']}: {r['shipped_code_accuracy']:.3f} / {r['heldout_code_accuracy']:.3f}" for r in mine
        )
        lines.append(f"| {variant} | {len(mine)} | " + " | ".join(cells) + f" | {steps} | {seeds} |")
        for key in keys[:2]:
            mean = float(np.mean([r[key] for r in mine]))
            met = "met" if mean >= TARGET and len(mine) >= 5 else "not met"
            verdicts.append(
                f"- {variant}, {key}: mean {mean:.3f} over {len(mine)} seeds (target >= {TARGET}, 5 seeds): {met}"
            )
    return "\n".join(lines + [""] + verdicts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument(
        "--variant",
        type=parse_variant,
        action="append",
        help="NAME[:KEY=VALUE,...] on top of the preset; repeatable (default: the preset as it is, named 'preset')",
    )
    parser.add_argument("--parallel", type=int, default=2, help="runs trained at once, one thread each")
    parser.add_argument("--out", type=Path, default=Path("runs/infogan-seeds"))
    parser.add_argument(
        "--tune", action="store_true", help="score with the shipped evaluator only (what tuning may read)"
    )
    args = parser.parse_args()
    variants = args.variant or [("preset", [])]
    runs = [(name, overrides, seed) for name, overrides in variants for seed in args.seeds]
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    running: list[subprocess.Popen] = []
    for name, overrides, seed in runs:
        folder = args.out / f"{name}-seed-{seed}"
        if (folder / "generator.safetensors").is_file():
            continue
        if len(running) >= args.parallel:
            running.pop(0).wait()
        command = [sys.executable, "-m", "gankit", "train", PRESET, "--out", str(folder), "--quiet"]
        for option in (f"train.seed={seed}", "train.tensorboard=false", *overrides):
            command += ["--set", option]
        log = open(args.out / f"{name}-seed-{seed}.log", "w")
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        running.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env))
        print(f"training {folder} (log {log.name})", flush=True)
    for process in running:
        process.wait()
    failed = [
        f"{n}-seed-{s}" for n, _, s in runs if not (args.out / f"{n}-seed-{s}" / "generator.safetensors").is_file()
    ]
    if failed:
        raise SystemExit(f"training failed for {failed}; see their logs in {args.out}")
    held_out = None
    if not args.tune:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from heldout_evaluator import HeldOutEvaluator

        held_out = HeldOutEvaluator("fashion-mnist")
    results = []
    for name, overrides, seed in runs:
        scored = score(args.out / f"{name}-seed-{seed}", held_out)
        row = {"variant": name, "overrides": overrides, "seed": seed, **scored}
        results.append(row)
        print(json.dumps(row), flush=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    if args.tune:
        print(
            "\n".join(
                f"{r['variant']} seed {r['seed']}: step {r['step']}, code accuracy "
                f"{r['shipped_code_accuracy']:.3f} (code -> class {r['code_to_class']}), FID {r['fid']:.2f}"
                for r in results
            )
        )
        return
    text = summary(results) + f"\n\n{time.perf_counter() - start:.0f} s in all"
    (args.out / "results.md").write_text(text + "\n")
    print("\n" + text)


if __name__ == "__main__":
    main()
