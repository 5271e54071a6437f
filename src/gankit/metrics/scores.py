"""Sample-quality scores computed from features, logits or points.

Pure functions of arrays: they know nothing about generators, datasets or
feature extractors. Each cites the paper and equation it implements.
"""

from __future__ import annotations

import numpy as np
import torch


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased) covariance of (N, D) features, in float64."""
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"need (N >= 2, D) features, got shape {x.shape}")
    return x.mean(axis=0), np.cov(x, rowvar=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))  (Heusel et al. 2017, eq. 6; Dowson & Landau 1982).

    Tr((S1 S2)^(1/2)) is computed as the sum of square roots of the eigenvalues of
    S1^(1/2) S2 S1^(1/2), which is symmetric positive semi-definite, so no complex
    matrix square root is needed.
    """
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    sigma1, sigma2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    values, vectors = np.linalg.eigh(sigma1)
    sqrt_sigma1 = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    middle = sqrt_sigma1 @ sigma2 @ sqrt_sigma1
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
    diff = mu1 - mu2
    return float(max(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt, 0.0))


def fid(real: np.ndarray, fake: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets. With more features than samples (raw
    pixels: 12,288 numbers per 64x64 colour image) the same number comes from the samples' small matrices
    (:func:`frechet_distance_from_samples`) instead of D x D covariances."""
    x, y = np.asarray(real, dtype=np.float64), np.asarray(fake, dtype=np.float64)
    if x.ndim == 2 and y.ndim == 2 and x.shape[1] > min(len(x), len(y)) and min(len(x), len(y)) >= 2:
        return frechet_distance_from_samples(x, y)
    return frechet_distance(*feature_statistics(x), *feature_statistics(y))


def frechet_distance_from_samples(x: np.ndarray, y: np.ndarray) -> float:
    """:func:`frechet_distance` of the Gaussians fitted to samples x (n1, D) and y (n2, D), in O(n1 n2 D) rather
    than O(D^3). With centred samples X, Y and S1 = X'X / (n1 - 1), S2 = Y'Y / (n2 - 1): the non-zero eigenvalues
    of S1 S2 are those of (X Y')(X Y')' / ((n1 - 1)(n2 - 1)), so Tr((S1 S2)^(1/2)) is the sum of the singular
    values of X Y' / sqrt((n1 - 1)(n2 - 1)); Tr(S1) is the sum of X's squared entries / (n1 - 1). Exact."""
    mu1, mu2 = x.mean(axis=0), y.mean(axis=0)
    a, b = x - mu1, y - mu2
    scale = np.sqrt((len(x) - 1) * (len(y) - 1))
    trace_sqrt = np.linalg.svd(a @ b.T / scale, compute_uv=False).sum()
    diff = mu1 - mu2
    value = diff @ diff + (a * a).sum() / (len(x) - 1) + (b * b).sum() / (len(y) - 1) - 2 * trace_sqrt
    return float(max(value, 0.0))


def cubic_kernel(a: np.ndarray, b: np.ndarray, d: int) -> np.ndarray:
    """KID's kernel (a.b / d + 1)^3 for every pair of rows, cubed by two multiplications (numpy's general power
    is four times slower than the matrix product itself)."""
    k = a @ b.T
    k /= d
    k += 1
    return k * k * k


def kid(
    real: np.ndarray, fake: np.ndarray, subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """Kernel Inception Distance (Binkowski et al. 2018): unbiased MMD^2 with k(x, y) = (x.y / d + 1)^3.

    Averaged over ``subsets`` random subsets of ``subset_size`` from each set
    (sizes capped at the smaller set); returns (mean, standard deviation).
    """
    x = np.asarray(real, dtype=np.float64)
    y = np.asarray(fake, dtype=np.float64)
    m = min(subset_size, len(x), len(y))
    if m < 2:
        raise ValueError("KID needs at least 2 samples in each set")
    d = x.shape[1]
    rng = np.random.default_rng(seed)
    values = np.empty(subsets)
    # Many features (raw pixels) and few samples: each kernel matrix once, the subsets index into it (the same
    # subsets and values as computing each subset's kernels, at 1/subsets of the cost).
    whole = d > 512 and max(len(x), len(y)) <= 4096
    if whole:
        k_xx, k_yy, k_xy = cubic_kernel(x, x, d), cubic_kernel(y, y, d), cubic_kernel(x, y, d)
    for s in range(subsets):
        i, j = rng.choice(len(x), m, replace=False), rng.choice(len(y), m, replace=False)
        if whole:
            k_aa, k_bb, k_ab = k_xx[np.ix_(i, i)], k_yy[np.ix_(j, j)], k_xy[np.ix_(i, j)]
        else:
            a, b = x[i], y[j]
            k_aa, k_bb, k_ab = cubic_kernel(a, a, d), cubic_kernel(b, b, d), cubic_kernel(a, b, d)
        off_diagonal = (k_aa.sum() - np.trace(k_aa) + k_bb.sum() - np.trace(k_bb)) / (m * (m - 1))
        values[s] = off_diagonal - 2 * k_ab.mean()
    return float(values.mean()), float(values.std())


def inception_score(logits: np.ndarray, splits: int = 10) -> tuple[float, float]:
    """exp(E_x KL(p(y|x) || p(y))) over ``splits`` equal splits (Salimans et al. 2016); (mean, std)."""
    logits = torch.as_tensor(np.asarray(logits), dtype=torch.float64)
    log_p = torch.log_softmax(logits, dim=1)
    scores = []
    for part in torch.chunk(log_p, splits):
        log_marginal = torch.logsumexp(part, dim=0) - np.log(len(part))
        kl = (part.exp() * (part - log_marginal)).sum(dim=1).mean()
        scores.append(kl.exp().item())
    return float(np.mean(scores)), float(np.std(scores))


def _kth_neighbour_distances(x: torch.Tensor, ks: tuple[int, ...], chunk: int) -> dict[int, torch.Tensor]:
    """Distance from each row of x to its k-th nearest other row, for each k."""
    k_max = max(ks)
    out = {k: torch.empty(len(x), dtype=x.dtype) for k in ks}
    for i in range(0, len(x), chunk):
        d = torch.cdist(x[i : i + chunk], x)
        nearest = d.topk(k_max + 1, dim=1, largest=False).values  # column 0 is the point itself
        for k in ks:
            out[k][i : i + chunk] = nearest[:, k]
    return out


def prdc(real: np.ndarray, fake: np.ndarray, k_pr: int = 3, k_dc: int = 5, chunk: int = 1000) -> dict[str, float]:
    """Precision and recall (Kynkaanniemi et al. 2019, k = ``k_pr``), density and coverage (Naeem et al. 2020,
    k = ``k_dc``).

    A set's manifold is the union of balls around its points with radius the
    distance to their k-th nearest neighbour in the same set.
    precision = fraction of fakes inside the real manifold; recall = fraction of
    reals inside the fake manifold; density = mean over fakes of the number of
    real balls containing it, divided by k; coverage = fraction of real balls
    that contain at least one fake.
    """
    x = torch.as_tensor(np.asarray(real), dtype=torch.float32)
    y = torch.as_tensor(np.asarray(fake), dtype=torch.float32)
    if len(x) <= max(k_pr, k_dc) or len(y) <= k_pr:
        raise ValueError(f"PRDC needs more than {max(k_pr, k_dc)} samples in each set")
    real_radii = _kth_neighbour_distances(x, (k_pr, k_dc), chunk)
    fake_radii = _kth_neighbour_distances(y, (k_pr,), chunk)[k_pr]
    in_real_manifold = torch.zeros(len(y), dtype=torch.bool)
    density_count = torch.zeros(len(y))
    real_covered = torch.zeros(len(x), dtype=torch.bool)
    real_in_fake_manifold = torch.zeros(len(x), dtype=torch.bool)
    for j in range(0, len(y), chunk):
        d = torch.cdist(y[j : j + chunk], x)  # (fakes, reals)
        in_real_manifold[j : j + chunk] = (d <= real_radii[k_pr].unsqueeze(0)).any(dim=1)
        inside_dc = d <= real_radii[k_dc].unsqueeze(0)
        density_count[j : j + chunk] = inside_dc.sum(dim=1).float()
        real_covered |= inside_dc.any(dim=0)
        real_in_fake_manifold |= (d <= fake_radii[j : j + chunk].unsqueeze(1)).any(dim=0)
    return {
        "precision": in_real_manifold.float().mean().item(),
        "recall": real_in_fake_manifold.float().mean().item(),
        "density": (density_count.sum() / (k_dc * len(y))).item(),
        "coverage": real_covered.float().mean().item(),
    }


def mode_scores(points: np.ndarray, modes: np.ndarray, std: float, quality_stds: float = 3.0) -> dict[str, float]:
    """Mode coverage of 2D mixture samples (VEEGAN, Srivastava et al. 2017; PacGAN, Lin et al. 2018).

    A sample is high quality when it lies within ``quality_stds`` standard
    deviations of its nearest mode; a mode is captured when at least one high
    quality sample is nearest to it. ``reverse_kl`` is KL(p || uniform) of the
    histogram of high-quality samples over the modes (0 when every mode gets the
    same share; a missed mode adds nothing, a mode with all samples adds log M).
    """
    p = torch.as_tensor(np.asarray(points), dtype=torch.float64)
    centres = torch.as_tensor(np.asarray(modes), dtype=torch.float64)
    distance, nearest = torch.cdist(p, centres).min(dim=1)
    good = distance <= quality_stds * std
    counts = torch.bincount(nearest[good], minlength=len(centres)).double()
    total = counts.sum()
    if total > 0:
        share = counts / total
        nonzero = share > 0
        reverse_kl = float((share[nonzero] * torch.log(share[nonzero] * len(centres))).sum())
    else:
        reverse_kl = float("inf")
    return {
        "modes_captured": int((counts > 0).sum()),
        "modes_total": len(centres),
        "high_quality": float(good.double().mean()),
        "reverse_kl": reverse_kl,
    }


def class_histogram_scores(real_logits: np.ndarray, fake_logits: np.ndarray) -> dict[str, float]:
    """How the classes of generated samples, as a classifier labels them, compare with the real data's.

    A collapsed G over-produces a few classes. ``class_kl`` is KL(fake || real) of the two
    predicted-class histograms (the measure of the stacked-MNIST mode counts in Metz et al. 2017 and
    Lin et al. 2018, against the real histogram instead of uniform); ``max_class_share`` is the largest
    share of one class among the generated samples; ``classes_missing`` counts classes no sample gets.
    """
    k = real_logits.shape[1]
    real = np.bincount(real_logits.argmax(axis=1), minlength=k) / len(real_logits)
    fake = np.bincount(fake_logits.argmax(axis=1), minlength=k) / len(fake_logits)
    present = fake > 0
    # A class the real data never gets labelled with is rare enough to ignore; floor it to keep KL finite.
    kl = float((fake[present] * np.log(fake[present] / np.maximum(real[present], 1e-12))).sum())
    return {
        "class_kl": kl,
        "max_class_share": float(fake.max()),
        "classes_missing": int((~present).sum()),
        "class_histogram": [round(float(v), 4) for v in fake],
    }


def intra_fid(real: np.ndarray, real_labels: np.ndarray, fake: np.ndarray, fake_labels: np.ndarray) -> dict[str, float]:
    """FID within each class, between real and generated samples of that class (Miyato & Koyama 2018),
    and its mean over the classes present on both sides."""
    per_class = {}
    for c in np.intersect1d(np.unique(real_labels), np.unique(fake_labels)):
        a, b = real[real_labels == c], fake[fake_labels == c]
        if len(a) > 1 and len(b) > 1:
            per_class[int(c)] = fid(a, b)
    if not per_class:
        raise ValueError("intra-class FID needs at least 2 real and 2 generated samples of some class")
    return {
        "intra_fid": float(np.mean(list(per_class.values()))),
        "intra_fid_per_class": [round(per_class.get(c, float("nan")), 4) for c in range(max(per_class) + 1)],
    }


def matched_accuracy(codes: np.ndarray, classes: np.ndarray) -> dict[str, float]:
    """Unsupervised accuracy of a categorical code: each code value is matched to one class so that the
    most samples agree (the Hungarian algorithm on the code x class contingency table), and the
    fraction of samples whose predicted class is their code value's match is reported."""
    from scipy.optimize import linear_sum_assignment

    codes, classes = np.asarray(codes, dtype=np.int64), np.asarray(classes, dtype=np.int64)
    table = np.zeros((codes.max() + 1, classes.max() + 1), dtype=np.int64)
    np.add.at(table, (codes, classes), 1)
    rows, columns = linear_sum_assignment(-table)
    return {
        "code_accuracy": float(table[rows, columns].sum() / len(codes)),
        "code_to_class": [int(columns[list(rows).index(r)]) if r in rows else -1 for r in range(table.shape[0])],
    }


