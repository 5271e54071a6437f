import json

import pytest

from gankit.networks import MODELS

from gankit.config import RunConfig, apply_overrides, load_config, preset_names, read_preset
from gankit.registry import ConfigError

REQUIRED_PRESETS = {
    "dcgan-digits",
    "dcgan-fashion-mnist",
    "gan-mlp-fashion-mnist",
    "gan-mlp-ring",
    "gan-mlp-grid",
    "dcgan-cifar10",
    "dcgan-paper-64",
}


def test_every_preset_resolves_with_a_description():
    assert REQUIRED_PRESETS <= set(preset_names())
    for name in preset_names():
        config = load_config(name)
        assert config.description, name
        assert config.model["name"] in MODELS.names()


def test_resolution_fills_every_default():
    config = load_config("dcgan-digits")
    assert config.model["max_channels"] == 1024 and config.model["init_std"] == 0.02
    assert config.loss == {"name": "non-saturating", "real_label": 1.0}
    assert config.data["name"] == "digits" and config.data["split"] == "train"
    assert RunConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_overrides_are_type_checked():
    config = load_config("dcgan-digits", ["train.batch_size=16", "train.lr_d=1e-4", "model.g_width=8"])
    assert (config.train.batch_size, config.train.lr_d, config.model["g_width"]) == (16, 1e-4, 8)
    with pytest.raises(ConfigError, match=r"train.batch_size: expected int, got 'many'"):
        load_config("dcgan-digits", ["train.batch_size=many"])
    with pytest.raises(ConfigError, match=r"train.precision: 'fp8' is not one of 'fp32', 'bf16'"):
        load_config("dcgan-digits", ["train.precision=fp8"])
    with pytest.raises(ConfigError, match="must be at least 1"):
        load_config("dcgan-digits", ["train.steps=0"])


def test_unknown_keys_list_the_valid_ones():
    with pytest.raises(ConfigError, match=r"unknown key\(s\) widht in model; valid keys: resolution, channels"):
        load_config("dcgan-digits", ["model.widht=3"])
    with pytest.raises(ConfigError, match="valid keys: steps, time_limit, batch_size"):
        load_config("dcgan-digits", ["train.epochs=3"])
    with pytest.raises(ConfigError, match="unknown section 'optim'"):
        load_config("dcgan-digits", ["optim.lr=3"])
    with pytest.raises(
        ConfigError,
        match="unknown preset .dcgan-mnist.; presets: acgan-fashion-mnist, bigan-fashion-mnist, cgan-digits",
    ):
        load_config("dcgan-digits-typo".replace("-digits-typo", "-mnist"))


def test_changing_a_name_drops_the_old_sections_options():
    raw = apply_overrides(read_preset("dcgan-digits"), ["model.name=mlp", "model.g_hidden=[64]"])
    assert raw["model"] == {"name": "mlp", "g_hidden": [64]}
    config = load_config("dcgan-digits", ["data.name=ring", "model.name=mlp"])
    assert config.data["name"] == "ring" and config.model["d_activation"] == "maxout"


def test_config_file_and_run_folder_sources(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"data": {"name": "grid"}, "model": {"name": "mlp"}}))
    assert load_config(str(path)).data["std"] == 0.05
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text(path.read_text())
    assert load_config(str(tmp_path / "run")).data["name"] == "grid"
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(str(tmp_path / "missing.json"))


def test_overriding_a_section_the_config_leaves_out_starts_from_its_default():
    config = load_config("dcgan-digits", ["objective.r1_weight=2"])  # the preset has no objective section
    assert config.objective["name"] == "standard" and config.objective["r1_weight"] == 2.0


def test_every_preset_that_can_score_itself_keeps_its_best_generator():
    """Best checkpoint by default (issue 29): a preset whose G samples on its own, on data with a built-in evaluator
    (or a 2D mixture, scored by its modes), evaluates periodically; one whose G needs an input the training data
    cannot give (a caption) cannot."""
    import torch

    from gankit.data import load_dataset
    from gankit.networks.classifier import builtin_evaluators
    from gankit.training.game import build_game

    scorable = set(builtin_evaluators()) | {"ring", "grid"}
    checked = []
    for name in preset_names():
        config = load_config(name)
        if config.data["name"] not in scorable:
            continue
        small = {**config.data, "limit": 64} if config.data["name"] not in ("ring", "grid") else config.data
        torch.manual_seed(0)
        game = build_game(config, load_dataset(small), torch.device("cpu"))
        condition = game.objective.condition
        if condition.needs_input and not condition.evaluates_on_training_inputs:
            assert config.train.eval_every == 0, name
            continue
        assert config.train.eval_every > 0, f"{name} never evaluates: its best generator is not kept"
        assert config.train.eval_every <= config.train.steps, name
        checked.append(name)
    assert {"dcgan-digits", "cgan-digits", "dcgan-fashion-mnist", "gan-mlp-ring"} <= set(checked)
