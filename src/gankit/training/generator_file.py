"""Writing a generator export from a training run: G's (or EMA G's) weights, the config, the condition."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from gankit.config import RunConfig
from gankit.formats import write_export
from gankit.variants import Condition


def export_generator(path: Path, G: nn.Module, condition: Condition, config: RunConfig, step: int, ema: bool) -> None:
    """``generator.safetensors``: all that ``gankit.load_generator`` needs, the condition's description and
    whatever tensors it carries included."""
    tensors, metadata = condition.export_parts()
    write_export(path, G.state_dict(), config.to_dict(), step, ema, condition.describe(), tensors, metadata)
