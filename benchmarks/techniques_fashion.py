"""Stability techniques on images: plain DCGAN vs each technique on Fashion-MNIST, same CPU time each.

    python benchmarks/techniques_fashion.py [--seconds 120] [--threads 1] [--techniques plain,spectral-norm,...]
                                            [--out runs/techniques-fashion] [--seed 0]

Every row trains dcgan-fashion-mnist (batch 128, Adam 2e-4 / 0.5) with one option switched on, for
the same wall-clock budget (train.time_limit: the training loop stops after that many seconds), so a
technique that makes steps dearer gets fewer of them. Rows run one after another on ``--threads``
threads; one thread keeps a row's speed independent of other work on a second core. Each G (the raw G; EMA
only in its own row) draws 10,000 samples, scored
under the built-in Fashion-MNIST evaluator against 10,000 training images: FID and its ratio to the
real-vs-real floor (10,000 test images in place of samples), precision / recall / coverage, and the
predicted-class histogram of the samples (class_kl = KL(samples || real) of the histograms,
max_class_share; a collapsed G over-produces a few classes). One seed per row.

Writes OUT/results.md and OUT/samples.png (64 samples per technique, fixed z). A row whose
OUT/<technique>/result.json exists is not trained again.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import time
from pathlib import Path

# name -> (overrides, what it is)
TECHNIQUES: dict[str, tuple[list[str], str]] = {
    "plain": ([], "DCGAN, non-saturating loss (Radford et al. 2015)"),
    "minibatch-std": (["model.d_minibatch_std=4"], "minibatch-std feature, groups of 4 (Karras et al. 2018)"),
    "pacgan2": (["model.d_pack=2"], "PacGAN, D sees 2 samples at once (Lin et al. 2018)"),
    "spectral-norm": (["model.d_spectral_norm=true"], "spectral normalization of D (Miyato et al. 2018)"),
    "r1": (["objective.r1_weight=1.0"], "R1 penalty, gamma 1 (Mescheder et al. 2018)"),
    "feature-matching": (["objective.feature_matching=true"], "feature matching G loss (Salimans et al. 2016)"),
    "label-smoothing": (["loss.real_label=0.9"], "one-sided label smoothing, 0.9 (Salimans et al. 2016)"),
    "instance-noise": (["objective.instance_noise=0.1"], "instance noise, std 0.1, constant (Sonderby et al. 2017)"),
    "diffaugment": (
        ["objective.diffaugment=translation,cutout"],
        "DiffAugment translation + cutout (Zhao et al. 2020)",
    ),
    "ttur": (
        ["train.lr_d=0.0004", "train.lr_g=0.0001"],
        "two time-scale update rule, lr_d 4e-4, lr_g 1e-4 (Heusel et al. 2017)",
    ),
    "ema": (["train.ema_decay=0.999"], "EMA of G, decay 0.999, scored with the EMA weights (Yazici et al. 2019)"),
    "unrolled1": (["objective.unrolled_steps=1"], "unrolled GAN, 1 look-ahead step, full gradient (Metz et al. 2017)"),
}
METRICS = "fid,prdc,classes"
NUM_SAMPLES = 10000


def run_row(technique: str, budget: float, out: Path, seed: int = 0) -> dict:
    from gankit import load_config, load_generator, train
    from gankit.metrics.evaluation import evaluate_generator

    folder = out / technique
    result_path = folder / "result.json"
    if result_path.is_file():
        return json.loads(result_path.read_text())
    settings = [
        f"train.seed={seed}",
        "train.steps=1000000",
        f"train.time_limit={budget}",
        "train.log_every=50",
        "train.sample_every=100",
        "train.checkpoint_every=1000000",
        "train.tensorboard=false",
        "train.sample_grid=64",
    ]
    start = time.perf_counter()
    result = train(
        load_config("dcgan-fashion-mnist", TECHNIQUES[technique][0] + settings),
        folder,
        progress=False,
        log=lambda s: None,
    )
    seconds = time.perf_counter() - start
    steps = result.step
    row = evaluate_generator(load_generator(folder), METRICS, num_samples=NUM_SAMPLES)
    result = {
        "technique": technique,
        "steps": steps,
        "seconds_per_step": round(budget / steps, 4),
        "train_seconds": round(seconds, 1),
        **row["metrics"],
        "protocol": row["protocol"],
    }
    result_path.write_text(json.dumps(result, indent=2) + "\n")
    return result


def table(results: list[dict], floor: dict) -> str:
    f = floor["metrics"]
    lines = [
        "| technique | steps | train s | FID | FID / floor | precision | recall | "
        "coverage | class KL | max class share | class histogram (T-shirt ... boot) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        f"| real-vs-real floor | | | {f['fid']:.3f} | 1 | "
        f"{f['precision']:.3f} | {f['recall']:.3f} | {f['coverage']:.3f} | "
        f"{f['class_kl']:.4f} | {f['max_class_share']:.3f} | {' '.join(f'{v:.2f}' for v in f['class_histogram'])} |",
    ]
    for r in results:
        lines.append(
            f"| {r['technique']} | {r['steps']} | {r['train_seconds']:.0f} "
            f"| {r['fid']:.2f} | {r['fid'] / f['fid']:.0f}x | "
            f"{r['precision']:.3f} | {r['recall']:.3f} | {r['coverage']:.3f} | {r['class_kl']:.4f} | "
            f"{r['max_class_share']:.3f} | {' '.join(f'{v:.2f}' for v in r['class_histogram'])} |"
        )
    return "\n".join(lines)


def picture(out: Path, techniques: list[str]) -> None:
    """Each row's fixed-z grid (its samples.png), four to a line, labelled."""
    from PIL import Image, ImageDraw

    from gankit.images import save_picture

    tiles = [
        (t, Image.open(out / t / "samples.png").convert("RGB"))
        for t in techniques
        if (out / t / "samples.png").is_file()
    ]
    if not tiles:
        return
    width, height, label, columns = tiles[0][1].width, tiles[0][1].height, 16, 4
    rows = (len(tiles) + columns - 1) // columns
    panel = Image.new("RGB", (columns * (width + 8), rows * (height + label + 8)), "white")
    draw = ImageDraw.Draw(panel)
    for i, (name, tile) in enumerate(tiles):
        x, y = (i % columns) * (width + 8), (i // columns) * (height + label + 8)
        draw.text((x + 2, y + 2), name, fill="black")
        panel.paste(tile.resize((width, height)), (x, y + label))
    save_picture(panel, out / "samples.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=120.0, help="training seconds per row (default 120)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument(
        "--techniques", default=",".join(TECHNIQUES), help="comma-separated, from: " + ", ".join(TECHNIQUES)
    )
    parser.add_argument("--out", default="runs/techniques-fashion")
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="train.seed of every row (default 0): other seeds measure the run-to-run spread",
    )
    args = parser.parse_args()
    techniques = [t for t in args.techniques.split(",") if t]
    unknown = [t for t in techniques if t not in TECHNIQUES]
    if unknown:
        parser.error(f"unknown {unknown}; techniques: {', '.join(TECHNIQUES)}")
    import torch

    from gankit.metrics.evaluation import evaluate_real_vs_real

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    floor = evaluate_real_vs_real({"name": "fashion-mnist"}, METRICS, num_samples=NUM_SAMPLES)
    results = []
    for technique in techniques:
        r = run_row(technique, args.seconds, out, args.seed)
        results.append(r)
        print(
            f"{technique}: {r['steps']} steps, FID {r['fid']:.2f}, "
            f"recall {r['recall']:.3f}, coverage {r['coverage']:.3f}, "
            f"class KL {r['class_kl']:.4f}",
            flush=True,
        )
    heading = (
        f"{datetime.date.today()} | {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads | "
        f"torch {torch.__version__} | {args.seconds:.0f} s of training per row | {NUM_SAMPLES} samples vs "
        f"{NUM_SAMPLES} train images, evaluator sha256 {floor['protocol']['weights_sha256'][:12]} | "
        f"{time.perf_counter() - start:.0f} s in all"
    )
    text = (
        heading
        + "\n\n"
        + table(results, floor)
        + "\n\n"
        + "\n".join(
            f"- {t}: {TECHNIQUES[t][1]}; overrides {' '.join(TECHNIQUES[t][0]) or '(none)'}" for t in techniques
        )
    )
    (out / "results.md").write_text(text + "\n")
    print("\n" + text)
    picture(out, techniques)


if __name__ == "__main__":
    main()
