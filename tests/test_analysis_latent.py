import json

import pytest
import torch

from gankit import load_generator
from gankit.analysis.latent import arithmetic, concept_latents, lerp, path, slerp, smoothness
from gankit.cli import main
from gankit.seeding import latents


def test_slerp_endpoints_and_norms():
    z0, z1 = torch.tensor([3.0, 0.0]), torch.tensor([0.0, 3.0])
    t = torch.linspace(0, 1, 5)
    points = slerp(z0, z1, t)
    torch.testing.assert_close(points[0], z0)
    torch.testing.assert_close(points[-1], z1)
    torch.testing.assert_close(points.norm(dim=1), torch.full((5,), 3.0))  # stays on the circle
    assert lerp(z0, z1, t)[2].norm() < 3.0  # the straight line cuts inside it
    torch.testing.assert_close(slerp(z0, 2 * z0, t)[2], lerp(z0, 2 * z0, t)[2])  # parallel: linear


def test_path_through_several_points():
    points = torch.randn(4, 6)
    p = path(points, 5, "linear")
    assert p.shape == (3, 5, 6)
    torch.testing.assert_close(p[1, 0], points[1])
    torch.testing.assert_close(p[2, -1], points[3])
    with pytest.raises(ValueError, match="slerp or linear"):
        path(points, 5, "cubic")


def test_arithmetic_with_one_sample_concepts_is_the_exact_vector_sum():
    a, b, c = torch.randn(1, 5), torch.randn(1, 5), torch.randn(1, 5)
    result = arithmetic({"A": a, "B": b, "C": c}, noise=0.25, variants=6)
    torch.testing.assert_close(result["result"], (a - b + c)[0])
    deviation = (result["variants"] - result["result"]).abs()
    assert result["variants"].shape == (6, 5) and deviation.max() <= 0.25 and deviation.max() > 0
    averaged = arithmetic({"A": torch.stack([a[0], 3 * a[0]]), "B": b, "C": c})
    torch.testing.assert_close(averaged["result"], 2 * a[0] - b[0] + c[0])


def test_concepts_from_indices_match_sampling(tiny_run):
    pipeline = load_generator(tiny_run)
    z = concept_latents(pipeline, "2,5", seed=3)
    torch.testing.assert_close(z, latents(8, pipeline.latent_dim, 3)[[2, 5]])
    with pytest.raises(ValueError, match="class concepts need an evaluator"):
        concept_latents(pipeline, "class:Bag", seed=0)


def test_smoothness_reports_pixel_steps(tiny_run):
    result = smoothness(load_generator(tiny_run), paths=3, steps=6)
    assert result["pixel_max_over_median"] >= 1.0 and result["pixel_median_step"] > 0


def test_cli_interpolate_and_arithmetic_write_pictures_and_json(tiny_run, tmp_path):
    out = tmp_path / "walk.png"
    assert main(["interpolate", str(tiny_run), "--walk", "--steps", "4", "--out", str(out)]) == 0
    summary = json.loads(out.with_suffix(".json").read_text())
    assert summary["segments"] == 8 and out.is_file() and out.with_suffix(".gif").is_file()
    assert main(["interpolate", str(tiny_run), "--seeds", "1,2,3", "--mode", "linear", "--out", str(out)]) == 0
    assert json.loads(out.with_suffix(".json").read_text())["segments"] == 2
    panel = tmp_path / "arith.png"
    assert main(["arithmetic", str(tiny_run), "--a", "1,2", "--b", "3", "--c", "4,5,6", "--out", str(panel)]) == 0
    assert json.loads(panel.with_suffix(".json").read_text())["concept_sizes"] == {"A": 2, "B": 1, "C": 3}
