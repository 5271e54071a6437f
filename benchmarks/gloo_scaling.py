"""Several processes on one CPU (issue 18): ``dcgan-fashion-mnist`` at global batch 128, one process with all
cores against ``torchrun --nproc_per_node=N`` (gloo) with the cores shared out (OMP_NUM_THREADS = cores / N).
Images per second from process 0's log, the first interval excluded as warm-up. On a small CPU this shows
the cost of the all-reduces, not a speed-up: each process still computes its slice on fewer cores. The N-process
run is measured twice: BatchNorm per process (the default) and ``train.sync_batchnorm=true`` (one all-reduce per
BatchNorm per forward).

    python benchmarks/gloo_scaling.py [--steps 60] [--processes 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

INTERVAL = 20


def rate(run: Path) -> float:
    rows = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()][1:]
    return len(rows) * INTERVAL * 128 / sum(INTERVAL * 128 / r["images_per_second"] for r in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    options = []
    for option in (
        f"train.steps={args.steps}",
        f"train.log_every={INTERVAL}",
        f"train.sample_every={args.steps}",
        f"train.checkpoint_every={args.steps}",
        "train.tensorboard=false",
        "train.device=cpu",
    ):
        options += ["--set", option]
    with tempfile.TemporaryDirectory() as tmp:
        results = {}
        n = args.processes
        for name, n, extra in (("1", 1, []), (str(n), n, []), (f"{n} sync", n, ["--set", "train.sync_batchnorm=true"])):
            run = Path(tmp) / name.replace(" ", "-")
            launcher = [] if n == 1 else ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}"]
            command = [
                sys.executable,
                *launcher,
                "-m",
                "gankit",
                "train",
                "dcgan-fashion-mnist",
                "--out",
                str(run),
                "--quiet",
                *options,
                *extra,
            ]
            env = {**os.environ, "OMP_NUM_THREADS": str(max(1, cores // n))}
            done = subprocess.run(command, capture_output=True, text=True, env=env)
            if done.returncode != 0:
                raise SystemExit(done.stderr[-2000:])
            results[name] = rate(run)
            print(f"{name} process(es), {max(1, cores // n)} thread(s) each: {results[name]:.0f} images/s", flush=True)
    for name in (str(n), f"{n} sync"):
        print(f"{name} processes / 1 process: {results[name] / results['1']:.2f}x on {cores} cores")


if __name__ == "__main__":
    main()
