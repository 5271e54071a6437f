"""InfoGAN (Chen et al. 2016): code layout, the information term, training, sampling with codes, traversal."""

import json
import math

import numpy as np
import pytest
import torch
from helpers import tiny_overrides

from gankit import load_config, load_generator, train
from gankit.cli import main
from gankit.variants.infogan import CodeLayout
from gankit.registry import ConfigError

INFOGAN = ["objective.name=infogan", "objective.categorical=[4]", "objective.continuous=1", "objective.binary=1"]


def test_layout_sizes_draws_and_setting_codes():
    layout = CodeLayout((3, 2), continuous=2, binary=1, learned_variance=True)
    assert (layout.dim, layout.q_dim) == (3 + 2 + 2 + 1, 3 + 2 + 4 + 1)
    assert layout.names() == ["cat0", "cat1", "cont0", "cont1", "bin0"]
    c = layout.sample(500, torch.Generator().manual_seed(0))
    assert c.shape == (500, 8)
    assert torch.equal(c[:, :3].sum(1), torch.ones(500)) and torch.equal(c[:, 3:5].sum(1), torch.ones(500))
    assert c[:, 5:7].abs().max() <= 1 and set(c[:, 7].tolist()) == {0.0, 1.0}
    assert layout.sample_one(np.random.default_rng(0)).shape == (8,)
    set_c = layout.set_code(layout.set_code(c[:2], "cat1", 1), "cont1", 1.7)
    assert set_c[:, 3:5].tolist() == [[0, 1], [0, 1]] and set_c[:, 6].tolist() == pytest.approx([1.7, 1.7])
    with pytest.raises(ValueError, match="unknown code 'cont2'"):
        layout.set_code(c, "cont2", 0.0)
    with pytest.raises(ValueError, match="takes the values 0..2"):
        layout.set_code(c, "cat0", 3)


def test_noise_std_scales_only_the_noise_entries():
    from gankit.seeding import latents
    from gankit.variants.infogan import CodeCondition

    def inputs(layout):  # G's first inputs for samples 0..5 of seed 3
        condition = CodeCondition(layout)
        return condition.first_input(latents(6, 12, 3), condition.values_for(6, 3))

    z = inputs(CodeLayout((4,), continuous=1, noise_std=0.1))
    plain = inputs(CodeLayout((4,), continuous=1))
    torch.testing.assert_close(z[:, :7], 0.1 * latents(6, 12, 3)[:, :7])
    assert torch.equal(z[:, 7:], plain[:, 7:])  # the codes are untouched
    with pytest.raises(ConfigError, match="noise_std must be > 0"):
        load_config("infogan-digits", ["objective.noise_std=0"])


def test_information_loss_closed_forms():
    layout = CodeLayout((3,), continuous=1, binary=0)
    codes = torch.tensor([[1.0, 0, 0, 0.5], [0, 0, 1.0, -0.25]])
    perfect = torch.tensor([[50.0, 0, 0, 0.5], [0, 0, 50.0, -0.25]])  # confident right class, exact mean
    loss, stats = layout.information_loss(perfect, codes, 1.0, 1.0)
    assert stats["info_discrete"].item() == pytest.approx(0.0, abs=1e-6) and stats["code_accuracy"] == 1.0
    assert stats["info_continuous"].item() == pytest.approx(0.5 * math.log(2 * math.pi))
    uniform = torch.tensor([[0.0, 0, 0, 1.5], [0, 0, 0, -0.25]])  # uniform logits; first mean off by 1
    loss, stats = layout.information_loss(uniform, codes, 2.0, 0.5)
    assert stats["info_discrete"].item() == pytest.approx(math.log(3))
    assert stats["info_continuous"].item() == pytest.approx(0.5 * math.log(2 * math.pi) + 0.25)
    assert loss.item() == pytest.approx(2 * math.log(3) + 0.5 * stats["info_continuous"].item())
    learned = CodeLayout((), continuous=1, learned_variance=True)
    _, stats = learned.information_loss(torch.tensor([[0.0, math.log(4.0)]]), torch.tensor([[2.0]]), 1.0, 1.0)
    assert stats["info_continuous"].item() == pytest.approx(0.5 * (math.log(4.0) + 4 / 4 + math.log(2 * math.pi)))


