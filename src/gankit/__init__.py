"""gankit: the classic GAN family as one tested PyTorch package.

Python entry points:

    >>> import gankit
    >>> config = gankit.load_config("dcgan-digits", ["train.steps=200"])
    >>> result = gankit.train(config, "runs/digits")
    >>> images = gankit.load_generator("runs/digits").sample(16, seed=0)  # uint8 (16, H, W, C)

The names below are loaded on first use, so ``import gankit`` (and any ``gankit.<module>``) stays cheap.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "RunConfig": "gankit.config",
    "TrainConfig": "gankit.config",
    "load_config": "gankit.config",
    "train": "gankit.training",
    "load_generator": "gankit.inference",
    "GeneratorPipeline": "gankit.inference",
    "save_samples": "gankit.inference",
    "export_onnx": "gankit.portable",
    "check_export": "gankit.portable",
}

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'gankit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
