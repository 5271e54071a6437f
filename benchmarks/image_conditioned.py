"""Image-conditioned GANs measured (issue 20).

pix2pix on edges -> Fashion-MNIST item (``gankit data make-pairs --task edges``): the paper's ablation on our
data (L1 alone, cGAN alone, L1 + cGAN with a 16 x 16 PatchGAN, a PixelGAN and an ImageGAN), each trained for the
same steps from the ``pix2pix-edges-fashion`` preset. Scored on the first 2,000 test pairs: FID / KID / PRDC of
the outputs against their 2,000 targets (both resized 32 -> 28 px, bilinear with antialiasing) under the
Fashion-MNIST evaluator; the evaluator's accuracy on the outputs given the source item's class (the analogue of
the paper's FCN-score); L1 (on [0, 1] pixels) and PSNR against the target at 32 px.

SR 14 -> 28 on Fashion-MNIST: bicubic interpolation, SRResNet (pixel MSE: ``srresnet-fashion-x2``) and SRGAN
(evaluator-feature content + 1e-3 adversarial: ``srgan-fashion-x2``), scored on the first 2,000 test images
(inputs made by the training kernel, ``variants.srgan.downsample``): PSNR and SSIM (gray, one channel, 2-pixel
border cropped), FID / KID / PRDC against the 2,000 originals, and the evaluator's class accuracy.

    python benchmarks/image_conditioned.py [--steps 1500] [--width 16] [--out runs/bench-image] [--only pix2pix|sr]
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


def to28(images: np.ndarray) -> np.ndarray:
    x = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    return resize_square(x, 28).permute(0, 2, 3, 1).numpy()


def pix2pix(args, extractor) -> list[dict]:
    data = args.out / "pairs-edges"
    if not (data / "test.npz").is_file():
        make_pairs("edges", data, resolution=32)
    whole = load_dataset({"name": "pairs", "path": str(data), "split": "test", "limit": 2 * N})
    test = load_dataset({"name": "pairs", "path": str(data), "split": "test", "limit": N})
    targets, labels = test.x.permute(0, 2, 3, 1).numpy(), test.labels.numpy()
    others = whole.x[N:].permute(0, 2, 3, 1).numpy()  # the floor: 2,000 other real items against the targets
    rows = [
        {
            "config": "real vs real (2,000 other test items)",
            **scores(extractor, to28(others), to28(targets), whole.labels[N:].numpy()),
        }
    ]
    pictures = [test.sources[:8].expand(-1, 1, -1, -1).permute(0, 2, 3, 1).numpy()]
    for name, extra in ABLATION.items():
        run = args.out / ("pix2pix-" + "".join(c if c.isalnum() else "-" for c in name.lower()))
        values = {
            "data.path": str(data),
            "train.steps": args.steps,
            "model.g_width": args.width,
            "model.d_width": args.width,
            "train.tensorboard": False,
            "train.sample_every": args.steps,
            "train.checkpoint_every": args.steps,
            **extra,
        }
        start = time.perf_counter()
        if not (run / "generator.safetensors").is_file():
            train(load_config("pix2pix-edges-fashion", overrides(values)), run, progress=False, log=lambda s: None)
        seconds = time.perf_counter() - start
        outputs = load_generator(run).translate(test.sources.numpy())
        l1 = float(np.abs(outputs.astype(np.float64) - targets).mean() / 255)
        row = {
            "config": name,
            **scores(extractor, to28(outputs), to28(targets), labels),
            "l1": l1,
            "psnr": psnr(outputs, targets),
            "train_seconds": round(seconds),
        }
        rows.append(row)
        pictures.append(outputs[:8])
        print(json.dumps(row), flush=True)
    pictures.append(targets[:8])
    save_picture(image_grid(np.concatenate(pictures), columns=8), args.pictures / "pix2pix-edges-ablation.png")
    return rows


def super_resolution(args, extractor) -> list[dict]:
    test = load_dataset({"name": "fashion-mnist", "split": "test", "limit": N})
    labels = test.labels.numpy()
    high = test.x.permute(0, 2, 3, 1).numpy()
    low = downsample(test.model_input(torch.arange(len(test))), 2)
    low_uint8 = ((low + 1) * 127.5).round().to(torch.uint8)
    bicubic = F.interpolate(low, scale_factor=2, mode="bicubic", align_corners=False)
    bicubic = ((bicubic.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    results = {"bicubic": (bicubic, 0)}
    for preset in ("srresnet-fashion-x2", "srgan-fashion-x2"):
        run = args.out / preset
        start = time.perf_counter()
        if not (run / "generator.safetensors").is_file():
            values = {
                "train.steps": args.steps,
                "train.tensorboard": False,
                "train.sample_every": args.steps,
                "train.checkpoint_every": args.steps,
            }
            train(load_config(preset, overrides(values)), run, progress=False, log=lambda s: None)
        results[preset] = (
            load_generator(run).upscale(low_uint8.permute(0, 2, 3, 1).numpy()),
            time.perf_counter() - start,
        )
    rows = []
    for name, (outputs, seconds) in results.items():
        row = {
            "config": name,
            "psnr": psnr(outputs, high, border=2),
            "ssim": ssim(outputs, high, border=2),
            **scores(extractor, outputs, high, labels),
            "train_seconds": round(seconds),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    nearest = (
        F.interpolate(low_uint8.float(), scale_factor=2, mode="nearest").to(torch.uint8).permute(0, 2, 3, 1).numpy()
    )
    pictures = [nearest[:8], *(outputs[:8] for outputs, _ in results.values()), high[:8]]
    save_picture(image_grid(np.concatenate(pictures), columns=8), args.pictures / "sr-fashion-x2.png")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--width", type=int, default=16, help="pix2pix G and D width (the preset: 32)")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-image"))
    parser.add_argument("--pictures", type=Path, default=Path("docs/images"))
    parser.add_argument("--only", choices=("pix2pix", "sr"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    extractor = build_extractor({"name": "evaluator", "weights": "fashion-mnist"})
    results = {}
    if args.only != "sr":
        results["pix2pix"] = pix2pix(args, extractor)
    if args.only != "pix2pix":
        results["sr"] = super_resolution(args, extractor)
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
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
