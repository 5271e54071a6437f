"""Pictures a run writes: sample grids, point scatter plots, loss curves, GIFs (Pillow only)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from gankit.files import atomic_write_bytes

_FONTS: dict[int, ImageFont.ImageFont] = {}


def font(size: int = 13) -> ImageFont.ImageFont:
    """Pillow's built-in font at ``size`` px (at its own default size, 10 px, spaces shrink to nothing:
    "mean D output" drew as "mean Doutput")."""
    if size not in _FONTS:
        _FONTS[size] = ImageFont.load_default(size=size)
    return _FONTS[size]


def label_rows(picture: Image.Image, labels: Sequence[str], top: int = 0) -> Image.Image:
    """``picture`` (a grid of len(labels) equal rows below ``top`` px) with each row's label written in a margin
    on its left, centred on the row."""
    face = font()
    probe = ImageDraw.Draw(picture)
    margin = int(min(240, max(probe.textlength(str(t), font=face) for t in labels) + 12)) if labels else 0
    out = Image.new(
        picture.mode, (picture.width + margin, picture.height), 255 if picture.mode == "L" else (255, 255, 255)
    )
    out.paste(picture, (margin, 0))
    draw = ImageDraw.Draw(out)
    row = (picture.height - top) / max(1, len(labels))
    for i, text in enumerate(labels):
        text = str(text)
        while draw.textlength(text, font=face) > margin - 8 and len(text) > 1:
            text = text[:-2] + "…"
        draw.text((4, top + row * (i + 0.5) - 7), text, fill=0 if out.mode == "L" else (0, 0, 0), font=face)
    return out


def image_grid(images: np.ndarray, columns: int | None = None, padding: int = 2, min_cell: int = 48) -> Image.Image:
    """uint8 (N, H, W, C) images -> one grid image, upscaled (nearest) so cells are >= ``min_cell`` px."""
    if images.ndim != 4 or images.dtype != np.uint8:
        raise ValueError(f"expected uint8 (N, H, W, C) images, got {images.dtype} {images.shape}")
    n, h, w, c = images.shape
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    grid = np.full((rows * (h + padding) + padding, columns * (w + padding) + padding, c), 255, np.uint8)
    for i, image in enumerate(images):
        r, col = divmod(i, columns)
        top, left = padding + r * (h + padding), padding + col * (w + padding)
        grid[top : top + h, left : left + w] = image
    picture = Image.fromarray(grid[..., 0] if c == 1 else grid, "L" if c == 1 else "RGB")
    scale = max(1, math.ceil(min_cell / max(h, w)))
    if scale > 1:
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.Resampling.NEAREST)
    return picture


def save_picture(picture: Image.Image, path: Path | str, **options) -> Path:
    """Save a PIL image atomically, format taken from the suffix."""
    import io

    path = Path(path)
    buffer = io.BytesIO()
    picture.save(buffer, format=path.suffix.lstrip(".").upper().replace("JPG", "JPEG"), **options)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def scatter_plot(
    points: np.ndarray,
    reference: np.ndarray | None = None,
    size: int = 512,
    bounds: tuple[float, float, float, float] | None = None,
) -> Image.Image:
    """2D points (blue) over optional reference points (grey) on a white canvas."""
    every = points if reference is None else np.concatenate([points, reference])
    if bounds is None:
        lo, hi = np.percentile(every, 0.5, axis=0), np.percentile(every, 99.5, axis=0)
        pad = 0.15 * float(np.max(hi - lo) + 1e-6)
        bounds = (lo[0] - pad, lo[1] - pad, hi[0] + pad, hi[1] + pad)
    x0, y0, x1, y1 = bounds
    span = max(x1 - x0, y1 - y0)
    picture = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(picture)

    def pixels(p: np.ndarray) -> np.ndarray:
        return np.stack([(p[:, 0] - x0) / span * (size - 1), (1 - (p[:, 1] - y0) / span) * (size - 1)], 1)

    for cloud, colour, radius in ((reference, (170, 170, 170), 1), (points, (31, 90, 200), 1)):
        if cloud is None:
            continue
        for x, y in pixels(cloud):
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=colour)
    return picture


def nice_ticks(lo: float, hi: float, most: int = 6) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten apart) inside [lo, hi], at most ``most`` of them."""
    span = hi - lo
    if not (math.isfinite(span) and span > 0):
        return [lo]
    for factor in (1, 2, 5, 10):
        gap = factor * 10 ** math.floor(math.log10(span / most))
        if span / gap < most:
            break
    first = math.ceil(lo / gap - 1e-9)
    ticks = [k * gap for k in range(first, int(math.floor(hi / gap + 1e-9)) + 1)]
    return [0.0 if abs(t) < gap * 1e-9 else t for t in ticks]


