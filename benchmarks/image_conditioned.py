"""Image-conditioned GANs measured (issue 20).

pix2pix on edges -> Fashion-MNIST item (``gankit data make-pairs --task edges``): the paper's ablation on our
data (L1 alone, cGAN alone, L1 + cGAN with a 16 x 16 PatchGAN, a PixelGAN and an ImageGAN), each trained for the
same steps from the ``pix2pix-edges-fashion`` preset. Scored on the first 2,000 test pairs: FID / KID / PRDC of
the outputs against their 2,000 targets (both resized 32 -> 28 px, bilinear with antialiasing) under the
Fashion-MNIST evaluator; the evaluator's accuracy on the outputs given the source item's class (the analogue of
the paper's FCN-score); L1 (on [0, 1] pixels) and PSNR against the target at 32 px.

With ``--seeds``, the three configs of the issue-29 target (L1 alone, cGAN alone, L1 + cGAN) are trained once per
seed and scored also by the held-out evaluator of benchmarks/heldout_evaluator.py (FID, class accuracy; no
tuning decision reads it); the summary says on how many seeds L1 + cGAN beats each alone.

SR 14 -> 28 on Fashion-MNIST: bicubic interpolation, SRResNet (pixel MSE: ``srresnet-fashion-x2``) and SRGAN
(evaluator-feature content + 1e-3 adversarial: ``srgan-fashion-x2``), scored on the first 2,000 test images
(inputs made by the training kernel, ``variants.srgan.downsample``): PSNR and SSIM (gray, one channel, 2-pixel
border cropped), FID / KID / PRDC against the 2,000 originals, and the evaluator's class accuracy. With
``--seeds``, each SR preset is trained once per seed and scored also by the held-out evaluator of
benchmarks/heldout_evaluator.py (FID, class accuracy), which no tuning decision reads; the summary gives mean ± sd
and whether SRGAN's FID is below SRResNet's on every seed (issue 29). A preset that starts from SRResNet
(``objective.pretrain_steps``) keeps its share of the steps when ``--steps`` changes them.

    python benchmarks/image_conditioned.py [--steps 1500] [--width 16] [--out runs/bench-image] [--only pix2pix|sr]
        [--seeds 0 1 2]
    python benchmarks/image_conditioned.py --tune RUN [RUN ...]    # SR / pix2pix candidates, shipped evaluator only
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from gankit import load_config, train
from gankit.data import load_dataset
from gankit.data.pairs import make_pairs
from gankit.data.sources import resize_square
from gankit.images import image_grid, save_picture
from gankit.inference import load_generator
from gankit.metrics.extractors import build_extractor
from gankit.metrics.scores import fid, kid, prdc, psnr, ssim
from gankit.variants.srgan import downsample

N = 2000
ABLATION = {
    "L1 alone": {"objective.gan_weight": 0.0},
    "cGAN alone": {"objective.l1_weight": 0.0},
    "L1 + cGAN, 16x16 PatchGAN": {},
    "L1 + cGAN, the paper's L1 weight 100": {"objective.l1_weight": 100.0},
    "L1 + cGAN, 1x1 PixelGAN": {"model.d_patch": "pixel"},
    "L1 + cGAN, ImageGAN (34x34 at 32 px)": {"model.d_patch": "image"},
}


def overrides(values: dict) -> list[str]:
    return [f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in values.items()]


def scores(extractor, outputs: np.ndarray, targets: np.ndarray, labels: np.ndarray) -> dict:
    """Distribution and class scores of uint8 (N, 28, 28, 1) outputs against their targets."""

    def embed(images):
        return extractor(torch.from_numpy(images).permute(0, 3, 1, 2).contiguous())

    fake, real = embed(outputs), embed(targets)
    return {
        "fid": fid(real.features, fake.features),
        "kid": kid(real.features, fake.features)[0],
        **prdc(real.features, fake.features),
        "class_accuracy": float((fake.logits.argmax(1) == labels).mean()),
    }


def pix2pix_scores(extractor, outputs: np.ndarray, targets: np.ndarray, labels: np.ndarray) -> dict:
    """L1 (on [0, 1] pixels) and PSNR at 32 px, and the shipped evaluator's scores at 28 px, of uint8 outputs."""
    return {
        **scores(extractor, to28(outputs), to28(targets), labels),
        "l1": float(np.abs(outputs.astype(np.float64) - targets).mean() / 255),
        "psnr": psnr(outputs, targets),
    }


