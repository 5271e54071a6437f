"""Sampling from a trained generator without the training code or the dataset.

``load_generator(path)`` accepts a generator export (``generator.safetensors``), a run folder (its best
generator when the run evaluated during training, else its last export), ``RUN@last`` / ``RUN@best`` /
``RUN@STEP``, or a training checkpoint, and returns a :class:`GeneratorPipeline` (``source_note`` says which
of a run's generators it is). The pipeline knows no variant: what G
takes besides z comes from the file's condition description (``gankit.variants.base.Condition``). Latent k of
seed s is drawn from its own generator seeded with (s, k), every other per-sample draw from (s, k, stream),
and G runs in eval mode (BatchNorm uses running statistics), so sample k of a seed is the same whatever
the batch size or the number of samples asked for.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from tqdm.auto import tqdm

from gankit.config import RunConfig
from gankit.data import to_uint8_images
from gankit.errors import CheckpointError, ConfigError
from gankit.files import atomic_output, check_state, unprefixed
from gankit.formats import find_checkpoint_file, metadata_field, read_checkpoint, read_generator
from gankit.images import image_grid, label_rows, save_picture, scatter_plot
from gankit.networks import MODELS, Staged, build_network
from gankit.device import resolve_device
from gankit.seeding import latents
from gankit.variants import CONDITIONS, Condition, build_condition, describe_condition, discriminator_heads
from gankit.variants.base import control_keywords


def build_generator(config: RunConfig) -> nn.Module:
    entry, options = MODELS.resolve(config.model, "model")
    return build_network(entry, options, "G")


def stored_config(file: Path, raw: dict) -> RunConfig:
    """The config a file holds, checked; a CheckpointError naming the file when it is not valid."""
    try:
        return RunConfig.from_dict(raw)
    except ConfigError as error:
        raise CheckpointError(f"{file}: the configuration it holds is not valid ({error})") from error


def build_stored(file: Path, config: RunConfig, part: str, state: dict[str, torch.Tensor]) -> nn.Module:
    """G or D ("G" / "D") of ``config`` with ``state`` loaded, every tensor checked first."""
    entry, options = MODELS.resolve(config.model, "model")
    try:
        net = build_network(
            entry, options, part, discriminator_heads(config.objective, options) if part == "D" else None
        )
    except ConfigError as error:
        raise CheckpointError(f"{file}: the model its configuration describes cannot be built ({error})") from error
    check_state(file, f"the {part} weights", state, net.state_dict())
    net.load_state_dict(state)
    return net


def stored_condition(stored, config: RunConfig, G: nn.Module) -> Condition:
    """The condition a file describes, checked against the one its config implies (a file whose description
    was altered, e.g. num_classes, is refused rather than drawn from wrongly)."""
    implied = json.loads(json.dumps(describe_condition(config.objective, G, stored)))  # as a file holds it
    description = stored.condition or implied
    changed = [k for k, v in implied.items() if k != "encoder_file" and description.get(k) != v]
    if changed:
        raise CheckpointError(
            f"{stored.file}: the condition it records ({description}) does not match its "
            f"configuration ({implied}) in {', '.join(changed)}; the file was altered"
        )
    try:
        return build_condition(description, stored)
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{stored.file}: damaged condition description {description} ({error})") from error


class GeneratorPipeline:
    """A generator ready to sample: ``pipeline.sample(64, seed=0)``, with the condition's inputs as keywords
    (``labels=``, ``codes=``, ``text=``: see :meth:`sample`) and its settings through :meth:`set`.

    The pipeline knows no variant. What one kind of generator adds (a class grid, a code traversal, a caption
    grid, translating images) is its condition's: ``pipeline.class_grid(...)`` calls the condition's
    ``class_grid(pipeline, ...)`` (``Condition.verbs``), and a generator of another kind says what it is."""

    def __init__(
        self,
        G: nn.Module,
        config: RunConfig,
        step: int,
        ema: bool,
        device: torch.device,
        condition: Condition | None = None,
        settings: dict[str, float] | None = None,
    ):
        self.G = G.to(device).eval().requires_grad_(False)
        self.config, self.step, self.ema, self.device = config, step, ema, device
        self.condition = (condition if condition is not None else Condition()).to(device)
        self.latent_dim = int(config.model["latent_dim"])
        entry, options = MODELS.resolve(config.model, "model")
        self.kind = entry.factory.output_kind(options)  # "images" or "points"
        for name, value in (settings or {}).items():
            self.set(name, value)
        self.source_note = ""  # which of a run's generators this is (load_generator fills it in)

    def __getattr__(self, name: str):
        """The condition's verbs, lent to the pipeline (only reached when no attribute ``name`` exists)."""
        condition = self.__dict__.get("condition")
        if condition is not None and name in condition.verbs:
            return functools.partial(getattr(condition, name), self)
        owner = next((c for c in CONDITIONS.values() if name in c.verbs), None)
        if condition is not None and owner is not None:
            raise AttributeError(f"{name}: {owner.refusal}; it is {condition.summary()}")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __dir__(self):
        condition = self.__dict__.get("condition")
        return sorted({*super().__dir__(), *(condition.verbs if condition is not None else ())})

    @property
    def settings(self) -> dict[str, float]:
        """The current value of each of the condition's settings (StackGAN: ``condition_noise_scale``)."""
        return self.condition.setting_values()

    def set(self, name: str, value: float) -> None:
        """Change a setting of the condition for every later sample, e.g. ``set("condition_noise_scale", 0)``
        (StackGAN: c = mu + sigma * (scale * eps); 1 is the paper's sampling). Refused where there is none."""
        self.condition.apply_setting(name, value)

    @torch.inference_mode()
    def generate(self, z: torch.Tensor, values=None) -> torch.Tensor:
        """G's output as floats (images in [-1, 1] (N, C, H, W), or points (N, D)) for G's first inputs ``z``
        (what :meth:`inputs` gives) and condition ``values`` (default: the condition's default for len(z):
        labels k mod K; a text-to-image G needs them)."""
        values = self.condition.default(len(z)) if values is None else values
        z = z.to(self.device)
        return self.G(z, *self.condition.rest_args(values, self.device)).float()

    def sample(
        self, n: int, seed: int = 0, batch_size: int = 256, start: int = 0, progress: bool = False, **condition
    ) -> np.ndarray:
        """Samples start .. start+n-1 of ``seed``: uint8 images (N, H, W, C), or float32 points (N, D).

        ``condition`` holds what the generator takes besides z:
        - a class-conditional G: ``labels``, one int for all samples or one per sample; by default sample k
          gets label k mod num_classes;
        - an InfoGAN G: ``codes``, e.g. {"cat0": 3, "cont0": 0.5}, fixed for every sample (or a sequence of
          values per code); the codes not given are drawn per sample;
        - a text-to-image G: ``text``, one caption for all samples or one per sample (any words; unknown ones
          read as <unk>), or precomputed caption ``embeddings`` (n, text_dim).
        """
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        values = self.condition.values_for(n, seed, start, **condition)
        parts = []
        starts = range(0, n, batch_size)
        for begin in tqdm(starts, desc="sampling", unit="batch", disable=not progress or len(starts) < 4):
            count = min(batch_size, n - begin)
            z = latents(count, self.latent_dim, seed, start + begin).to(self.device)
            part = self.condition.take(values, begin, begin + count)
            out = self.run(z, part)
            parts.append(to_uint8_images(out) if self.kind == "images" else out)
        return torch.cat(parts).numpy()

    @torch.inference_mode()
    def run(self, z: torch.Tensor, values) -> torch.Tensor:
        """G(*condition.generator_args(z, values)) as floats on the CPU."""
        return self.G(*self.condition.generator_args(z.to(self.device), values)).float().cpu()

    @property
    def stage_names(self) -> tuple[str, ...]:
        """The names of G's stages (StackGAN: Stage-I, Stage-II); one unnamed stage for other generators."""
        return self.G.stage_names if isinstance(self.G, Staged) else ("output",)

    @torch.inference_mode()
    def stages(self, inputs: torch.Tensor, values) -> list[np.ndarray]:
        """Every stage's output (``stage_names``) for G's first ``inputs`` and condition ``values``, the last
        being what :meth:`generate` gives."""
        args = (inputs.to(self.device), *self.condition.rest_args(values, self.device))
        outputs = self.G.stage_outputs(*args) if isinstance(self.G, Staged) else [self.G(*args)]
        return [self.as_output(out.float().cpu()) for out in outputs]

    def as_output(self, out: torch.Tensor) -> np.ndarray:
        return to_uint8_images(out).numpy() if self.kind == "images" else out.numpy()

    def inputs(self, n: int, seed: int, start: int = 0, **condition) -> torch.Tensor:
        """G's first inputs for samples start .. start+n-1 of ``seed``: the latents, joined with what the
        condition puts there (InfoGAN's codes). The latent-space tools walk these vectors."""
        return self.condition.first_inputs_of(latents(n, self.latent_dim, seed, start), seed, start, **condition)

    def grid(self, entries, columns: int = 8, seed: int = 0) -> np.ndarray:
        """One row per condition value (a class, a caption), one column per latent of samples 0..columns-1 of
        ``seed``: the same z (and noise) down each column, so a row shows what that value alone changes."""
        z, values = self.condition.grid(list(entries), columns, seed, self.latent_dim)
        return self.as_output(self.run(z, values))

    def sweep(self, control: str, values, rows: int = 8, seed: int = 0) -> np.ndarray:
        """One column per value of the input control ``control`` (``codes.cont0``, ``labels``), one row per
        sample 0..rows-1 of ``seed`` (its z and every other input the same along the row): rows * len(values)
        outputs, row-major. InfoGAN's traversal figure is the sweep of a code."""
        self.condition.control(control)  # refuses a name the condition does not offer
        columns = [self.sample(rows, seed=seed, **control_keywords({control: value})) for value in values]
        return np.stack(columns, axis=1).reshape(rows * len(columns), *columns[0].shape[1:])

    def info(self) -> dict:
        parameters = sum(p.numel() for p in self.G.parameters())
        return {
            "model": self.config.model,
            "data": self.config.data,
            "condition": self.condition.describe(),
            "step": self.step,
            "ema": self.ema,
            "generator_parameters": parameters,
        }


