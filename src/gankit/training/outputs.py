"""What a run writes besides checkpoints: the log, the sample grids, the loss curves, the progress GIF,
TensorBoard events, the progress bar."""

from __future__ import annotations

import json
import math
import sys
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from PIL import Image
from torch import nn
from tqdm.auto import tqdm

from gankit.data import Dataset, to_uint8_images
from gankit.files import atomic_write_text
from gankit.images import image_grid, line_plot, save_gif, save_picture, scatter_plot
from gankit.variants import Condition


def make_progress_bar(enabled: bool, total: int, initial: int):
    # In a log file (not a terminal) redraw every 30 s instead of every 0.1 s.
    interval = 0.1 if sys.stderr.isatty() else 30.0
    return tqdm(
        total=total,
        initial=initial,
        disable=not enabled,
        unit="step",
        dynamic_ncols=True,
        desc="train",
        mininterval=interval,
    )


def open_tensorboard(run_dir: Path, enabled: bool, log: Callable[[str], None]):
    if not enabled:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        log("tensorboard: not installed, skipping event files (pip install tensorboard to get them)")
        return None
    return SummaryWriter(str(run_dir / "tensorboard"))


def append_jsonl(path: Path, row: dict[str, Any]) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The rows of a JSON-lines log. A line that is not a JSON object (the half-written last line of a killed
    run, a damaged line) is skipped with a warning; resume rewrites the log without it."""
    if not path.is_file():
        return []
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
        if isinstance(row, dict) and isinstance(row.get("step", 0), int):
            rows.append(row)
        else:
            warnings.warn(f"{path}: line {number} is not a complete log row; skipped", stacklevel=2)
    return rows


def truncate_log(path: Path, step: int) -> None:
    """Drop log rows written after ``step`` (by a run that stopped after its last checkpoint)."""
    rows = read_jsonl(path)
    kept = [r for r in rows if r.get("step", 0) <= step]
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines() if path.is_file() else []
    if len(kept) != sum(1 for line in lines if line.strip()):  # rows after the step, or damaged lines
        atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in kept))


@torch.no_grad()
def write_samples(
    run_dir: Path,
    step: int,
    G: nn.Module,
    condition: Condition,
    z: torch.Tensor,
    values,
    dataset: Dataset,
    columns: int | None = None,
) -> Image.Image:
    """The fixed grid in eval mode: what ``gankit sample RUN --seed <train.seed>`` will draw. Returns the picture."""
    was_training = G.training
    G.eval()
    out = G(*condition.generator_args(z, values)).float().cpu()
    G.train(was_training)
    if dataset.kind == "images":  # the condition arranges the grid (an image-conditioned G: input | output | target)
        images, columns = condition.picture(to_uint8_images(out).numpy(), values, columns)
        picture = image_grid(images, columns=columns)
    else:
        reference = dataset.x[: len(out) * 4].cpu().numpy()
        picture = scatter_plot(out.numpy(), reference)
    save_picture(picture, run_dir / "samples" / f"step-{step:08d}.png")
    save_picture(picture, run_dir / "samples.png")
    return picture


def write_tensorboard_scalars(writer, row: dict[str, Any], step: int) -> None:
    """A log row's numbers as TensorBoard scalars (D(x) as D_x); its alarms, as written words, under "alarms"."""
    for name, value in row.items():
        if name == "alarms":
            writer.add_text("alarms", "\n\n".join(value), step)
        elif name != "step" and isinstance(value, (int, float)) and not isinstance(value, bool):
            writer.add_scalar(name.replace("(", "_").replace(")", ""), value, step)


def write_tensorboard_samples(writer, picture: Image.Image, step: int) -> None:
    """The fixed-z grid as a TensorBoard image (the IMAGES tab shows it per step, beside the scalars)."""
    writer.add_image("samples", np.asarray(picture.convert("RGB")), step, dataformats="HWC")


def write_loss_plot(log_path: Path, path: Path) -> None:
    rows = read_jsonl(log_path)
    if not rows:
        return
    steps = [r["step"] for r in rows]
    losses = {n: (steps, [r[n] for r in rows]) for n in ("d_loss", "g_loss") if n in rows[0]}
    outputs = {n: (steps, [r[n] for r in rows]) for n in ("D(x)", "D(G(z))") if n in rows[0]}
    top = line_plot(losses, "losses", x_label="step")
    bottom = line_plot(outputs, "mean D output on real, D(x), and fake, D(G(z))", x_label="step")
    picture = Image.new("RGB", (top.width, top.height + bottom.height), "white")
    picture.paste(top, (0, 0))
    picture.paste(bottom, (0, top.height))
    save_picture(picture, path)


def write_progress_gif(run_dir: Path, max_frames: int = 40) -> None:
    files = sorted((run_dir / "samples").glob("step-*.png"))
    if len(files) < 2:
        return
    stride = math.ceil(len(files) / max_frames)
    chosen = files[::stride]
    if chosen[-1] != files[-1]:
        chosen.append(files[-1])
    frames = [Image.open(f).convert("RGB") for f in chosen]
    save_gif(frames, run_dir / "progress.gif")
