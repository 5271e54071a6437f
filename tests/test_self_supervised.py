"""Scores for unlabelled images (issue 22): the contrastive (SimCLR) evaluator, its loss and augmentations, its
file, the extractor's card, and `gankit evaluate` finding it for a run trained on a folder."""

import json
import math
import re

import numpy as np
import pytest
import torch
from helpers import quiet
from PIL import Image

from gankit import load_config, train
from gankit.errors import ConfigError
from gankit.metrics.evaluation import default_extractor
from gankit.metrics.extractors import build_extractor
from gankit.metrics.self_supervised import SelfSupervisedTraining, augment, nt_xent, train_self_supervised
from gankit.networks.classifier import evaluator_for_data, load_evaluator, save_evaluator


def test_nt_xent_on_hand_made_projections():
    """Two images with orthogonal projections, each view identical to its pair: for every anchor the positive
    scores 1 / t, the two negatives 0, so the loss is -log(e^(1/t) / (e^(1/t) + 2))."""
    a = torch.eye(2)
    t = 0.5
    expected = -math.log(math.exp(1 / t) / (math.exp(1 / t) + 2))
    assert float(nt_xent(a, a.clone(), t)) == pytest.approx(expected, rel=1e-6)
    assert float(nt_xent(a, a.flip(0), t)) > expected  # swapped pairs: the positive is the orthogonal one


def test_augmented_views_are_seeded_bounded_and_different():
    x = torch.rand(6, 3, 16, 16) * 2 - 1
    options = SelfSupervisedTraining()
    one = augment(x, options, torch.Generator().manual_seed(1))
    assert one.shape == x.shape and one.min() >= -1 and one.max() <= 1
    assert torch.equal(one, augment(x, options, torch.Generator().manual_seed(1)))
    assert not torch.equal(one, augment(x, options, torch.Generator().manual_seed(2)))


@pytest.fixture
def folder(tmp_path):
    """120 unlabelled 16 px images: a square of one random colour at a random place on another, with noise."""
    rng = np.random.default_rng(0)
    root = tmp_path / "photos"
    root.mkdir()
    for i in range(120):
        image = np.empty((16, 16, 3), dtype=np.uint8)
        image[:] = rng.integers(0, 256, 3)
        image = (image + rng.integers(0, 30, (16, 16, 3))).clip(0, 255).astype(np.uint8)
        r, c = rng.integers(0, 8, 2)
        image[r : r + 8, c : c + 8] = rng.integers(0, 256, 3)
        Image.fromarray(image).save(root / f"{i:03d}.png")
    return root


@pytest.mark.slow
def test_an_unlabelled_folder_gets_a_self_supervised_evaluator_that_evaluate_finds(
    folder, tmp_path, monkeypatch, capsys
):
    from gankit.cli import main

    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))
    section = {"name": "folder", "path": str(folder), "resolution": 16, "channels": 3}
    overrides = [f"data.{k}={v}" for k, v in section.items()] + [
        "model.name=dcgan",
        "model.g_width=8",
        "model.d_width=8",
        "model.latent_dim=16",
        "train.steps=2",
        "train.batch_size=8",
        "train.tensorboard=false",
        "train.sample_grid=4",
    ]
    run = train(load_config(None, overrides), tmp_path / "run", progress=False, log=quiet).run_dir
    with pytest.raises(ConfigError, match="gankit evaluator train --dataset folder --set data.path="):
        default_extractor(section, "images")
    command = ["evaluator", "train", "--dataset", "folder", "--epochs", "20", "--quiet"]
    command += [a for k, v in section.items() if k != "name" for a in ("--set", f"data.{k}={v}")]
    assert main(command) == 0
    printed = capsys.readouterr().out
    assert "have no labels: training a self-supervised evaluator" in printed
    pairs = float(re.search(r"held-out pair accuracy ([\d.]+) \(chance 0.0435\)", printed).group(1))  # 12 held out
    assert pairs > 0.5 and "WARNING" not in printed
    path = evaluator_for_data(section)
    assert path.is_file() and json.loads(path.with_suffix(".json").read_text())["kind"] == "self-supervised"
    assert default_extractor(section, "images") == {"name": "evaluator", "weights": str(path)}
    assert (
        main(["evaluate", str(run), "--metrics", "fid,kid,prdc", "--n", "40", "--reference-n", "40", "--no-floor"]) == 0
    )
    out = capsys.readouterr().out
    assert "fid" in out and "evaluator" in out


def test_the_evaluator_file_has_no_class_logits_and_its_features_work(folder, tmp_path):
    section = {"name": "folder", "path": str(folder), "resolution": 16, "channels": 3}
    evaluator = train_self_supervised(
        section, SelfSupervisedTraining(epochs=8, batch_size=32), log=quiet, progress=False
    )
    assert evaluator.info["kind"] == "self-supervised" and evaluator.info["knn_accuracy_heldout"] is None
    path = save_evaluator(evaluator, tmp_path / "e.safetensors")
    assert load_evaluator(path).info["kind"] == "self-supervised"
    extractor = build_extractor({"name": "evaluator", "weights": str(path)})
    features = extractor(torch.randint(0, 256, (5, 3, 16, 16), dtype=torch.uint8))
    assert features.features.shape == (5, 4 * 24) and features.logits is None
    assert extractor.card["evaluator_kind"] == "self-supervised" and extractor.card["evaluator_test_accuracy"] is None


def test_an_evaluator_for_64_px_images_has_a_strided_stem_that_survives_its_file(tmp_path):
    from gankit.networks.classifier import ClassifierNet, Evaluator, stem_stride_for

    assert [stem_stride_for(r) for r in (28, 32, 63, 64, 256)] == [1, 1, 1, 2, 2]
    net = ClassifierNet(3, 64, 4, dropout=0.0, stem_stride=2).eval()
    x = torch.randn(2, 3, 64, 64)
    inner = [m for m in net.body if isinstance(m, torch.nn.MaxPool2d)]
    assert len(inner) == 2 and net.body[0].stride == (2, 2)
    info = {
        "kind": "self-supervised",
        "channels": 3,
        "resolution": 64,
        "num_classes": 64,
        "width": 4,
        "stem_stride": 2,
        "class_names": None,
        "dataset": {"name": "folder"},
        "test_accuracy": None,
    }
    path = save_evaluator(Evaluator(net, info), tmp_path / "e.safetensors")
    loaded = load_evaluator(path)
    assert loaded.net.stem_stride == 2 and torch.equal(loaded.net.features(x), net.features(x))
    damaged = json.loads(path.with_suffix(".json").read_text())
    assert damaged["stem_stride"] == 2


def test_the_evaluator_of_a_folder_is_found_however_the_section_is_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "photos").mkdir()
    short = {"name": "folder", "path": "photos", "resolution": 64}
    full = {
        "name": "folder",
        "path": str(tmp_path / "photos"),
        "resolution": 64,
        "channels": 3,
        "split": "train",
        "limit": None,
        "strict": False,
    }
    assert evaluator_for_data(short) == evaluator_for_data(full)
    assert evaluator_for_data(short) != evaluator_for_data({**short, "resolution": 32})
