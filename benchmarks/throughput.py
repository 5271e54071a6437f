"""Training throughput on this CPU: gankit's trainer vs the canonical DCGAN loop, same process and data, and
how close each comes to the machine's own limit (issues 2 and 33).

Both train the ``dcgan-fashion-mnist`` architecture (28x28, 64 base maps) at batch 128 on Fashion-MNIST with
the canonical loop's algorithm: gankit's preset is run with train.batch_size=128, no EMA and no periodic
evaluation, so the two do the same work and differ only in how they execute it. The canonical loop
(benchmarks/canonical.py) gets the whole training set as a preloaded float tensor, so data loading costs it
nothing. gankit runs its real trainer (``gankit.train``) and is timed from its own log rows, excluding the
first interval (warm-up) and sample/checkpoint writing. Configurations alternate over ``--rounds`` so machine
drift hits all.

The machine's limit: the fp32 matrix-multiply rate measured here (a 2048 x 2048 ``torch.mm`` with the threads
the training uses; the best of 5 timings of 5 products, once per round, and the best round). Each loop's FLOPs
per step are counted by ``torch.utils.flop_counter.FlopCounterMode`` (convolutions and matrix products, forward
and backward; gankit's as the count of a 3-step run less that of a 2-step run, so its step is counted as the
trainer runs it, once: memory layout, precision and compilation do not change the arithmetic). The fraction is
(steps/s x FLOPs/step) / matmul rate. ``--profile`` adds a breakdown of gankit's step by operator
(torch.profiler, self CPU time); ``--configs WORD...`` measures only some rows (the canonical loop always).

    python benchmarks/throughput.py [--steps 100] [--rounds 2] [--json out.json] [--profile]
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
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from canonical import canonical_step, make_optimizers  # noqa: E402

import gankit  # noqa: E402
from gankit.data import load_dataset  # noqa: E402
from gankit.device import fast_bf16  # noqa: E402
from gankit.networks.dcgan import DCGANDiscriminator, DCGANGenerator  # noqa: E402

BATCH = 128
WARMUP = 25
SAME_ALGORITHM = [f"train.batch_size={BATCH}", "train.ema_decay=0", "train.eval_every=0"]  # as the canonical loop
CONFIGS = {  # name -> gankit overrides (None: the canonical loop)
    "canonical loop (fp32)": None,
    "gankit, default (fp32, channels-last)": [],
    "gankit, fp32, no channels-last": ["train.channels_last=false"],
    "gankit, precision=bf16": ["train.precision=bf16"],
    "gankit, compile=default": ["train.compile=default"],  # the warm-up steps pay the compilation
}


def canonical_nets():
    torch.manual_seed(0)
    G, D = DCGANGenerator(28, 1, 100, 64), DCGANDiscriminator(28, 1, 64)
    return G, D, *make_optimizers(G, D)


def time_canonical(real_all: torch.Tensor, steps: int) -> float:
    G, D, opt_G, opt_D = canonical_nets()
    n = real_all.shape[0] // BATCH
    start = None
    for i in range(WARMUP + steps):
        if i == WARMUP:
            start = time.perf_counter()
        real = real_all[(i % n) * BATCH : (i % n + 1) * BATCH]
        canonical_step(G, D, opt_G, opt_D, real, torch.randn(BATCH, 100))
    return steps * BATCH / (time.perf_counter() - start)


def gankit_config(steps: int, overrides: list[str], interval: int = WARMUP):
    return gankit.load_config(
        "dcgan-fashion-mnist",
        [
            f"train.steps={steps}",
            f"train.log_every={interval}",
            f"train.sample_every={steps}",
            f"train.checkpoint_every={steps}",
            "train.tensorboard=false",
            "train.device=cpu",
            *SAME_ALGORITHM,
            *overrides,
        ],
    )


def time_gankit(steps: int, overrides: list[str]) -> float:
    with tempfile.TemporaryDirectory() as folder:
        gankit.train(gankit_config(WARMUP + steps, overrides), folder, progress=False, log=lambda s: None)
        rows = [json.loads(line) for line in (Path(folder) / "train_log.jsonl").read_text().splitlines()]
    timed = rows[1:]  # the first interval includes warm-up
    seconds = sum(WARMUP * BATCH / r["images_per_second"] for r in timed)
    return len(timed) * WARMUP * BATCH / seconds


def matmul_rate(n: int = 2048, repeats: int = 5, trials: int = 5) -> float:
    """The fp32 matrix-multiply rate of this machine, FLOP/s, with the current thread count: the best of
    ``trials`` timings of ``repeats`` products (a limit is what the machine reaches when nothing slows it)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)  # warm-up
    best = 0.0
    for _ in range(trials):
        start = time.perf_counter()
        for _ in range(repeats):
            torch.mm(a, b)
        best = max(best, 2 * n**3 * repeats / (time.perf_counter() - start))
    return best


