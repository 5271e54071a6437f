"""Real images into a generator's latent space (``gankit project``): for each image, G's first input (and the
condition value, where the condition can be enumerated) whose sample matches it best.

Optimization, as in StyleGAN's projector (Karras et al. 2020, section 5), in its simplest form: several starts
per image (``restarts``: samples 0..R-1 of ``seed``, so a class-conditional G tries its classes, sample k having
label k mod K), each moved by Adam on the mean squared pixel error in [-1, 1] plus a small pull towards the
Gaussian's typical set, for ``steps`` steps; the start with the smallest final error wins. Every start of every
image runs in one batch. G stays in eval mode and is not changed.

A generator with an encoder (BiGAN: ``G.encode(x)`` gives G's first input for images) starts from it: start 0 of
every image is E(x), and the error of E(x) alone (no optimization) is reported beside the optimized one.

The condition comes from the generator's own description: values for R starts are ``condition.values_for(R,
seed)``; a generator that needs the user's input to draw at all (captions, input images) is refused. InfoGAN's
codes live in G's first input and are optimized with it (as continuous values).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

PRIOR_WEIGHT = 1e-3  # the pull of ||w||^2 / dim towards 1 (a standard normal's typical set)


@dataclasses.dataclass
class Projection:
    inputs: np.ndarray  # G's first inputs found, one per image (N, D)
    values: object  # the condition values of the winning starts (labels (N,) or None)
    reconstructions: np.ndarray  # uint8 (N, H, W, C)
    targets: np.ndarray  # the images as G's size: uint8 (N, H, W, C)
    mse: np.ndarray  # mean squared error per image, pixels in [-1, 1]
    psnr: np.ndarray  # dB, pixels in [0, 255]
    seconds: float
    encoder_mse: np.ndarray | None = None  # G(E(x)) against x, for a generator with an encoder
    encoder_seconds: float = 0.0

    @property
    def seconds_per_image(self) -> float:
        return self.seconds / len(self.mse)


def read_targets(paths: list[Path], channels: int, resolution: int) -> np.ndarray:
    """The image files as uint8 (N, C, H, W) at the generator's channels and size (shorter side resized, centre
    crop): a file that cannot be read is a DataError naming it."""
    from gankit.data.sources import load_image_file

    return np.stack([load_image_file(Path(p), resolution, "L" if channels == 1 else "RGB") for p in paths])


def read_upload(data: bytes, channels: int, resolution: int) -> np.ndarray:
    """An uploaded image file's bytes as uint8 (1, C, H, W) at the generator's size, read as :func:`read_targets`
    reads files (so with the same checks); a problem is a ValueError about "the uploaded image"."""
    import tempfile

    from gankit.errors import DataError

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "upload"
        path.write_bytes(data)
        try:
            return read_targets([path], channels, resolution)
        except DataError as error:
            raise ValueError(str(error).replace(str(path), "the uploaded image")) from None


def output_shape(pipeline) -> tuple[int, int]:
    """(channels, size) of the images ``pipeline`` draws (one sample of seed 0)."""
    _, size, _, channels = pipeline.sample(1, seed=0).shape
    return channels, size


def project(
    pipeline, images: np.ndarray, steps: int = 300, restarts: int = 10, seed: int = 0, lr: float = 0.05, progress=True
) -> Projection:
    """Project uint8 images (N, C, H, W) at the generator's size (see :func:`read_targets`)."""
    condition = pipeline.condition
    if pipeline.kind != "images":
        raise ValueError("projection finds the latents of images; this generator draws points")
    if condition.needs_input:
        raise ValueError(
            f"projection enumerates the condition's values itself; this generator needs the user's input to draw "
            f"({condition.summary()})"
        )
    n = len(images)
    start = time.perf_counter()
    values = condition.values_for(restarts, seed)
    first = pipeline.inputs(restarts, seed).to(pipeline.device)
    target = torch.from_numpy(images).float().div(127.5).sub(1.0).to(pipeline.device)
    # every start of every image in one batch: start r of image i is row i * restarts + r
    w = first.repeat(n, *([1] * (first.dim() - 1))).clone()
    rest = condition.rest_args(repeat_values(condition, values, n, restarts), pipeline.device)
    goal = target.repeat_interleave(restarts, dim=0)
    G = pipeline.G.eval().requires_grad_(False)
    encoder_mse, encoder_seconds = None, 0.0
    encode = getattr(G, "encode", None)  # a generator that learned its inverse (BiGAN) gives the first start
    if callable(encode):
        began = time.perf_counter()
        with torch.inference_mode():
            encoded = encode(target).reshape(n, *first.shape[1:])
            own_rest = condition.rest_args(repeat_values(condition, values, n, 1), pipeline.device)
            encoder_mse = (G(encoded, *own_rest).float() - target).pow(2).flatten(1).mean(dim=1).cpu().numpy()
        encoder_seconds = time.perf_counter() - began
        w[::restarts] = encoded
    w.requires_grad_(True)
    optimizer = torch.optim.Adam([w], lr=lr)
    with torch.enable_grad():
        for _ in tqdm(range(steps), desc=f"projecting {n} image{'s' * (n != 1)}", unit="step", disable=not progress):
            optimizer.zero_grad(set_to_none=True)
            error = (G(w, *rest).float() - goal).pow(2).flatten(1).mean(dim=1)
            prior = (w.flatten(1).pow(2).mean(dim=1) - 1.0).pow(2)
            (error + PRIOR_WEIGHT * prior).sum().backward()
            optimizer.step()
    with torch.inference_mode():
        out = G(w.detach(), *rest).float()
        error = (out - goal).pow(2).flatten(1).mean(dim=1).view(n, restarts)
    best = error.argmin(dim=1)
    rows = torch.arange(n, device=best.device) * restarts + best
    chosen = out[rows].cpu()
    mse = error[torch.arange(n), best].cpu().numpy()
    pixels = chosen.add(1).mul(127.5).round().clamp(0, 255)
    psnr = 10 * np.log10(
        255.0**2 / np.maximum(pixels.sub(torch.from_numpy(images).float()).pow(2).flatten(1).mean(1).numpy(), 1e-10)
    )
    return Projection(
        inputs=w.detach()[rows].cpu().numpy(),
        values=None if values is None else np.asarray(condition.take(values, 0, restarts))[best.cpu().numpy()],
        reconstructions=pixels.to(torch.uint8).permute(0, 2, 3, 1).numpy(),
        targets=images.transpose(0, 2, 3, 1),
        mse=mse,
        psnr=psnr,
        seconds=time.perf_counter() - start,
        encoder_mse=encoder_mse,
        encoder_seconds=encoder_seconds,
    )


def repeat_values(condition, values, n: int, restarts: int):
    """The condition values of R starts, repeated for n images (row i * R + r has start r's value)."""
    if values is None:
        return None
    parts = [condition.take(values, 0, restarts) for _ in range(n)]
    if isinstance(values, torch.Tensor):
        return torch.cat(parts)
    return np.concatenate([np.asarray(p) for p in parts])
