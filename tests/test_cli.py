import json

import numpy as np
import pytest
from helpers import tiny_overrides
from PIL import Image

from gankit.cli import main


def cli_train(run_dir, npz, *extra):
    sets = [a for o in tiny_overrides(npz, steps=2) for a in ("--set", o)]
    return main(["train", "dcgan-digits", "--out", str(run_dir), "--quiet", *sets, *extra])


def test_train_sample_info_round_trip(tmp_path, tiny_npz, capsys):
    run_dir = tmp_path / "run"
    assert cli_train(run_dir, tiny_npz) == 0
    assert "generator export" in capsys.readouterr().out
    assert main(["sample", str(run_dir), "--n", "6", "--seed", "2", "--out", str(tmp_path / "s.npz")]) == 0
    images = np.load(tmp_path / "s.npz")["images"]
    assert images.shape == (6, 16, 16, 1) and images.dtype == np.uint8
    assert main(["sample", str(run_dir), "--n", "4", "--out", str(tmp_path / "grid.png")]) == 0
    assert Image.open(tmp_path / "grid.png").size[0] > 16
    assert main(["sample", str(run_dir / "generator.safetensors"), "--n", "3", "--out", str(tmp_path / "pngs")]) == 0
    assert len(list((tmp_path / "pngs").glob("*.png"))) == 3
    capsys.readouterr()
    assert main(["info", str(run_dir)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["step"] == 2 and info["checkpoints"][-1]["step"] == 2


def test_resume_extends_a_run(tmp_path, tiny_npz):
    run_dir = tmp_path / "run"
    assert cli_train(run_dir, tiny_npz) == 0
    assert main(["train", str(run_dir), "--out", str(run_dir), "--steps", "4", "--resume", "--quiet"]) == 0
    assert json.loads((run_dir / "train_log.jsonl").read_text().splitlines()[-1])["step"] == 4


def test_errors_are_one_line_with_exit_code_2(tmp_path, tiny_npz, capsys):
    assert main(["train", "dcgan-digits", "--set", "train.bogus=1"]) == 2
    assert "valid keys" in capsys.readouterr().err
    assert main(["sample", str(tmp_path), "--out", str(tmp_path / "x.png")]) == 2
    assert "gankit sample: error" in capsys.readouterr().err


def test_list_shows_every_registry(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for word in ("dcgan", "mlp", "wgan-gp", "fashion-mnist", "ring", "dcgan-paper-64"):
        assert word in out


def test_version(capsys):
    with pytest.raises(SystemExit):
        main(["--version"])
    assert "gankit 0.1.0" in capsys.readouterr().out


def test_run_folder_of_finds_the_run_from_its_files(tmp_path, tiny_npz):
    from gankit.formats import run_folder_of

    run_dir = tmp_path / "run"
    assert cli_train(run_dir, tiny_npz) == 0
    checkpoint = sorted((run_dir / "checkpoints").glob("*.safetensors"))[-1]
    assert (
        run_folder_of(run_dir)
        == run_folder_of(checkpoint)
        == run_folder_of(run_dir / "generator.safetensors")
        == run_dir
    )
    assert run_folder_of(tmp_path / "elsewhere.safetensors") is None
