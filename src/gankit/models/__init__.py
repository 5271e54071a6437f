"""Model families: each registers a config dataclass and builds a (G, D) pair.

A family is registered in ``MODELS`` with an options dataclass and a
:class:`Family` factory. Models know nothing about losses or training: G maps
latents to samples in the data's range, D maps samples to unbounded logits.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

import torch
from torch import nn

from gankit.registry import ConfigError, Registry


@dataclasses.dataclass(frozen=True)
class DataSpec:
    """What a model needs to know about the data it is built for."""

    kind: str  # "images" or "points"
    shape: tuple[int, ...]  # (C, H, W) for images, (D,) for points


class Family(Protocol):
    def complete(self, options: Any, data: DataSpec) -> Any:
        """Fill options left as None from the data, and check the rest against it."""

    def generator(self, options: Any) -> nn.Module: ...

    def discriminator(self, options: Any) -> nn.Module: ...


MODELS: Registry[Family] = Registry("model")


def check_matches(options: Any, field: str, value: Any, how_to_fix: str) -> Any:
    """Return ``options`` with ``field`` set to ``value`` if it was None; error on a mismatch."""
    current = getattr(options, field)
    if current is None:
        return dataclasses.replace(options, **{field: value})
    if current != value:
        raise ConfigError(
            f"model.{field} is {current!r} but the data has {value!r}; {how_to_fix}"
        )
    return options


def block_outputs(body: nn.Sequential, x: torch.Tensor) -> list[torch.Tensor]:
    """The output of every block of ``body``, input side first (D's features for analysis)."""
    out = []
    for block in body:
        x = block(x)
        out.append(x)
    return out


# Importing the family modules registers them.
from gankit.models import dcgan, mlp  # noqa: E402,F401
