import numpy as np
import pytest
from helpers import tiny_overrides


@pytest.fixture
def tiny_npz(tmp_path):
    """64 random 16x16 grayscale images with labels, as an .npz file."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(64, 16, 16), dtype=np.uint8)
    labels = rng.integers(0, 4, size=64)
    path = tmp_path / "tiny.npz"
    np.savez(path, images=images, labels=labels)
    return path


@pytest.fixture
def tiny_run(tmp_path, tiny_npz):
    """A two-step run on the tiny data; a wide init makes its G's outputs vary, so equality checks bite."""
    from gankit import load_config, train

    out = tmp_path / "run"
    overrides = tiny_overrides(tiny_npz, steps=2) + ["model.init_std=0.3"]
    train(load_config(None, overrides), out, progress=False, log=lambda s: None)
    return out
