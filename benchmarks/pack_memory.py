"""Packing a large image folder, and the memory a run takes on it (issue 18).

Writes ``--count`` generated 64x64 RGB PNGs (smooth random colour fields, so they compress like photos more
than like noise) into ``--folder`` unless they are there, times ``gankit data pack`` on it, then trains
``dcgan-paper-64`` for ``--steps`` steps at batch 128 twice, each in its own process: once on the folder
(``data.name=folder``: every image decoded into memory first) and once on the packed copy
(``data.name=packed``: batches read from the memory map). Peak resident memory of each process comes from
``/usr/bin/time -f %M``.

    python benchmarks/pack_memory.py [--count 100000] [--steps 20] [--folder /tmp/gankit-pngs]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def make_folder(folder: Path, count: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    have = len(list(folder.glob("*.png")))
    rng = np.random.default_rng(0)
    for i in range(have, count):
        small = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        Image.fromarray(small).resize((64, 64), Image.Resampling.BICUBIC).save(folder / f"{i:06d}.png")


def peak_memory(command: list[str]) -> tuple[float, float]:
    """(seconds, peak resident memory in MiB) of ``command``."""
    start = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-f", "%M", *command], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(done.stdout[-2000:] + done.stderr[-2000:])
    return time.perf_counter() - start, int(done.stderr.strip().splitlines()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--folder", default="/tmp/gankit-pngs")
    args = parser.parse_args()
    folder = Path(args.folder)
    start = time.perf_counter()
    make_folder(folder, args.count)
    print(f"{args.count:,} PNGs in {folder} ({time.perf_counter() - start:.0f} s to make)", flush=True)
    gankit = [sys.executable, "-m", "gankit"]
    train_options = [
        "--set",
        f"train.steps={args.steps}",
        "--set",
        "train.log_every=10",
        "--set",
        "train.tensorboard=false",
        "--set",
        f"train.sample_every={args.steps}",
        "--set",
        f"train.checkpoint_every={args.steps}",
        "--set",
        "train.device=cpu",
        "--quiet",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        packed = Path(tmp) / "packed"
        seconds, memory = peak_memory(
            [*gankit, "data", "pack", str(folder), "--out", str(packed), "--resolution", "64", "--quiet"]
        )
        print(
            f"pack: {seconds:.0f} s ({args.count / seconds:,.0f} images/s), peak memory {memory:,.0f} MiB", flush=True
        )
        rows = {}
        for name, data in (
            ("folder in memory", ["--set", "data.name=folder", "--set", f"data.path={folder}"]),
            ("packed (memory-mapped)", ["--set", "data.name=packed", "--set", f"data.path={packed}"]),
        ):
            seconds, memory = peak_memory(
                [*gankit, "train", "dcgan-paper-64", "--out", str(Path(tmp) / name.split()[0]), *data, *train_options]
            )
            rows[name] = (seconds, memory)
            print(f"train {args.steps} steps on the {name}: {seconds:.0f} s, peak memory {memory:,.0f} MiB", flush=True)
        size = (packed / "images.npy").stat().st_size / 2**20
    print(f"\n{args.count:,} images of 3x64x64 = {size:,.0f} MiB packed")
    print("| run | wall time | peak resident memory |\n|---|---|---|")
    for name, (seconds, memory) in rows.items():
        print(f"| {name} | {seconds:.0f} s | {memory:,.0f} MiB |")


if __name__ == "__main__":
    main()
