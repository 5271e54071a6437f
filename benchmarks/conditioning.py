"""Issue 6's targets: conditional GAN against plain DCGAN at the same budget, and InfoGAN's codes.

    python benchmarks/conditioning.py [--rows dcgan-fashion,cgan-fashion,...] [--seconds 1800]
                                      [--parallel 2] [--out runs/conditioning]

Every row trains one preset for ``--seconds`` of wall clock (train.time_limit; 0 = the preset's own
step count) on one thread; ``--parallel`` rows run side by side, one core each. Then its G (the
final raw G) draws 10,000 samples, scored under the dataset's built-in evaluator against 10,000
training images:

- all rows: FID (and its ratio to the real-vs-real floor: test images in place of samples),
  precision / recall, predicted-class histogram (class KL, max class share);
- class-conditional rows: label accuracy (sample k drawn for class k mod 10), its ratio to the
  evaluator's own accuracy on the real test split (the ceiling), intra-class FID;
- InfoGAN rows: categorical-code accuracy (code values matched to classes by the Hungarian
  algorithm) and, per continuous code, the Spearman rho of code value vs the image statistic it moves
  most (64 rows of fixed inputs, code swept -2..2).

Writes OUT/results.md and, per row, OUT/<row>/result.json and a picture: the class grid (cGAN, AC-GAN)
or the categorical traversal (InfoGAN). A row whose folder holds generator.safetensors is not
trained again (only scored), so a run trained by hand with the same preset can be scored in place.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

UNCONDITIONAL = "fid,prdc,classes"
# row -> (preset, metrics, what it is)
ROWS: dict[str, tuple[str, str, str]] = {
    "dcgan-fashion": ("dcgan-fashion-mnist", UNCONDITIONAL, "unconditional DCGAN (the baseline)"),
    "cgan-fashion": ("cgan-fashion-mnist", UNCONDITIONAL + ",labels,intra_fid", "conditional DCGAN, label maps into D"),
    "acgan-fashion": ("acgan-fashion-mnist", UNCONDITIONAL + ",labels,intra_fid", "AC-GAN"),
    "infogan-fashion": ("infogan-fashion-mnist", UNCONDITIONAL + ",code_accuracy,code_monotonicity", "InfoGAN"),
    "infogan-digits": ("infogan-digits", UNCONDITIONAL + ",code_accuracy,code_monotonicity", "InfoGAN"),
}
NUM_SAMPLES = 10000


def train_row(row: str, seconds: float, folder: Path, overrides: list[str]) -> None:
    from gankit import load_config, train

    budget = [f"train.time_limit={seconds}", "train.steps=10000000"] if seconds > 0 else []
    settings = budget + ["train.checkpoint_every=1000000", "train.tensorboard=false"] + overrides
    train(load_config(ROWS[row][0], settings), folder, progress=False, log=print)


def score_row(row: str, folder: Path) -> dict:
    from gankit import load_generator
    from gankit.images import image_grid, save_picture
    from gankit.metrics.evaluation import evaluate_generator

    pipeline = load_generator(folder)
    result = evaluate_generator(pipeline, ROWS[row][1], num_samples=NUM_SAMPLES)
    choices = {c["name"]: c for c in pipeline.condition.controls() if c["type"] in ("class", "choice")}
    if "labels" in choices:  # one row per class
        classes = len(choices["labels"]["options"])
        picture = image_grid(pipeline.class_grid(range(classes), columns=10), columns=10)
    elif "codes.cat0" in choices:  # one column per value of the first categorical code
        values = list(range(choices["codes.cat0"]["count"]))
        picture = image_grid(pipeline.traverse("cat0", values, rows=10), columns=len(values))
    else:
        picture = image_grid(pipeline.sample(100, seed=0), columns=10)
    save_picture(picture, folder / "picture.png")
    row_result = {
        "row": row,
        "preset": ROWS[row][0],
        "steps": pipeline.step,
        **result["metrics"],
        "protocol": result["protocol"],
    }
    (folder / "result.json").write_text(json.dumps(row_result, indent=2) + "\n")
    return row_result


def table(results: list[dict], floor: dict) -> str:
    def cell(r: dict, key: str, fmt: str = ".3f") -> str:
        return format(r[key], fmt) if key in r else ""

    ceiling = floor["protocol"].get("evaluator_test_accuracy")
    f = floor["metrics"]
    lines = [
        "| row | preset | steps | FID | FID / floor | precision | recall | class KL | label acc. | / evaluator acc. | "
        "intra-FID | code acc. | code monotonicity (rho, statistic) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        f"| real-vs-real floor | | | {f['fid']:.3f} | 1 | {f['precision']:.3f} | {f['recall']:.3f} | "
        f"{f['class_kl']:.4f} | {ceiling} (evaluator, test split) | 1 | | | |",
    ]
    for r in results:
        ratio = f"{r['label_accuracy'] / ceiling:.3f}" if "label_accuracy" in r and ceiling else ""
        codes = ", ".join(
            f"{rho:+.2f} {stat}"
            for rho, stat in zip(r.get("code_monotonicity_per_code", []), r.get("code_statistic_per_code", []))
        )
        lines.append(
            f"| {r['row']} | {r['preset']} | {r['steps']} | {r['fid']:.2f} | {r['fid'] / f['fid']:.0f}x | "
            f"{r['precision']:.3f} | {r['recall']:.3f} | {r['class_kl']:.4f} | {cell(r, 'label_accuracy')} | {ratio} | "
            f"{cell(r, 'intra_fid', '.2f')} | {cell(r, 'code_accuracy')} | {codes} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--rows", default="dcgan-fashion,cgan-fashion", help="comma-separated, from: " + ", ".join(ROWS)
    )
    parser.add_argument(
        "--seconds", type=float, default=1800.0, help="training seconds per row (0: the preset's steps)"
    )
    parser.add_argument("--parallel", type=int, default=2, help="rows trained at once, one thread each")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override for every row")
    parser.add_argument("--out", default="runs/conditioning")
    parser.add_argument("--train-one", help=argparse.SUPPRESS)  # internal: train this row in this process
    args = parser.parse_args()
    out = Path(args.out)
    import torch

    torch.set_num_threads(1)
    if args.train_one:
        train_row(args.train_one, args.seconds, out / args.train_one, args.set)
        return
    rows = [r for r in args.rows.split(",") if r]
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        parser.error(f"unknown {unknown}; rows: {', '.join(ROWS)}")
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    pending = [r for r in rows if not (out / r / "generator.safetensors").is_file()]
    running: list[subprocess.Popen] = []
    for i, row in enumerate(pending):  # one process per row; ``--parallel`` at a time
        if len(running) >= args.parallel:
            running.pop(0).wait()
        command = [sys.executable, __file__, "--train-one", row, "--seconds", str(args.seconds), "--out", str(out)]
        command += [a for s in args.set for a in ("--set", s)]
        log = open(out / f"{row}.log", "w")
        running.append(
            subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "1"})
        )
        print(f"training {row} ({ROWS[row][0]}), log {out / (row + '.log')}", flush=True)
    for process in running:
        process.wait()
    failed = [r for r in rows if not (out / r / "generator.safetensors").is_file()]
    if failed:
        raise SystemExit(f"training failed for {failed}; see their logs in {out}")
    from gankit.metrics.evaluation import evaluate_real_vs_real

    floors = {}
    results = []
    for row in rows:
        dataset = "digits" if row.endswith("digits") else "fashion-mnist"
        if dataset not in floors:
            floors[dataset] = evaluate_real_vs_real({"name": dataset}, UNCONDITIONAL, num_samples=NUM_SAMPLES)
        result = score_row(row, out / row)
        results.append((dataset, result))
        print(f"{row}: step {result['steps']}, FID {result['fid']:.2f}", flush=True)
    heading = (
        f"{datetime.date.today()} | {platform.processor() or platform.machine()}, 1 thread per row, "
        f"{args.parallel} rows at once | torch {torch.__version__} | "
        f"{'%.0f s of training per row' % args.seconds if args.seconds > 0 else 'preset steps'} | "
        f"{NUM_SAMPLES} samples vs {NUM_SAMPLES} train images | {time.perf_counter() - start:.0f} s in all"
    )
    sections = [heading]
    for dataset, floor in floors.items():
        sections.append(
            f"**{dataset}** (evaluator sha256 {floor['protocol']['weights_sha256'][:12]})\n\n"
            + table([r for d, r in results if d == dataset], floor)
        )
    sections.append(
        "\n".join(f"- {r}: {ROWS[r][2]} (preset {ROWS[r][0]}; metrics {ROWS[r][1]})" for r in rows)
        + (f"\n- overrides for every row: {' '.join(args.set)}" if args.set else "")
    )
    text = "\n\n".join(sections)
    (out / "results.md").write_text(text + "\n")
    print("\n" + text)


if __name__ == "__main__":
    main()