def canonical_flops(real_all: torch.Tensor) -> float:
    G, D, opt_G, opt_D = canonical_nets()
    with FlopCounterMode(display=False) as counter:
        canonical_step(G, D, opt_G, opt_D, real_all[:BATCH], torch.randn(BATCH, 100))
    return float(counter.get_total_flops())


def gankit_flops(overrides: list[str]) -> float:
    """FLOPs of one of gankit's steps: a 3-step run's count less a 2-step run's (the end-of-run work is the
    same in both)."""
    counts = []
    for steps in (2, 3):
        with tempfile.TemporaryDirectory() as folder, FlopCounterMode(display=False) as counter:
            gankit.train(gankit_config(steps, overrides, 1), folder, progress=False, log=lambda s: None)
        counts.append(counter.get_total_flops())
    return float(counts[1] - counts[0])


def profile_gankit(steps: int = 20) -> list[tuple[str, float]]:
    """Self CPU time of gankit's default step by operator, as shares of the total, largest first."""
    from torch.profiler import ProfilerActivity, profile

    with tempfile.TemporaryDirectory() as folder, profile(activities=[ProfilerActivity.CPU]) as prof:
        gankit.train(gankit_config(steps, []), folder, progress=False, log=lambda s: None)
    events = [(e.key, e.self_cpu_time_total) for e in prof.key_averages()]
    total = sum(t for _, t in events)
    return sorted(((name, t / total) for name, t in events), key=lambda item: -item[1])


def cpu_name() -> str:
    return next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=100, help="timed steps per measurement (multiple of 25)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--profile", action="store_true", help="also break gankit's step down by operator")
    parser.add_argument(
        "--configs", nargs="+", metavar="WORD", help="only the configurations whose names hold one of these words"
    )
    args = parser.parse_args()
    steps = max(WARMUP, args.steps // WARMUP * WARMUP)
    configs = {k: v for k, v in CONFIGS.items() if not args.configs or any(w in k for w in args.configs)}
    configs = {"canonical loop (fp32)": None, **configs}  # the baseline of every ratio
    if (
        not fast_bf16(torch.device("cpu")) and "gankit, precision=bf16" in configs
    ):  # bf16 emulated in fp32: an order of magnitude slower, minutes per row
        del configs["gankit, precision=bf16"]
        print("this CPU has no fast bf16 units (AMX, AVX-512 BF16): the bf16 row is left out", flush=True)

    dataset = load_dataset({"name": "fashion-mnist"})
    real_all = dataset.x.float().div(127.5).sub(1.0)
    step_flops = gankit_flops([])  # every gankit row does the same arithmetic (layout, precision, compiler aside)
    flops = {name: canonical_flops(real_all) if options is None else step_flops for name, options in configs.items()}
    results: dict[str, list[float]] = {name: [] for name in configs}
    rates = []
    for round_index in range(args.rounds):
        rates.append(matmul_rate())
        print(f"round {round_index + 1}: fp32 matmul {rates[-1] / 1e9:.1f} GFLOP/s", flush=True)
        for name, options in configs.items():
            results[name].append(time_canonical(real_all, steps) if options is None else time_gankit(steps, options))
            print(f"round {round_index + 1}: {name:40s} {results[name][-1]:7.1f} images/s", flush=True)

    peak = max(rates)
    baseline = statistics.median(results["canonical loop (fp32)"])
    print(f"\n{datetime.date.today()} | {cpu_name()} | {torch.get_num_threads()} threads | torch {torch.__version__}")
    print(
        f"dcgan-fashion-mnist, batch {BATCH}, {steps} timed steps x {args.rounds} rounds (median); fp32 matmul "
        f"rate {peak / 1e9:.1f} GFLOP/s (best round; rounds {', '.join(f'{r / 1e9:.0f}' for r in rates)})\n"
    )
    print("| configuration | images/s | vs canonical | GFLOP/step | GFLOP/s | of the matmul rate |")
    print("|---|---|---|---|---|---|")
    summary: dict = {"matmul_gflops": peak / 1e9, "matmul_runs": [r / 1e9 for r in rates], "configs": {}}
    for name, values in results.items():
        median = statistics.median(values)
        achieved = median / BATCH * flops[name]
        summary["configs"][name] = {
            "images_per_second": median,
            "runs": values,
            "ratio": median / baseline,
            "gflop_per_step": flops[name] / 1e9,
            "gflops": achieved / 1e9,
            "fraction_of_matmul_rate": achieved / peak,
        }
        print(
            f"| {name} | {median:.0f} | {median / baseline:.2f}x | {flops[name] / 1e9:.1f} | {achieved / 1e9:.0f} | "
            f"{achieved / peak:.0%} |"
        )
    if args.profile:
        shares = profile_gankit()
        summary["profile"] = shares[:25]
        print("\ngankit default, self CPU time by operator (torch.profiler, 20 steps):\n")
        print("| operator | share |\n|---|---|")
        for name, share in shares[:15]:
            print(f"| {name} | {share:.1%} |")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
