"""Latent-space tools of the DCGAN paper (Radford et al. 2015, sections 6.1 and 6.3).

- Interpolation between latents, linear or spherical (slerp; White 2016), and
  the paper's latent walk through 9 random points (figure 4).
- Vector arithmetic on averaged z (section 6.3.2, figure 7): each concept is
  the mean z of a few samples; the result A - B + C is shown with uniform noise
  of scale 0.25 added, as in the paper.
- Latent smoothness: along interpolation paths, the distribution of the change
  between consecutive images. Sharp jumps (a large ratio of the largest step to
  the median step) are what memorization looks like in latent space (section 6.1).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gankit.data import to_uint8_images
from gankit.files import atomic_write_text
from gankit.images import image_grid, label_rows, save_gif, save_picture
from gankit.inference import GeneratorPipeline
from gankit.metrics.evaluation import default_extractor
from gankit.metrics.extractors import build_extractor
from gankit.registry import ConfigError


def lerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Points (1 - t) z0 + t z1 for each t: (T, D)."""
    t = t.view(-1, 1)
    return (1 - t) * z0 + t * z1


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation: along the great circle between z0 and z1, norms blended linearly.

    Falls back to linear interpolation when z0 and z1 are (anti)parallel.
    """
    t = t.view(-1, 1).to(torch.float64)
    a, b = z0.to(torch.float64), z1.to(torch.float64)
    cos = torch.dot(a / a.norm(), b / b.norm()).clamp(-1.0, 1.0)
    omega = torch.arccos(cos)
    if torch.sin(omega).abs() < 1e-6:
        return lerp(z0, z1, t.float())
    out = (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)
    return out.to(z0.dtype)


def path(points: torch.Tensor, steps: int, mode: str = "slerp") -> torch.Tensor:
    """Interpolate through consecutive points: (len(points) - 1, steps, D), endpoints included."""
    if mode not in ("slerp", "linear"):
        raise ValueError(f"interpolation mode must be slerp or linear, got {mode!r}")
    if len(points) < 2 or steps < 2:
        raise ValueError("need at least 2 points and 2 steps")
    t = torch.linspace(0, 1, steps)
    fn = slerp if mode == "slerp" else lerp
    return torch.stack([fn(points[i], points[i + 1], t) for i in range(len(points) - 1)])


def images(pipeline: GeneratorPipeline, z: torch.Tensor, batch_size: int = 256) -> np.ndarray:
    """uint8 (N, H, W, C) images for latents z (N, D)."""
    parts = [to_uint8_images(pipeline.generate(z[i : i + batch_size]).cpu()) for i in range(0, len(z), batch_size)]
    return torch.cat(parts).numpy()


def seed_latents(pipeline: GeneratorPipeline, seeds: list[int]) -> torch.Tensor:
    """Sample 0 of each seed: the image `gankit sample --seed S` puts first."""
    return torch.cat([pipeline.inputs(1, s) for s in seeds])


def arithmetic(
    concepts: dict[str, torch.Tensor], noise: float = 0.25, variants: int = 8, seed: int = 0
) -> dict[str, torch.Tensor]:
    """Mean z per concept; result = A - B + C, plus ``variants`` copies with uniform noise in [-noise, noise].

    ``concepts`` maps "A", "B", "C" to (K, D) latents. With K = 1 the result is exactly z_A - z_B + z_C.
    """
    missing = {"A", "B", "C"} - set(concepts)
    if missing:
        raise ValueError(f"arithmetic needs concepts A, B and C; missing {', '.join(sorted(missing))}")
    means = {name: z.mean(dim=0) for name, z in concepts.items()}
    result = means["A"] - means["B"] + means["C"]
    g = torch.Generator().manual_seed(seed)
    jitter = (torch.rand(variants, result.shape[0], generator=g) * 2 - 1) * noise
    return {"means": means, "result": result, "variants": result + jitter}


def smoothness(
    pipeline: GeneratorPipeline,
    paths: int = 20,
    steps: int = 32,
    seed: int = 0,
    feature_fn=None,
) -> dict[str, float]:
    """Step-to-step image change along ``paths`` random slerp paths.

    Reports, for pixel L2 distance (images in [0, 1]) and, when ``feature_fn``
    is given, feature L2 distance: the median step, the largest step, and the
    mean over paths of (largest step / median step of that path).
    """
    ends = pipeline.inputs(2 * paths, seed)
    result: dict[str, float] = {"paths": paths, "steps": steps}
    pixel_steps, feature_steps = [], []
    for i in range(paths):
        z = path(ends[2 * i : 2 * i + 2], steps)[0]
        x = pipeline.generate(z).cpu()
        pixels = (x + 1) / 2
        pixel_steps.append((pixels[1:] - pixels[:-1]).flatten(1).norm(dim=1))
        if feature_fn is not None:
            uint8 = to_uint8_images(x).permute(0, 3, 1, 2).contiguous()
            f = torch.as_tensor(feature_fn(uint8))
            feature_steps.append((f[1:] - f[:-1]).norm(dim=1))
    for name, steps_list in (("pixel", pixel_steps), ("feature", feature_steps)):
        if not steps_list:
            continue
        d = torch.stack(steps_list)  # (paths, steps - 1)
        ratios = d.max(dim=1).values / d.median(dim=1).values.clamp_min(1e-12)
        result[f"{name}_median_step"] = float(d.median())
        result[f"{name}_max_step"] = float(d.max())
        result[f"{name}_max_over_median"] = float(ratios.mean())
        result[f"{name}_max_over_median_worst_path"] = float(ratios.max())
    return result


# --------------------------------------------------------------------------- pictures + JSON


def _upscaled(image: np.ndarray, size: int = 160):
    from PIL import Image

    picture = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
    scale = max(1, size // max(picture.size))
    return picture.resize((picture.width * scale, picture.height * scale), Image.Resampling.NEAREST).convert("RGB")


def write_interpolation(
    pipeline: GeneratorPipeline, points: torch.Tensor, steps: int, mode: str, out: str, feature_fn=None
) -> dict:
    """Grid PNG (one row per segment), GIF along the whole path, JSON summary with smoothness."""

    out_path = Path(out).with_suffix(".png")
    z = path(points, steps, mode)  # (segments, steps, D)
    pictures = images(pipeline, z.flatten(0, 1))
    save_picture(image_grid(pictures, columns=steps), out_path)
    frames = [_upscaled(p) for p in pictures]
    save_gif(frames + frames[::-1][1:-1], out_path.with_suffix(".gif"), duration_ms=80)
    summary = {
        "mode": mode,
        "steps": steps,
        "segments": len(points) - 1,
        "step": pipeline.step,
        "smoothness_random_paths": smoothness(pipeline, feature_fn=feature_fn),
        "files": {"grid": str(out_path), "gif": str(out_path.with_suffix(".gif"))},
    }
    atomic_write_text(out_path.with_suffix(".json"), json.dumps(summary, indent=2) + "\n")
    return summary


def write_condition_interpolation(
    pipeline: GeneratorPipeline, entries: list[Any], steps: int, out: str, rows: int = 4, seed: int = 0
) -> dict:
    """Interpolation between condition inputs with the style fixed (captions: Reed et al. 2016, figure 4): each
    row keeps sample r of ``seed`` (z and every per-sample draw, e.g. the conditioning noise) and moves the
    condition linearly through ``entries`` in the space the condition gives (``Condition.interpolation_points``:
    caption embeddings); grid PNG (rows x (segments * steps)), GIF of the grid along the path, JSON."""
    if len(entries) < 2 or steps < 2:
        raise ValueError("need at least 2 inputs to interpolate between and 2 steps")
    points = pipeline.condition.interpolation_points(list(entries))
    vectors = path(points, steps, "linear").flatten(0, 1)  # (segments * steps, D)
    columns = len(vectors)
    z, values = pipeline.condition.values_along(vectors, rows, seed, pipeline.latent_dim)
    pictures = to_uint8_images(pipeline.generate(z, values).cpu()).numpy()
    out_path = Path(out).with_suffix(".png")
    save_picture(image_grid(pictures, columns=columns), out_path)
    by_column = pictures.reshape(rows, columns, *pictures.shape[1:]).transpose(1, 0, 2, 3, 4)
    frames = [_upscaled(np.asarray(image_grid(column, columns=rows).convert("RGB")), 320) for column in by_column]
    save_gif(frames + frames[::-1][1:-1], out_path.with_suffix(".gif"), duration_ms=120)
    summary = {
        "texts": list(entries),
        "steps": steps,
        "rows": rows,
        "seed": seed,
        "step": pipeline.step,
        "files": {"grid": str(out_path), "gif": str(out_path.with_suffix(".gif"))},
    }
    atomic_write_text(out_path.with_suffix(".json"), json.dumps(summary, indent=2) + "\n")
    return summary


def write_arithmetic(
    pipeline: GeneratorPipeline, concepts: dict[str, torch.Tensor], out: str, noise: float = 0.25, seed: int = 0
) -> dict:
    """Panel: rows A, B, C (concept samples, then the image of their mean z); last row: the result and noisy copies."""

    result = arithmetic(concepts, noise=noise, seed=seed)
    rows = [torch.cat([concepts[n], result["means"][n].unsqueeze(0)]) for n in ("A", "B", "C")]
    rows.append(torch.cat([result["result"].unsqueeze(0), result["variants"]]))
    columns = max(len(r) for r in rows)
    shape = images(pipeline, rows[0][:1]).shape[1:]
    blank = np.full(shape, 255, np.uint8)
    cells = []
    for r in rows:
        row_images = list(images(pipeline, r))
        cells += row_images + [blank] * (columns - len(row_images))
    out_path = Path(out).with_suffix(".png")
    labels = [
        f"A: {len(concepts['A'])} + mean",
        f"B: {len(concepts['B'])} + mean",
        f"C: {len(concepts['C'])} + mean",
        "A - B + C, noisy",
    ]
    save_picture(label_rows(image_grid(np.stack(cells), columns=columns), labels), out_path)
    summary = {
        "layout": "rows A, B, C: concept samples then the image of their mean z; last row: A - B + C, "
        f"then {len(result['variants'])} copies with uniform noise of scale {noise}",
        "concept_sizes": {n: len(concepts[n]) for n in ("A", "B", "C")},
        "result_norm": float(result["result"].norm()),
        "step": pipeline.step,
        "files": {"panel": str(out_path)},
    }
    atomic_write_text(out_path.with_suffix(".json"), json.dumps(summary, indent=2) + "\n")
    return summary


def evaluator_for(pipeline: GeneratorPipeline, weights: str | None = None):
    """The pipeline's dataset evaluator (or ``weights``), or None when there is none."""
    if pipeline.kind != "images":
        return None
    try:
        spec = (
            {"name": "evaluator", "weights": weights} if weights else default_extractor(pipeline.config.data, "images")
        )
        return build_extractor(spec)
    except ConfigError:
        return None


