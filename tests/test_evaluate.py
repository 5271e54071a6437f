import dataclasses
import json

import numpy as np
import pytest
import torch
from helpers import tiny_overrides

from gankit import load_config, load_generator, train
from gankit.cli import main
from gankit.files import CheckpointError
from gankit.metrics.classifier import EvaluatorTraining, augment, load_evaluator, save_evaluator, train_evaluator
from gankit.metrics.evaluation import evaluate_generator, evaluate_real_vs_real, parse_metrics
from gankit.metrics.extractors import build_extractor
from gankit.registry import ConfigError


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def tiny_evaluator(tmp_path):
    """An evaluator for the tiny data's shape (16x16 gray, 4 classes), trained on images whose class sets their
    brightness: learnable, so it is better than chance (an evaluator at chance is refused)."""
    rng = np.random.default_rng(1)
    labels = np.arange(128) % 4
    images = (labels[:, None, None] * 60 + rng.integers(0, 40, (128, 16, 16))).astype(np.uint8)
    np.savez(tmp_path / "learnable.npz", images=images, labels=labels)
    options = EvaluatorTraining(epochs=4, batch_size=16, width=4)
    evaluator = train_evaluator(
        {"name": "npz", "path": str(tmp_path / "learnable.npz")}, options, log=lambda s: None, progress=False
    )
    assert evaluator.info["test_accuracy"] > evaluator.info["chance_accuracy"] + 0.5 * (
        1 - evaluator.info["chance_accuracy"]
    )
    return save_evaluator(evaluator, tmp_path / "eval.safetensors")


def test_evaluator_round_trip_and_corruption_check(tmp_path, tiny_evaluator):
    evaluator = load_evaluator(tiny_evaluator)
    info = json.loads(tiny_evaluator.with_suffix(".json").read_text())
    assert info["weights_sha256"] == evaluator.sha256 and info["resolution"] == 16 and "test_accuracy" in info
    data = bytearray(tiny_evaluator.read_bytes())
    data[-5] ^= 0xFF  # flip bits inside the last tensor
    (tmp_path / "bad.safetensors").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="does not match the checksum"):
        load_evaluator(tmp_path / "bad.safetensors")
    with pytest.raises(CheckpointError, match="gankit evaluator train"):
        load_evaluator("no-such-dataset")