def test_information_term_falls_where_the_code_is_recoverable(tmp_path):
    """On the 2D ring, with a 4-way code, Q learns to read the code back from G's samples."""
    overrides = [
        "data.name=ring",
        "model.name=mlp",
        "model.latent_dim=6",
        "model.g_hidden=[64, 64]",
        "model.d_hidden=[64, 64]",
        "model.d_activation=leaky_relu",
        "model.dropout=0",
        "objective.name=infogan",
        "objective.categorical=[4]",
        "objective.continuous=0",
        "train.steps=300",
        "train.batch_size=64",
        "train.log_every=50",
        "train.sample_every=300",
        "train.checkpoint_every=300",
        "train.tensorboard=false",
        "train.sample_grid=16",
    ]
    train(load_config(None, overrides), tmp_path / "r", progress=False, log=lambda s: None)
    rows = [json.loads(line) for line in (tmp_path / "r" / "train_log.jsonl").read_text().splitlines()]
    assert rows[0]["info_discrete"] > 1.0  # about log 4 = 1.39 at the start
    assert rows[-1]["info_discrete"] < 0.5 * rows[0]["info_discrete"] and rows[-1]["code_accuracy"] > 0.8


def test_infogan_trains_resumes_and_samples_with_codes(tmp_path, tiny_npz, capsys):
    from helpers import assert_resume_is_exact

    base = tiny_overrides(tiny_npz) + INFOGAN
    assert_resume_is_exact(tmp_path, base)
    from gankit.inference import load_discriminator

    D = load_discriminator(tmp_path / "straight")[0]  # Q is the variant's head, built into D and saved with it
    assert D.q_head[-1].out_channels == 4 + 1 + 1
    pipeline = load_generator(tmp_path / "straight")
    assert pipeline.condition.layout.dim == 6
    a, b = pipeline.sample(3, seed=2, codes={"cat0": 1}), pipeline.sample(3, seed=2, codes={"cat0": 3})
    assert a.shape == (3, 16, 16, 1) and not np.array_equal(a, b)
    np.testing.assert_array_equal(pipeline.sample(3, seed=2)[1], pipeline.sample(1, seed=2, start=1)[0])
    per_sample = pipeline.sample(4, seed=2, codes={"cat0": [3, 1, 0, 2]})
    np.testing.assert_array_equal(per_sample[1], a[1])  # sample 1 got cat0 = 1 both times
    grid = pipeline.traverse("cont0", [-1, 0, 1], rows=2)
    assert grid.shape[0] == 6
    for row in range(2):  # row r is sample r of seed 0 with cont0 set, the rest of its inputs unchanged
        for column, value in enumerate([-1, 0, 1]):
            drawn = pipeline.sample(1, start=row, codes={"cont0": value})[0]
            np.testing.assert_array_equal(grid[row * 3 + column], drawn)
    with pytest.raises(ValueError, match="no input codes.cont9"):
        pipeline.sweep("codes.cont9", [0, 1])
    # gankit sample's flags come from the codes' controls; a negative value is a value, not a flag
    out = tmp_path / "codes.npz"
    argv = ["sample", str(tmp_path / "straight"), "--codes.cat0", "3", "--codes.cont0", "-1.5", "--n", "3"]
    assert main([*argv, "--out", str(out)]) == 0
    expected = pipeline.sample(3, codes={"cat0": 3, "cont0": -1.5})
    np.testing.assert_array_equal(np.load(out)["images"], expected)
    assert main([*argv[:-2], "--codes.cat0", "9", "--out", str(out)]) == 2
    assert "--codes.cat0: codes.cat0 must be an integer in 0..3, got '9'" in capsys.readouterr().err
    assert (
        main(
            ["traverse", str(tmp_path / "straight"), "--code", "cat0", "--rows", "2", "--out", str(tmp_path / "t.png")]
        )
        == 0
    )
    assert (
        main(["traverse", str(tmp_path / "straight"), "--code", "cat5", "--out", str(tmp_path / "t.png")]) == 2
    )  # a user error: one message, exit code 2
    assert "has no input cat5 (it is an InfoGAN generator" in capsys.readouterr().err
    assert (
        main(
            [
                "traverse",
                str(tmp_path / "straight"),
                "--code",
                "cont0",
                "--rows",
                "2",
                "--score-rows",
                "5",
                "--out",
                str(tmp_path / "c.png"),
            ]
        )
        == 0
    )
    summary = json.loads((tmp_path / "c.json").read_text())
    assert summary["rows"] == 5 and summary["best"] in summary["statistics"]
    assert all(
        s["monotone_rows"] * 5 == pytest.approx(round(s["monotone_rows"] * 5)) for s in summary["statistics"].values()
    )