def tick_labels(ticks: list[float]) -> list[str]:
    """Labels for evenly spaced ticks: as many decimals as their spacing needs, thousands separators (12,000)."""
    gap = abs(ticks[1] - ticks[0]) if len(ticks) > 1 else abs(ticks[0]) or 1.0
    decimals = max(0, -math.floor(math.log10(gap) + 1e-9))
    if decimals > 6 or max(abs(t) for t in ticks) >= 1e9:
        return [f"{t:.4g}" for t in ticks]
    return [f"{t:,.{decimals}f}" for t in ticks]


def line_plot(
    series: dict[str, tuple[Sequence[float], Sequence[float]]],
    title: str = "",
    size: tuple[int, int] = (720, 360),
    x_label: str = "",
) -> Image.Image:
    """Simple line chart of named (x, y) series with axes, round ticks, a legend and an optional x-axis label."""
    colours = [(31, 90, 200), (214, 96, 30), (44, 160, 44), (148, 60, 180), (120, 120, 120)]
    width, height = size
    left, right, top, bottom = 60, 20, 30, 40
    picture = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(picture)
    xs = [x for s in series.values() for x in s[0]]
    ys = [y for s in series.values() for y in s[1] if math.isfinite(y)]
    if not xs or not ys:
        draw.text((left, top), f"{title}: no data", fill="black", font=font())
        return picture
    x_lo, x_hi = min(xs), max(max(xs), min(xs) + 1e-9)
    y_lo, y_hi = min(ys), max(ys)
    if y_hi - y_lo < 1e-9:
        y_lo, y_hi = y_lo - 0.5, y_hi + 0.5

    def at(x: float, y: float) -> tuple[float, float]:
        return (
            left + (x - x_lo) / (x_hi - x_lo) * (width - left - right),
            top + (1 - (y - y_lo) / (y_hi - y_lo)) * (height - top - bottom),
        )

    draw.rectangle((left, top, width - right, height - bottom), outline=(0, 0, 0))
    y_ticks, x_ticks = nice_ticks(y_lo, y_hi), nice_ticks(x_lo, x_hi)
    for y, label in zip(y_ticks, tick_labels(y_ticks)):
        _, py = at(x_lo, y)
        draw.line((left, py, width - right, py), fill=(230, 230, 230))
        draw.text((left - 6 - draw.textlength(label, font=font()), py - 7), label, fill="black", font=font())
    for x, label in zip(x_ticks, tick_labels(x_ticks)):
        px, _ = at(x, y_lo)
        draw.line((px, height - bottom, px, height - bottom + 4), fill="black")
        draw.text((px - draw.textlength(label, font=font()) / 2, height - bottom + 6), label, fill="black", font=font())
    draw.text((left, 8), title, fill="black", font=font())
    if x_label:
        draw.text(
            (width - right - draw.textlength(x_label, font=font()), height - 16), x_label, fill="black", font=font()
        )
    for i, (name, (sx, sy)) in enumerate(series.items()):
        colour = colours[i % len(colours)]
        points = [at(x, y) for x, y in zip(sx, sy) if math.isfinite(y)]
        if len(points) > 1:
            draw.line(points, fill=colour, width=2)
        legend_y = top + 12 + 16 * i
        draw.line((width - right - 170, legend_y, width - right - 150, legend_y), fill=colour, width=3)
        draw.text((width - right - 144, legend_y - 7), name, fill=colour, font=font())
    return picture


