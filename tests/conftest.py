import numpy as np
import pytest
import torch
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


@pytest.fixture(scope="session")
def captioned(tmp_path_factory):
    """A tiny make-captions folder (32 px) and an untrained word-GRU text encoder saved with an image encoder."""
    from gankit.data import load_dataset
    from gankit.data.captions import write_captioned_dataset
    from gankit.networks.text_encoders import (
        ImageEncoder,
        Vocabulary,
        WordGRUEncoder,
        WordGRUOptions,
        save_text_encoder,
    )

    root = tmp_path_factory.mktemp("captions")
    write_captioned_dataset(root / "caps", train=48, test=16, resolution=32, progress=lambda s: None)
    data = load_dataset({"name": "captions", "path": str(root / "caps")})
    torch.manual_seed(0)
    encoder = WordGRUEncoder(
        WordGRUOptions(embed_dim=12, word_dim=8, hidden=8), Vocabulary.build(data.extras["captions"])
    )
    save_text_encoder(root / "encoder.safetensors", encoder, ImageEncoder(3, 32, 12, width=8))
    return root


@pytest.fixture(scope="session")
def variant_runs(tmp_path_factory, captioned):
    """Tiny trained runs of every condition kind, shared by the web and export tests: plain (unconditional
    DCGAN), labels, codes (InfoGAN), text (StackGAN Stage-II on a Stage-I), image (pix2pix, sampling with
    dropout), sr (SRGAN 2x, pixel content) and points (an MLP on the ring). Two steps each, EMA on."""
    from helpers import train_variant_runs

    return train_variant_runs(tmp_path_factory.mktemp("variants"), captioned)
