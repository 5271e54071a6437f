"""``gankit project``: real images into a generator's latent space, for every generator whose condition it can
enumerate (issue 31, item 6)."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gankit import load_generator
from gankit.analysis.project import project
from gankit.cli import main

EXPORTS = Path(__file__).parent / "fixtures" / "exports"


def own_samples(pipeline, n=3):
    """Images G itself drew (samples 7.. of seed 5): a projection can find latents for them exactly."""
    return pipeline.sample(n, seed=5, start=7).transpose(0, 3, 1, 2).copy()


@pytest.mark.parametrize("family", ["dcgan", "acgan", "infogan"])
def test_optimization_brings_the_samples_closer_to_the_images(family):
    pipeline = load_generator(EXPORTS / f"{family}.safetensors")
    images = own_samples(pipeline)
    start = project(pipeline, images, steps=1, restarts=4, lr=1e-6, progress=False)
    found = project(pipeline, images, steps=80, restarts=4, progress=False)
    assert found.reconstructions.shape == found.targets.shape == images.transpose(0, 2, 3, 1).shape
    assert found.inputs.shape[0] == 3 and np.isfinite(found.mse).all()
    assert found.mse.mean() < 0.7 * start.mse.mean(), (found.mse, start.mse)
    if family == "acgan":  # the winning starts' labels come back, one per image, from the generator's classes
        assert found.values.shape == (3,) and set(found.values.tolist()) <= set(range(pipeline.condition.num_classes))


def test_a_generator_that_needs_the_users_input_is_refused():
    pipeline = load_generator(EXPORTS / "gan-int-cls.safetensors")
    with pytest.raises(ValueError, match="needs the user's input"):
        project(pipeline, np.zeros((1, 3, 16, 16), np.uint8), steps=1, restarts=1, progress=False)


def test_the_command_writes_the_picture_the_latents_and_the_errors(tmp_path, capsys):
    pipeline = load_generator(EXPORTS / "dcgan.safetensors")
    files = []
    for i, image in enumerate(pipeline.sample(2, seed=3)):
        files.append(tmp_path / f"in{i}.png")
        Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).resize((40, 30)).save(files[-1])
    out = tmp_path / "proj"
    code = main(
        [
            "project",
            str(EXPORTS / "dcgan.safetensors"),
            *map(str, files),
            "--steps",
            "3",
            "--restarts",
            "2",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    with np.load(out / "projection.npz") as saved:
        assert saved["inputs"].shape[0] == 2 and saved["mse"].shape == saved["psnr"].shape == (2,)
    summary = json.loads((out / "projection.json").read_text())
    assert len(summary["psnr_db"]) == 2 and summary["seconds_per_image"] > 0
    picture = Image.open(out / "projection.png")
    assert picture.width > picture.height  # one row of images above one row of projections
    assert "PSNR" in capsys.readouterr().out
    assert main(["project", str(EXPORTS / "dcgan.safetensors"), str(tmp_path / "missing.png"), "--out", str(out)]) == 2