def box_plot(
    groups: dict[str, Sequence[float]], title: str = "", size: tuple[int, int] = (720, 360), y_label: str = ""
) -> Image.Image:
    """One box per named group: the quartiles (box), the median (bar), the range (whiskers) and every value
    (dots), on round ticks; non-finite values are left out and counted under the group's name."""
    width, height = size
    left, right, top, bottom = 60, 20, 30, 46
    picture = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(picture)
    finite = {name: sorted(v for v in values if math.isfinite(v)) for name, values in groups.items()}
    ys = [v for values in finite.values() for v in values]
    draw.text((left, 8), title, fill="black", font=font())
    if not ys:
        draw.text((left, top + 4), "no finite values", fill="black", font=font())
        return picture
    y_lo, y_hi = min(ys), max(ys)
    if y_hi - y_lo < 1e-9:
        y_lo, y_hi = y_lo - 0.5, y_hi + 0.5
    pad = (y_hi - y_lo) * 0.05
    y_lo, y_hi = y_lo - pad, y_hi + pad

    def py(y: float) -> float:
        return top + (1 - (y - y_lo) / (y_hi - y_lo)) * (height - top - bottom)

    draw.rectangle((left, top, width - right, height - bottom), outline=(0, 0, 0))
    ticks = nice_ticks(y_lo, y_hi)
    for y, label in zip(ticks, tick_labels(ticks)):
        draw.line((left, py(y), width - right, py(y)), fill=(230, 230, 230))
        draw.text((left - 6 - draw.textlength(label, font=font()), py(y) - 7), label, fill="black", font=font())
    if y_label:
        draw.text((left + 6, top + 4), y_label, fill=(90, 90, 90), font=font())
    slot = (width - left - right) / max(1, len(groups))
    for i, (name, values) in enumerate(finite.items()):
        centre, half = left + slot * (i + 0.5), min(28.0, slot * 0.3)
        if values:
            q1, median, q3 = (float(np.quantile(values, q)) for q in (0.25, 0.5, 0.75))
            draw.line((centre, py(values[0]), centre, py(values[-1])), fill=(90, 90, 90))
            for end in (values[0], values[-1]):
                draw.line((centre - half / 2, py(end), centre + half / 2, py(end)), fill=(90, 90, 90))
            draw.rectangle((centre - half, py(q3), centre + half, py(q1)), fill=(205, 220, 245), outline=(31, 90, 200))
            draw.line((centre - half, py(median), centre + half, py(median)), fill=(214, 96, 30), width=3)
            for v in values:
                draw.ellipse((centre + half + 3, py(v) - 2, centre + half + 7, py(v) + 2), fill=(31, 90, 200))
        missing = len(groups[name]) - len(values)
        label = name + (f" ({missing} not finite)" if missing else "")
        draw.text(
            (centre - draw.textlength(label, font=font()) / 2, height - bottom + 8), label, fill="black", font=font()
        )
    return picture


def save_gif(frames: list[Image.Image], path: Path | str, duration_ms: int = 400) -> Path:
    """Animated GIF of same-sized frames, looping forever; the last frame is held longer."""
    if not frames:
        raise ValueError("no frames for the GIF")
    durations = [duration_ms] * (len(frames) - 1) + [duration_ms * 4]
    first, *rest = [f.convert("P", palette=Image.Palette.ADAPTIVE) if f.mode == "RGB" else f for f in frames]
    return save_picture(first, path, save_all=True, append_images=rest, duration=durations, loop=0)