def _bar(width: int, shift_per_row: float = 0.0, level: int = 255, size: int = 16) -> np.ndarray:
    """A vertical bar ``width`` columns wide, its column shifted by ``shift_per_row`` per row going up."""
    image = np.zeros((size, size), np.uint8)
    for row in range(2, size - 2):
        left = int(round(size / 2 - width / 2 + shift_per_row * (size - 1 - row - size / 2)))
        image[row, max(left, 0) : left + width] = level
    return image


def test_image_statistics_on_drawn_bars():
    from gankit.metrics.code_monotonicity import image_statistics

    stats = image_statistics(np.stack([_bar(2), _bar(6), _bar(2, 0.5), _bar(2, -0.5), _bar(2, level=100)]))
    assert stats["width"][1] > 2 * stats["width"][0]
    assert stats["height"][0] == pytest.approx(stats["height"][1])
    assert stats["slant"][0] == pytest.approx(0.0, abs=1e-9)
    assert stats["slant"][2] == pytest.approx(0.5, abs=0.05) and stats["slant"][3] == pytest.approx(-0.5, abs=0.05)
    assert stats["intensity"][4] == pytest.approx(stats["intensity"][0] * 100 / 255)
    rgb = image_statistics(np.repeat(_bar(3)[None, :, :, None], 3, axis=3))
    assert rgb["width"][0] == pytest.approx(image_statistics(_bar(3)[None])["width"][0])


def test_spearman_rows_matches_scipy_and_handles_ties():
    from scipy.stats import spearmanr

    from gankit.metrics.code_monotonicity import spearman_rows

    rng = np.random.default_rng(0)
    values = np.linspace(-2, 2, 9)
    statistic = np.round(rng.normal(size=(6, 9)), 1)
    statistic[1] = statistic[1][np.argsort(statistic[1])]  # monotone increasing row
    statistic[2, :4] = statistic[2, 0]  # ties
    statistic[3] = 1.0  # constant
    rho = spearman_rows(values, statistic)
    for i in (0, 2, 4, 5):
        assert rho[i] == pytest.approx(spearmanr(values, statistic[i]).statistic)
    assert rho[1] == pytest.approx(1.0) and rho[3] == 0.0


def test_monotonicity_scores_a_code_that_widens_and_one_that_does_nothing():
    from gankit.metrics.code_monotonicity import monotonicity

    values = [-1, 0, 1, 2]
    widening = np.stack([_bar(w + r % 2) for r in range(3) for w in (2, 4, 6, 8)])
    scores = monotonicity(values, widening, rows=3)
    assert scores["width"] == {"rho": 1.0, "abs_rho": 1.0, "monotone_rows": 1.0}
    assert scores["intensity"]["rho"] == 1.0 and scores["slant"]["abs_rho"] == 0.0
    still = np.stack([_bar(4)] * 8)
    assert monotonicity([0, 1, 2, 3], still, rows=2)["width"]["abs_rho"] == 0.0
    with pytest.raises(ValueError, match="expected 3 x 4"):
        monotonicity(values, widening[:-1], rows=3)


def test_infogan_config_errors(tmp_path, tiny_npz):
    with pytest.raises(ConfigError, match="must exceed the codes"):
        train(
            load_config(None, tiny_overrides(tiny_npz) + INFOGAN + ["model.latent_dim=6"]),
            tmp_path / "a",
            progress=False,
            log=lambda s: None,
        )
    with pytest.raises(ConfigError, match="at least one code"):
        load_config(
            None,
            tiny_overrides(tiny_npz) + ["objective.name=infogan", "objective.categorical=[]", "objective.continuous=0"],
        )


def test_generators_without_codes_refuse_them(tiny_run, capsys):
    with pytest.raises(ValueError, match="no latent codes"):
        load_generator(tiny_run).sample(2, codes={"cat0": 1})
    assert main(["traverse", str(tiny_run), "--out", "t.png"]) == 2  # a user error: one message, exit code 2
    assert "has no input cat0 (it is an unconditional generator; inputs: none)" in capsys.readouterr().err
