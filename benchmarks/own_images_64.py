"""A user's folder of 64x64 photos, end to end on this machine (issues 22 and 23).

The folder: 64x64 crops of the two photographs scikit-learn ships (``load_sample_images``: a Chinese temple and a
flower, 640x427 each): random square crops of 15-50% of the short side at random places, resized to 64 px, half
of them mirrored. Real photographic statistics at 64 px without a download (a stand-in for one's own photos:
10,000 views of two scenes are far less varied than 10,000 photos). Then, as a user would, through the command
line:

1. ``gankit evaluator train --dataset folder --set data.path=DIR`` (no labels: it trains the self-supervised
   evaluator into gankit's cache), timed;
2. ``gankit train dcgan-cpu-64 --set data.path=DIR`` for ``--train-seconds`` (train.time_limit), its speed;
3. ``gankit evaluate RUN`` twice with an empty feature cache (10,000 samples at 64 px against the folder's 10,000
   images; the first run embeds the reference images, the second finds them in the cache), with the time of each
   part and the wall clock of the whole command (Python start, loading the folder, the floor included);
4. the evaluator's scores on degraded copies of the folder (noise, blur) against the folder itself;
5. with ``--paper``: the time dcgan-paper-64's generator (random weights: its cost does not depend on them) takes
   to draw 10,000 samples here.

    python benchmarks/own_images_64.py [--images 10000] [--epochs 10] [--train-seconds 900] [--out runs/bench-own64]
                                       [--paper]

Writes OUT/results.json; prints every figure and the commands it ran.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import tempfile
import sys
import time
from pathlib import Path

import numpy as np


def make_folder(root: Path, count: int, seed: int = 0) -> None:
    from PIL import Image
    from sklearn.datasets import load_sample_images

    if root.is_dir() and len(list(root.glob("*.png"))) == count:
        return
    root.mkdir(parents=True, exist_ok=True)
    photos = [Image.fromarray(image) for image in load_sample_images().images]
    rng = np.random.default_rng(seed)
    for i in range(count):
        photo = photos[i % len(photos)]
        side = int(min(photo.size) * rng.uniform(0.15, 0.5))
        left, top = int(rng.integers(0, photo.width - side + 1)), int(rng.integers(0, photo.height - side + 1))
        crop = photo.crop((left, top, left + side, top + side)).resize((64, 64), Image.Resampling.LANCZOS)
        if rng.random() < 0.5:
            crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        crop.save(root / f"{i:05d}.png")


def gankit(*argv: str, env: dict[str, str] | None = None) -> tuple[str, float]:
    """Run a gankit command as a user would; its output and wall-clock seconds."""
    command = [sys.executable, "-m", "gankit", *argv]
    print("$ gankit " + " ".join(argv), flush=True)
    start = time.perf_counter()
    done = subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout, seconds


def degraded_scores(folder: Path, n: int) -> dict[str, float]:
    """FID under the folder's evaluator of noisy and blurred copies of half the folder against the other half."""
    import torch

    from gankit.data import load_dataset
    from gankit.metrics.evaluation import default_extractor
    from gankit.metrics.extractors import build_extractor
    from gankit.metrics.scores import fid

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from self_supervised_scores import blurred, noisy

    section = {"name": "folder", "path": str(folder), "resolution": 64, "channels": 3}
    data = load_dataset(section)
    extractor = build_extractor(default_extractor(section, "images"))
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))
    reference, other = data.x[order[: n // 2]], data.x[order[n // 2 :]]
    real = extractor(reference).features
    sets = {"real vs real (other half)": other}
    for sigma in (0.05, 0.1, 0.2):
        sets[f"noise {sigma}"] = noisy(other, sigma)
    for sigma in (0.5, 1.0, 2.0):
        sets[f"blur {sigma}"] = blurred(other.flatten(0, 1).unsqueeze(1), sigma).view_as(other)
    return {name: round(fid(real, extractor(images).features), 4) for name, images in sets.items()}


def paper_sampling_seconds(n: int) -> float:
    import torch

    from gankit.config import load_config
    from gankit.inference import GeneratorPipeline
    from gankit.networks import MODELS, build_network
    from gankit.variants import build_condition

    config = load_config("dcgan-paper-64", ["model.resolution=64", "model.channels=3"])
    entry, options = MODELS.resolve(config.model, "model")
    G = build_network(entry, options, "G").eval()
    pipeline = GeneratorPipeline(G, config, 0, False, torch.device("cpu"), build_condition({"kind": "none"}))
    start = time.perf_counter()
    pipeline.sample(n, seed=0, batch_size=500)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=10000)
    parser.add_argument(
        "--epochs", type=int, default=10, help="self-supervised evaluator epochs (the command's default)"
    )
    parser.add_argument("--train-seconds", type=float, default=900.0)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-own64"))
    parser.add_argument("--paper", action="store_true", help="also time dcgan-paper-64's sampling of 10,000")
    args = parser.parse_args()
    folder, run = args.out / "photos", args.out / "run"
    results: dict = {}
    start = time.perf_counter()
    make_folder(folder, args.images)
    results["folder_seconds"] = round(time.perf_counter() - start, 1)
    print(f"folder: {args.images} images of 64x64 in {folder} ({results['folder_seconds']} s)")

    from gankit.networks.classifier import evaluator_for_data

    trained = evaluator_for_data({"name": "folder", "path": str(folder), "resolution": 64})
    if trained.is_file():  # from an earlier run of this script: its own record says how it was made
        info = json.loads(trained.with_suffix(".json").read_text())
        print(f"reusing the evaluator {trained} (trained in {info['train_seconds']} s)")
        results["evaluator"] = {
            "reused": str(trained),
            "train_seconds": info["train_seconds"],
            "pair_accuracy_heldout": info.get("pair_accuracy_heldout"),
        }
    else:
        output, seconds = gankit(
            "evaluator",
            "train",
            "--dataset",
            "folder",
            "--set",
            f"data.path={folder}",
            "--set",
            "data.resolution=64",
            "--epochs",
            str(args.epochs),
            "--quiet",
        )
        print(output.strip().splitlines()[-1])
        results["evaluator"] = {"seconds": round(seconds, 1), "output": output.strip().splitlines()[-3:]}

    if not (run / "generator.safetensors").is_file():
        output, seconds = gankit(
            "train",
            "dcgan-cpu-64",
            "--set",
            f"data.path={folder}",
            "--out",
            str(run),
            "--set",
            f"train.time_limit={args.train_seconds}",
            "--quiet",
        )
        results["train"] = {
            "seconds": round(seconds, 1),
            "output": [line for line in output.splitlines() if line.strip()][:6],
        }
    rows = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    speeds = [r["images_per_second"] for r in rows[1:]] or [rows[-1]["images_per_second"]]
    results["train_log"] = {"steps": rows[-1]["step"], "median_images_per_second": float(np.median(speeds))}
    print(f"dcgan-cpu-64: {rows[-1]['step']} steps, median {np.median(speeds):.0f} images/s")

    # A fresh cache for these two: the first embeds the reference images (and the floor's), the second finds them.
    fresh = {"GANKIT_CACHE": tempfile.mkdtemp(prefix="gankit-cache-")}
    for attempt in ("first (reference embedded)", "second (reference cached)"):
        output, seconds = gankit("evaluate", str(run), "--evaluator", str(trained), env=fresh)
        timing = next(line for line in output.splitlines() if line.startswith("evaluated in"))
        print(f"evaluate, {attempt}: {seconds:.1f} s wall clock; {timing}")
        fid_line = next(line for line in output.splitlines() if line.startswith("fid "))
        results.setdefault("evaluate", []).append(
            {
                "attempt": attempt,
                "wall_seconds": round(seconds, 1),
                "parts": timing,
                "fid_line": re.sub(r"\s+", " ", fid_line),
            }
        )
    results["degraded"] = degraded_scores(folder, args.images)
    print("degraded copies:", json.dumps(results["degraded"], indent=1))
    if args.paper:
        results["paper_64_sampling_seconds_10000"] = round(paper_sampling_seconds(10000), 1)
        print(f"dcgan-paper-64 G draws 10,000 samples in {results['paper_64_sampling_seconds_10000']} s")
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