def sr_scores(extractor, outputs: np.ndarray, high: np.ndarray, labels: np.ndarray) -> dict:
    """PSNR and SSIM (2-pixel border cropped) and the shipped evaluator's scores of uint8 28 px outputs."""
    return {
        "psnr": psnr(outputs, high, border=2),
        "ssim": ssim(outputs, high, border=2),
        **scores(extractor, outputs, high, labels),
    }


def to28(images: np.ndarray) -> np.ndarray:
    x = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    return resize_square(x, 28).permute(0, 2, 3, 1).numpy()


# the three, per seed, and the preset's one departure from the paper (L1 weight 10, not 100)
SEEDED_ABLATION = ("L1 alone", "cGAN alone", "L1 + cGAN, 16x16 PatchGAN", "L1 + cGAN, the paper's L1 weight 100")


def pix2pix(args, extractor) -> list[dict]:
    data = args.out / "pairs-edges"
    if not (data / "test.npz").is_file():
        make_pairs("edges", data, resolution=32)
    whole = load_dataset({"name": "pairs", "path": str(data), "split": "test", "limit": 2 * N})
    test = load_dataset({"name": "pairs", "path": str(data), "split": "test", "limit": N})
    targets, labels = test.x.permute(0, 2, 3, 1).numpy(), test.labels.numpy()
    others = whole.x[N:].permute(0, 2, 3, 1).numpy()  # the floor: 2,000 other real items against the targets
    held_out = HeldOut(to28(targets)) if args.seeds else None
    rows = [
        {
            "config": "real vs real (2,000 other test items)",
            **scores(extractor, to28(others), to28(targets), whole.labels[N:].numpy()),
        }
    ]
    pictures = [test.sources[:8].expand(-1, 1, -1, -1).permute(0, 2, 3, 1).numpy()]
    configs = {name: ABLATION[name] for name in SEEDED_ABLATION} if args.seeds else ABLATION
    for seed in args.seeds or [None]:
        for name, extra in configs.items():
            slug = "pix2pix-" + "".join(c if c.isalnum() else "-" for c in name.lower())
            run = args.out / (slug if seed is None else f"{slug}-{args.steps}-seed-{seed}")
            values = {
                "data.path": str(data),
                "train.steps": args.steps,
                "model.g_width": args.width,
                "model.d_width": args.width,
                "train.tensorboard": False,
                "train.sample_every": args.steps,
                "train.checkpoint_every": args.steps,
                **({} if seed is None else {"train.seed": seed}),
                **extra,
            }
            start = time.perf_counter()
            if not (run / "generator.safetensors").is_file():
                config = load_config("pix2pix-edges-fashion", overrides(values))
                train(config, run, progress=False, log=lambda s: None)
            seconds = time.perf_counter() - start
            generator = load_generator(run)  # RUN: the best generator where the run evaluated, else the last
            outputs = generator.translate(test.sources.numpy())
            row = {
                "config": name,
                **({} if seed is None else {"seed": seed}),
                "step": generator.step,
                **pix2pix_scores(extractor, outputs, targets, labels),
                **({} if held_out is None else held_out(to28(outputs), labels)),
                "train_seconds": round(seconds),
            }
            rows.append(row)
            if seed == (args.seeds or [None])[0]:
                pictures.append(outputs[:8])
            print(json.dumps(row), flush=True)
    pictures.append(targets[:8])
    name = "pix2pix-edges-ablation.png" if not args.seeds else f"pix2pix-edges-seed{args.seeds[0]}-{args.steps}.png"
    save_picture(image_grid(np.concatenate(pictures), columns=8), args.pictures / name)
    if args.seeds:
        keys = ("fid", "class_accuracy", "heldout_fid", "heldout_class_accuracy", "l1", "psnr", "train_seconds")
        baselines = SEEDED_ABLATION[:2] + SEEDED_ABLATION[3:]
        summary = seed_summary(rows[1:], SEEDED_ABLATION, keys, SEEDED_ABLATION[2], baselines)
        publish(summary, args.out / f"pix2pix-seeds-{args.steps}.md")
    return rows


