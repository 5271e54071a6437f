"""Run configuration: typed dataclasses, preset files and command-line overrides.

A run is described by one :class:`RunConfig`. Its ``data``, ``model``, ``loss``
and ``objective`` sections are registry specs (``{"name": ..., options}``);
:func:`resolve` checks every one against its registry entry and fills in the
defaults, so the ``config.json`` a run saves lists every value it used.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from gankit.data import DATASETS
from gankit.files import read_json
from gankit.losses import LOSSES
from gankit.networks import MODELS
from gankit.registry import ConfigError, build_dataclass
from gankit.variants import VARIANTS


@dataclasses.dataclass
class TrainConfig:
    steps: int = 2000  # G updates
    # Stop after this many seconds of training (0: no limit), ending as at train.steps: last log row,
    # samples, checkpoint and export. For equal-time comparisons; the step reached is then machine-dependent.
    time_limit: float = 0.0
    batch_size: int = 128
    d_steps: int = 1  # D updates per G update (k in Goodfellow et al.'s Algorithm 1)
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    # The last fraction of train.steps over which lr_g and lr_d fall linearly to 0 (0: constant rates; 0.5: the
    # second half decays, as pix2pix's and CycleGAN's "constant, then linear decay"; 1: from the first step).
    # The rate follows the step alone, so a resumed run takes the same rates; a resume with a larger --steps
    # stretches the decay to the new end.
    lr_decay: float = 0.0
    ema_decay: float = 0.0  # EMA of G's weights; 0 disables, 0.999 is typical
    seed: int = 0
    device: str = "auto"  # "auto" (CUDA when available, else CPU), "cpu", "cuda", "cuda:1", ...
    # bf16 runs the nets under autocast; auto: bf16 where the hardware has fast bf16 (GPUs with bf16 tensor
    # cores, CPUs with AMX or AVX-512 BF16), else fp32; config.json records what was used.
    precision: Literal["fp32", "bf16", "auto"] = "fp32"
    # Several processes: BatchNorm statistics over the global batch (an all-reduce per BatchNorm per forward)
    # instead of each process's slice; see training/distributed.py. No effect in a one-process run.
    sync_batchnorm: bool = False
    channels_last: bool = True  # NHWC memory layout for conv nets (faster on CPU and GPU)
    # torch.compile G's and D's forward for training ("off": eager). "reduce-overhead" adds CUDA graphs on a GPU
    # (on a CPU it acts as "default"). D stays eager where a step differentiates D's gradient (gradient penalty,
    # R1, second-order unrolling). The first steps pay the compilation (about 40 s for DCGAN on a CPU).
    compile: Literal["off", "default", "reduce-overhead", "max-autotune"] = "off"
    log_every: int = 50
    sample_every: int = 500
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    sample_grid: int = 64  # images in the fixed-z sample grid
    tensorboard: bool = True  # write TensorBoard events when the tensorboard package is installed
    eval_every: int = 0  # score G every N steps into metrics.jsonl (0: never)
    eval_metrics: list[str] = dataclasses.field(default_factory=lambda: ["fid", "prdc"])
    eval_samples: int = 5000  # generated samples per evaluation (the reference is 10,000 real ones)
    eval_best: str = "fid"  # the metric value that picks best/generator.safetensors
    eval_evaluator: str = ""  # evaluator weights; "" = the built-in one for the dataset (raw values for points)

    def __post_init__(self):
        positive = (
            "steps",
            "batch_size",
            "d_steps",
            "log_every",
            "sample_every",
            "checkpoint_every",
            "keep_checkpoints",
            "sample_grid",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name} must be at least 1, got {getattr(self, name)}")
        for name in ("lr_g", "lr_d"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"train.{name} must be positive, got {getattr(self, name)}")
        if self.time_limit < 0:
            raise ConfigError(f"train.time_limit must be >= 0 seconds (0: no limit), got {self.time_limit}")
        if self.eval_every < 0 or self.eval_samples < 10:
            raise ConfigError("train.eval_every must be >= 0 and train.eval_samples >= 10")
        if not 0 <= self.lr_decay <= 1:
            raise ConfigError(
                f"train.lr_decay must be in [0, 1] (the decaying fraction of the steps), got {self.lr_decay}"
            )
        for name in ("beta1", "beta2", "ema_decay"):
            if not 0 <= getattr(self, name) < 1:
                raise ConfigError(f"train.{name} must be in [0, 1), got {getattr(self, name)}")


@dataclasses.dataclass
class RunConfig:
    description: str = ""
    data: dict[str, Any] = dataclasses.field(default_factory=lambda: {"name": "digits"})
    model: dict[str, Any] = dataclasses.field(default_factory=lambda: {"name": "dcgan"})
    loss: dict[str, Any] = dataclasses.field(default_factory=lambda: {"name": "non-saturating"})
    objective: dict[str, Any] = dataclasses.field(default_factory=lambda: {"name": "standard"})
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "RunConfig":
        return resolve(build_dataclass(cls, raw, "config"))


SECTIONS = ("data", "model", "loss", "objective")


def _spec_to_dict(name: str, options: Any) -> dict[str, Any]:
    return {"name": name, **dataclasses.asdict(options)}


def resolve(config: RunConfig) -> RunConfig:
    """Check every registry section and fill its defaults."""
    registries = {"data": DATASETS, "model": MODELS, "loss": LOSSES, "objective": VARIANTS}
    resolved = {}
    for section in SECTIONS:
        entry, options = registries[section].resolve(getattr(config, section), section)
        resolved[section] = _spec_to_dict(entry.name, options)
    return dataclasses.replace(config, **resolved)


# --------------------------------------------------------------------------- presets


def preset_names() -> list[str]:
    folder = resources.files("gankit") / "presets"
    return sorted(p.name[: -len(".json")] for p in folder.iterdir() if p.name.endswith(".json"))


def read_preset(name: str) -> dict[str, Any]:
    path = resources.files("gankit") / "presets" / f"{name}.json"
    if not path.is_file():
        raise ConfigError(f"unknown preset {name!r}; presets: {', '.join(preset_names())}")
    return json.loads(path.read_text())


def read_config_source(source: str) -> dict[str, Any]:
    """A preset name, a .json config file, or a run folder (its config.json)."""
    path = Path(source)
    if path.is_dir() and (path / "config.json").is_file():
        path = path / "config.json"
    if path.suffix == ".json" and path.is_file():
        raw = read_json(path, ConfigError)
        if not isinstance(raw, dict):
            raise ConfigError(
                f'{path}: a config is a JSON object ({{"data": ..., "model": ...}}), got {type(raw).__name__}'
            )
        return raw
    if path.suffix == ".json" or "/" in source:
        raise ConfigError(f"config file {source} does not exist")
    return read_preset(source)


# --------------------------------------------------------------------------- overrides


def parse_value(text: str) -> Any:
    """``--set`` values are JSON when they parse as JSON (64, 2e-4, true, null, [1, 2]), else strings."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_assignment(item: str, example: str = "train.batch_size=64") -> tuple[str, Any]:
    """``key=value`` -> (key, value parsed by :func:`parse_value`); a missing ``=`` is an error."""
    key, sep, text = item.partition("=")
    if not sep:
        raise ConfigError(f"--set {item!r}: expected key=value, e.g. {example}")
    return key.strip(), parse_value(text)


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` overrides to a raw config mapping (types are checked later)."""
    raw = copy.deepcopy(raw)
    valid_sections = [f.name for f in dataclasses.fields(RunConfig)]
    # A new `name` changes which options are valid, so names go first and drop the old options.
    ordered = sorted(overrides, key=lambda item: not item.partition("=")[0].endswith(".name"))
    for item in ordered:
        key, value = parse_assignment(item)
        section, _, field = key.partition(".")
        if section not in valid_sections:
            raise ConfigError(f"--set {key}: unknown section {section!r}; sections: {', '.join(valid_sections)}")
        if section == "description":
            raw["description"] = item.partition("=")[2]
            continue
        if not field:
            raise ConfigError(f"--set {key}: name a key inside {section}, e.g. {section}.name=...")
        if section not in raw and section in SECTIONS:  # start from the default section, e.g. objective "standard"
            raw[section] = dict(getattr(RunConfig(), section))
        target = raw.setdefault(section, {})
        if field == "name" and section in SECTIONS and target.get("name") != value:
            target.clear()
        target[field] = value
    return raw


def load_config(source: str | None = None, overrides: list[str] | None = None) -> RunConfig:
    """Build a resolved RunConfig from a preset/file/run folder plus ``key=value`` overrides. An error in
    the source itself (not in an override) names the source."""
    base = read_config_source(source) if source else {}
    try:
        return RunConfig.from_dict(apply_overrides(base, overrides or []))
    except ConfigError as error:
        if not source:
            raise
        try:
            RunConfig.from_dict(base)
        except ConfigError:
            raise ConfigError(f"{source}: {error}") from error
        raise
