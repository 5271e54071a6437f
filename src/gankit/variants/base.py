"""What every variant shares: the condition protocol, the per-step context, the objective interface.

A **variant** (the config's ``objective`` section) is one file in this folder: its options, its
:class:`Condition` and its phase losses. Its networks are one file under ``gankit/networks``. The
trainer, the sampling pipeline, EMA recalibration, the sample grids and the exporter ask the condition and
the objective through the methods below and never name a variant.

**The condition** is what G (and D) take besides z: nothing, class labels, InfoGAN's codes, a caption
embedding. It draws its values for a training batch (from the dataset and the global generator, so resume
is exact), for BatchNorm re-estimation (from a generator of its own), for the fixed training grid and for
sample k of a seed (per-sample generators, so sample k never depends on batching). Every G is called as
``G(*condition.generator_args(z, values))``; the first argument is the vector the latent-space tools walk
(z, or z joined with InfoGAN's codes). ``describe()`` is what an export records so that sampling rebuilds
the condition without the variant's objective.

**A training step** passes one :class:`StepContext` through both phases: ``d_step(ctx)`` computes D's loss
and leaves G's samples (and anything G's phase reuses) on the context; ``g_step(ctx)`` computes G's loss
from it. Nothing is kept on the objective between phases.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from gankit.registry import ConfigError, Registry
from gankit.seeding import latents

VARIANTS: Registry = Registry("objective")  # the config's objective section names a variant
CONDITIONS: dict[str, type["Condition"]] = {}  # kind -> condition class, for rebuilding from an export


def register_condition(cls: type["Condition"]) -> type["Condition"]:
    if cls.kind in CONDITIONS:
        raise ValueError(f"condition kind {cls.kind!r} is registered twice")
    CONDITIONS[cls.kind] = cls
    return cls


@contextlib.contextmanager
def frozen(module: nn.Module):
    """Build graphs through ``module`` without gradients for its parameters.

    In G's step only the gradient with respect to D's input is needed; autograd records ``requires_grad``
    when the graph is built, so D's weight gradients are skipped in the later backward pass too (about 1.2x
    faster per step here).
    """
    flags = [p.requires_grad for p in module.parameters()]
    module.requires_grad_(False)
    try:
        yield module
    finally:
        for p, flag in zip(module.parameters(), flags):
            p.requires_grad_(flag)


def wide(x: torch.Tensor) -> torch.Tensor:
    """Logits and features in at least fp32: losses are computed in full precision under bf16 autocast."""
    return x.float() if x.dtype in (torch.bfloat16, torch.float16) else x


@dataclasses.dataclass
class StepOutput:
    loss: torch.Tensor
    stats: dict[str, torch.Tensor]  # detached scalars, read only when logged


@dataclasses.dataclass
class StepContext:
    """One training step's inputs, passed to D's phase and then to G's.

    ``real`` is the real batch in [-1, 1], ``z`` the trainer's standard normal draw, ``condition`` what the
    variant's condition drew for the batch. D's phase sets ``fake`` (G's samples, with their graph) and
    records in ``saved`` what G's phase reuses (named entries, e.g. the real features for feature matching)."""

    real: torch.Tensor
    z: torch.Tensor
    condition: Any = None
    fake: torch.Tensor | None = None
    saved: dict[str, Any] = dataclasses.field(default_factory=dict)


class Condition:
    """What G and D take besides z. This base class is the unconditional case: nothing.

    Subclasses (one per kind, in their variant's file) override what differs. Values are opaque to the
    callers: they come from ``batch``, ``draw``, ``values_for``, ``grid`` or ``training_grid``, pass through
    ``take`` (a slice of samples) and end in ``generator_args`` / ``discriminator_kwargs``.

    The protocol comes in four groups (:data:`CONDITION_GROUPS`), each used by its own callers: the **record**
    (what a file stores and says), **training** (the loop's draws and G's and D's arguments), **sampling** (the
    pipeline, evaluation, export, the latent tools) and the **front end** (controls, typed inputs, pictures).
    ``tests/test_layers.py`` checks that the training modules use the record and training groups only, and
    that every method belongs to one group."""

    kind: ClassVar[str] = "none"
    accepts: ClassVar[tuple[str, ...]] = ()  # keyword inputs ``sample`` takes (labels, codes, text)
    needs_input: ClassVar[bool] = False  # sampling needs the user's input (a caption): no default draw
    # Where sampling needs input, whether a periodic evaluation during training can draw it from the training data
    # (``evaluation_inputs`` once ``prepare``d: pix2pix translates the training pairs' inputs).
    evaluates_on_training_inputs: ClassVar[bool] = False
    refusal: ClassVar[str] = ""  # what a generator without this condition says when given its inputs
    # Methods of this condition that ``GeneratorPipeline`` lends as its own (``pipeline.class_grid(...)`` calls
    # ``condition.class_grid(pipeline, ...)``): the conveniences of one kind of generator, kept in its file.
    verbs: ClassVar[tuple[str, ...]] = ()

    # ------------------------------------------------------------------ description (exports)
    def describe(self) -> dict[str, Any]:
        """What an export records to rebuild this condition (JSON-able)."""
        return {"kind": self.kind}

    def export_parts(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Tensors (named with the prefix ``describe()["tensors"]``) and metadata entries an export carries."""
        return {}, {}

    @classmethod
    def from_description(cls, description: dict[str, Any], stored) -> "Condition":
        """Rebuild from ``describe()``'s output and the stored file (``gankit.formats.GeneratorFile``)."""
        return cls()

    def summary(self) -> str:
        return "an unconditional generator"

    def to(self, device) -> "Condition":
        return self

    # ------------------------------------------------------------------ interactive front ends
    def controls(self) -> list[dict[str, Any]]:
        """What a front end (``gankit serve``'s explorer) lets a user set when sampling, as JSON-able dicts:

        - ``name``: a keyword of :meth:`sample` (``labels``, ``text``), or ``group.key`` for one entry of a
          dict keyword (``codes.cat0``: ``sample(codes={"cat0": v})``);
        - ``type``: ``class`` (one of ``options``, sent as its index), ``choice`` (an integer 0..count-1),
          ``range`` (a float in [min, max]), ``text`` (at most ``max_length`` characters) or ``setting``
          (a float in [min, max] applied with ``apply_setting``, not a keyword of ``sample``) or ``image``
          (input images: ``gankit translate``, the explorer's data rows);
        - ``label`` and ``default``; ``ordered``: a ``choice`` whose values are ordered (a bit), so its effect may
          be monotone (``range`` controls always are).

        The explorer builds its widgets from this list, ``gankit sample`` its flags (``--labels``,
        ``--codes.cat0``, ``--condition-noise-scale``); neither knows a variant."""
        return []

    def control(self, name: str) -> dict[str, Any]:
        """The control called ``name`` (or, when one control's name ends so, ``.name``: ``cont0`` for
        ``codes.cont0``); a ValueError naming the ones there are when there is none."""
        controls = {c["name"]: c for c in self.controls()}
        short = [c for c in controls if c.endswith(f".{name}")]
        if name not in controls and len(short) == 1:
            return controls[short[0]]
        if name not in controls:
            offered = ", ".join(controls) or "none"
            raise ValueError(f"this generator has no input {name} (it is {self.summary()}; inputs: {offered})")
        return controls[name]

    def parse_input(self, name: str, text: str) -> list[Any]:
        """The values one typed entry for control ``name`` stands for (a command-line flag, a URL parameter),
        checked against the control: one value here; a condition may read more from one entry (``labels=all``),
        each of which then draws one row of a grid."""
        return [parse_control_value(self.control(name), text)]

    def row_names(self, entries: list[Any]) -> list[str]:
        """The margin names of a grid's rows drawn for ``entries`` (values of one control)."""
        return [str(e) for e in entries]

    def row_labels(self, entries: list[Any]) -> np.ndarray | None:
        """The class index a grid's rows stand for, stored beside the samples (``.npz``); None without classes."""
        return None

    # ------------------------------------------------------------------ settings (applied to every sample)
    def setting_values(self) -> dict[str, float]:
        """The current value of each ``setting`` control, by name."""
        return {}

    def apply_setting(self, name: str, value: float) -> None:
        """Set a ``setting`` control (StackGAN's conditioning noise scale); refused when there is no such setting."""
        raise ValueError(f"this generator has no setting {name!r}: it is {self.summary()}")

    def explorer_state(self, first_input: np.ndarray, values: Any) -> tuple[np.ndarray, dict[str, Any]]:
        """The explorer's view of one of G's first inputs (a projected image's) and its condition ``values`` (one
        sample's): the z entries a point sets (its noise, as ``noise_dims`` counts them) and the control settings
        ({control name: value}) that together draw it again, as near as the controls can say it."""
        return np.asarray(first_input, dtype=np.float64).reshape(-1), {}

    def pairs(self, dataset, index: torch.Tensor) -> Any:
        """Values (inputs and their targets) for rows ``index`` of ``dataset``: image-conditioned generators only."""
        raise ValueError(f"this generator takes no input images: it is {self.summary()}")

    def picture(self, outputs: np.ndarray, values: Any, columns: int | None = None) -> tuple[np.ndarray, int | None]:
        """The images a grid shows for ``outputs`` (uint8 (N, H, W, C)) drawn with ``values``, and its columns:
        the outputs themselves here; an image-conditioned G shows input | output | target."""
        return outputs, columns

    # ------------------------------------------------------------------ exported graphs (gankit.portable)
    def argument_docs(self, latent_dim: int) -> list[dict[str, Any]]:
        """One entry per argument of ``generator_args`` (in order): ``name`` and ``description`` of that input of
        an exported graph, optionally ``dynamic`` ({axis: name} beyond the batch axis). An argument that is None
        or empty (no z) is not a graph input; the exporter drops its entry."""
        return [
            {
                "name": "z",
                "description": f"standard normal latents (N, {latent_dim}); sample k of seed s in "
                "gankit is gankit.seeding.latents(1, latent_dim, s, k)",
            }
        ]

    def example_values(self, n: int, seed: int) -> Any:
        """Condition values for ``n`` samples of ``seed`` that an export's parity check feeds both ways (the
        user's inputs made up where the condition needs some)."""
        return self.values_for(n, seed)

    def noise_dims(self, latent_dim: int) -> int:
        """How many leading entries of z are noise a user may edit (InfoGAN's codes replace the rest)."""
        return latent_dim

    # ------------------------------------------------------------------ training
    def prepare(self, dataset, nets: tuple[nn.Module, ...] = ()) -> None:
        """Called once with the training data before the first step (e.g. embed every caption)."""

    def batch(self, dataset, index: torch.Tensor) -> Any:
        """The values for the training batch of dataset rows ``index``."""
        return None

    def draw(self, n: int, generator: torch.Generator, device) -> Any:
        """``n`` values from ``generator`` only (BatchNorm re-estimation of G's EMA; the global RNG is left alone)."""
        return None

    def training_grid(self, count: int, latent_dim: int, seed: int) -> tuple[torch.Tensor, Any, int | None]:
        """(z, values, columns) of the sample grid written during training: samples 0..count-1 of ``seed``, as
        ``gankit sample RUN --seed seed`` draws them (columns None: a square grid)."""
        return latents(count, latent_dim, seed), None, None

    # ------------------------------------------------------------------ sampling
    def values_for(self, n: int, seed: int, start: int = 0, **given) -> Any:
        """Values of samples start .. start+n-1 of ``seed``; ``given`` are the user's inputs (``accepts``)."""
        self.refuse(given)
        return None

    def refuse(self, given: dict[str, Any]) -> None:
        """Reject inputs this condition does not take, naming what it is."""
        extra = sorted(k for k, v in given.items() if v is not None and k not in self.accepts)
        for key in extra:
            owner = next((c for c in CONDITIONS.values() if key in c.accepts), None)
            what = owner.refusal if owner is not None else f"this generator takes no {key!r}"
            raise ValueError(f"{what}: it is {self.summary()}")

    def evaluation_inputs(self, n: int, targets: set[str]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """What an evaluation of ``n`` samples draws them with and knows of them, for the ``targets`` its metrics
        read (``Metric.targets``): (the keywords of ``sample``, each array one value per sample; {target: one value
        per sample}). Targets: ``labels`` (the class sample k was drawn for: label accuracy, intra-FID), ``codes``
        (a categorical code's value: code accuracy). Nothing here: an unconditional sample has no target."""
        return {}, {}

    def interpolation_points(self, entries: list[Any]) -> torch.Tensor:
        """One vector per entry (a caption's embedding) that the condition's values can be interpolated through
        (``analysis.latent.write_condition_interpolation``); refused where the inputs have no such space."""
        raise ValueError(f"this generator's inputs cannot be interpolated: it is {self.summary()}")

    def values_along(self, vectors: torch.Tensor, rows: int, seed: int, latent_dim: int) -> tuple[torch.Tensor, Any]:
        """(z, values) of a grid of ``rows`` x len(``vectors``): row r keeps sample r of ``seed`` (its z and every
        per-sample draw), column c takes ``vectors[c]`` (points of :meth:`interpolation_points`' space)."""
        raise ValueError(f"this generator's inputs cannot be interpolated: it is {self.summary()}")

    def default(self, n: int) -> Any:
        """Values for ``n`` latents given without a condition (the latent-space tools)."""
        return self.values_for(n, 0)

    def take(self, values: Any, begin: int, end: int) -> Any:
        """Values of samples begin .. end-1 of ``values``."""
        return None if values is None else values[begin:end]

    def grid(self, entries, columns: int, seed: int, latent_dim: int) -> tuple[torch.Tensor, Any]:
        """One row per entry (a class, a caption), ``columns`` latents of ``seed`` repeated down the rows."""
        raise ValueError(f"a grid needs one condition value per row; this generator is {self.summary()}")

    # ------------------------------------------------------------------ G and D
    def first_inputs_of(self, z: torch.Tensor, seed: int, start: int = 0, **given) -> torch.Tensor:
        """G's first inputs for latents ``z`` of samples start .. start+n-1 of ``seed`` (what the latent-space
        tools walk): ``z`` itself unless the condition lives in that vector (InfoGAN's codes)."""
        self.refuse(given)
        return z

    def first_input(self, z: torch.Tensor, values: Any) -> torch.Tensor:
        """G's first argument: the vector the latent-space tools walk."""
        return z

    def rest_args(self, values: Any, device) -> tuple:
        """G's arguments after the first, on ``device``."""
        return ()

    def generator_args(self, z: torch.Tensor, values: Any) -> tuple:
        """G's arguments: ``G(*condition.generator_args(z, values))``."""
        return (self.first_input(z, values), *self.rest_args(values, z.device))

    def discriminator_kwargs(self, values: Any) -> dict[str, Any]:
        """D's keyword arguments besides the image."""
        return {}


register_condition(Condition)


# The condition protocol's groups (see :class:`Condition`); the G-and-D calls serve training and sampling alike.
_CALLS = ("first_input", "rest_args", "generator_args", "take")
CONDITION_GROUPS: dict[str, tuple[str, ...]] = {
    "record": (
        "kind",
        "accepts",
        "needs_input",
        "evaluates_on_training_inputs",
        "refusal",
        "describe",
        "export_parts",
        "from_description",
        "summary",
    ),
    "training": ("to", "prepare", "batch", "draw", "training_grid", "discriminator_kwargs", "picture", *_CALLS),
    "sampling": (
        "to",
        "values_for",
        "refuse",
        "default",
        "grid",
        "first_inputs_of",
        "evaluation_inputs",
        "interpolation_points",
        "values_along",
        "setting_values",
        "apply_setting",
        "verbs",
        "argument_docs",
        "example_values",
        *_CALLS,
    ),
    "front end": (
        "controls",
        "control",
        "parse_input",
        "row_names",
        "row_labels",
        "noise_dims",
        "explorer_state",
        "pairs",
        "picture",
    ),
}


def control_keywords(values: dict[str, Any]) -> dict[str, Any]:
    """The keywords of ``sample`` for input controls' values by name: ``codes.cat0`` -> ``{"codes": {"cat0": v}}``,
    ``labels`` -> ``{"labels": v}``."""
    keywords: dict[str, Any] = {}
    for name, value in values.items():
        if "." in name:
            group, key = name.split(".", 1)
            keywords.setdefault(group, {})[key] = value
        else:
            keywords[name] = value
    return keywords


def parse_control_value(control: dict[str, Any], text: str) -> Any:
    """One value typed for ``control`` (a dict of ``Condition.controls()``), checked: an index for ``class`` and
    ``choice``, a number in [min, max] for ``range`` and ``setting``, a caption for ``text``."""
    name, value = control["name"], str(text)
    if control["type"] in ("class", "choice"):
        count = len(control["options"]) if control["type"] == "class" else control["count"]
        if not value.isdigit() or int(value) >= count:
            raise ValueError(f"{name} must be an integer in 0..{count - 1}, got {value!r}")
        return int(value)
    if control["type"] in ("range", "setting"):
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not control["min"] <= number <= control["max"]:  # also refuses NaN
            raise ValueError(f"{name} must be a number in [{control['min']}, {control['max']}], got {value!r}")
        return number
    if control["type"] == "text":
        if not value.strip() or len(value) > control["max_length"]:
            raise ValueError(f"{name} must be 1 to {control['max_length']} characters, got {len(value)}")
        return value
    raise ValueError(f"{name} is an input of type {control['type']!r}, which cannot be typed as text")


class Objective:
    """The interface the trainer uses. A variant's objective combines G, D and a loss into phase losses.

    ``options`` is the variant's options dataclass; ``d_optimizer`` is D's optimizer, for variants that
    look ahead (the unrolled GAN)."""

    condition: Condition

    def __init__(self, options, G: nn.Module, D: nn.Module, loss, d_optimizer: torch.optim.Optimizer | None = None):
        self.options, self.G, self.D, self.loss, self.d_optimizer = options, G, D, loss, d_optimizer

    @staticmethod
    def complete_model(model: Any, options: Any) -> Any:
        """Shape the model options for this variant (InfoGAN's Q head, a text encoder's size); checked."""
        return model

    @staticmethod
    def d_heads(options: Any, model: Any) -> dict[str, Any]:
        """The heads this variant adds on D's last features, by name: {name: builder(FeatureShape) -> module}.
        D builds them in its constructor (``networks.common.HeadedD``), so they are initialized and saved with
        it; the variant reads one with ``D.read_head(name, h)``. ``model``: the completed model options."""
        return {}

    @staticmethod
    def describe_condition(options: Any, G: nn.Module, stored) -> dict[str, Any]:
        """The condition's description for a file written before descriptions were recorded."""
        return {"kind": "none"}

    @property
    def differentiates_d_gradients(self) -> bool:
        """Whether a step differentiates a gradient taken through D (a gradient penalty, R1, a second-order
        look-ahead) or calls D with other weights: such a D cannot run compiled (``train.compile``), as
        compiled graphs have no double backward."""
        return self.loss.gradient_penalty_weight > 0

    def prepare(self, dataset) -> None:
        """Called once with the training data before the first step."""
        self.condition.prepare(dataset, (self.G, self.D))

    def begin_step(self, step: int) -> None:
        """Called before each step (schedules that follow the step)."""

    def d_step(self, ctx: StepContext) -> StepOutput:
        raise NotImplementedError

    def g_step(self, ctx: StepContext) -> StepOutput:
        raise NotImplementedError


def build_condition(description: dict[str, Any], stored=None) -> Condition:
    """The condition an export describes (``Condition.describe()``)."""
    kind = description.get("kind")
    if kind not in CONDITIONS:
        raise ConfigError(f"unknown condition kind {kind!r}; known: {', '.join(sorted(CONDITIONS))}")
    return CONDITIONS[kind].from_description(description, stored)