class HeldOut:
    """The held-out evaluator of benchmarks/heldout_evaluator.py (no tuning decision reads it) on uint8
    (N, 28, 28, 1) images: FID against ``targets`` and class accuracy."""

    def __init__(self, targets: np.ndarray):
        import sys

        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from heldout_evaluator import HeldOutEvaluator

        self.net = HeldOutEvaluator("fashion-mnist")
        self.real = self.net(targets.transpose(0, 3, 1, 2))

    def __call__(self, outputs: np.ndarray, labels: np.ndarray) -> dict:
        images = outputs.transpose(0, 3, 1, 2)
        return {
            "heldout_fid": fid(self.real, self.net(images)),
            "heldout_class_accuracy": float(np.mean(self.net.predict(images) == labels)),
        }


def publish(summary: str, path: Path) -> None:
    """Print a seeds summary and keep it beside the runs."""
    print(summary)
    path.write_text(summary + "\n")


def seed_summary(
    rows: list[dict], configs: tuple[str, ...], keys: tuple[str, ...], challenger: str, baselines: tuple[str, ...]
) -> str:
    """Mean ± sd per config, and per evaluator whether ``challenger`` beats each baseline on every seed: FID
    lower, and (where scored) class accuracy higher."""
    lines = ["| config | " + " | ".join(keys) + " | seeds | checkpoint steps |", "|---|" + "---|" * (len(keys) + 2)]
    for config in configs:
        mine = [r for r in rows if r["config"] == config]
        cells = [f"{np.mean([r[k] for r in mine]):.4g} ± {np.std([r[k] for r in mine], ddof=1):.2g}" for k in keys]
        steps = ", ".join(str(r.get("step", "?")) for r in mine)
        lines.append(f"| {config} | " + " | ".join(cells) + f" | {len(mine)} | {steps} |")
    for key, lower in (
        ("fid", True),
        ("class_accuracy", False),
        ("heldout_fid", True),
        ("heldout_class_accuracy", False),
    ):
        if key not in keys:
            continue
        for baseline in baselines:
            pairs = [
                (ours[key], theirs[key])
                for ours in rows
                if ours["config"] == challenger
                for theirs in rows
                if theirs["config"] == baseline and theirs["seed"] == ours["seed"]
            ]
            wins = sum((o < t) if lower else (o > t) for o, t in pairs)
            shown = ", ".join(f"{o:.3f} vs {t:.3f}" for o, t in pairs)
            word = "below" if lower else "above"
            lines.append(f"- {key}: {challenger} {word} {baseline} on {wins} of {len(pairs)} seeds ({shown})")
    return "\n".join(lines)


def sr_values(preset: str, steps: int, seed: int | None) -> dict:
    """The --set values of an SR run of ``steps``: a start from SRResNet keeps its share of the run's steps."""
    config = load_config(preset)
    values = {
        "train.steps": steps,
        "train.tensorboard": False,
        "train.sample_every": steps,
        "train.checkpoint_every": steps,
        **({} if seed is None else {"train.seed": seed}),
    }
    pretrain = config.objective.get("pretrain_steps", 0)
    if pretrain:
        values["objective.pretrain_steps"] = pretrain * steps // config.train.steps
    return values