def test_features_do_not_depend_on_batch_size(tiny_evaluator):
    x = torch.randint(0, 256, (37, 1, 16, 16), dtype=torch.uint8)
    small = build_extractor({"name": "evaluator", "weights": str(tiny_evaluator), "batch_size": 5})(x)
    large = build_extractor({"name": "evaluator", "weights": str(tiny_evaluator), "batch_size": 37})(x)
    np.testing.assert_allclose(small.features, large.features, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(small.logits, large.logits, rtol=1e-5, atol=1e-5)


def test_extractor_rejects_the_wrong_image_shape(tiny_evaluator):
    extractor = build_extractor({"name": "evaluator", "weights": str(tiny_evaluator)})
    with pytest.raises(ConfigError, match=r"reads uint8 images of shape \(1, 16, 16\)"):
        extractor(torch.zeros(2, 3, 16, 16, dtype=torch.uint8))


def test_generator_row_carries_its_protocol_and_reuses_cached_reference(tiny_run, tiny_evaluator):
    pipeline = load_generator(tiny_run)
    kwargs = dict(num_samples=40, num_reference=64, extractor={"name": "evaluator", "weights": str(tiny_evaluator)})
    row = evaluate_generator(pipeline, **kwargs)
    assert set(row["metrics"]) == {
        "fid",
        "kid",
        "kid_std",
        "precision",
        "recall",
        "density",
        "coverage",
        "is",
        "is_std",
    }
    assert all(np.isfinite(v) for v in row["metrics"].values())
    p = row["protocol"]
    for field in (
        "extractor",
        "weights_sha256",
        "preprocessing",
        "num_generated",
        "num_reference",
        "reference",
        "seed",
        "gankit_version",
        "metrics",
        "checkpoint_step",
        "ema_generator",
    ):
        assert field in p, field
    assert p["weights_sha256"] == load_evaluator(tiny_evaluator).sha256
    assert (p["num_generated"], p["num_reference"], p["reference"]["split"]) == (40, 64, "train")
    assert row["step"] == 2 and row["ema"] is False and not p["reference_features_cached"]
    again = evaluate_generator(pipeline, **kwargs)
    assert again["protocol"]["reference_features_cached"] and again["metrics"] == row["metrics"]


def test_real_vs_real_on_a_source_without_a_test_split_compares_disjoint_images(tiny_npz, tiny_evaluator):
    # The .npz source has one split of 64 images: a reference of all 64 leaves none, so the floor compares two
    # disjoint halves (an identical pair would give FID 0 by construction, a floor that says nothing).
    row = evaluate_real_vs_real(
        {"name": "npz", "path": str(tiny_npz)},
        metrics="fid,prdc",
        extractor={"name": "evaluator", "weights": str(tiny_evaluator)},
    )
    assert row["protocol"]["num_reference"] == 32 and row["generated"]["num_samples"] == 32
    assert row["metrics"]["fid"] > 0 and 0 < row["metrics"]["precision"] <= 1
    part = evaluate_real_vs_real(
        {"name": "npz", "path": str(tiny_npz)},
        metrics="fid",
        num_samples=10,
        num_reference=40,
        extractor={"name": "evaluator", "weights": str(tiny_evaluator)},
    )
    assert part["protocol"]["num_reference"] == 40 and part["generated"]["num_samples"] == 10


def test_mode_metric_on_a_ring_run(tmp_path):
    overrides = [
        "data.name=ring",
        "data.num_points=500",
        "model.name=mlp",
        "model.latent_dim=2",
        "model.g_hidden=[16]",
        "model.d_hidden=[16]",
        "train.steps=2",
        "train.batch_size=50",
        "train.sample_grid=10",
        "train.tensorboard=false",
    ]
    train(load_config(None, overrides), tmp_path / "ring", progress=False, log=lambda s: None)
    row = evaluate_generator(load_generator(tmp_path / "ring"), metrics="modes,fid", num_samples=300, num_reference=300)
    assert row["protocol"]["extractor"] == "raw" and row["metrics"]["modes_total"] == 8
    assert row["metrics"]["high_quality"] * 300 == pytest.approx(round(row["metrics"]["high_quality"] * 300))


def test_unknown_metric_lists_the_valid_ones():
    with pytest.raises(
        ConfigError,
        match="metrics: fid, kid, is, prdc, classes, labels, intra_fid, code_accuracy, code_monotonicity, modes",
    ):
        parse_metrics("fid,lpips")


def test_augment_shifts_and_flips_without_changing_shape():
    x = torch.arange(16.0).view(1, 1, 4, 4).repeat(8, 1, 1, 1)
    y = augment(x, 1, True, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and not torch.equal(x, y)
    assert torch.equal(augment(x, 0, False, torch.Generator()), x)


def test_cli_evaluate_appends_to_the_runs_metrics(tiny_run, tiny_evaluator, capsys):
    args = [
        "evaluate",
        str(tiny_run),
        "--n",
        "30",
        "--reference-n",
        "64",
        "--metrics",
        "fid,kid,classes",
        "--evaluator",
        str(tiny_evaluator),
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "fid" in out and "appended to" in out and "class_histogram" in out
    rows = [json.loads(line) for line in (tiny_run / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["source"] == str(tiny_run)
    same = evaluate_generator(
        load_generator(tiny_run),
        "fid",
        num_samples=30,
        num_reference=64,
        extractor={"name": "evaluator", "weights": str(tiny_evaluator)},
    )
    assert rows[-1]["metrics"]["fid"] == same["metrics"]["fid"]  # the command is the library call
    histogram = rows[-1]["metrics"]["class_histogram"]
    assert len(histogram) == 4 and sum(histogram) == pytest.approx(1.0, abs=1e-3)
    assert max(histogram) == pytest.approx(rows[-1]["metrics"]["max_class_share"], abs=1e-4)


def test_training_with_periodic_evaluation_keeps_the_best_generator(tmp_path, tiny_npz, tiny_evaluator):
    from gankit.training import TrainingError

    overrides = tiny_overrides(tiny_npz, steps=4) + [
        "train.eval_every=2",
        "train.eval_samples=20",
        f"train.eval_evaluator={tiny_evaluator}",
        'train.eval_metrics=["fid", "prdc", "classes"]',
    ]
    train(load_config(None, overrides), tmp_path / "r", progress=False, log=lambda s: None)
    rows = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4] and all(r["source"] == "training" for r in rows)
    best = json.loads((tmp_path / "r" / "best" / "metrics.json").read_text())
    assert best["metrics"]["fid"] == min(r["metrics"]["fid"] for r in rows)
    assert load_generator(tmp_path / "r" / "best" / "generator.safetensors").step == best["step"]
    with pytest.raises(TrainingError, match="eval_best='is' is not reported"):
        train(load_config(None, overrides + ["train.eval_best=is"]), tmp_path / "s", progress=False, log=lambda s: None)


def test_evaluator_on_an_image_folder_holds_out_a_test_tenth(tmp_path):
    from PIL import Image

    for cls, value in (("dark", 30), ("light", 220)):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i in range(20):
            Image.new("L", (16, 16), value + i).save(tmp_path / "imgs" / cls / f"{i}.png")
    section = {"name": "folder", "path": str(tmp_path / "imgs"), "resolution": 16, "channels": 1}
    options = EvaluatorTraining(epochs=3, batch_size=8, width=4, shift=0, flip=False, lr=1e-2)
    evaluator = train_evaluator(section, options, log=lambda s: None, progress=False)
    assert evaluator.info["test_split"].startswith("a held-out random 10% (4 images")
    assert evaluator.info["class_names"] == ["dark", "light"] and evaluator.info["test_accuracy"] >= 0.75
    # fewer training images (36) than a batch: each epoch is one batch of all of them, not an error
    few = train_evaluator(section, dataclasses.replace(options, batch_size=64), log=lambda s: None, progress=False)
    assert few.info["test_accuracy"] >= 0.0 and few.info["class_names"] == ["dark", "light"]


def test_table_gives_ratios_only_where_they_mean_something():
    from gankit.metrics.evaluation import format_table

    protocol = {
        "extractor": "evaluator",
        "weights_sha256": "ab" * 32,
        "num_generated": 10,
        "num_reference": 10,
        "reference": {"split": "train"},
        "seed": 0,
    }
    row = {"metrics": {"fid": 2.0, "kid": 0.1, "kid_std": 0.01}, "protocol": protocol}
    floor = {"metrics": {"fid": 0.5, "kid": 0.001, "kid_std": 0.004}, "protocol": protocol}
    lines = {line.split()[0]: line.split()[1:] for line in format_table(row, floor).splitlines()[2:]}
    assert lines["fid"][-1] == "4" and lines["kid"][-1] == "n/a" and len(lines["kid_std"]) == 2
    negative = {
        "metrics": {"fid": 0.5, "kid": -0.0004, "kid_std": 0.0},
        "protocol": protocol,
    }  # unbiased KID can be < 0
    lines = {line.split()[0]: line.split()[1:] for line in format_table(row, negative).splitlines()[2:]}
    assert lines["kid"][-1] == "n/a"


def test_inception_extractor_explains_how_to_install_it_when_absent():
    try:
        import torch_fidelity  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match=r"pip install 'gankit\[inception\]'"):
            build_extractor({"name": "inception"})
    else:
        pytest.skip("torch-fidelity is installed; its weights need a download, which tests may not do")


def test_conditional_generators_get_label_accuracy_and_intra_class_fid(tmp_path, tiny_npz, tiny_evaluator):
    overrides = tiny_overrides(tiny_npz, steps=2) + ["model.num_classes=null", "objective.name=conditional"]
    train(load_config(None, overrides), tmp_path / "c", progress=False, log=lambda s: None)
    extractor = {"name": "evaluator", "weights": str(tiny_evaluator)}
    row = evaluate_generator(
        load_generator(tmp_path / "c"), "fid,labels,intra_fid", num_samples=40, num_reference=64, extractor=extractor
    )
    m = row["metrics"]
    assert m["label_accuracy"] * 40 == round(m["label_accuracy"] * 40)  # a share of the 40 samples
    assert m["intra_fid"] > 0 and len(m["intra_fid_per_class"]) == 4
    floor = evaluate_real_vs_real({"name": "npz", "path": str(tiny_npz)}, "labels,intra_fid", extractor=extractor)
    # The .npz source has one split: its two disjoint halves, scored with their labels.
    assert floor["metrics"]["intra_fid"] > 0 and floor["generated"]["num_samples"] == 32
    assert 0 < floor["metrics"]["label_accuracy"] <= 1
    # label accuracy is discovered: scored by default for a class-conditional G under a classifier, not otherwise
    default = evaluate_generator(
        load_generator(tmp_path / "c"), None, num_samples=40, num_reference=64, extractor=extractor
    )
    assert default["metrics"]["label_accuracy"] == m["label_accuracy"] and "labels" in default["protocol"]["metrics"]
    unconditional = _unconditional(tmp_path, tiny_npz)
    plain = evaluate_generator(unconditional, None, num_samples=8, extractor=extractor)
    assert "label_accuracy" not in plain["metrics"] and "is" in plain["protocol"]["metrics"]
    with pytest.raises(ConfigError, match="needs a class-conditional generator"):
        evaluate_generator(unconditional, "labels", num_samples=8, extractor=extractor)


def _unconditional(tmp_path, tiny_npz):
    train(load_config(None, tiny_overrides(tiny_npz, steps=2)), tmp_path / "u", progress=False, log=lambda s: None)
    return load_generator(tmp_path / "u")


def test_infogan_categorical_code_accuracy(tmp_path, tiny_npz, tiny_evaluator):
    overrides = tiny_overrides(tiny_npz, steps=2) + ["objective.name=infogan", "objective.categorical=[4]"]
    train(load_config(None, overrides), tmp_path / "i", progress=False, log=lambda s: None)
    extractor = {"name": "evaluator", "weights": str(tiny_evaluator)}
    row = evaluate_generator(
        load_generator(tmp_path / "i"), "code_accuracy,code_monotonicity", num_samples=40, extractor=extractor
    )
    assert 0.25 <= row["metrics"]["code_accuracy"] <= 1  # a one-to-one match always gets at least 1/K here
    assert sorted(row["metrics"]["code_to_class"]) == sorted(set(row["metrics"]["code_to_class"]))
    per_code = row["metrics"]["code_monotonicity_per_code"]  # two continuous codes (the default)
    assert len(per_code) == 2 and row["metrics"]["code_monotonicity"] == pytest.approx(
        np.mean(np.abs(per_code)), abs=1e-6
    )
    assert set(row["metrics"]["code_statistic_per_code"]) <= {"intensity", "width", "height", "slant"}
    assert "code_monotonicity" in row["protocol"]["metrics"]
    unconditional = _unconditional(tmp_path, tiny_npz)
    for metric in ("code_accuracy", "code_monotonicity"):
        with pytest.raises(ConfigError, match="needs (an InfoGAN generator|a generator with a continuous input)"):
            evaluate_generator(unconditional, metric, num_samples=8, extractor=extractor)


def test_grey_noise_samples_get_warnings_not_a_flattering_precision():
    """The first-time user: uniform grey samples scored precision 0.992 beside recall 0 and FID 67."""
    from gankit.metrics.evaluation import format_table, score_warnings

    rng = np.random.default_rng(0)
    real = rng.normal(size=(500, 16))
    grey = 0.2 + 0.001 * rng.normal(size=(500, 16))
    warnings = score_warnings({"precision": 0.992, "recall": 0.0}, real, grey)
    assert len(warnings) == 2 and "barely differ" in warnings[0] and "precision 0.992 with recall 0.000" in warnings[1]
    assert score_warnings({"precision": 0.8, "recall": 0.6}, real, rng.normal(size=(500, 16))) == []
    row = {
        "metrics": {
            "precision": 0.992,
            "recall": 0.0,
            "density": 1.1,
            "coverage": 0.01,
            "fid": 67.0,
            "kid": 0.5,
            "kid_std": 0.01,
        },
        "warnings": warnings,
        "protocol": {
            "extractor": "evaluator",
            "weights_sha256": "abc",
            "num_generated": 500,
            "num_reference": 500,
            "reference": {"split": "train"},
            "seed": 0,
        },
    }
    table = format_table(row).splitlines()
    assert [line.split()[0] for line in table[2:9]] == [
        "fid",
        "kid",
        "kid_std",
        "coverage",
        "density",
        "recall",
        "precision",
    ]
    assert table[-1].startswith("WARNING: precision 0.992")


def test_the_separation_test_tells_a_trained_evaluator_from_a_random_one():
    """What decides whether an evaluator is refused or weak: can its features tell real images from a noisy copy?"""
    from gankit.data import load_dataset
    from gankit.metrics.classifier import ClassifierNet, load_evaluator, separation
    from gankit.networks.classifier import REFUSE_RATIO, WEAK_RATIO

    x = load_dataset({"name": "digits", "resolution": 32}).x
    trained = separation(load_evaluator("digits").net, x)
    dead = ClassifierNet(1, 10, 24)
    with torch.no_grad():
        for parameter in dead.parameters():
            parameter.zero_()  # collapsed features: every image embeds to the same point
    assert trained["ratio"] > WEAK_RATIO and separation(dead, x)["ratio"] < REFUSE_RATIO, trained
    assert trained["images"] == 1436 and trained["noisy_fid"] > trained["floor_fid"]
