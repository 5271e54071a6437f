"""Mode collapse on the 2D mixtures: what each stability technique buys, measured the PacGAN way.

    python benchmarks/mode_collapse.py [--steps 5000] [--seeds 3] [--workers 2]
                                       [--datasets ring,grid] [--techniques plain,pacgan4,...]
                                       [--out runs/mode-collapse]

The protocol of Lin et al. 2018 (PacGAN), section 5.1, which follows VEEGAN (Srivastava et al. 2017):
ring of 8 Gaussians (radius 1, std 0.01) and grid of 25 (at {-4,...,4}^2, std 0.05), 100,000 training
points, z 2-d normal, G 4 x 400 ReLU + BatchNorm, D 3 maxout layers of 200 units x 5 pieces, Adam 1e-4
with beta1 0.8, batch 100 (the presets gan-mlp-ring and gan-mlp-grid). Each trained G draws 2,500
samples; a sample is high quality within 3 std of its nearest mode, a mode is captured when one
high-quality sample is nearest to it, and the reverse KL is that of the high-quality mode histogram
against uniform. Each technique runs ``--seeds`` seeds (train.seed 0, 1, ...; the training points are
the same for all); the table gives mean +- standard error over seeds and how many seeds captured every
mode. The published runs trained 400 epochs (400,000 steps); ``--steps`` sets our budget.

Every run lands in OUT/<dataset>/<technique>/seed-<k>/ with a result.json; a run with one is not
repeated, so an interrupted benchmark continues where it stopped. Writes OUT/results.md (the table)
and OUT/mode_collapse.png (seed 0's samples for every technique and dataset).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import multiprocessing
import platform
import time
from pathlib import Path

import numpy as np

# name -> (overrides, what it is). Every technique is one option on top of the preset.
TECHNIQUES: dict[str, tuple[list[str], str]] = {
    "plain": ([], "non-saturating GAN, the preset as is (Goodfellow et al. 2014)"),
    "pacgan2": (["model.d_pack=2"], "PacGAN, D sees 2 samples at once (Lin et al. 2018)"),
    "pacgan4": (["model.d_pack=4"], "PacGAN, D sees 4 samples at once (Lin et al. 2018)"),
    "minibatch-std": (["model.d_minibatch_std=4"], "minibatch-std feature, groups of 4 (Karras et al. 2018)"),
    "unrolled5": (["objective.unrolled_steps=5"], "unrolled GAN, 5 look-ahead steps, full gradient (Metz et al. 2017)"),
    "spectral-norm": (["model.d_spectral_norm=true"], "spectral normalization of D (Miyato et al. 2018)"),
    "r1": (["objective.r1_weight=0.1"], "R1 penalty, gamma 0.1 (Mescheder et al. 2018)"),
    "feature-matching": (["objective.feature_matching=true"], "feature matching G loss (Salimans et al. 2016)"),
    "label-smoothing": (["loss.real_label=0.9"], "one-sided label smoothing, 0.9 (Salimans et al. 2016)"),
    "instance-noise": (
        ["objective.instance_noise=0.1", "objective.instance_noise_anneal_steps=0"],
        "instance noise, std 0.1 (Sonderby et al. 2017)",
    ),
    "ttur": (["train.lr_d=0.0004"], "two time-scale update rule, lr_d 4e-4, lr_g 1e-4 (Heusel et al. 2017)"),
    "ema": (["train.ema_decay=0.999"], "EMA of G's weights, decay 0.999 (Yazici et al. 2019)"),
}
# A technique name may join several with "+" (e.g. ema+ttur): their overrides together.
DATASETS = ("ring", "grid")
NUM_SAMPLES = 2500


def technique(name: str) -> tuple[list[str], str]:
    parts = [TECHNIQUES[part] for part in name.split("+")]
    return [o for overrides, _ in parts for o in overrides], " + ".join(text for _, text in parts)


def run_one(job: tuple[str, str, int, int, str, list[str]]) -> dict:
    """Train and score one (dataset, technique, seed); returns the result row."""
    import torch

    from gankit import load_config, load_generator, train
    from gankit.metrics.evaluation import evaluate_generator

    dataset, name, seed, steps, folder, options = job
    folder = Path(folder)
    result_path = folder / "result.json"
    if result_path.is_file():
        return json.loads(result_path.read_text())
    torch.set_num_threads(1)  # one run per core: two small-net runs side by side beat one run on two threads
    overrides = options + [
        f"train.seed={seed}",
        f"train.steps={steps}",
        f"train.log_every={max(1, steps // 20)}",
        f"train.sample_every={max(1, steps // 10)}",
        f"train.checkpoint_every={steps}",
        "train.tensorboard=false",
    ]
    config = load_config(f"gan-mlp-{dataset}", overrides)
    start = time.perf_counter()
    resume = (folder / "checkpoints").is_dir() and any((folder / "checkpoints").glob("*.safetensors"))
    train(config, folder, resume=resume, progress=False, log=lambda s: None)
    seconds = time.perf_counter() - start
    row = evaluate_generator(load_generator(folder), "modes", num_samples=NUM_SAMPLES, seed=seed)
    samples = load_generator(folder).sample(NUM_SAMPLES, seed=seed)
    np.save(folder / "samples.npy", samples)
    result = {
        "dataset": dataset,
        "technique": name,
        "seed": seed,
        "steps": steps,
        "train_seconds": round(seconds, 1),
        **row["metrics"],
        "protocol": row["protocol"],
    }
    result_path.write_text(json.dumps(result, indent=2) + "\n")
    return result


def mean_and_error(values: list[float]) -> tuple[float, float]:
    values = np.asarray(values, dtype=float)
    error = values.std(ddof=1) / math.sqrt(len(values)) if len(values) > 1 else float("nan")
    return float(values.mean()), float(error)


def table(results: list[dict], techniques: list[str], datasets: list[str]) -> str:
    header = "| technique |"
    rule = "|---|"
    for d in datasets:
        header += f" {d} modes | {d} all-modes seeds | {d} high quality % | {d} reverse KL |"
        rule += "---:|---:|---:|---:|"
    header += " median s/run |"
    rule += "---:|"
    lines = [header, rule]
    for t in techniques:
        line = f"| {t} |"
        seconds = []
        for d in datasets:
            rows = [r for r in results if r["technique"] == t and r["dataset"] == d]
            if not rows:
                line += " | | | |"
                continue
            modes = mean_and_error([r["modes_captured"] for r in rows])
            quality = mean_and_error([100 * r["high_quality"] for r in rows])
            kl = mean_and_error([r["reverse_kl"] for r in rows])
            full = sum(r["modes_captured"] == r["modes_total"] for r in rows)
            line += (
                f" {modes[0]:.1f} ± {modes[1]:.1f} / {rows[0]['modes_total']} | {full}/{len(rows)} |"
                f" {quality[0]:.1f} ± {quality[1]:.1f} | {kl[0]:.3f} ± {kl[1]:.3f} |"
            )
            seconds += [r["train_seconds"] for r in rows]
        line += f" {np.median(seconds):.0f} |" if seconds else " |"
        lines.append(line)
    return "\n".join(lines)


def picture(out: Path, techniques: list[str], datasets: list[str], seed: int = 0):
    """The first seed's 2,500 samples (blue) over the training points (grey), one panel per technique and dataset."""
    from PIL import Image, ImageDraw

    from gankit.data import load_dataset
    from gankit.images import save_picture, scatter_plot

    size, label = 256, 18
    panel = Image.new("RGB", (len(datasets) * size + 140, len(techniques) * (size + label)), "white")
    draw = ImageDraw.Draw(panel)
    for j, d in enumerate(datasets):
        reference = load_dataset({"name": d}).x[:5000].numpy()
        bound = 1.4 if d == "ring" else 5.5
        for i, t in enumerate(techniques):
            path = out / d / t / f"seed-{seed}" / "samples.npy"
            if not path.is_file():
                continue
            tile = scatter_plot(np.load(path), reference, size=size, bounds=(-bound, -bound, bound, bound))
            panel.paste(tile, (140 + j * size, i * (size + label) + label))
            draw.text((140 + j * size + 4, i * (size + label) + 2), d, fill="black")
    for i, t in enumerate(techniques):
        draw.text((4, i * (size + label) + label + size // 2), t, fill="black")
    save_picture(panel, out / "mode_collapse.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=5000, help="G steps per run (default 5000)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="runs side by side, one thread each")
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument(
        "--techniques",
        default=",".join(TECHNIQUES),
        help="comma-separated, from: " + ", ".join(TECHNIQUES) + "; join with + to combine",
    )
    parser.add_argument("--out", default="runs/mode-collapse")
    parser.add_argument(
        "--try",
        dest="trials",
        action="append",
        default=[],
        metavar="NAME:KEY=VALUE,...",
        help="a further technique: NAME, the preset with these --set options (usable in --techniques)",
    )
    parser.add_argument("--first-seed", type=int, default=0, help="train.seed of the first seed (held-out seeds: 100)")
    args = parser.parse_args()
    for trial in args.trials:
        name, _, options = trial.partition(":")
        if not name or not options:
            parser.error(f"--try {trial!r}: expected NAME:KEY=VALUE,...")
        TECHNIQUES[name] = (options.split(","), f"tried: {options}")
    techniques = [t for t in args.techniques.split(",") if t]
    datasets = [d for d in args.datasets.split(",") if d]
    unknown = [p for t in techniques for p in t.split("+") if p not in TECHNIQUES] + [
        d for d in datasets if d not in DATASETS
    ]
    if unknown:
        parser.error(f"unknown {unknown}; techniques: {', '.join(TECHNIQUES)}; datasets: {', '.join(DATASETS)}")
    out = Path(args.out)
    jobs = [
        (d, t, s, args.steps, str(out / d / t / f"seed-{s}"), technique(t)[0])
        for t in techniques
        for d in datasets
        for s in range(args.first_seed, args.first_seed + args.seeds)
    ]
    # The slow technique first, so the pool is not left waiting on it at the end.
    jobs.sort(key=lambda job: "unrolled" not in job[1])
    results = []
    with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
        for row in pool.imap_unordered(run_one, jobs):
            results.append(row)
            print(
                f"[{len(results)}/{len(jobs)}] {row['dataset']} {row['technique']} seed {row['seed']}: "
                f"{row['modes_captured']}/{row['modes_total']} modes, {100 * row['high_quality']:.1f}% high quality, "
                f"reverse KL {row['reverse_kl']:.3f} ({row['train_seconds']:.0f} s)",
                flush=True,
            )
    import torch

    heading = (
        f"{datetime.date.today()} | {platform.processor() or platform.machine()}, {args.workers} runs side by side, "
        f"1 thread each | torch {torch.__version__} | {args.steps} steps (batch 100) x {args.seeds} seeds | "
        f"{NUM_SAMPLES} samples scored per run | {sum(r['train_seconds'] for r in results) / 60:.0f} "
        f"core-minutes of training in all"
    )
    text = (
        heading
        + "\n\n"
        + table(results, techniques, datasets)
        + "\n\n"
        + "\n".join(f"- {t}: {technique(t)[1]}; overrides {' '.join(technique(t)[0]) or '(none)'}" for t in techniques)
    )
    (out / "results.md").write_text(text + "\n")
    print("\n" + text)
    picture(out, techniques, datasets, args.first_seed)


if __name__ == "__main__":
    main()
