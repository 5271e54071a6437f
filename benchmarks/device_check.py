"""The GPU path checked in one command, within 8 minutes on one H100 (issue 33). On the lent GPU machine, from
the repository root (torch, numpy, scikit-learn, safetensors, onnx and pytest are there; gankit runs from src/):

    PYTHONPATH=src python benchmarks/device_check.py --out $OUT
    python benchmarks/device_check.py --device cpu --quick --out /tmp/check    # the smoke run (the suite's)

It writes OUT/device-check.json (everything, loss curves included) and OUT/device-check.md (the tables):

1. **tests**: ``pytest -m cuda tests/test_cuda.py`` (every variant 20 steps in fp32 and bf16, exact resume
   with deterministic algorithms, sampling / evaluation / ONNX export of a CUDA run against the CPU path, packed
   data with pinned non-blocking copies, one-process NCCL, a torchrun launch): passed, failed, skipped.
2. **throughput**, three workloads: dcgan-fashion-mnist at batch 128 and 512, dcgan-paper-64 at batch 128, on
   random uint8 images of their size (no download; speed does not depend on pixel values). Rows: the canonical
   eager loop (benchmarks/canonical.py, the PyTorch example's step: data already on the device, one
   ``.item()`` per step), with PyTorch's default Adam and with fused Adam; gankit's real trainer
   (``gankit.train``, EMA and periodic evaluation off, like the canonical loop) in fp32 NCHW, its default
   (fp32, channels-last, fused Adam), bf16, channels-last + bf16, ``train.compile=default`` (fp32 and bf16)
   and ``train.compile=reduce-overhead`` (CUDA graphs, GPU only). Each row trains 200 steps from seed 0:
   images/s after the first log interval (warm-up and compilation excluded, reported apart as ``first
   interval s``), peak device memory, and the loss curve (means over 10 steps) against its loop's eager fp32
   row: the largest difference of D's and of G's loss. Cheap rows run first, compiled ones last, and a row
   that would start after ``--budget-s`` is reported as skipped, so the check ends in time.
3. **evaluation**: FID and KID of 10,000 samples at 64 px (dcgan-paper-64's G from the gankit default row)
   through gankit's FID Inception-v3 with randomly initialised weights (a timing only: the real weights cannot
   be fetched there): seconds and samples per second.

The quality half of issue 33's GPU target (dcgan-paper-64 over 2,000 steps, FID within the seed spread, 3
seeds) does not fit this budget; it is a separate run once the speed rows say which configuration to try.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from canonical import canonical_step, make_optimizers  # noqa: E402

import gankit  # noqa: E402
from gankit.networks.dcgan import DCGANDiscriminator, DCGANGenerator  # noqa: E402

STEPS, INTERVAL = 200, 10  # steps per row; the log interval (the loss curves are its means)
WORKLOADS = {  # name -> (preset, batch, (height, width, channels) of the data)
    "dcgan-fashion-mnist b128": ("dcgan-fashion-mnist", 128, (28, 28, 1)),
    "dcgan-fashion-mnist b512": ("dcgan-fashion-mnist", 512, (28, 28, 1)),
    "dcgan-paper-64 b128": ("dcgan-paper-64", 128, (64, 64, 3)),
}
CANONICAL = {"canonical eager fp32": None, "canonical eager fp32, fused Adam": True}  # -> Adam's fused flag
REFERENCE = {"canonical": "canonical eager fp32", "gankit": "gankit fp32 NCHW"}  # each loop's eager fp32 row
GANKIT = {
    "gankit fp32 NCHW": ["train.channels_last=false"],
    "gankit default (fp32, channels-last, fused Adam)": [],
    "gankit bf16": ["train.precision=bf16", "train.channels_last=false"],
    "gankit channels-last + bf16": ["train.precision=bf16"],
}
COMPILED = {
    "gankit compile": ["train.compile=default"],
    "gankit compile + bf16": ["train.compile=default", "train.precision=bf16"],
    "gankit CUDA graphs + bf16": ["train.compile=reduce-overhead", "train.precision=bf16"],  # GPU only
}


class Budget:
    def __init__(self, seconds: float):
        self.start, self.seconds = time.perf_counter(), seconds

    @property
    def spent(self) -> float:
        return time.perf_counter() - self.start

    def left(self) -> bool:
        return self.spent < self.seconds


def run_tests(device: str, out: Path, quick: bool) -> dict:
    """``pytest -m cuda`` on this machine; with --device cpu the tests run on the CPU (GANKIT_DEVICE_TESTS_ON)."""
    report = out / "cuda-tests.xml"
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-m",
        "cuda",
        "-p",
        "no:cacheprovider",
        str(ROOT / "tests" / "test_cuda.py"),
    ]
    command += [f"--junitxml={report}", *(["-k", "packed"] if quick else [])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    if device == "cpu":
        env["GANKIT_DEVICE_TESTS_ON"] = "cpu"
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    result = {"command": " ".join(command[1:]), "seconds": round(time.perf_counter() - start, 1)}
    if not report.is_file():
        return {**result, "error": (done.stdout + done.stderr)[-3000:]}
    suite = ET.parse(report).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    failed = []
    for case in suite.iter("testcase"):
        problem = case.find("failure") if case.find("failure") is not None else case.find("error")
        if problem is not None:
            failed.append(f"{case.get('name')}: {problem.get('message', '')[:300]}")
    counts = {key: int(suite.get(key, 0)) for key in ("tests", "failures", "errors", "skipped")}
    passed = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    return {**result, **counts, "passed": passed, **({"failed": failed} if failed else {})}


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def peak_memory(device: str) -> float | None:
    return round(torch.cuda.max_memory_allocated() / 2**20, 1) if device.startswith("cuda") else None


def interval_means(values: list[float], interval: int) -> list[float]:
    return [float(np.mean(values[i : i + interval])) for i in range(0, len(values), interval)]


def canonical_row(data: torch.Tensor, spec: dict, fused: bool | None, device: str, steps: int) -> dict:
    """The canonical loop: its rate after the first interval, its loss curve as interval means."""
    torch.manual_seed(0)
    size, channels = data.shape[-1], data.shape[1]
    G = DCGANGenerator(size, channels, 100, spec["width"]).to(device)
    D = DCGANDiscriminator(size, channels, spec["width"]).to(device)
    opt_G, opt_D = make_optimizers(G, D, fused=fused)
    batch, n = spec["batch"], len(data) // spec["batch"]
    d_losses, g_losses, start = [], [], None
    first = time.perf_counter()
    for i in range(steps):
        if i == spec["interval"]:
            synchronize(device)
            start = time.perf_counter()
            warm = start - first
        real = data[(i % n) * batch : (i % n + 1) * batch]
        d, g = canonical_step(G, D, opt_G, opt_D, real, torch.randn(batch, 100, device=device))
        d_losses.append(d)
        g_losses.append(g)
    synchronize(device)
    rate = (steps - spec["interval"]) * batch / (time.perf_counter() - start)
    return {
        "images_per_second": rate,
        "first_interval_s": warm,
        "d": interval_means(d_losses, spec["interval"]),
        "g": interval_means(g_losses, spec["interval"]),
    }


def gankit_runner(npz: Path, spec: dict, options: list[str], device: str, steps: int, run: Path):
    return lambda: gankit_row(npz, spec, options, device, steps, run)


def gankit_row(npz: Path, spec: dict, options: list[str], device: str, steps: int, run: Path) -> dict:
    size, _, channels = spec["shape"]
    config = gankit.load_config(
        spec["preset"],
        [
            "data.name=npz",
            f"data.path={npz}",
            f"data.resolution={size}",
            f"data.channels={channels}",
            f"model.g_width={spec['width']}",
            f"model.d_width={spec['width']}",
            f"train.batch_size={spec['batch']}",
            f"train.device={device}",
            f"train.steps={steps}",
            f"train.log_every={spec['interval']}",
            f"train.sample_every={steps}",
            f"train.checkpoint_every={steps}",
            "train.eval_every=0",
            "train.ema_decay=0",
            "train.tensorboard=false",
            "train.seed=0",
            *options,
        ],
    )
    gankit.train(config, run, progress=False, log=lambda s: None)
    rows = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    timed = rows[1:]  # the first interval holds the warm-up (and the compilation)
    seconds = sum(spec["interval"] * spec["batch"] / r["images_per_second"] for r in timed)
    first = spec["interval"] * spec["batch"] / rows[0]["images_per_second"]
    return {
        "images_per_second": len(timed) * spec["interval"] * spec["batch"] / seconds,
        "first_interval_s": first,
        "d": [r["d_loss"] for r in rows],
        "g": [r["g_loss"] for r in rows],
    }


def run_folder(folder: Path, workload: str, row: str) -> Path:
    return folder / "runs" / "".join(c if c.isalnum() else "-" for c in f"{workload} {row}")


def throughput(device: str, folder: Path, budget: Budget, quick: bool, compiled: bool) -> dict:
    steps = 6 if quick else STEPS
    results: dict[str, dict] = {}
    plans = []  # (workload, row, runner): the cheap rows of every workload first, the compiled ones last
    for name, (preset, batch, shape) in WORKLOADS.items():
        width = 8 if quick else gankit.load_config(preset).model["g_width"]
        spec = {
            "preset": preset,
            "batch": 8 if quick else batch,
            "shape": shape,
            "width": width,
            "interval": 2 if quick else INTERVAL,
        }
        npz = folder / f"{shape[0]}x{shape[1]}x{shape[2]}.npz"
        if not npz.is_file():
            count = 64 if quick else 4096
            images = np.random.default_rng(0).integers(0, 256, (count, *shape), dtype=np.uint8)
            np.savez(npz, images=images.squeeze(-1) if shape[2] == 1 else images)
        results[name] = {"spec": spec, "rows": {}}

        def load(npz=npz, spec=spec) -> torch.Tensor:
            with np.load(npz) as archive:
                x = torch.from_numpy(archive["images"])
            x = x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2)
            return x.float().div(127.5).sub(1.0).to(device)

        for row, fused in CANONICAL.items():
            plans.append(
                (name, row, lambda load=load, spec=spec, fused=fused: canonical_row(load(), spec, fused, device, steps))
            )  # noqa: E501
        for row, options in GANKIT.items():
            plans.append((name, row, gankit_runner(npz, spec, options, device, steps, run_folder(folder, name, row))))
    order = [w for w in WORKLOADS if "paper" in w] + [w for w in WORKLOADS if "paper" not in w]
    for name in order:
        for row, options in COMPILED.items():
            spec = results[name]["spec"]
            npz = folder / "{}x{}x{}.npz".format(*spec["shape"])
            if "reduce-overhead" in options[0] and not device.startswith("cuda"):
                results[name]["rows"][row] = {"skipped": "CUDA graphs: GPU only"}
            elif not compiled:
                results[name]["rows"][row] = {
                    "skipped": "left out (--no-compile or --quick); tests/test_compile.py checks compile"
                }
            else:
                runner = gankit_runner(npz, spec, options, device, steps, run_folder(folder, name, row))
                plans.append((name, row, runner))
    for name, row, runner in plans:
        if not budget.left():
            results[name]["rows"][row] = {"skipped": f"the check's budget ({budget.seconds:.0f} s) was spent"}
            continue
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        torch._dynamo.reset()
        try:
            measured = runner()
            measured["peak_memory_mib"] = peak_memory(device)
        except Exception as error:  # noqa: BLE001 - a failure on the device is a result to report
            measured = {"error": f"{type(error).__name__}: {str(error)[:800]}"}
        results[name]["rows"][row] = measured
        shown = {k: round(v, 1) for k, v in measured.items() if isinstance(v, float)}
        print(f"{name} | {row}: {shown or measured}", flush=True)
    for workload in results.values():  # each row's curve against its loop's eager fp32 row
        rows = workload["rows"] = {row: workload["rows"][row] for row in [*CANONICAL, *GANKIT, *COMPILED]}
        for row, measured in rows.items():
            reference = rows.get(REFERENCE["canonical" if row.startswith("canonical") else "gankit"], {})
            if "d" in measured and "d" in reference:
                for key in ("d", "g"):
                    gap = np.abs(np.subtract(measured[key], reference[key]))
                    measured[f"max_{key}_loss_gap"] = float(gap.max())
            canonical = rows.get(REFERENCE["canonical"], {}).get("images_per_second")
            if canonical and "images_per_second" in measured:
                measured["vs_canonical"] = measured["images_per_second"] / canonical
    return results


def evaluation(device: str, folder: Path, quick: bool) -> dict:
    """FID and KID of 10,000 samples at 64 px through a randomly initialised FID Inception-v3: seconds."""
    from safetensors.torch import save_file

    from gankit.metrics.evaluation import evaluate_generator
    from gankit.networks.inception import FIDInceptionV3

    run = run_folder(folder, "dcgan-paper-64 b128", "gankit default (fp32, channels-last, fused Adam)")
    if not (run / "train_log.jsonl").is_file():
        return {"skipped": "no dcgan-paper-64 run to sample from (its throughput row did not run)"}
    weights = folder / "inception-random.safetensors"
    torch.manual_seed(0)
    save_file({k: v.contiguous() for k, v in FIDInceptionV3().state_dict().items()}, weights)
    samples = 64 if quick else 10_000
    extractor = {"name": "inception", "weights": str(weights), "device": device, "batch_size": 250}
    pipeline = gankit.load_generator(run, device=device)
    synchronize(device)
    start = time.perf_counter()
    reference = 64 if quick else 4096  # every image of the data file
    scores = evaluate_generator(pipeline, ["fid", "kid"], samples, "train", reference, 0, extractor, use_cache=False)
    scores = scores["metrics"]
    synchronize(device)
    seconds = time.perf_counter() - start
    return {
        "samples": samples,
        "reference_images": reference,
        "seconds": seconds,
        "samples_per_second": samples / seconds,
        "note": "random Inception weights: the scores mean nothing, the time is the point",
        "fid": scores["fid"],
    }


def machine(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(0)
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def number(value, digits: int = 0) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def markdown(report: dict) -> str:
    lines = [
        f"{report['date']} · {report['machine']} · torch {report['torch']} · `{report['command']}` · "
        f"{report['seconds']:.0f} s",
        "",
    ]
    tests = report["tests"]
    if "error" in tests:
        lines += [f"**tests**: could not run: {tests['error'][-500:]}", ""]
    else:
        lines += [
            f"**tests** (`{tests['command']}`, {tests['seconds']:.0f} s): {tests['passed']} passed, "
            f"{tests['failures'] + tests['errors']} failed, {tests['skipped']} skipped",
            *[f"- failed: {line}" for line in tests.get("failed", [])],
            "",
        ]
    lines += [
        "| workload | configuration | images/s | vs canonical | first interval s | peak MiB | max Δ D loss | "
        "max Δ G loss |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for workload, entry in report["throughput"].items():
        for row, m in entry["rows"].items():
            if "images_per_second" not in m:
                lines.append(f"| {workload} | {row} | {m.get('skipped') or m.get('error', '')[:200]} | | | | | |")
                continue
            lines.append(
                f"| {workload} | {row} | {number(m['images_per_second'])} | {number(m.get('vs_canonical'), 2)}x | "
                f"{number(m['first_interval_s'], 1)} | {number(m['peak_memory_mib'])} | "
                f"{number(m.get('max_d_loss_gap'), 3)} | {number(m.get('max_g_loss_gap'), 3)} |"
            )
    e = report["evaluation"]
    lines += [
        "",
        "Loss gaps: the largest difference of the 10-step mean losses over the run against the same loop's eager "
        "fp32 row (the canonical loop's or gankit's NCHW row), same seed.",
        "",
        (
            f"**evaluation**: FID + KID of {e['samples']:,} samples at 64 px against {e['reference_images']:,} "
            f"images, Inception-v3 on the device: {e['seconds']:.1f} s ({e['samples_per_second']:.0f} samples/s)"
            if "seconds" in e
            else f"**evaluation**: {e.get('skipped') or e.get('error')}"
        ),
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--out", type=Path, default=Path("runs/device-check"))
    parser.add_argument("--budget-s", type=float, default=360, help="no throughput row starts after this many s")
    parser.add_argument(
        "--quick", action="store_true", help="tiny nets and step counts, no compile rows: a smoke run on a CPU"
    )
    parser.add_argument("--no-compile", action="store_true", help="leave out the torch.compile rows")
    parser.add_argument("--skip-tests", action="store_true", help="leave out part 1 (pytest -m cuda)")
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("no CUDA device here: on a CPU, run with --device cpu --quick (a smoke run)")
    args.out.mkdir(parents=True, exist_ok=True)
    for name in ("device-check.json", "device-check.md", "cuda-tests.xml"):
        if (args.out / name).exists() and not (args.out / name).is_file():
            parser.error(f"{args.out / name} exists and is not a file")
    budget = Budget(args.budget_s)
    report = {
        "date": datetime.date.today().isoformat(),
        "machine": machine(args.device),
        "torch": torch.__version__,
        "command": "python benchmarks/device_check.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    print(f"device check on {report['machine']} (torch {report['torch']})", flush=True)
    report["tests"] = {"skipped": True} if args.skip_tests else run_tests(args.device, args.out, args.quick)
    print(f"tests: {json.dumps({k: v for k, v in report['tests'].items() if k != 'failed'})}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        compiled = not (args.no_compile or args.quick)
        report["throughput"] = throughput(args.device, folder, budget, args.quick, compiled)
        try:
            report["evaluation"] = evaluation(args.device, folder, args.quick)
        except Exception as error:  # noqa: BLE001
            report["evaluation"] = {"error": f"{type(error).__name__}: {str(error)[:800]}"}
    report["seconds"] = budget.spent
    (args.out / "device-check.json").write_text(json.dumps(report, indent=1) + "\n")
    (args.out / "device-check.md").write_text(markdown(report))
    print(markdown(report), flush=True)
    failed = report["tests"].get("failures", 0) + report["tests"].get("errors", 0) or "error" in report["tests"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