def sr_test_set() -> tuple[np.ndarray, np.ndarray, torch.Tensor, np.ndarray]:
    """The first 2,000 test images: labels, uint8 (N, 28, 28, 1) originals, and their 14 px inputs made by the
    training kernel, in [-1, 1] (N, 1, 14, 14) and as uint8 (N, 14, 14, 1)."""
    test = load_dataset({"name": "fashion-mnist", "split": "test", "limit": N})
    labels, high = test.labels.numpy(), test.x.permute(0, 2, 3, 1).numpy()
    low = downsample(test.model_input(torch.arange(len(test))), 2)
    return labels, high, low, ((low + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


SR_PRESETS = ("srresnet-fashion-x2", "srgan-fashion-x2")


def super_resolution(args, extractor) -> list[dict]:
    """Bicubic, then each SR preset (once per seed with ``--seeds``, scored by the held-out evaluator too)."""
    labels, high, low, low_uint8 = sr_test_set()
    bicubic = F.interpolate(low, scale_factor=2, mode="bicubic", align_corners=False)
    bicubic = ((bicubic.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    held_out = HeldOut(high) if args.seeds else None
    runs = [("bicubic", None, bicubic, 0.0, None)]
    for seed in args.seeds or [None]:
        for preset in SR_PRESETS:
            run = args.out / (preset if seed is None else f"{preset}-{args.steps}-seed-{seed}")
            start = time.perf_counter()
            if not (run / "generator.safetensors").is_file():
                values = sr_values(preset, args.steps, seed)
                train(load_config(preset, overrides(values)), run, progress=False, log=lambda s: None)
            generator = load_generator(run)  # RUN: the best generator where the run evaluated, else the last
            runs.append((preset, seed, generator.upscale(low_uint8), time.perf_counter() - start, generator.step))
    rows, pictures = [], []
    for name, seed, outputs, seconds, step in runs:
        row = {
            "config": name,
            **({} if seed is None else {"seed": seed}),
            **({} if step is None else {"step": step}),
            **sr_scores(extractor, outputs, high, labels),
            **({} if held_out is None else held_out(outputs, labels)),
            "train_seconds": round(seconds),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
        if seed in (None, (args.seeds or [None])[0]):  # bicubic and the first seed's runs
            pictures.append(outputs[:8])
    nearest = np.repeat(np.repeat(low_uint8[:8], 2, axis=1), 2, axis=2)
    name = f"sr-fashion-x2-seed{args.seeds[0]}-{args.steps}.png" if args.seeds else "sr-fashion-x2.png"
    save_picture(image_grid(np.concatenate([nearest, *pictures, high[:8]]), columns=8), args.pictures / name)
    if args.seeds:
        keys = ("psnr", "ssim", "fid", "class_accuracy", "heldout_fid", "heldout_class_accuracy", "train_seconds")
        publish(
            seed_summary(rows[1:], SR_PRESETS, keys, SR_PRESETS[1], SR_PRESETS[:1]),
            args.out / f"sr-seeds-{args.steps}.md",
        )
    return rows


def tune(runs: list[Path], extractor, pix2pix_pairs: Path) -> list[dict]:
    """Tuning candidates of an SR or pix2pix preset, trained by hand (gankit train ... --set ...), scored on the
    2,000 test images / pairs by the shipped evaluator only (the held-out evaluator is not read): SR runs get
    PSNR and SSIM, pix2pix runs (edges -> item, from ``pix2pix_pairs``) L1 and PSNR. Each test set is loaded once,
    when a run first needs it."""
    sr_test, pairs = None, None
    rows = []
    for run in runs:  # RUN, or RUN@last / RUN@best / RUN@STEP
        generator = load_generator(run)
        if generator.config.data["name"] == "pairs":
            if pairs is None:
                pairs = load_dataset({"name": "pairs", "path": str(pix2pix_pairs), "split": "test", "limit": N})
            outputs = generator.translate(pairs.sources.numpy())
            targets = pairs.x.permute(0, 2, 3, 1).numpy()
            row = pix2pix_scores(extractor, outputs, targets, pairs.labels.numpy())
        else:
            if sr_test is None:
                sr_test = sr_test_set()
            labels, high, _, low_uint8 = sr_test
            row = sr_scores(extractor, generator.upscale(low_uint8), high, labels)
        rows.append({"config": str(run), "step": generator.step, **row})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--width", type=int, default=16, help="pix2pix G and D width (the preset: 32)")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-image"))
    parser.add_argument("--pictures", type=Path, default=Path("docs/images"))
    parser.add_argument("--only", choices=("pix2pix", "sr"))
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        help="train each SR preset and pix2pix's L1 alone / cGAN alone / L1 + cGAN once per seed (issue 29)",
    )
    parser.add_argument(
        "--tune",
        type=Path,
        nargs="+",
        metavar="RUN",
        help="score these SR or pix2pix runs (RUN, RUN@last, RUN@STEP) with the shipped evaluator only "
        "(what tuning may read) and stop",
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    extractor = build_extractor({"name": "evaluator", "weights": "fashion-mnist"})
    if args.tune:
        for row in tune(args.tune, extractor, args.out / "pairs-edges"):
            print(json.dumps(row), flush=True)
        return
    results = {}
    if args.only != "sr":
        results["pix2pix"] = pix2pix(args, extractor)
    if args.only != "pix2pix":
        results["sr"] = super_resolution(args, extractor)
    name = f"results-seeds-{args.steps}.json" if args.seeds else "results.json"
    (args.out / name).write_text(json.dumps(results, indent=2) + "\n")
    for task, rows in results.items():
        keys = [k for k in rows[-1] if k != "config"]
        print(f"\n{task}\n| config | " + " | ".join(keys) + " |\n|---|" + "---|" * len(keys))
        for row in rows:
            print(
                f"| {row['config']} | "
                + " | ".join(f"{row[k]:.4g}" if isinstance(row.get(k), float) else str(row.get(k, "")) for k in keys)
                + " |"
            )


if __name__ == "__main__":
    main()
