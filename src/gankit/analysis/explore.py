"""Exploring a trained generator one picture at a time: the functions behind ``gankit serve``'s explorer.

A picture is named by what a URL can carry: a :class:`Point` (sample 0 of a seed, with some entries of its z
set by hand) and the condition's inputs (``given``: a class, InfoGAN codes, a caption), which
:func:`parse_controls` reads from strings using the condition's own :meth:`~gankit.variants.Condition.controls`
list, so no function here names a variant. Everything is seeded: the same arguments give the same pixels.

    pipeline = load_generator("runs/fm")
    given, settings = parse_controls(pipeline.condition, {"labels": "3"})
    picture = render(pipeline, [Point(7, {0: 1.5})], given)              # uint8 (1, H, W, C)
    strip = interpolate(pipeline, Point(1), Point(2), 9, "slerp", given)  # uint8 (9, H, W, C)
    panel = arithmetic_panel(pipeline, [Point(1)], [Point(2)], [Point(3)], given)
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import torch

from gankit.analysis.latent import arithmetic, path
from gankit.inference import GeneratorPipeline
from gankit.seeding import latents
from gankit.variants.base import control_keywords, parse_control_value

MAX_EDITS = 4096  # z entries a point may set by hand (DCGAN's z has 100)
MAX_VALUE = 10.0  # |edited z entry|: 10 standard deviations is already far outside what G was trained on


@dataclasses.dataclass(frozen=True)
class Point:
    """Sample 0 of ``seed`` (what ``gankit sample --seed seed`` draws first), with z entries ``edits``
    ({index: value}) set by hand."""

    seed: int
    edits: dict[int, float] = dataclasses.field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> "Point":
        """``"SEED"`` or ``"SEED~I=V~J=W"`` (what the explorer's URLs carry)."""
        seed_text, *pairs = str(text).split("~")
        try:
            seed = int(seed_text)
            edits = {int(i): float(v) for i, v in (pair.split("=", 1) for pair in pairs)}
        except ValueError:
            raise ValueError(f"a point is SEED or SEED~INDEX=VALUE~..., got {text!r}") from None
        return cls(seed, edits)

    def format(self) -> str:
        return "~".join([str(self.seed), *(f"{i}={v:g}" for i, v in sorted(self.edits.items()))])


def check_point(pipeline: GeneratorPipeline, point: Point) -> None:
    editable = pipeline.condition.noise_dims(pipeline.latent_dim)
    if not 0 <= point.seed < 2**63:
        raise ValueError(f"seed must be in [0, 2^63), got {point.seed}")
    if len(point.edits) > MAX_EDITS:
        raise ValueError(f"at most {MAX_EDITS} edited z entries, got {len(point.edits)}")
    for index, value in point.edits.items():
        if not 0 <= index < editable:
            raise ValueError(f"z entry {index} does not exist: this generator's noise has entries 0..{editable - 1}")
        if not (math.isfinite(value) and abs(value) <= MAX_VALUE):
            raise ValueError(f"z entry {index}: values must be finite and within +-{MAX_VALUE:g}, got {value}")


def noise(pipeline: GeneratorPipeline, point: Point) -> torch.Tensor:
    """The point's z (1, latent_dim), edits applied."""
    check_point(pipeline, point)
    z = latents(1, pipeline.latent_dim, point.seed)
    for index, value in point.edits.items():
        z[0, index] = value
    return z


def first_inputs(pipeline: GeneratorPipeline, points: list[Point], given: dict[str, Any]) -> torch.Tensor:
    """G's first inputs (N, D) for ``points``: their z, joined with what the condition puts there."""
    return torch.cat([pipeline.condition.first_inputs_of(noise(pipeline, p), p.seed, 0, **given) for p in points])


def values_for(pipeline: GeneratorPipeline, n: int, seed: int, given: dict[str, Any]):
    """The condition's values for ``n`` outputs that all take ``given`` (its noise from ``seed``)."""
    return pipeline.condition.values_for(n, seed, 0, **given)


def draw(pipeline: GeneratorPipeline, inputs: torch.Tensor, values) -> np.ndarray:
    """uint8 images (N, H, W, C), or points, of G's first ``inputs`` under condition ``values``."""
    return pipeline.as_output(pipeline.generate(inputs, values).cpu())


def render(
    pipeline: GeneratorPipeline, points: list[Point], given: dict[str, Any] | None = None, stage: int = -1
) -> np.ndarray:
    """One output per point, each with the condition's values of its own seed; ``stage``: which of G's stages
    (``pipeline.stage_names``: StackGAN's Stage-I is 0), the last by default."""
    given = given or {}
    if not -len(pipeline.stage_names) <= stage < len(pipeline.stage_names):
        raise ValueError(
            f"stage must be 0..{len(pipeline.stage_names) - 1} ({', '.join(pipeline.stage_names)}), got {stage}"
        )
    parts = [
        pipeline.stages(first_inputs(pipeline, [p], given), values_for(pipeline, 1, p.seed, given))[stage]
        for p in points
    ]
    return np.concatenate(parts)


def seed_plane(
    pipeline: GeneratorPipeline, first_seed: int, count: int, given: dict[str, Any] | None = None
) -> np.ndarray:
    """Sample 0 of seeds first_seed .. first_seed+count-1: a plane of starting points to click."""
    return render(pipeline, [Point(first_seed + k) for k in range(count)], given)


def interpolate(
    pipeline: GeneratorPipeline,
    a: Point,
    b: Point,
    steps: int,
    mode: str = "slerp",
    given: dict[str, Any] | None = None,
) -> np.ndarray:
    """``steps`` outputs from ``a`` to ``b`` (endpoints included) along a straight (``linear``) or spherical
    (``slerp``) path through G's first inputs; the condition is held at ``given`` (and ``a``'s noise)."""
    given = given or {}
    inputs = path(first_inputs(pipeline, [a, b], given), steps, mode)[0]
    return draw(pipeline, inputs, values_for(pipeline, steps, a.seed, given))


def arithmetic_panel(
    pipeline: GeneratorPipeline,
    a: list[Point],
    b: list[Point],
    c: list[Point],
    given: dict[str, Any] | None = None,
    variants: int = 4,
    noise_scale: float = 0.25,
    seed: int = 0,
) -> np.ndarray:
    """The DCGAN paper's vector arithmetic (section 6.3.2): mean(A) - mean(B) + mean(C) on G's first inputs.
    Outputs: the images of mean A, mean B, mean C, the result, then ``variants`` results with uniform noise of
    scale ``noise_scale`` (as the paper shows them)."""
    given = given or {}
    if not (a and b and c):
        raise ValueError("vector arithmetic needs at least one sample in each of A, B and C")
    concepts = {name: first_inputs(pipeline, points, given) for name, points in (("A", a), ("B", b), ("C", c))}
    result = arithmetic(concepts, noise=noise_scale, variants=variants, seed=seed)
    inputs = torch.cat([torch.stack([result["means"][n] for n in "ABC"]), result["result"][None], result["variants"]])
    return draw(pipeline, inputs, values_for(pipeline, len(inputs), a[0].seed, given))


def held_out_data(section: dict[str, Any]):
    """The data a config section names, its test split when the source has one (else the training data)."""
    from gankit.data import has_test_split, load_dataset, with_split

    return load_dataset(with_split(section, "test") if has_test_split(section) else section)


def data_pairs(pipeline: GeneratorPipeline, dataset, start: int, count: int) -> tuple[np.ndarray, int | None]:
    """An image-conditioned G on rows start .. start+count-1 of ``dataset``: (input | output | target images,
    columns), as the training grid shows them."""
    if not 0 <= start < len(dataset):
        raise ValueError(f"start must be in 0..{len(dataset) - 1} (the data has {len(dataset)} pairs), got {start}")
    index = torch.arange(start, min(start + count, len(dataset)))
    values = pipeline.condition.pairs(dataset, index)
    outputs = pipeline.as_output(pipeline.run(latents(len(index), pipeline.latent_dim, 0), values))
    return pipeline.condition.picture(outputs, values)


def parse_controls(condition, raw: dict[str, str]) -> tuple[dict[str, Any], dict[str, float]]:
    """(given, settings) from strings keyed by the names of ``condition.controls()``: ``given`` holds the
    keywords of ``sample`` (``codes.cat0`` -> ``{"codes": {"cat0": v}}``), ``settings`` the condition's settings.
    Every value is checked against its control; names the condition does not offer are refused."""
    controls = {c["name"]: c for c in condition.controls()}
    unknown = sorted(set(raw) - set(controls))
    if unknown:
        offered = ", ".join(controls) or "none"
        raise ValueError(
            f"this generator has no input {', '.join(unknown)} (it is {condition.summary()}; inputs: {offered})"
        )
    values = {name: parse_control_value(controls[name], text) for name, text in raw.items()}
    return split_controls(condition, values)


def split_controls(condition, values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, float]]:
    """Parsed control values as (the keywords of ``sample``, the settings)."""
    types = {c["name"]: c["type"] for c in condition.controls()}
    settings = {name: value for name, value in values.items() if types[name] == "setting"}
    return control_keywords({n: v for n, v in values.items() if n not in settings}), settings


def apply_settings(pipeline: GeneratorPipeline, settings: dict[str, float]) -> None:
    """Apply the ``setting`` controls, their defaults for those not in ``settings``."""
    for control in pipeline.condition.controls():
        if control["type"] == "setting":
            pipeline.set(control["name"], settings.get(control["name"], control["default"]))


def needs_input(pipeline: GeneratorPipeline, given: dict[str, Any]) -> list[str]:
    """The controls without a default that ``given`` lacks (a text-to-image G's caption, an image-conditioned
    G's input images)."""
    return [
        c["name"] for c in pipeline.condition.controls() if c["type"] in ("text", "image") and c["name"] not in given
    ]
