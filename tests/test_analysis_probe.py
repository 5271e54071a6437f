import json
import re

import numpy as np
import pytest
import torch

from gankit.analysis.probe import LinearSVM, discriminator_features, run_probe, subset
from gankit.cli import main
from gankit.networks.dcgan import DCGANDiscriminator


def test_linear_svm_separates_separable_classes():
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((3, 5)) * 5
    y = rng.integers(0, 3, 300)
    x = centres[y] + rng.standard_normal((300, 5))
    svm = LinearSVM(penalty=0.01).fit(x[:200], y[:200], 3)
    assert svm.accuracy(x[200:], y[200:]) > 0.95


def test_discriminator_features_pool_every_layer_to_4x4():
    D = DCGANDiscriminator(28, 1, width=8)
    features = discriminator_features(D, torch.randint(0, 256, (5, 1, 28, 28), dtype=torch.uint8))
    assert features.shape == (5, 8 * 16 + 16 * 16)  # 14x14x8 and 7x7x16 maps, each max-pooled to 4x4


def test_subset_is_balanced_and_disjoint_from_excluded():
    labels = np.repeat(np.arange(4), 50)
    index = subset(labels, 10, np.random.default_rng(0), exclude=np.arange(0, 200, 2))
    assert np.bincount(labels[index]).tolist() == [10] * 4 and (index % 2 == 1).all()


@pytest.mark.slow
def test_probe_pipeline_beats_chance_on_tiny_data():
    from gankit.data import load_dataset

    data = load_dataset({"name": "digits", "resolution": 16})
    test = load_dataset({"name": "digits", "resolution": 16, "split": "test"})
    torch.manual_seed(0)
    D, random_D = DCGANDiscriminator(16, 1, width=8), DCGANDiscriminator(16, 1, width=8)
    results = run_probe(
        D,
        random_D,
        data.x,
        data.labels.numpy(),
        test.x,
        test.labels.numpy(),
        budgets=(10, None),
        repeats={10: 2, None: 1},
        log=lambda s: None,
        penalties=(0.1,),
    )
    for name in ("gan_discriminator", "random_discriminator", "pixels"):
        assert results["budgets"]["all"][name]["mean"] > 0.5  # ten classes: chance is 0.1
        assert len(results["budgets"]["10"][name]["runs"]) == 2


def test_cli_probe(tiny_run, tmp_path, capsys):
    # The tiny .npz has labels and no test split: the probe scores on the same images, which is enough here.
    assert (
        main(["probe", str(tiny_run), "--budgets", "2,all", "--penalties", "0.1", "--out", str(tmp_path / "p.png")])
        == 0
    )
    results = json.loads((tmp_path / "p.json").read_text())
    assert set(results["budgets"]) == {"2", "all"} and (tmp_path / "p.png").is_file()
    out = capsys.readouterr()
    assert "gan_discriminator" in out.out
    # each result as it comes, not after minutes of silence
    every = re.findall(r"probe: (\w+), (\w+) labels/class: test accuracy [\d.]+%", out.out + out.err)
    assert sorted(every) == sorted(
        (n, b) for n in ("gan_discriminator", "random_discriminator", "pixels") for b in ("2", "all")
    )
