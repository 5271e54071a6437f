"""One self-contained HTML page comparing runs: ``gankit compare RUN RUN ... --out compare.html``.

    html = build_comparison(["runs/a", "runs/b"])   # a string; pictures embedded as PNG data URIs
    write_comparison(["runs/a", "runs/b"], "compare.html")

It reads run folders only (config.json, train_log.jsonl, metrics.jsonl, best/metrics.json, samples/) and opens
offline: no script, curves as inline SVG, every name and value from the runs escaped. The page holds:

- the settings that differ between the runs (every other setting is the same and only counted);
- runs that differ only by ``train.seed`` grouped, with each metric as mean ± sd over the group;
- the loss and metric curves of every run overlaid, one chart per quantity;
- the last and the best evaluation of each run, each with its protocol card;
- the fixed-z sample grids side by side at the steps every run drew them.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import numpy as np

from gankit.files import atomic_write_text, read_json
from gankit.training.outputs import read_jsonl
from gankit.web.report import COLOURS, STYLE, figure, file_uri, svg_series

CURVES = ("d_loss", "g_loss", "D(x)", "D(G(z))")
MATCHED_STEPS = 4  # sample grids shown side by side


def escape(value: Any) -> str:
    return html.escape(value if isinstance(value, str) else json.dumps(value))


def flat(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train": {"lr_g": 2e-4}}`` -> ``{"train.lr_g": 2e-4}`` (lists stay values)."""
    out = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


class Run:
    """What the page reads of one run folder."""

    def __init__(self, folder: Path):
        self.folder = folder
        if not (folder / "config.json").is_file():
            raise FileNotFoundError(f"{folder} is not a run folder (no config.json)")
        self.name = folder.name or str(folder)
        self.config = read_json(folder / "config.json")
        self.settings = flat({k: v for k, v in self.config.items() if k != "description"})
        self.log = read_jsonl(folder / "train_log.jsonl") if (folder / "train_log.jsonl").is_file() else []
        self.metrics = read_jsonl(folder / "metrics.jsonl") if (folder / "metrics.jsonl").is_file() else []
        best = folder / "best" / "metrics.json"
        self.best = read_json(best) if best.is_file() else None
        self.grids = {
            int(p.stem.split("-")[1]): p for p in (folder / "samples").glob("step-*.png") if p.stem[5:].isdigit()
        }

    @property
    def step(self) -> int:
        return self.log[-1]["step"] if self.log else 0

    def last_metrics(self) -> dict[str, float]:
        if not self.metrics:
            return {}
        return {k: v for k, v in self.metrics[-1]["metrics"].items() if isinstance(v, (int, float))}

    def best_metrics(self) -> dict[str, float]:
        if not self.best:
            return {}
        values = self.best.get("metrics", self.best)
        return {k: v for k, v in values.items() if isinstance(v, (int, float)) and k != "step"}


def differing(runs: list[Run]) -> tuple[list[str], int]:
    """The setting keys whose values differ between the runs, and how many keys are the same in all."""
    keys = sorted(set().union(*(r.settings for r in runs)))
    missing = object()
    differ = [k for k in keys if len({json.dumps(r.settings.get(k, missing), default=str) for r in runs}) > 1]
    return differ, len(keys) - len(differ)


def seed_groups(runs: list[Run]) -> list[list[Run]]:
    """Runs whose settings are equal but for ``train.seed``, in the order they came."""
    groups: dict[str, list[Run]] = {}
    for run in runs:
        key = json.dumps({k: v for k, v in run.settings.items() if k != "train.seed"}, sort_keys=True, default=str)
        groups.setdefault(key, []).append(run)
    return list(groups.values())


def mean_sd(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.4g}"
    return f"{np.mean(values):.4g} ± {np.std(values, ddof=1):.2g}"


def settings_table(runs: list[Run]) -> str:
    keys, same = differing(runs)
    if not keys:
        return f"<p>All {same} settings are the same in every run.</p>"
    head = "<tr><th>setting</th>" + "".join(f"<th>{escape(r.name)}</th>" for r in runs) + "</tr>"
    body = "".join(
        f"<tr><td><b>{escape(k)}</b></td>"
        + "".join(f'<td class="differs">{escape(r.settings.get(k, "(not set)"))}</td>' for r in runs)
        + "</tr>"
        for k in keys
    )
    return f"<table>{head}{body}</table><p class='muted'>{same} other settings are the same in every run.</p>"


