"""How monotonically an InfoGAN code moves simple image statistics along a traversal.

InfoGAN's continuous codes are read off traversal figures ("this code controls width"). This module
puts a number on that reading: for ``rows`` fixed inputs, sweep one code over its values, measure a
few image statistics of every picture, and take the Spearman rank correlation between the code value
and each statistic along each row. A code that controls a statistic gives |rho| near 1 with the same
sign on every row; one that does not gives rho scattered around 0.

Statistics treat the image as ink on a dark background (pixel value / 255 as ink mass, channels
averaged), as in MNIST-like data:

- ``intensity``: mean ink per pixel;
- ``width`` / ``height``: twice the ink-weighted standard deviation of the column / row coordinate (pixels);
- ``slant``: ink-weighted regression slope of column on row, sign flipped so that a top leaning to the
  right is positive (columns moved per row going up).
"""

from __future__ import annotations

import numpy as np

STATISTICS = ("intensity", "width", "height", "slant")


def image_statistics(images: np.ndarray) -> dict[str, np.ndarray]:
    """``images``: uint8 (N, H, W) or (N, H, W, C). Returns each statistic of STATISTICS as an (N,) array."""
    ink = np.asarray(images, dtype=np.float64) / 255.0
    if ink.ndim == 4:
        ink = ink.mean(axis=3)
    if ink.ndim != 3:
        raise ValueError(f"expected images (N, H, W) or (N, H, W, C), got shape {np.shape(images)}")
    n, h, w = ink.shape
    mass = ink.sum(axis=(1, 2)) + 1e-12
    rows = np.arange(h, dtype=np.float64)[None, :, None]
    cols = np.arange(w, dtype=np.float64)[None, None, :]
    mean_row = (ink * rows).sum(axis=(1, 2)) / mass
    mean_col = (ink * cols).sum(axis=(1, 2)) / mass
    d_row = rows - mean_row[:, None, None]
    d_col = cols - mean_col[:, None, None]
    var_row = (ink * d_row**2).sum(axis=(1, 2)) / mass
    var_col = (ink * d_col**2).sum(axis=(1, 2)) / mass
    cov = (ink * d_row * d_col).sum(axis=(1, 2)) / mass
    statistics = {
        "intensity": ink.mean(axis=(1, 2)),
        "width": 2 * np.sqrt(var_col),
        "height": 2 * np.sqrt(var_row),
        "slant": -cov / (var_row + 1e-12),
    }
    # rounded so that float noise in an unchanged statistic ranks as a tie, not as a trend
    return {name: np.round(value, 9) for name, value in statistics.items()}


def spearman_rows(values: np.ndarray, statistic: np.ndarray) -> np.ndarray:
    """Spearman's rho between ``values`` (V,) and each row of ``statistic`` (R, V); 0 for a constant row."""
    from scipy.stats import rankdata  # here: scipy.stats takes a second to import, and most commands never rank

    a = rankdata(np.broadcast_to(np.asarray(values, dtype=np.float64), statistic.shape), axis=1)
    b = rankdata(np.asarray(statistic, dtype=np.float64), axis=1)  # ties get their mean rank
    a -= a.mean(axis=1, keepdims=True)
    b -= b.mean(axis=1, keepdims=True)
    denominator = np.sqrt((a**2).sum(axis=1) * (b**2).sum(axis=1))
    return np.divide((a * b).sum(axis=1), denominator, out=np.zeros(len(a)), where=denominator > 0)


def monotonicity(values, images: np.ndarray, rows: int, threshold: float = 0.9) -> dict[str, dict[str, float]]:
    """Scores for a traversal: ``images`` row-major, ``rows`` rows of len(values) columns.

    Per statistic: ``rho`` (mean over rows of Spearman's rho between code value and statistic),
    ``abs_rho`` (mean |rho|: large with ``rho`` near 0 means the code moves the statistic but not the same
    way on every row) and ``monotone_rows`` (fraction of rows with |rho| >= ``threshold`` and the sign of
    the mean)."""
    values = np.asarray(values, dtype=np.float64)
    if len(images) != rows * len(values):
        raise ValueError(f"expected {rows} x {len(values)} images, got {len(images)}")
    out = {}
    for name, statistic in image_statistics(images).items():
        rho = spearman_rows(values, statistic.reshape(rows, len(values)))
        sign = np.sign(rho.mean()) or 1.0
        out[name] = {
            "rho": round(float(rho.mean()), 4),
            "abs_rho": round(float(np.abs(rho).mean()), 4),
            "monotone_rows": round(float(np.mean(rho * sign >= threshold)), 4),
        }
    return out


def ordered(control: dict) -> bool:
    """Whether an input's values are ordered, so that its effect may be monotone (a range; a bit)."""
    return control["type"] == "range" or bool(control.get("ordered"))


def continuous_inputs(pipeline) -> list[str]:
    """The names of the generator's continuous inputs (``range`` controls: InfoGAN's continuous codes)."""
    return [c["name"] for c in pipeline.condition.controls() if c["type"] == "range"]


def code_monotonicity(pipeline, code: str, values=None, rows: int = 64, seed: int = 0) -> dict:
    """Sweep the continuous input ``code`` (a ``range`` control, ``codes.cont0`` or ``cont0``; default values: its
    range in 9 steps, -2 .. 2 for InfoGAN's codes) over ``rows`` fixed inputs of ``seed`` and score every
    statistic; ``best`` names the statistic with the largest |rho|."""
    control = pipeline.condition.control(code)
    if not ordered(control):
        raise ValueError(f"{code} is not an ordered input (it is a {control['type']} control)")
    if values is None:
        ranged = control["type"] == "range"
        values = np.linspace(control["min"], control["max"], 9) if ranged else range(control["count"])
    values = list(values)
    if pipeline.kind != "images":
        raise ValueError("code monotonicity measures image statistics; this generator does not draw images")
    scores = monotonicity(values, pipeline.sweep(control["name"], values, rows=rows, seed=seed), rows)
    best = max(scores, key=lambda name: abs(scores[name]["rho"]))
    return {
        "code": code,
        "values": [round(float(v), 4) for v in values],
        "rows": rows,
        "seed": seed,
        "statistics": scores,
        "best": best,
    }


def format_monotonicity(result: dict) -> str:
    lines = [
        f"{result['code']}: Spearman rho between code value and image statistic over {result['rows']} rows "
        f"(seed {result['seed']})",
        f"{'statistic':<10} {'mean rho':>9} {'mean |rho|':>11} {'monotone rows':>14}",
    ]
    for name, s in result["statistics"].items():
        mark = "  <- best" if name == result["best"] else ""
        lines.append(f"{name:<10} {s['rho']:>9.3f} {s['abs_rho']:>11.3f} {s['monotone_rows']:>14.2f}{mark}")
    return "\n".join(lines)
