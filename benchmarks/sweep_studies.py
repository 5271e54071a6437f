"""The two studies gankit ships as sweep specs (issue 32), run and written up:

    python benchmarks/sweep_studies.py losses-fashion --out runs/sweeps --write docs/results.md
    python benchmarks/sweep_studies.py stabilizers-ring --out runs/sweeps --write docs/results.md

Each runs ``gankit sweep NAME --out OUT/NAME`` (a sweep already finished there is read, not trained again),
then tabulates every configuration over its seeds (mean ± sd), writes a picture to docs/images/ and the section
between ``<!-- sweep-NAME:begin -->`` and ``<!-- sweep-NAME:end -->`` of the markdown file. The time per run is
the wall time from its config.json to its finished.json (training, the final evaluation, the files).

- losses-fashion: FID per loss and learning rate, the spread of each loss over all its runs (a box plot), and
  each loss at its best learning rate: Lucic et al.'s question (do losses differ under equal tuning?) at
  CPU scale.
- stabilizers-ring: modes captured, high-quality share and reverse KL per technique, and each technique's seed-0
  samples over the ring.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import subprocess
import sys
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from gankit.images import box_plot, font, save_picture
from gankit.sweep import read_spec, readable_settings
from gankit.training.outputs import read_jsonl

ROOT = Path(__file__).resolve().parent.parent


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def mean_sd(values: list[float], digits: int = 3) -> str:
    finite = [v for v in values if np.isfinite(v)]
    if not finite:
        return "–"
    text = f"{statistics.mean(finite):.{digits}g}"
    text += f" ± {statistics.stdev(finite):.{digits - 1}g}" if len(finite) > 1 else ""
    return text + (f" ({len(values) - len(finite)} not finite)" if len(finite) < len(values) else "")


def runs_of(summary: dict, seeds: list[int]) -> list[dict]:
    """Every finished run of the sweep: its configuration (as Optuna holds it), seed, last metrics, wall time."""
    out = []
    for trial in summary["trials"]:
        if not trial.get("runs"):
            continue
        for seed in seeds:
            folder = Path(trial["runs"]) / f"seed-{seed}"
            if not (folder / "finished.json").is_file():
                continue
            metrics = read_jsonl(folder / "metrics.jsonl")[-1]["metrics"]
            seconds = (folder / "finished.json").stat().st_mtime - (folder / "config.json").stat().st_mtime
            out.append(
                {"params": trial["params"], "seed": seed, "metrics": metrics, "seconds": seconds, "folder": folder}
            )
    return out


def partial_summary(spec, folder: Path) -> dict:
    """What ``summary.json`` would hold, from the study as it stands: every trial that has a run folder, and the
    sweep's command to continue it (no best configuration: the sweep has not ended)."""
    from gankit.sweep import open_study, total_trials

    trials = [
        {"trial": t.number, "params": t.params, "runs": t.user_attrs["runs"]}
        for t in open_study(spec, folder, None).get_trials(deepcopy=False)
        if t.user_attrs.get("runs") and "duplicate" not in t.user_attrs
    ]
    unique = {json.dumps(t["params"], sort_keys=True): t for t in trials}
    complete = [
        t
        for t in unique.values()
        if all((Path(t["runs"]) / f"seed-{s}" / "finished.json").is_file() for s in spec.seeds)
    ]
    note = (
        f"cut short: {len(complete)} of {total_trials(spec)} configurations finished every seed; "
        f"`gankit sweep {folder.name} --out {folder}` continues it"
    )
    return {"trials": complete, "command": note}


def losses_section(runs: list[dict], images: Path) -> str:
    losses = list(dict.fromkeys(r["params"]["loss.name"] for r in runs))
    rates = sorted({r["params"]["train.lr_g+train.lr_d"] for r in runs})
    fid = {(r["params"]["loss.name"], r["params"]["train.lr_g+train.lr_d"]): [] for r in runs}
    for r in runs:
        fid[(r["params"]["loss.name"], r["params"]["train.lr_g+train.lr_d"])].append(r["metrics"]["fid"])
    lines = [
        "| loss | " + " | ".join(f"lr {rate:g}" for rate in rates) + " | best lr | all runs (median) |",
        "|---|" + "---|" * (len(rates) + 2),
    ]
    best = {}
    for loss in losses:
        cells = [mean_sd(fid.get((loss, rate), [])) for rate in rates]
        means = {
            rate: statistics.mean(v)
            for rate in rates
            if (v := [x for x in fid.get((loss, rate), []) if np.isfinite(x)])
        }
        best[loss] = min(means, key=means.get) if means else None
        every = [x for rate in rates for x in fid.get((loss, rate), [])]
        median = statistics.median([x for x in every if np.isfinite(x)] or [float("nan")])
        lines.append(f"| {loss} | " + " | ".join(cells) + f" | {best[loss]:g} | {median:.3g} |")
    groups = {loss: [x for rate in rates for x in fid.get((loss, rate), [])] for loss in losses}
    picture = box_plot(groups, "FID of every run (3 learning rates x 3 seeds) per loss", (760, 360), "FID")
    save_picture(picture, images / "sweep-losses-fashion.png")
    at_best = {loss: fid[(loss, best[loss])] for loss in losses if best[loss] is not None}
    picture = box_plot(at_best, "FID per loss at its best learning rate (3 seeds)", (760, 360), "FID")
    save_picture(picture, images / "sweep-losses-fashion-best.png")
    lines += [
        "",
        "FID: 2,000 samples against the Fashion-MNIST training images under the built-in evaluator (the run's own "
        "evaluation at its last step); each cell mean ± sd over seeds 0, 1, 2.",
        "",
        "![FID per loss, every run](images/sweep-losses-fashion.png)",
        "![FID per loss at its best learning rate](images/sweep-losses-fashion-best.png)",
    ]
    return "\n".join(lines)


