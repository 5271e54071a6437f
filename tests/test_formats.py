"""The file formats (gankit.formats): exports and checkpoints written and parsed in one place."""

import json

import pytest
import torch

from gankit.files import CheckpointError, read_metadata, read_tensors, write_tensors
from gankit.formats import (
    FORMAT_CHECKPOINT,
    FORMAT_GENERATOR,
    find_checkpoint_file,
    find_generator_file,
    list_checkpoints,
    read_checkpoint,
    read_generator,
    run_folder_of,
    write_checkpoint,
    write_export,
)

CONFIG = {"model": {"name": "dcgan"}}


def state(value: float) -> dict:
    return {"net.weight": torch.full((2, 3), value), "net.bias": torch.zeros(2)}


def test_an_export_round_trips_g_the_condition_and_its_tensors(tmp_path):
    path = tmp_path / "generator.safetensors"
    condition = {"kind": "text", "noise_dim": 4, "tensors": "text_encoder"}
    write_export(
        path,
        state(1.0),
        CONFIG,
        7,
        True,
        condition,
        {"text_encoder.w": torch.ones(3)},
        {"text_encoder": {"name": "word-gru"}},
    )
    stored = read_generator(path)
    assert stored.step == 7 and stored.ema is True and stored.config == CONFIG and stored.condition == condition
    assert set(stored.state) == {"net.weight", "net.bias"}  # the condition's tensors are not G's
    assert set(stored.condition_tensors) == {"text_encoder.w"}
    assert json.loads(stored.metadata["text_encoder"]) == {"name": "word-gru"}
    assert read_metadata(path)["format"] == FORMAT_GENERATOR


def test_an_export_from_before_conditions_were_recorded_has_none_and_keeps_its_text_encoder_apart(tmp_path):
    path = tmp_path / "old.safetensors"
    write_tensors(
        path,
        {**state(2.0), "text_encoder.w": torch.ones(3)},
        {"format": FORMAT_GENERATOR, "config": CONFIG, "step": 3, "ema": False, "text_encoder": {"name": "x"}},
    )
    stored = read_generator(path)
    assert stored.condition is None and set(stored.condition_tensors) == {"text_encoder.w"} and stored.step == 3
    assert set(stored.state) == {"net.weight", "net.bias"}


def write_run_checkpoint(folder, step: int, with_ema: bool):
    nets = {"G": state(1.0), "D": state(5.0), **({"G_ema": state(3.0)} if with_ema else {})}
    optimizers = {"opt_G": ({"opt_G.0.step": torch.tensor(1.0)}, "[]"), "opt_D": ({}, "[]")}
    write_checkpoint(
        folder / f"ckpt-{step:08d}.safetensors",
        nets,
        optimizers,
        {"rng.z": torch.zeros(2)},
        CONFIG,
        step,
        2 * step,
        {"kind": "none"},
        {},
        {},
    )


def test_a_checkpoint_gives_its_ema_g_unless_asked_for_the_raw_g(tmp_path):
    folder = tmp_path / "run" / "checkpoints"
    write_run_checkpoint(folder, 4, with_ema=True)
    path = folder / "ckpt-00000004.safetensors"
    assert read_generator(path).state["net.weight"][0, 0] == 3.0 and read_generator(path).ema
    raw = read_generator(path, ema=False)
    assert raw.state["net.weight"][0, 0] == 1.0 and not raw.ema
    tensors, metadata = read_checkpoint(path)
    assert metadata["format"] == FORMAT_CHECKPOINT and json.loads(metadata["batches"]) == 8
    assert {"G.net.weight", "D.net.bias", "G_ema.net.bias", "opt_G.0.step", "rng.z"} <= set(tensors)
    write_run_checkpoint(folder, 4, with_ema=False)
    assert not read_generator(path).ema  # no EMA saved: the raw G, said so


def test_checkpoints_are_listed_by_the_step_in_their_metadata_and_found_from_the_run_folder(tmp_path):
    folder = tmp_path / "run" / "checkpoints"
    for step in (12, 3):
        write_run_checkpoint(folder, step, with_ema=False)
    (folder / "ckpt-00000012.safetensors").rename(folder / "a-late-one.safetensors")  # names carry no step
    (folder / "notes.safetensors").write_bytes(b"not a safetensors file")
    assert [s for s, _ in list_checkpoints(folder)] == [3, 12]
    assert find_checkpoint_file(tmp_path / "run") == folder / "a-late-one.safetensors"
    assert find_generator_file(tmp_path / "run") == folder / "a-late-one.safetensors"  # no export: the last one
    write_export(tmp_path / "run" / "generator.safetensors", state(0.0), CONFIG, 12, False, {"kind": "none"}, {}, {})
    assert find_generator_file(tmp_path / "run") == tmp_path / "run" / "generator.safetensors"


def test_files_that_are_not_gankit_files_are_refused_with_their_name(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        find_generator_file(tmp_path / "missing.safetensors")
    with pytest.raises(CheckpointError, match="no generator.safetensors and no checkpoints"):
        find_generator_file(tmp_path)
    other = tmp_path / "other.safetensors"
    write_tensors(other, state(0.0), {"format": "something-else"})
    with pytest.raises(CheckpointError, match="not a gankit generator export or checkpoint"):
        read_generator(other)
    with pytest.raises(CheckpointError, match="expected 'gankit-checkpoint-1'"):
        read_tensors(other, FORMAT_CHECKPOINT)
    broken = tmp_path / "broken.safetensors"
    write_tensors(broken, state(0.0), {"format": FORMAT_GENERATOR, "config": "{not json", "step": 1})
    with pytest.raises(CheckpointError, match="damaged metadata"):
        read_generator(broken)


def test_run_folder_of_is_the_folder_or_a_parent_with_a_config(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text("{}")
    assert run_folder_of(run) == run
    assert run_folder_of(run / "checkpoints" / "ckpt-1.safetensors") == run
    assert run_folder_of(tmp_path) is None
