import numpy as np
import pytest
import torch

from gankit import load_generator
from gankit.files import CheckpointError
from gankit.seeding import latents


@pytest.fixture
def run_dir(tiny_run):
    return tiny_run


def test_latent_k_of_a_seed_does_not_depend_on_how_many_are_drawn():
    many = latents(10, 7, seed=3)
    assert torch.equal(latents(4, 7, seed=3), many[:4])
    assert torch.equal(latents(3, 7, seed=3, start=5), many[5:8])
    assert not torch.equal(latents(1, 7, seed=4), many[:1])


def test_samples_are_uint8_nhwc_and_batch_size_independent(run_dir):
    pipeline = load_generator(run_dir)
    a = pipeline.sample(10, seed=1, batch_size=3)
    b = pipeline.sample(10, seed=1, batch_size=10)
    assert a.dtype == np.uint8 and a.shape == (10, 16, 16, 1)
    assert len(np.unique(a)) > 50  # not a constant image
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(pipeline.sample(4, seed=1), a[:4])
    assert not np.array_equal(pipeline.sample(4, seed=2), a[:4])


def test_export_and_checkpoint_load_the_same_generator(run_dir):
    export = load_generator(run_dir / "generator.safetensors")
    checkpoint = sorted((run_dir / "checkpoints").glob("*.safetensors"))[-1]
    from_checkpoint = load_generator(checkpoint)
    assert export.step == from_checkpoint.step == 2 and not export.ema
    np.testing.assert_array_equal(export.sample(5), from_checkpoint.sample(5))


def test_training_grid_equals_sampling_with_the_training_seed(run_dir):
    from PIL import Image

    from gankit.images import image_grid

    grid = np.asarray(image_grid(load_generator(run_dir).sample(4, seed=0)))
    assert np.array_equal(np.asarray(Image.open(run_dir / "samples.png")), grid)


def test_bad_paths_give_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_generator(tmp_path / "nope.safetensors")
    with pytest.raises(CheckpointError, match="is this a gankit run folder"):
        load_generator(tmp_path)
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_generator(tmp_path / "junk.safetensors")


def test_a_draw_stream_belongs_to_one_kind_of_draw():
    """Per-sample draw streams are claimed by the condition that draws them: a second owner is refused."""
    from gankit.seeding import STREAMS, draw_stream
    from gankit.variants.gan_cls import STREAM_CONDITION_NOISE
    from gankit.variants.infogan import STREAM_CODES

    assert (STREAM_CODES, STREAM_CONDITION_NOISE) == (1, 2)  # part of what sample k of a seed is
    assert draw_stream(1, STREAMS[1]) == 1  # the owner claiming it again is fine
    with pytest.raises(ValueError, match="draw stream 2 is conditioning-augmentation noise's"):
        draw_stream(2, "someone else")
    with pytest.raises(ValueError, match="numbered from 1"):
        draw_stream(0, "the latent")