def stabilizers_section(runs: list[dict], images: Path) -> str:
    names = {}
    for r in runs:
        key = r["params"]["stabilizer"]
        names.setdefault(key, ", ".join(readable_settings({"stabilizer": key})).replace("stabilizer=preset", "none"))
    lines = [
        "| technique | modes (of 8) | all-modes seeds | high quality % | reverse KL | s/run |",
        "|---|---|---|---|---|---|",
    ]
    tiles, labels = [], []
    for key, name in names.items():
        mine = sorted((r for r in runs if r["params"]["stabilizer"] == key), key=lambda r: r["seed"])
        modes = [float(r["metrics"]["modes_captured"]) for r in mine]
        every = sum(r["metrics"]["modes_captured"] == r["metrics"]["modes_total"] for r in mine)
        quality = [100 * r["metrics"]["high_quality"] for r in mine]
        kl = [float(r["metrics"]["reverse_kl"]) for r in mine]
        seconds = statistics.median(r["seconds"] for r in mine)
        lines.append(
            f"| {name} | {mean_sd(modes)} | {every}/{len(mine)} | {mean_sd(quality)} | {mean_sd(kl)} | {seconds:.0f} |"
        )
        if mine and (mine[0]["folder"] / "samples.png").is_file():
            tiles.append(Image.open(mine[0]["folder"] / "samples.png").convert("RGB").resize((240, 240)))
            labels.append(name)
    if tiles:
        columns = 4
        rows = -(-len(tiles) // columns)
        sheet = Image.new("RGB", (columns * 250, rows * 270), "white")
        draw = ImageDraw.Draw(sheet)
        for i, tile in enumerate(tiles):
            x, y = (i % columns) * 250 + 5, (i // columns) * 270
            sheet.paste(tile, (x, y))
            label = labels[i] if len(labels[i]) <= 34 else labels[i][:33] + "…"
            draw.text((x, y + 246), label, fill="black", font=font())
        save_picture(sheet, images / "sweep-stabilizers-ring.png")
    lines += [
        "",
        "Scores: 2,500 samples of each run's G after its last step (PacGAN protocol: high quality = within 3 std "
        "of the nearest mode; a mode is captured by one high-quality sample; reverse KL of the high-quality "
        "samples' mode histogram against uniform); mean ± sd over seeds 0, 1, 2.",
        "",
        "Seed 0's samples per technique:",
        "",
        "![stabilizers on the ring, seed 0](images/sweep-stabilizers-ring.png)",
    ]
    return "\n".join(lines)


def write_block(path: Path, block: str, text: str) -> None:
    begin, end = f"<!-- sweep-{block}:begin -->", f"<!-- sweep-{block}:end -->"
    current = path.read_text()
    section = f"{begin}\n{text}\n{end}"
    if begin in current and end in current:
        current = current[: current.index(begin)] + section + current[current.index(end) + len(end) :]
    else:
        current = current.rstrip("\n") + f"\n\n## The sweep study {block} (issue 32)\n\n{section}\n"
    path.write_text(current)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study", choices=["losses-fashion", "stabilizers-ring"])
    parser.add_argument("--out", type=Path, default=Path("runs/sweeps"))
    parser.add_argument("--write", type=Path, help="the markdown file whose section this writes")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="train nothing: write up the configurations whose every seed has finished (a sweep cut short)",
    )
    args = parser.parse_args()
    folder = args.out / args.study
    spec = read_spec(args.study)
    start = datetime.datetime.now()
    if args.report_only:
        summary = partial_summary(spec, folder)
    else:
        subprocess.run([sys.executable, "-m", "gankit", "sweep", args.study, "--out", str(folder)], check=True)
        summary = json.loads((folder / "summary.json").read_text())
    hours = (datetime.datetime.now() - start).total_seconds() / 3600
    runs = runs_of(summary, spec.seeds)
    images = ROOT / "docs" / "images"
    body = losses_section(runs, images) if args.study == "losses-fashion" else stabilizers_section(runs, images)
    seconds = [r["seconds"] for r in runs]
    description = json.loads((resources.files("gankit") / "sweeps" / f"{args.study}.json").read_text())["description"]
    header = (
        f"{datetime.date.today().isoformat()} · {cpu_name()} · `gankit sweep {args.study} --out {folder}`, then "
        f"`python benchmarks/sweep_studies.py {args.study} --out {args.out} --write {args.write}"
        f"{' --report-only' if args.report_only else ''}` "
        f"({len(runs)} runs, median {statistics.median(seconds):.0f} s per run, {sum(seconds) / 60:.0f} min of runs in "
        f"all; this call {hours * 60:.0f} min)"
    )
    best = summary.get("command", "")
    ending = f"Best configuration: `{best}`" if best.startswith("gankit train") else f"This study was {best}."
    text = f"{header}\n\n{description}\n\n{body}\n\n{ending}"
    print(text)
    if args.write:
        write_block(args.write, args.study, text)


if __name__ == "__main__":
    main()
