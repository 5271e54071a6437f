"""One self-contained HTML page about a run: ``gankit report RUN`` (and the explorer's "report" link).

    html = build_report("runs/fm")          # a string; pictures embedded as PNG data URIs
    write_report("runs/fm")                 # -> runs/fm/report.html

It reads the run folder only (config.json, train_log.jsonl, metrics.jsonl, samples/, checkpoints/, the export)
and opens offline from disk: no script, no stylesheet or font from elsewhere, curves as inline SVG. Rows that
depend on the generator's inputs (one per class, one per code value) come from its condition's
``controls()``, so every variant gets them without a branch here.
"""

from __future__ import annotations

import base64
import html
import io
import json
import platform
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

import gankit
from gankit.analysis.explore import data_pairs, held_out_data
from gankit.data import DATASETS, load_dataset, to_uint8_images
from gankit.errors import GankitError
from gankit.files import atomic_write_text, read_json, read_metadata
from gankit.formats import list_checkpoints, split_source
from gankit.images import image_grid, scatter_plot
from gankit.registry import field_names
from gankit.inference import load_generator
from gankit.training.outputs import read_jsonl

MAX_TIMELINE = 8  # sample grids shown from the training timeline
CURVE_GROUPS = (("losses", ("d_loss", "g_loss")), ("D outputs", ("D(x)", "D(G(z))")))
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1100px;padding:1em 2em;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:.25em .6em;text-align:left;vertical-align:top}
img{image-rendering:pixelated;max-width:100%}figure{display:inline-block;margin:.4em 1em .4em 0}
figcaption{font-size:.85em;color:#555}pre{background:#f6f6f6;padding:.6em;overflow:auto;max-height:24em}
.alarm{color:#b00}.muted{color:#777}tr.best td{background:#eaf6ea;font-weight:600}
"""


def png_uri(picture: Image.Image) -> str:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def file_uri(path: Path) -> str:
    with Image.open(path) as picture:
        return png_uri(picture.copy())


def figure(uri: str, caption: str, width: int | None = None) -> str:
    size = f' width="{width}"' if width else ""
    text = html.escape(caption)
    return f'<figure><img src="{uri}" alt="{text}"{size}><figcaption>{text}</figcaption></figure>'


def svg_curves(
    rows: list[dict[str, Any]], keys: tuple[str, ...], title: str, width: int = 520, height: int = 220
) -> str:
    """Inline SVG line chart of ``keys`` over ``step``."""
    series = {
        k: [(r["step"], r[k]) for r in rows if isinstance(r.get(k), (int, float)) and np.isfinite(r[k])] for k in keys
    }
    return svg_series(series, title, width, height)


def svg_series(series: dict[str, list[tuple[float, float]]], title: str, width: int = 520, height: int = 220) -> str:
    """Inline SVG line chart: one line per named series of (step, value) points ("" when none has points)."""
    series = {k: v for k, v in series.items() if v}
    if not series:
        return ""
    xs = [x for v in series.values() for x, _ in v]
    ys = [y for v in series.values() for _, y in v]
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y0, y1 = min(ys), max(ys) if max(ys) > min(ys) else min(ys) + 1
    left, right, top, bottom = 48, 10, 22, 28

    def at(x, y):
        return (
            left + (x - x0) / (x1 - x0) * (width - left - right),
            top + (y1 - y) / (y1 - y0) * (height - top - bottom),
        )

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" role="img" aria-label="{html.escape(title)}">',
        f'<rect width="{width}" height="{height}" fill="white" stroke="#ddd"/>',
        f'<text x="{left}" y="15" font-size="12">{html.escape(title)}</text>',
    ]
    for value in (y0, (y0 + y1) / 2, y1):
        _, y = at(x0, value)
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>'
            f'<text x="{left - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end">{value:.3g}</text>'
        )
    parts.append(
        f'<text x="{left}" y="{height - 8}" font-size="10">step {x0:,}</text>'
        f'<text x="{width - right}" y="{height - 8}" font-size="10" text-anchor="end">step {x1:,}</text>'
    )
    for i, (key, points) in enumerate(series.items()):
        colour = COLOURS[i % len(COLOURS)]
        line = " ".join(f"{a:.1f},{b:.1f}" for a, b in (at(x, y) for x, y in points))
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{line}"/>'
            f'<text x="{width - right - 4}" y="{top + 12 + 13 * i}" font-size="11" fill="{colour}" '
            f'text-anchor="end">{html.escape(key)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def timeline(run: Path) -> str:
    grids = sorted((run / "samples").glob("step-*.png"))
    if not grids:
        return '<p class="muted">no sample grids yet</p>'
    count = min(MAX_TIMELINE, len(grids))  # evenly spaced, the first and the last included
    picks = [grids[round(i * (len(grids) - 1) / max(1, count - 1))] for i in range(count)]
    return "".join(figure(file_uri(p), f"step {int(p.stem.split('-')[1]):,}", 180) for p in picks)


def first_rows(section: dict[str, Any], n: int):
    """The first ``n`` rows of a data section (``limit`` where the source takes one: a report of a run on a
    large folder does not load the whole folder)."""
    takes_limit = "limit" in field_names(DATASETS.get(section["name"]).config_cls)
    return load_dataset({**section, "limit": n} if takes_limit else section)


def real_grid(config: dict[str, Any], n: int = 64) -> str:
    """A grid of the first training images (or a scatter of the points); a note when the data is not here."""
    try:
        data = first_rows(config["data"], n)
    except (GankitError, OSError, KeyError) as error:
        return f'<p class="muted">the training data could not be read here ({html.escape(str(error))})</p>'
    if data.kind == "images":
        picture = image_grid(to_uint8_images(data.model_input(torch.arange(min(n, len(data))))).numpy())
    else:
        picture = scatter_plot(data.x[:2000].numpy())
    return figure(png_uri(picture), f"real: {data.name}, first {min(n, len(data))}")


def condition_rows(source: str | Path) -> str:
    """Which generator of the run ``source`` names (RUN: the best one, when the run kept one; RUN@last, RUN@STEP),
    then one grid per input it takes: a row per class, a column per value of each code."""
    try:
        pipeline = load_generator(source)
    except (GankitError, OSError) as error:
        return f'<p class="muted">no generator to draw from ({html.escape(str(error))})</p>'
    note = pipeline.source_note or f"the generator of step {pipeline.step:,}"
    which = f'<p class="which">Drawn from {html.escape(note)}.</p>'
    if pipeline.kind != "images":
        return which + figure(png_uri(scatter_plot(pipeline.sample(2000, seed=0))), "generated: 2,000 points of seed 0")
    if not pipeline.condition.controls():  # an unconditional G: what it draws
        return which + figure(png_uri(image_grid(pipeline.sample(64, seed=0), columns=8)), "64 samples of seed 0")
    return which + input_grids(pipeline)


def input_grids(pipeline) -> str:
    """One grid per input the generator takes (its condition's controls())."""
    out = []
    for control in pipeline.condition.controls():
        name, kind = control["name"], control["type"]
        if kind == "class":
            grid = pipeline.grid(range(len(control["options"])), columns=8)
            out.append(
                figure(
                    png_uri(image_grid(grid, columns=8)),
                    f"one row per class ({len(control['options'])}), the same z down each column",
                )
            )
        elif kind in ("choice", "range"):
            low, high = (0, control["count"] - 1) if kind == "choice" else (control["min"], control["max"])
            values = list(range(control["count"])) if kind == "choice" else np.linspace(low, high, 9).tolist()
            grid = pipeline.sweep(name, values, rows=6)
            out.append(
                figure(
                    png_uri(image_grid(grid, columns=len(values))),
                    f"{control['label']}: one column per value ({low:g} .. {high:g}), the other inputs fixed per row",
                )
            )
        elif kind == "image":
            try:
                images, columns = data_pairs(pipeline, held_out_data(pipeline.config.data), 0, 8)
            except (GankitError, OSError) as error:
                out.append(
                    '<p class="muted">input | output | target rows need the '
                    f"data, not readable here ({html.escape(str(error))})</p>"
                )
                continue
            out.append(
                figure(
                    png_uri(image_grid(images, columns=columns)),
                    "input | output | target: the first 8 pairs of the "
                    "test split (the training data when there is none)",
                )
            )
        elif kind == "text":
            captions = training_captions(pipeline.config.data)
            if captions:
                grid = pipeline.grid(captions, columns=8)
                rows = "; ".join(f"{i + 1}: {c}" for i, c in enumerate(captions))
                out.append(figure(png_uri(image_grid(grid, columns=8)), f"one row per training caption ({rows})"))
            else:
                out.append('<p class="muted">caption rows need the training captions, which are not readable here</p>')
    return "".join(out)


def training_captions(data_section: dict[str, Any], rows: int = 6) -> list[str]:
    """The first caption of the first ``rows`` training images (none when the data cannot be read here)."""
    try:
        captions = first_rows(data_section, rows).extras.get("captions") or []
    except (GankitError, OSError, KeyError):
        return []
    return [c[0] if isinstance(c, (list, tuple)) else str(c) for c in captions[:rows]]


def metrics_table(rows: list[dict[str, Any]], best_step: int | None = None, best_key: str | None = None) -> str:
    """The evaluations (the last 20 rows), the periodic evaluation's curve of ``best_key`` over steps, and the row
    of the best generator (``best_step``) marked."""
    if not rows:
        return '<p class="muted">no evaluation yet (train.eval_every, or gankit evaluate RUN)</p>'
    keys = [k for k in rows[-1]["metrics"] if not isinstance(rows[-1]["metrics"][k], list)]
    head = "".join(f"<th>{html.escape(k)}</th>" for k in ["step", "source", *keys, "seconds"])
    body = ""
    for row in rows[-20:]:
        step = row.get("step", row.get("protocol", {}).get("checkpoint_step", ""))
        best = row.get("source") == "training" and best_step is not None and step == best_step
        cells = [f"{step} (best)" if best else step, row.get("source", "evaluate")]
        cells += [f"{row['metrics'][k]:.4g}" if isinstance(row["metrics"].get(k), (int, float)) else "" for k in keys]
        cells.append(f"{row['seconds']:.1f}" if isinstance(row.get("seconds"), (int, float)) else "")
        mark = ' class="best"' if best else ""
        body += f"<tr{mark}>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>"
    training = [r for r in rows if r.get("source") == "training" and isinstance(r.get("step"), int)]
    curve = ""
    if best_key and len(training) > 1:
        values = [{"step": r["step"], best_key: r["metrics"].get(best_key)} for r in training]
        curve = svg_curves(values, (best_key,), f"{best_key} of the periodic evaluation (it picks the best generator)")
    protocol = json.dumps(rows[-1].get("protocol", {}), indent=2)
    return (
        curve
        + f"<table><tr>{head}</tr>{body}</table><p>Protocol of the last row:</p><pre>{html.escape(protocol)}</pre>"
    )


def best_step(run: Path) -> int | None:
    """The step of the run's best generator (None when it kept none, or its record does not read)."""
    try:
        best = read_json(run / "best" / "metrics.json") if (run / "best" / "metrics.json").is_file() else None
    except (GankitError, OSError, ValueError):
        return None
    step = best.get("step") if isinstance(best, dict) else None
    return step if isinstance(step, int) and not isinstance(step, bool) else None


def trained_with(checkpoints: list[tuple[int, Path]]) -> str:
    """The gankit version the last checkpoint records ("unknown" without one)."""
    if not checkpoints:
        return "unknown"
    try:
        metadata = read_metadata(checkpoints[-1][1])  # the header only: a report does not read the tensors
    except (GankitError, OSError, ValueError):
        return "unknown (the last checkpoint does not read)"
    return str(metadata.get("gankit_version", "unknown"))


def build_report(source: str | Path) -> str:
    """The report of a run folder as one HTML string. ``source`` is the folder (its samples by input come from the
    best generator when the run kept one) or RUN@last / RUN@best / RUN@STEP (from that generator)."""
    run = split_source(source)[0]
    config = read_json(run / "config.json") if (run / "config.json").is_file() else None
    if config is None:
        raise FileNotFoundError(f"{run} is not a run folder (no config.json)")
    log = read_jsonl(run / "train_log.jsonl") if (run / "train_log.jsonl").is_file() else []
    metrics = read_jsonl(run / "metrics.jsonl") if (run / "metrics.jsonl").is_file() else []
    alarms = [(r.get("step"), a) for r in log + metrics for a in r.get("alarms", [])]
    checkpoints = list_checkpoints(run / "checkpoints") if (run / "checkpoints").is_dir() else []
    curves = "".join(svg_curves(log, keys, title) for title, keys in CURVE_GROUPS)
    latest = run / "samples.png"
    sections = [
        f"<h1>gankit run report: {html.escape(run.name)}</h1>",
        f"<p>{html.escape(config['model'].get('name', '?'))} on {html.escape(str(config['data'].get('name')))}, "
        f"loss {html.escape(str(config['loss'].get('name')))}, objective "
        f"{html.escape(str(config['objective'].get('name')))}; "
        f"{log[-1]['step'] if log else 0:,} of {config['train']['steps']:,} steps logged.</p>",
        "<h2>Training curves</h2>" + (curves or '<p class="muted">no log rows yet</p>'),
        "<h2>Fixed-z samples over training</h2>" + timeline(run),
        "<h2>Real and generated</h2>"
        + real_grid(config)
        + (figure(file_uri(latest), "generated: the fixed-z grid, last step") if latest.is_file() else ""),
        "<h2>What the generator draws, input by input</h2>" + condition_rows(source),
        "<h2>Metrics</h2>" + metrics_table(metrics, best_step(run), config["train"].get("eval_best")),
        "<h2>Alarms</h2>"
        + (
            "<ul>" + "".join(f'<li class="alarm">step {s}: {html.escape(str(a))}</li>' for s, a in alarms) + "</ul>"
            if alarms
            else "<p>none raised</p>"
        ),
        "<h2>Checkpoints</h2>"
        + (
            "<table><tr><th>step</th><th>file</th><th>size</th></tr>"
            + "".join(
                f"<tr><td>{step:,}</td><td>{html.escape(path.name)}</td><td>{path.stat().st_size / 2**20:.1f} "
                "MiB</td></tr>"
                for step, path in checkpoints
            )
            + "</table>"
            if checkpoints
            else "<p>none</p>"
        ),
        "<h2>Config and versions</h2>"
        + f"<p>trained with gankit {html.escape(trained_with(checkpoints))}; this report: gankit {gankit.__version__}, "
        f"PyTorch {torch.__version__}, Python {platform.python_version()}</p>"
        + f"<pre>{html.escape(json.dumps(config, indent=2))}</pre>",
    ]
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>gankit report: {html.escape(run.name)}</title><style>{STYLE}</style></head><body>"
        + "\n".join(sections)
        + "</body></html>\n"
    )


def write_report(source: str | Path, out: str | Path | None = None) -> Path:
    """Write the report (default ``RUN/report.html``; ``RUN/report-last.html`` for RUN@last, and so on) and return
    its path."""
    run, which = split_source(source)
    path = Path(out) if out else run / ("report.html" if which is None else f"report-{which}.html")
    atomic_write_text(path, build_report(source))
    return path
