"""train.compile (issue 33): G and D compiled in place by torch.compile train as the eager nets do, and their
files are those of eager nets; D stays eager where the objective differentiates D's gradients."""

import json

import pytest
import torch
from helpers import quiet, tiny_overrides

from gankit import load_config, load_generator, train
from gankit.data import load_dataset
from gankit.files import read_tensors
from gankit.formats import FORMAT_CHECKPOINT, list_checkpoints
from gankit.training.game import build_game, compile_for_training

LOSS_TOLERANCE = 0.05  # absolute, per logged step over 50 steps (measured: 0.002 for D, 0.008 for G)


def compiled(module: torch.nn.Module) -> bool:
    return module._compiled_call_impl is not None


@pytest.mark.parametrize(
    ("extra", "d_compiled"),
    [([], True), (["objective.r1_weight=1"], False), (["loss.name=wgan-gp"], False)],
)
def test_compile_leaves_d_eager_where_the_objective_differentiates_its_gradients(tiny_npz, extra, d_compiled):
    config = load_config(None, tiny_overrides(tiny_npz) + extra + ["train.compile=default"])
    dataset = load_dataset(config.data)
    game = build_game(config, dataset, torch.device("cpu"))
    messages = []
    compile_for_training(game, "default", messages.append)
    assert compiled(game.G)
    assert compiled(game.D) == d_compiled
    assert any("D stays eager" in m for m in messages) == (not d_compiled)
    off = build_game(config, dataset, torch.device("cpu"))
    compile_for_training(off, "off", messages.append)
    assert not compiled(off.G) and not compiled(off.D)


@pytest.mark.slow
def test_a_compiled_run_trains_as_the_eager_run_and_writes_eager_files(tmp_path, tiny_npz):
    rows, keys = {}, {}
    for mode in ("off", "default"):
        options = tiny_overrides(tiny_npz, steps=50, log_every=1, sample_every=50, checkpoint_every=50)
        run = tmp_path / mode
        train(load_config(None, [*options, f"train.compile={mode}"]), run, progress=False, log=quiet)
        rows[mode] = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
        _, path = list_checkpoints(run / "checkpoints")[-1]
        keys[mode] = set(read_tensors(path, FORMAT_CHECKPOINT)[0])
        assert load_generator(run).sample(4, seed=0).shape[0] == 4
    assert keys["off"] == keys["default"]  # no "_orig_mod." prefixes: a compiled run's files load eagerly
    assert [r["step"] for r in rows["off"]] == [r["step"] for r in rows["default"]] == list(range(1, 51))
    for eager, fast in zip(rows["off"], rows["default"], strict=True):
        for key in ("d_loss", "g_loss"):
            assert abs(eager[key] - fast[key]) <= LOSS_TOLERANCE, (eager["step"], key, eager[key], fast[key])