def load_generator(path: str | Path, device: str = "cpu", ema: bool = True, **settings: float) -> GeneratorPipeline:
    """Load G from an export, a run folder or a checkpoint (EMA weights when present and ``ema``). ``settings``:
    the condition's settings (:meth:`GeneratorPipeline.set`), e.g. ``condition_noise_scale=0`` for StackGAN."""
    stored = read_generator(path, ema)
    config = stored_config(stored.file, stored.config)
    G = build_stored(stored.file, config, "G", stored.state)
    condition = stored_condition(stored, config, G)
    pipeline = GeneratorPipeline(G, config, stored.step, stored.ema, resolve_device(device), condition, settings)
    pipeline.source_note = stored.note
    return pipeline


def load_discriminator(path: str | Path, device: str = "cpu") -> tuple[nn.Module, RunConfig, int]:
    """D from a run folder's latest checkpoint (or a checkpoint file), in eval mode; with its config and step."""
    file = find_checkpoint_file(path)
    tensors, metadata = read_checkpoint(file)
    config = stored_config(file, metadata_field(file, metadata, "config", dict))
    D = build_stored(file, config, "D", unprefixed("D", tensors))
    return (
        D.to(resolve_device(device)).eval().requires_grad_(False),
        config,
        metadata_field(file, metadata, "step", int),
    )


