"""Training throughput: gankit's trainer vs the canonical DCGAN loop, same process and data.

Both train the ``dcgan-fashion-mnist`` architecture (28x28, 64 base maps) at
batch 128 on Fashion-MNIST. The canonical loop (benchmarks/canonical.py) gets
the whole training set as a preloaded float tensor, so data loading costs it
nothing. gankit runs its real trainer (``gankit.train``) and is timed from its
own log rows, excluding the first interval (warm-up) and sample/checkpoint
writing. Configurations alternate over ``--rounds`` so machine drift hits all.

    python benchmarks/throughput.py [--steps 100] [--rounds 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from canonical import canonical_step, make_optimizers  # noqa: E402

import gankit  # noqa: E402
from gankit.data import load_dataset  # noqa: E402
from gankit.networks.dcgan import DCGANDiscriminator, DCGANGenerator  # noqa: E402

BATCH = 128
WARMUP = 25


def time_canonical(real_all: torch.Tensor, steps: int) -> float:
    torch.manual_seed(0)
    G, D = DCGANGenerator(28, 1, 100, 64), DCGANDiscriminator(28, 1, 64)
    opt_G, opt_D = make_optimizers(G, D)
    n = real_all.shape[0] // BATCH
    start = None
    for i in range(WARMUP + steps):
        if i == WARMUP:
            start = time.perf_counter()
        real = real_all[(i % n) * BATCH : (i % n + 1) * BATCH]
        canonical_step(G, D, opt_G, opt_D, real, torch.randn(BATCH, 100))
    return steps * BATCH / (time.perf_counter() - start)


def time_gankit(steps: int, overrides: list[str]) -> float:
    config = gankit.load_config(
        "dcgan-fashion-mnist",
        [
            f"train.steps={WARMUP + steps}",
            f"train.log_every={WARMUP}",
            f"train.sample_every={WARMUP + steps}",
            f"train.checkpoint_every={WARMUP + steps}",
            "train.tensorboard=false",
            "train.device=cpu",
            *overrides,
        ],
    )
    with tempfile.TemporaryDirectory() as folder:
        gankit.train(config, folder, progress=False, log=lambda s: None)
        rows = [json.loads(line) for line in (Path(folder) / "train_log.jsonl").read_text().splitlines()]
    timed = rows[1:]  # the first interval includes warm-up
    seconds = sum(WARMUP * BATCH / r["images_per_second"] for r in timed)
    return len(timed) * WARMUP * BATCH / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=100, help="timed steps per measurement (multiple of 25)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    steps = max(WARMUP, args.steps // WARMUP * WARMUP)

    dataset = load_dataset({"name": "fashion-mnist"})
    real_all = dataset.x.float().div(127.5).sub(1.0)
    configs = {
        "canonical loop (fp32)": lambda: time_canonical(real_all, steps),
        "gankit, default (fp32, channels-last)": lambda: time_gankit(steps, []),
        "gankit, fp32, no channels-last": lambda: time_gankit(steps, ["train.channels_last=false"]),
        "gankit, precision=bf16": lambda: time_gankit(steps, ["train.precision=bf16"]),
    }
    results: dict[str, list[float]] = {name: [] for name in configs}
    for round_index in range(args.rounds):
        for name, run in configs.items():
            results[name].append(run())
            print(f"round {round_index + 1}: {name:40s} {results[name][-1]:7.1f} images/s", flush=True)

    baseline = statistics.median(results["canonical loop (fp32)"])
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    print(f"\n{datetime.date.today()} | {cpu} | {torch.get_num_threads()} threads | torch {torch.__version__}")
    print(f"dcgan-fashion-mnist, batch {BATCH}, {steps} timed steps x {args.rounds} rounds (median)\n")
    print("| configuration | images/s | vs canonical |\n|---|---|---|")
    summary = {}
    for name, values in results.items():
        median = statistics.median(values)
        summary[name] = {"images_per_second": median, "runs": values, "ratio": median / baseline}
        print(f"| {name} | {median:.0f} | {median / baseline:.2f}x |")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