def group_table(runs: list[Run]) -> str:
    groups = [g for g in seed_groups(runs) if len(g) > 1]
    if not groups:
        return '<p class="muted">no runs differ only by their seed</p>'
    out = ""
    for group in groups:
        seeds = ", ".join(str(r.settings.get("train.seed")) for r in group)
        names = ", ".join(r.name for r in group)
        rows = ""
        for label, metrics_of in (("last", Run.last_metrics), ("best", Run.best_metrics)):
            values = [metrics_of(r) for r in group]
            keys = [k for k in values[0] if all(k in v for v in values)]
            for key in keys:
                rows += f"<tr><td>{label}</td><td>{escape(key)}</td><td>{mean_sd([v[key] for v in values])}</td></tr>"
        out += f"<h3>{escape(names)} (seeds {escape(seeds)})</h3>" + (
            f"<table><tr><th>evaluation</th><th>metric</th><th>mean ± sd over {len(group)} seeds</th></tr>{rows}"
            "</table>"
            if rows
            else '<p class="muted">no evaluation every run of the group holds</p>'
        )
    return out


def overlaid(runs: list[Run]) -> str:
    charts = []
    for key in CURVES:
        series = {r.name: [(row["step"], row[key]) for row in r.log if finite(row.get(key))] for r in runs}
        charts.append(svg_series(series, key))
    metric_keys = sorted({k for r in runs for row in r.metrics for k, v in row["metrics"].items() if finite(v)})
    for key in metric_keys:
        series = {
            r.name: [
                (row["step"], row["metrics"][key])
                for row in r.metrics
                if finite(row["metrics"].get(key)) and isinstance(row.get("step"), int)
            ]
            for r in runs
        }
        charts.append(svg_series(series, f"{key} (evaluation)"))
    charts = [c for c in charts if c]
    return "".join(charts) or '<p class="muted">no log rows yet</p>'


def finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and bool(np.isfinite(value))


def metrics_table(runs: list[Run]) -> str:
    rows = ""
    for run in runs:
        for label, values, card in (
            ("last", run.last_metrics(), run.metrics[-1].get("protocol") if run.metrics else None),
            ("best", run.best_metrics(), (run.best or {}).get("protocol")),
        ):
            if not values:
                continue
            shown = ", ".join(f"{escape(k)} {v:.4g}" for k, v in values.items())
            protocol = (
                f"<details><summary>protocol</summary><pre>{escape(json.dumps(card, indent=2))}</pre></details>"
                if card
                else '<span class="muted">no protocol recorded</span>'
            )
            step = (run.best or {}).get("step", "") if label == "best" else run.metrics[-1].get("step", "")
            rows += f"<tr><td>{escape(run.name)}</td><td>{label}</td><td>{escape(step)}</td><td>{shown}</td>"
            rows += f"<td>{protocol}</td></tr>"
    if not rows:
        return '<p class="muted">no run was evaluated (train.eval_every, or gankit evaluate RUN)</p>'
    return (
        f"<table><tr><th>run</th><th>evaluation</th><th>step</th><th>metrics</th><th>protocol</th></tr>{rows}</table>"
    )


def matched_grids(runs: list[Run]) -> str:
    common = sorted(set.intersection(*(set(r.grids) for r in runs)))
    if not common:
        return '<p class="muted">no step at which every run drew its sample grid</p>'
    count = min(MATCHED_STEPS, len(common))
    steps = [common[round(i * (len(common) - 1) / max(1, count - 1))] for i in range(count)]
    out = ""
    for step in dict.fromkeys(steps):
        out += f"<h3>step {step:,}</h3>" + "".join(figure(file_uri(r.grids[step]), r.name, 200) for r in runs)
    return out


def build_comparison(folders: list[str | Path]) -> str:
    """The comparison page of run folders ``folders`` as one HTML string."""
    if len(folders) < 2:
        raise ValueError("a comparison needs at least two run folders")
    runs = [Run(Path(f)) for f in folders]
    names = [r.name for r in runs]
    if len(set(names)) < len(names):  # two folders of the same name: tell them apart by their paths
        for run in runs:
            run.name = str(run.folder)
    legend = "".join(
        f'<li><span style="color:{COLOURS[i % len(COLOURS)]}">&#9632;</span> {escape(r.name)}'
        + (f" ({escape(str(r.folder))})" if r.name != str(r.folder) else "")
        + f": {r.step:,} steps logged</li>"
        for i, r in enumerate(runs)
    )
    sections = [
        f"<h1>gankit comparison of {len(runs)} runs</h1><ul>{legend}</ul>",
        "<h2>Settings that differ</h2>" + settings_table(runs),
        "<h2>Runs that differ only by seed</h2>" + group_table(runs),
        "<h2>Curves</h2>" + overlaid(runs),
        "<h2>Last and best evaluation</h2>" + metrics_table(runs),
        "<h2>Sample grids at matched steps</h2>" + matched_grids(runs),
    ]
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>gankit comparison: {escape(', '.join(r.name for r in runs))}</title>"
        f"<style>{STYLE}.differs{{background:#fff6d5}}</style></head><body>" + "\n".join(sections) + "</body></html>\n"
    )


def write_comparison(folders: list[str | Path], out: str | Path) -> Path:
    """Write the comparison page to ``out`` and return its path."""
    path = Path(out)
    atomic_write_text(path, build_comparison(folders))
    return path