def random_discriminator(config: RunConfig, seed: int) -> nn.Module:
    """A freshly initialized D of the run's architecture, in eval mode: the random-features baseline."""
    entry, options = MODELS.resolve(config.model, "model")
    torch.manual_seed(seed)
    return entry.factory.discriminator(options, discriminator_heads(config.objective, options)).eval()


def save_samples(
    samples: np.ndarray,
    out: str | Path,
    columns: int | None = None,
    labels=None,
    seed: int = 0,
    row_labels: list[str] | None = None,
) -> Path:
    """Write what :meth:`GeneratorPipeline.sample` (or ``grid``) returned, by the form of ``out``:

    - ``*.npz``: ``images`` (uint8 N H W C) or ``points`` (float32 N D), and ``labels`` when given;
    - ``*.png``: one grid picture (``columns`` per row; a square grid when None; each row's name in a margin
      when ``row_labels`` are given: class names, captions), or a scatter plot of points;
    - a path without a suffix: a folder of PNGs named ``<seed>-<index>[-label<y>].png`` (images only).
    """
    out = Path(out)
    images = samples.dtype == np.uint8 and samples.ndim == 4
    if out.suffix == ".npz":
        out.parent.mkdir(parents=True, exist_ok=True)
        extra = {} if labels is None else {"labels": np.asarray(labels)}
        with atomic_output(out) as tmp, open(tmp, "wb") as f:
            np.savez_compressed(f, **{"images" if images else "points": samples}, **extra)
    elif out.suffix == ".png":
        picture = image_grid(samples, columns=columns) if images else scatter_plot(samples)
        save_picture(label_rows(picture, row_labels) if images and row_labels else picture, out)
    elif out.suffix:
        raise ValueError(f"the output must end in .npz or .png, or be a folder; got {out}")
    else:
        if not images:
            raise ValueError("a folder of PNGs needs an image model; use .npz or .png for points")
        out.mkdir(parents=True, exist_ok=True)
        for i, image in enumerate(samples):
            picture = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
            label = "" if labels is None else f"-label{labels[i]}"
            save_picture(picture, out / f"{seed:04d}-{i:06d}{label}.png")
    return out
