"""ONNX export measured (issue 21): export time, file size, the parity check, and sampling speed of the exported
graph under onnxruntime (CPU) against G in PyTorch (CPU, eval mode, no_grad), at batch 1 and 64, for
``dcgan-fashion-mnist`` and ``dcgan-paper-64``. Speed does not depend on what G learned, so each generator is
trained for one step (paper-64 on 8 random 64 px images). Images per second: the median of 7 timed calls after
3 warm-up calls; both runtimes use their default threads on this machine.

    python benchmarks/export_speed.py [--out runs/bench-export]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gankit import load_config, train
from gankit.inference import load_generator
from gankit.portable import export_onnx


def rate(call, batch: int) -> float:
    for _ in range(3):
        call()
    times = []
    for _ in range(7):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return batch / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-export"))
    args = parser.parse_args()
    import onnxruntime

    args.out.mkdir(parents=True, exist_ok=True)
    photos = args.out / "photos"
    photos.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(8):
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(photos / f"{i}.png")
    step = ["train.steps=1", "train.batch_size=8", "train.tensorboard=false", "train.sample_grid=4"]
    presets = {"dcgan-fashion-mnist": step, "dcgan-paper-64": step + [f"data.path={photos}"]}
    print(
        "| generator | params | export s | ONNX MiB | max abs diff | max "
        "pixel diff | batch | PyTorch img/s | onnxruntime img/s | ratio |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for preset, overrides in presets.items():
        run = args.out / preset
        if not (run / "generator.safetensors").is_file():
            train(load_config(preset, overrides), run, progress=False, log=lambda s: None)
        pipeline = load_generator(run)
        meta = export_onnx(pipeline, args.out / f"{preset}.onnx")
        session = onnxruntime.InferenceSession(str(args.out / f"{preset}.onnx"), providers=["CPUExecutionProvider"])
        params = sum(p.numel() for p in pipeline.G.parameters())
        for batch in (1, 64):
            z = torch.randn(batch, pipeline.latent_dim)
            with torch.no_grad():
                torch_rate = rate(lambda: pipeline.G(z), batch)
            feed = {"z": z.numpy()}
            onnx_rate = rate(lambda: session.run(None, feed), batch)
            parity = meta["parity"]
            print(
                f"| {preset} | {params / 1e6:.2f} M | {meta['export_seconds']:.1f} | {meta['bytes'] / 2**20:.1f} | "
                f"{parity['max_abs_difference']:.1e} | "
                f"{parity['max_pixel_difference']} | {batch} | {torch_rate:,.0f} | "
                f"{onnx_rate:,.0f} | {onnx_rate / torch_rate:.2f}x |",
                flush=True,
            )


if __name__ == "__main__":
    main()
