"""GPU numbers for the DCGAN paper's 64 px net (``dcgan-paper-64``) at batch 128 (issue 18).

1. gankit's trainer (``gankit.train``, the real loop) in fp32 and bf16, with and without channels-last:
   images per second (timed from the log rows, the first interval excluded as warm-up) and peak GPU memory.
2. torch.compile: the same G and D step, eager against ``torch.compile`` (default mode), after a warm-up,
   with the compile time reported apart.
3. Data-parallel scaling over the GPUs present: ``torchrun --nproc_per_node=k -m gankit train`` for k = 1, 2,
   4, ... up to the GPU count, global batch 128 * k (the same per-GPU batch), images per second from process
   0's log.

The data are 8,192 random 64x64 RGB images written as an .npz (no download). With ``--device cpu`` the same
script runs here as a smoke test (tiny step counts); its numbers mean nothing for a GPU.

    python benchmarks/gpu.py [--steps 200] [--json gpu.json] [--device cuda]
    python benchmarks/gpu.py --device cpu --steps 2 --batch 8      # a smoke test on a CPU
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import gankit
from gankit.networks.dcgan import DCGANDiscriminator, DCGANGenerator

BATCH = 128


def log_rate(run: Path, interval: int, batch: int) -> float:
    """Images per second over the log intervals after the first (warm-up)."""
    rows = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()][1:]
    seconds = sum(interval * batch / r["images_per_second"] for r in rows)
    return len(rows) * interval * batch / seconds


def trainer(npz: Path, folder: Path, device: str, steps: int, interval: int, options: list[str]) -> dict:
    config = gankit.load_config(
        "dcgan-paper-64",
        [
            "data.name=npz",
            f"data.path={npz}",
            "data.resolution=64",
            f"train.batch_size={BATCH}",
            f"train.device={device}",
            f"train.steps={steps}",
            f"train.log_every={interval}",
            f"train.sample_every={steps}",
            f"train.checkpoint_every={steps}",
            "train.tensorboard=false",
            *options,
        ],
    )
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    gankit.train(config, folder, progress=False, log=lambda s: None)
    peak = round(torch.cuda.max_memory_allocated() / 2**20, 1) if device.startswith("cuda") else None
    return {"images_per_second": round(log_rate(folder, interval, BATCH), 1), "peak_memory_mib": peak}


def compiled_step(device: str, steps: int, compile_: bool) -> dict:
    """The canonical step (D on real and G(z).detach(), then G through D) on G and D, eager or compiled."""
    torch.manual_seed(0)
    G, D = DCGANGenerator(64, 3, 100, 64).to(device), DCGANDiscriminator(64, 3, 64).to(device)
    G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
    opt_G = torch.optim.Adam(G.parameters(), 2e-4, betas=(0.5, 0.999), fused=True)
    opt_D = torch.optim.Adam(D.parameters(), 2e-4, betas=(0.5, 0.999), fused=True)
    g, d = (torch.compile(G), torch.compile(D)) if compile_ else (G, D)
    real = torch.rand(BATCH, 3, 64, 64, device=device).mul(2).sub(1).contiguous(memory_format=torch.channels_last)
    softplus = torch.nn.functional.softplus

    def step():
        z = torch.randn(BATCH, 100, device=device)
        fake = g(z)
        loss_d = softplus(-d(real)).mean() + softplus(d(fake.detach())).mean()
        opt_D.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_D.step()
        D.requires_grad_(False)
        loss_g = softplus(-d(fake)).mean()
        opt_G.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_G.step()
        D.requires_grad_(True)

    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    start = time.perf_counter()
    for _ in range(3):  # compilation (and recompilation for the frozen-D graph) happens here
        step()
    sync()
    warm = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    return {
        "images_per_second": round(steps * BATCH / (time.perf_counter() - start), 1),
        "warm_up_seconds": round(warm, 1),
    }


def scaling(npz: Path, folder: Path, steps: int, interval: int, gpus: int) -> dict:
    rates = {}
    k = 1
    while k <= gpus:
        run = folder / f"ddp{k}"
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={k}",
            "-m",
            "gankit",
            "train",
            "dcgan-paper-64",
            "--out",
            str(run),
            "--quiet",
        ]
        for option in [
            "data.name=npz",
            f"data.path={npz}",
            "data.resolution=64",
            f"train.batch_size={BATCH * k}",
            f"train.steps={steps}",
            f"train.log_every={interval}",
            f"train.sample_every={steps}",
            f"train.checkpoint_every={steps}",
            "train.tensorboard=false",
            "train.precision=bf16",
        ]:
            command += ["--set", option]
        done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "4"})
        if done.returncode != 0:
            rates[k] = {"error": done.stderr[-1500:]}
        else:
            rates[k] = {"images_per_second": round(log_rate(run, interval, BATCH * k), 1)}
        k *= 2
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--device", default="cuda")
    parser.add_argument(
        "--batch", type=int, default=128, help="per-GPU batch (128 is the paper's; smaller for a smoke test)"
    )
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args()
    global BATCH
    BATCH = args.batch
    gpus = torch.cuda.device_count() if args.device.startswith("cuda") else 0
    if args.device.startswith("cuda") and not gpus:
        raise SystemExit("no CUDA device here; run with --device cpu for a smoke test")
    interval = max(1, args.steps // 5)
    results: dict = {
        "device": torch.cuda.get_device_name(0) if gpus else "cpu",
        "torch": torch.__version__,
        "batch": BATCH,
        "steps": args.steps,
    }
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        npz = folder / "random64.npz"
        np.savez(npz, images=np.random.default_rng(0).integers(0, 256, (8192, 64, 64, 3), dtype=np.uint8))
        for name, options in (
            ("fp32", ["train.channels_last=false"]),
            ("fp32, channels-last", []),
            ("bf16", ["train.precision=bf16", "train.channels_last=false"]),
            ("bf16, channels-last", ["train.precision=bf16"]),
        ):
            results[f"trainer {name}"] = trainer(
                npz, folder / name.replace(", ", "-"), args.device, args.steps, interval, options
            )
            print(f"trainer {name:22s} {results[f'trainer {name}']}", flush=True)
        for compile_ in (False, True):
            name = f"step {'compiled' if compile_ else 'eager'} (fp32, channels-last)"
            try:
                results[name] = compiled_step(args.device, args.steps, compile_)
            except Exception as error:  # noqa: BLE001 - a compiler failure is a result to report
                results[name] = {"error": f"{type(error).__name__}: {str(error)[:500]}"}
            print(f"{name:40s} {results[name]}", flush=True)
        if gpus:
            results["data-parallel scaling (bf16, batch 128 per GPU)"] = scaling(
                npz, folder, args.steps, interval, gpus
            )
            print(f"scaling {results['data-parallel scaling (bf16, batch 128 per GPU)']}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