def concept_latents(
    pipeline: GeneratorPipeline, spec: str, seed: int, per_concept: int = 3, pool: int = 1000, extractor=None
) -> torch.Tensor:
    """Latents of a concept: ``"3,7,12"`` (sample indices of ``seed``) or ``"class:NAME"``.

    A class concept takes the ``per_concept`` samples among the first ``pool`` of
    ``seed`` that the evaluator assigns to that class with the highest probability.
    """
    if spec.startswith("class:"):
        if extractor is None:
            raise ValueError("class concepts need an evaluator for this dataset (gankit evaluator train)")
        wanted = spec.split(":", 1)[1]
        names = extractor.evaluator.info["class_names"]
        matches = [i for i, n in enumerate(names) if n.lower() == wanted.lower()]
        if not matches:
            raise ValueError(f"unknown class {wanted!r}; classes: {', '.join(names)}")
        z = pipeline.inputs(pool, seed)
        x = torch.from_numpy(images(pipeline, z)).permute(0, 3, 1, 2).contiguous()
        probabilities = torch.softmax(torch.as_tensor(extractor(x).logits), dim=1)[:, matches[0]]
        best = probabilities.argsort(descending=True)[:per_concept]
        return z[best]
    try:
        indices = [int(v) for v in spec.split(",") if v.strip()]
    except ValueError as error:
        raise ValueError(f"a concept is comma-separated sample indices or class:NAME, got {spec!r}") from error
    return torch.cat([pipeline.inputs(1, seed, start=i) for i in indices])
