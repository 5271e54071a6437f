"""Sampling from a trained generator without the training code or the dataset.

``load_generator(path)`` accepts a generator export (``generator.safetensors``),
a run folder (its export), or a training checkpoint, and returns a
:class:`GeneratorPipeline`. Latent k of seed s is drawn from its own generator
seeded with (s, k), and G runs in eval mode (BatchNorm uses running
statistics), so sample k of a seed is the same whatever the batch size or
the number of samples asked for.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from gankit.checkpoint import (
    FORMAT_CHECKPOINT,
    FORMAT_GENERATOR,
    CheckpointError,
    list_checkpoints,
    read_metadata,
    read_tensors,
    unprefixed,
)
from gankit.config import RunConfig
from gankit.data import to_uint8_images
from gankit.models import MODELS


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' -> CUDA when available, else CPU; anything else is checked and returned."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise ValueError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available here; use device=cpu")
    return device


def latents(n: int, latent_dim: int, seed: int, start: int = 0) -> torch.Tensor:
    """Standard normal latents for samples start .. start+n-1 of ``seed``.

    Latent k comes from its own NumPy generator seeded with the sequence
    (seed, k), so it never depends on n, on batching, or on other draws.
    """
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    rows = [np.random.default_rng([seed, start + i]).standard_normal(latent_dim, dtype=np.float32) for i in range(n)]
    return torch.from_numpy(np.stack(rows)) if rows else torch.empty(0, latent_dim)


def condition_noise(n: int, dim: int, seed: int, start: int = 0) -> torch.Tensor:
    """The conditioning-augmentation noise eps of samples start .. start+n-1 (StackGAN's c = mu + sigma * eps):
    from a generator seeded with (seed, k, 2), so a text-to-image sample k is fixed by its seed too."""
    rows = [np.random.default_rng([seed, start + i, 2]).standard_normal(dim, dtype=np.float32) for i in range(n)]
    return torch.from_numpy(np.stack(rows)) if rows and dim else torch.zeros(n, dim)


def caption_grid_latents(rows: int, columns: int, latent_dim: int, noise_dim: int, seed: int):
    """z and conditioning noise of a caption grid: samples 0..columns-1 of ``seed``, repeated for each of
    ``rows`` captions (row-major), so a column keeps its style while the caption changes."""
    z = latents(columns, latent_dim, seed).repeat(rows, 1)
    return z, condition_noise(columns, noise_dim, seed).repeat(rows, 1)


def cycled_labels(n: int, num_classes: int, start: int = 0) -> torch.Tensor:
    """Labels for samples start .. start+n-1 when none are given: 0, 1, ..., K-1, 0, 1, ..."""
    return (torch.arange(start, start + n) % num_classes).long()


def label_tensor(labels, n: int, num_classes: int, start: int = 0) -> torch.Tensor | None:
    """The class labels of samples start .. start+n-1: None for an unconditional G; cycled when not given;
    one int for all samples; or a sequence of n ints."""
    if not num_classes:
        if labels is not None:
            raise ValueError("this generator is not class-conditional; it takes no labels")
        return None
    if labels is None:
        return cycled_labels(n, num_classes, start)
    labels = torch.as_tensor(labels, dtype=torch.long).flatten()
    if labels.numel() == 1:
        labels = labels.expand(n)
    elif labels.numel() != n:
        raise ValueError(f"{labels.numel()} labels for {n} samples; give one label, or one per sample")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"labels must be in 0..{num_classes - 1}, got {labels.tolist()[:10]}")
    return labels.clone()


def generator_inputs(n: int, latent_dim: int, seed: int, start: int = 0, layout=None, codes=None) -> torch.Tensor:
    """G's inputs for samples start .. start+n-1 of ``seed``: :func:`latents`, and with an InfoGAN code
    ``layout`` the codes in the last entries, drawn per sample from a generator seeded with (seed, k, 1)
    and then set to ``codes`` ({name: value}) where given."""
    z = latents(n, latent_dim, seed, start)
    if layout is None:
        return z
    drawn = [layout.sample_one(np.random.default_rng([seed, start + i, 1])) for i in range(n)]
    c = torch.from_numpy(np.stack(drawn)) if drawn else torch.empty(0, layout.dim)
    for name, value in (codes or {}).items():  # one value for all, or a sequence over samples 0..end
        per_sample = not np.isscalar(value)
        c = layout.set_code(c, name, np.asarray(value)[start : start + n] if per_sample else value)
    return layout.join(z, c)


def code_layout(config: RunConfig):
    """The InfoGAN code layout of a run's config, or None for other objectives."""
    if config.objective.get("name") != "infogan":
        return None
    from gankit.objectives import OBJECTIVES

    return OBJECTIVES.resolve(config.objective, "objective")[1].layout


def build_generator(config: RunConfig) -> nn.Module:
    entry, options = MODELS.resolve(config.model, "model")
    return entry.factory.generator(options)


class GeneratorPipeline:
    """A generator ready to sample: ``pipeline.sample(64, seed=0)``."""

    def __init__(self, G: nn.Module, config: RunConfig, step: int, ema: bool, device: torch.device,
                 text_encoder: nn.Module | None = None, condition_noise_scale: float = 1.0):  # fmt: skip
        self.G = G.to(device).eval().requires_grad_(False)
        self.config, self.step, self.ema, self.device = config, step, ema, device
        self.latent_dim = int(config.model["latent_dim"])
        self.num_classes = int(config.model.get("num_classes") or 0)  # > 0: G takes class labels
        self.codes = code_layout(config)  # InfoGAN: the code part of G's input, else None
        # Text-to-image: the encoder the export carries; G takes caption embeddings (and CA noise).
        self.text_encoder = None if text_encoder is None else text_encoder.to(device).eval()
        self.condition_noise_scale = 1.0
        self.set_condition_noise_scale(condition_noise_scale)
        if self.text_encoder is not None:
            self.kind = "images"
        else:
            self.kind = "images" if self.generate(latents(1, self.latent_dim, 0)).dim() == 4 else "points"

    @torch.inference_mode()
    def generate(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """G(z) (G(z, labels) for a conditional G; labels cycle 0..K-1 when not given) as floats:
        images in [-1, 1] (N, C, H, W), or points (N, D)."""
        labels = label_tensor(labels, len(z), self.num_classes)
        if labels is None:
            return self.G(z.to(self.device)).float()
        return self.G(z.to(self.device), labels.to(self.device)).float()

    def sample(
        self,
        n: int,
        seed: int = 0,
        batch_size: int = 256,
        start: int = 0,
        progress: bool = False,
        labels=None,
        codes: dict[str, float] | None = None,
        text: str | list[str] | None = None,
    ) -> np.ndarray:
        """``n`` samples of ``seed``: uint8 images (N, H, W, C), or float32 points (N, D).

        A class-conditional G takes ``labels``: one int for all samples or one per sample; by default
        sample k gets label k mod num_classes. An InfoGAN G takes ``codes``, e.g. {"cat0": 3, "cont0": 0.5},
        fixed for every sample; the codes not given are drawn per sample. A text-to-image G takes ``text``:
        one caption for all samples or one per sample (any words; unknown ones read as <unk>).
        """
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        from tqdm.auto import tqdm

        if self.text_encoder is not None or text is not None:
            return self.sample_text(n, text, seed, batch_size, start, progress)
        all_labels = label_tensor(labels, n, self.num_classes, start)
        parts = []
        starts = range(0, n, batch_size)
        for begin in tqdm(starts, desc="sampling", unit="batch", disable=not progress or len(starts) < 4):
            count = min(batch_size, n - begin)
            batch_labels = None if all_labels is None else all_labels[begin : begin + count]
            out = self.generate(self.inputs(count, seed, start + begin, codes), batch_labels).cpu()
            parts.append(to_uint8_images(out) if self.kind == "images" else out)
        return torch.cat(parts).numpy()

    def captions(self, text, n: int) -> list[str]:
        """``text`` as n captions: one caption (str, or a list of one) for all, or a list of n."""
        if self.text_encoder is None:
            raise ValueError("this generator is not text-conditional; it takes no text")
        if text is None:
            raise ValueError("this generator draws from text: pass text='a small red sandal ...' (or a list)")
        texts = [text] if isinstance(text, str) else list(text)
        if len(texts) == 1:
            texts = texts * n
        if len(texts) != n or not all(isinstance(t, str) for t in texts):
            raise ValueError(f"{len(texts)} captions for {n} samples; give one caption, or one per sample")
        return texts

    @torch.inference_mode()
    def embed(self, texts: list[str]) -> torch.Tensor:
        """Caption embeddings phi(t) (N, text_dim) from the export's text encoder."""
        return self.text_encoder(texts).float()

    def set_condition_noise_scale(self, scale: float) -> None:
        """Scale StackGAN's conditioning-augmentation noise at sampling time: c = mu + sigma * (scale * eps).
        1 is the paper's sampling; 0 conditions every sample on the mean mu (truer to the caption, less varied:
        a truncation of the condition, as BigGAN's truncation trick is one of z). Every text-to-image draw
        (samples, grids, interpolations, evaluate-text) goes through it."""
        if not scale >= 0:  # also refuses NaN
            raise ValueError(f"condition_noise_scale must be >= 0, got {scale}")
        if scale != 1.0 and not getattr(self.G, "condition_noise_dim", 0):
            raise ValueError("condition_noise_scale applies to StackGAN's conditioning augmentation; this generator "
                             "has none (a gan-cls G conditions on the compressed caption without noise)")  # fmt: skip
        self.condition_noise_scale = float(scale)

    @torch.inference_mode()
    def generate_text(self, z: torch.Tensor, embeddings: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """G(z, phi(t), eps * condition_noise_scale) as floats in [-1, 1] (N, C, H, W)."""
        noise = noise.to(self.device) * self.condition_noise_scale
        return self.G(z.to(self.device), embeddings.to(self.device), noise).float()

    def sample_text(self, n: int, text, seed: int = 0, batch_size: int = 256, start: int = 0, progress: bool = False,
                    embeddings: torch.Tensor | None = None) -> np.ndarray:  # fmt: skip
        """Samples start .. start+n-1 of ``seed`` for ``text`` (or precomputed caption ``embeddings`` (n, D)):
        z_k and the conditioning-augmentation noise eps_k come from per-sample generators."""
        from tqdm.auto import tqdm

        texts = self.captions(text, n) if embeddings is None else None
        parts, starts = [], range(0, n, batch_size)
        for begin in tqdm(starts, desc="sampling", unit="batch", disable=not progress or len(starts) < 4):
            count = min(batch_size, n - begin)
            k = start + begin
            phi = self.embed(texts[begin : begin + count]) if embeddings is None else embeddings[begin : begin + count]
            z = latents(count, self.latent_dim, seed, k)
            out = self.generate_text(z, phi, condition_noise(count, self.G.condition_noise_dim, seed, k)).cpu()
            parts.append(to_uint8_images(out))
        return torch.cat(parts).numpy()

    def text_grid(self, texts: list[str], columns: int = 8, seed: int = 0) -> np.ndarray:
        """One row per caption, one column per (z, eps) of samples 0..columns-1 of ``seed``: along a row the
        text is fixed and the style varies; down a column the style is fixed and the text varies."""
        phi = self.embed(list(texts)).repeat_interleave(columns, dim=0)
        z, noise = caption_grid_latents(len(texts), columns, self.latent_dim, self.G.condition_noise_dim, seed)
        return to_uint8_images(self.generate_text(z, phi, noise).cpu()).numpy()

    def inputs(self, n: int, seed: int, start: int = 0, codes: dict[str, float] | None = None) -> torch.Tensor:
        """G's inputs for samples start .. start+n-1 of ``seed``: the latents, and for InfoGAN the codes in
        their last entries, drawn per sample from its own generator (seeded with (seed, k, 1)), then
        the ``codes`` given set."""
        if self.codes is None and codes:
            raise ValueError("this generator has no latent codes (not an InfoGAN run)")
        return generator_inputs(n, self.latent_dim, seed, start, self.codes, codes)

    def traverse(self, code: str, values, rows: int = 8, seed: int = 0) -> np.ndarray:
        """InfoGAN's figure: ``rows`` fixed inputs (noise and other codes of ``seed``), one column per value
        of ``code``; uint8 images, row-major, rows * len(values) of them."""
        if self.codes is None:
            raise ValueError("this generator has no latent codes (not an InfoGAN run)")
        base = self.inputs(rows, seed)
        noise_dim = self.latent_dim - self.codes.dim
        columns = [torch.cat([base[:, :noise_dim], self.codes.set_code(base[:, noise_dim:], code, v)], dim=1) for v in values]
        z = torch.stack(columns, dim=1).reshape(rows * len(values), self.latent_dim)
        out = self.generate(z).cpu()
        return to_uint8_images(out).numpy() if self.kind == "images" else out.numpy()

    def class_grid(self, labels, columns: int = 8, seed: int = 0) -> np.ndarray:
        """One row per label, one column per latent: the same z along each column (uint8 images,
        row-major, len(labels) * columns of them). Shows what the label alone changes."""
        if not self.num_classes:
            raise ValueError("this generator is not class-conditional; a class grid needs labels")
        labels = label_tensor(list(labels), len(labels), self.num_classes)
        z = latents(columns, self.latent_dim, seed).repeat(len(labels), 1)
        out = self.generate(z, labels.repeat_interleave(columns)).cpu()
        return to_uint8_images(out).numpy() if self.kind == "images" else out.numpy()

    def info(self) -> dict:
        parameters = sum(p.numel() for p in self.G.parameters())
        return {
            "model": self.config.model,
            "data": self.config.data,
            "step": self.step,
            "ema": self.ema,
            "generator_parameters": parameters,
        }


def find_generator_file(path: Path) -> Path:
    path = Path(path)
    if path.is_dir():
        if (path / "generator.safetensors").is_file():
            return path / "generator.safetensors"
        checkpoints = list_checkpoints(path / "checkpoints")
        if checkpoints:
            return checkpoints[-1][1]
        raise CheckpointError(f"{path}: no generator.safetensors and no checkpoints; is this a gankit run folder?")
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist")
    return path


def load_generator(path: str | Path, device: str = "cpu", ema: bool = True,
                   condition_noise_scale: float = 1.0) -> GeneratorPipeline:  # fmt: skip
    """Load G from an export, a run folder or a checkpoint (EMA weights when present and ``ema``).
    ``condition_noise_scale``: see :meth:`GeneratorPipeline.set_condition_noise_scale` (StackGAN only)."""
    file = find_generator_file(Path(path))
    kind = read_metadata(file).get("format")
    if kind == FORMAT_GENERATOR:
        tensors, metadata = read_tensors(file, FORMAT_GENERATOR)
        state, is_ema = tensors, json.loads(metadata["ema"])
    elif kind == FORMAT_CHECKPOINT:
        tensors, metadata = read_tensors(file, FORMAT_CHECKPOINT)
        is_ema = ema and any(k.startswith("G_ema.") for k in tensors)
        state = unprefixed("G_ema" if is_ema else "G", tensors)
    else:
        raise CheckpointError(f"{file}: not a gankit generator export or checkpoint (format {kind!r})")
    config = RunConfig.from_dict(json.loads(metadata["config"]))
    G = build_generator(config)
    text_encoder = None
    if "text_encoder" in metadata:  # a text-to-image export carries its encoder
        from gankit.text import build_text_encoder

        text_encoder = build_text_encoder(json.loads(metadata["text_encoder"]), unprefixed("text_encoder", tensors))
        state = {k: v for k, v in state.items() if not k.startswith("text_encoder.")}
    elif config.objective.get("name") in ("gan-cls", "stackgan"):  # a checkpoint: the encoder from the config
        from gankit.text import load_text_encoder
        from gankit.text_objectives import encoder_source
        from gankit.objectives import OBJECTIVES

        text_encoder = load_text_encoder(encoder_source(OBJECTIVES.resolve(config.objective, "objective")[1]))
    try:
        G.load_state_dict(state)
    except RuntimeError as error:
        raise CheckpointError(f"{file}: weights do not fit the model its config describes ({error})") from error
    return GeneratorPipeline(G, config, int(metadata["step"]), is_ema, resolve_device(device), text_encoder,
                             condition_noise_scale)  # fmt: skip


def load_discriminator(path: str | Path, device: str = "cpu") -> tuple[nn.Module, RunConfig, int]:
    """D from a run folder's latest checkpoint (or a checkpoint file), in eval mode; with its config and step."""
    path = Path(path)
    if path.is_dir():
        checkpoints = list_checkpoints(path / "checkpoints")
        if not checkpoints:
            raise CheckpointError(f"{path}: no checkpoints; D is kept only in training checkpoints")
        path = checkpoints[-1][1]
    tensors, metadata = read_tensors(path, FORMAT_CHECKPOINT)
    config = RunConfig.from_dict(json.loads(metadata["config"]))
    entry, options = MODELS.resolve(config.model, "model")
    D = entry.factory.discriminator(options)
    D.load_state_dict(unprefixed("D", tensors))
    return D.to(resolve_device(device)).eval().requires_grad_(False), config, int(metadata["step"])


def random_discriminator(config: RunConfig, seed: int) -> nn.Module:
    """A freshly initialized D of the run's architecture, in eval mode: the random-features baseline."""
    entry, options = MODELS.resolve(config.model, "model")
    torch.manual_seed(seed)
    return entry.factory.discriminator(options).eval()