def label_accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of samples the evaluator assigns to the label they were generated for."""
    return float((np.asarray(logits).argmax(axis=1) == np.asarray(labels)).mean())


# --------------------------------------------------------------------------- paired image fidelity


def _paired(a: np.ndarray, b: np.ndarray, border: int) -> tuple[torch.Tensor, torch.Tensor]:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.ndim != 4 or a.dtype != np.uint8 or b.dtype != np.uint8:
        raise ValueError(
            f"expected two uint8 (N, H, W, C) arrays of one shape, got {a.dtype} {a.shape} and {b.dtype} {b.shape}"
        )
    if border and min(a.shape[1:3]) <= 2 * border:
        raise ValueError(f"a border of {border} pixels leaves nothing of {a.shape[1]}x{a.shape[2]} images")
    crop = (slice(None), slice(border, a.shape[1] - border), slice(border, a.shape[2] - border))
    return torch.from_numpy(a[crop]).double(), torch.from_numpy(b[crop]).double()


def psnr(a: np.ndarray, b: np.ndarray, border: int = 0) -> float:
    """Mean over images of the PSNR (dB) between uint8 images (N, H, W, C): 10 log10(255^2 / MSE), the MSE over
    every pixel and channel of an image after cropping ``border`` pixels from each side (the super-resolution
    convention crops the scale factor). Identical images count as 100 dB."""
    x, y = _paired(a, b, border)
    mse = ((x - y) ** 2).flatten(1).mean(1)
    return float(torch.where(mse > 0, 10 * torch.log10(255.0**2 / mse.clamp_min(1e-12)), torch.tensor(100.0)).mean())


def ssim(a: np.ndarray, b: np.ndarray, border: int = 0) -> float:
    """Mean SSIM (Wang et al. 2004) between uint8 images (N, H, W, C): an 11 x 11 Gaussian window of sigma 1.5,
    K1 = 0.01, K2 = 0.03, L = 255, computed per channel over the valid window positions (no padding) after
    cropping ``border`` pixels from each side, then averaged over positions, channels and images."""
    x, y = _paired(a, b, border)
    x, y = x.permute(0, 3, 1, 2).reshape(-1, 1, *x.shape[1:3]), y.permute(0, 3, 1, 2).reshape(-1, 1, *y.shape[1:3])
    size = min(11, x.shape[-1], x.shape[-2])
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * 1.5**2))
    window = (g[:, None] * g[None, :] / g.sum() ** 2)[None, None]

    def blur(t: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.conv2d(t, window)

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = blur(x), blur(y)
    vx, vy, cov = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    index = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return float(index.mean())
