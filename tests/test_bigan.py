"""BiGAN / ALI (issue 31, item 5): a variant in its own two files. Trained, resumed, sampled, exported and probed
through the same paths as every other variant; its encoder gives projection a start."""

import numpy as np
import torch
from helpers import assert_resume_is_exact, tiny_overrides

from gankit import load_config, load_generator, train
from gankit.analysis.probe import discriminator_features
from gankit.analysis.project import project
from gankit.inference import load_discriminator

BIGAN = ["model.name=bigan", "model.e_width=8", "model.z_hidden=16", "objective.name=bigan"]


def bigan_overrides(tiny_npz, steps=4):
    return tiny_overrides(tiny_npz, steps) + BIGAN


def test_bigan_trains_resumes_exactly_and_learns_its_encoder_with_g(tmp_path, tiny_npz):
    assert assert_resume_is_exact(tmp_path, bigan_overrides(tiny_npz)) == (4, 4)
    encoders = {}
    for name in ("straight", "split"):
        state = load_generator(tmp_path / name).G.state_dict()
        encoders[name] = {k: v for k, v in state.items() if k.startswith("encoder.")}
    assert encoders["straight"], "the encoder travels in G's export"
    train(load_config(None, bigan_overrides(tiny_npz, steps=1)), tmp_path / "one", progress=False, log=lambda s: None)
    after_one = {k: v for k, v in load_generator(tmp_path / "one").G.state_dict().items() if k.startswith("encoder.")}
    assert any(not torch.equal(after_one[k], v) for k, v in encoders["straight"].items()), "G's optimizer trains E"


def test_samples_d_features_and_the_encoder_start(tmp_path, tiny_npz):
    train(load_config(None, bigan_overrides(tiny_npz)), tmp_path / "run", progress=False, log=lambda s: None)
    pipeline = load_generator(tmp_path / "run")
    samples = pipeline.sample(6, seed=1)
    assert samples.shape == (6, 16, 16, 1) and samples.dtype == np.uint8
    D = load_discriminator(tmp_path / "run")[0]
    images = torch.from_numpy(samples.transpose(0, 3, 1, 2).copy())
    assert discriminator_features(D, images).shape[0] == 6
    assert discriminator_features(pipeline.G, images).shape[0] == 6  # the encoder's representation, probed alike
    found = project(pipeline, images.numpy(), steps=2, restarts=2, progress=False)
    assert found.encoder_mse is not None and found.encoder_mse.shape == (6,) and np.isfinite(found.encoder_mse).all()


def test_the_bigan_generator_exports_to_onnx_and_draws_what_gankit_draws(tmp_path, tiny_npz):
    from gankit.cli import main

    train(load_config(None, bigan_overrides(tiny_npz, steps=2)), tmp_path / "run", progress=False, log=lambda s: None)
    assert main(["export", str(tmp_path / "run"), "--format", "onnx", "--out", str(tmp_path / "g.onnx")]) == 0
    assert (tmp_path / "g.onnx.parity.json").is_file()
