"""Hostile gankit files: crafted and damaged checkpoints and exports (issue 17, classes 1, 5, 7, 8, 11, 12).

Each file here is made by rewriting a real checkpoint or export of a two-step run: tensors of the wrong
shape, dtype or value, damaged metadata, flipped bits, altered configs. Every one must end in one of
gankit's error families (a CheckpointError or TrainingError naming the file and what was wrong), never in
a crash, a Python traceback from deep inside torch, or a silently different model.
"""

import contextlib
import json
import re
import shutil
import subprocess
import sys

import pytest
import torch
from helpers import tiny_overrides
from safetensors import safe_open

from gankit import load_config, load_generator, train
from gankit.errors import CheckpointError, ConfigError, TrainingError
from gankit.files import read_tensors, write_tensors
from gankit.ownership import owning_run, writing_run
from gankit.formats import FORMAT_CHECKPOINT, list_checkpoints


def read_raw(path):
    """Tensors and raw (string) metadata of a safetensors file, without any of gankit's checks."""
    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata())


def rewrite(path, tensors=None, metadata=None, drop=()):
    """Rewrite ``path`` with some tensors / metadata entries replaced (a fresh, valid checksum: what is
    tested is the structural check, not the checksum)."""
    old_tensors, old_metadata = read_raw(path)
    new_tensors = {k: v for k, v in {**old_tensors, **(tensors or {})}.items() if k not in drop}
    new_metadata = {k: v for k, v in {**old_metadata, **(metadata or {})}.items() if k not in drop and k != "checksum"}
    run = owning_run(path)  # the test plays the stranger who made the run: it owns its copy
    with writing_run(run) if run else contextlib.nullcontext():
        write_tensors(path, new_tensors, new_metadata)


def last_checkpoint(run):
    return list_checkpoints(run / "checkpoints")[-1][1]


def resume(run, steps=4):
    config = load_config(str(run), [f"train.steps={steps}"])
    return train(config, run, resume=True, progress=False, log=lambda s: None)


@pytest.fixture
def run_copy(tmp_path, tiny_run):
    """A fresh copy of the two-step tiny run, to damage."""
    copy = tmp_path / "copy"
    shutil.copytree(tiny_run, copy)
    return copy


# ------------------------------------------------------------------ class 1: memory corruption from a crafted
# checkpoint


def moment_of_wrong_size(tensors):
    name = next(k for k in tensors if k.startswith("opt_G.") and k.endswith(".exp_avg"))
    return {name: torch.zeros(tensors[name].numel() * 64)}


def moment_of_wrong_dtype(tensors):
    name = next(k for k in tensors if k.startswith("opt_D.") and k.endswith(".exp_avg_sq"))
    return {name: tensors[name].double()}


def negative_second_moment(tensors):
    name = next(k for k in tensors if k.startswith("opt_D.") and k.endswith(".exp_avg_sq"))
    return {name: -torch.ones_like(tensors[name])}


def fractional_step(tensors):
    return {"opt_G.0.step": torch.tensor(1.5)}


def nan_weight(tensors):
    name = next(k for k in tensors if k.startswith("G.") and tensors[k].is_floating_point())
    return {name: torch.full_like(tensors[name], float("nan"))}


def integer_weight(tensors):
    name = next(k for k in tensors if k.startswith("D.") and tensors[k].is_floating_point())
    return {name: tensors[name].to(torch.int32)}


def transposed_weight(tensors):
    name = next(
        k for k in tensors if k.startswith("G.") and tensors[k].ndim == 4 and tensors[k].shape[0] != tensors[k].shape[1]
    )
    return {name: tensors[name].transpose(0, 1).contiguous()}


def garbage_rng(tensors):
    return {"rng.z": torch.full_like(tensors["rng.z"], 255)}


def short_rng(tensors):
    return {"rng.torch": tensors["rng.torch"][:100]}


def stray_tensor(tensors):
    return {"payload.x": torch.zeros(3)}


CRAFTED_TENSORS = {
    "an Adam moment 64 times its parameter's size": (moment_of_wrong_size, r"opt_G's state .* has shape"),
    "an Adam moment in float64": (moment_of_wrong_dtype, r"opt_D's state .* is torch.float64, expected torch.float32"),
    "a negative second moment": (negative_second_moment, r"holds negative values"),
    "a fractional step count": (fractional_step, r"opt_G.0.step is 1.5, not a step count"),
    "a NaN weight": (nan_weight, r"the G weights .* holds NaN or infinite values"),
    "an integer weight": (integer_weight, r"the D weights .* is torch.int32, expected torch.float32"),
    "a transposed weight": (transposed_weight, r"the G weights .* has shape"),
    "a damaged RNG state": (garbage_rng, r"damaged random number generator state"),
    "a truncated RNG state": (short_rng, r"random number generator states .* rng.torch has shape \(100,\)"),
    "a stray tensor": (stray_tensor, r"unexpected tensors payload.x"),
}


@pytest.mark.parametrize("craft", sorted(CRAFTED_TENSORS))
def test_a_crafted_checkpoint_tensor_is_refused_before_anything_is_loaded(run_copy, craft):
    make, message = CRAFTED_TENSORS[craft]
    path = last_checkpoint(run_copy)
    tensors, _ = read_raw(path)
    rewrite(path, tensors=make(tensors))
    with pytest.raises(CheckpointError) as failure:
        resume(run_copy)
    assert str(failure.value).startswith(f"{path}: ")
    assert re.search(message, str(failure.value)), str(failure.value)


def test_an_oversized_adam_moment_cannot_crash_the_process(run_copy):
    """Without the check, the fused CPU Adam writes past a 64x-too-small buffer (SIGSEGV or heap corruption):
    so this runs in a child process, through the command line, and asks for exit code 2 and one message."""
    path = last_checkpoint(run_copy)
    name = next(k for k in read_raw(path)[0] if k.startswith("opt_G.") and k.endswith(".exp_avg"))
    rewrite(path, tensors={name: torch.zeros(2)})
    command = "import sys; from gankit.cli import main; sys.exit(main())"
    done = subprocess.run(
        [sys.executable, "-c", command, "train", str(run_copy), "--resume", "--steps", "4", "--quiet"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2, done.stderr
    assert "has shape (2,)" in done.stderr and "Traceback" not in done.stderr


# ------------------------------------------------------------------ class 7: corrupted tensors, checksums


def flip_a_data_bit(path):
    data = bytearray(path.read_bytes())
    data[-7] ^= 0x10
    path.write_bytes(bytes(data))


def test_a_flipped_bit_in_an_export_is_refused_by_every_reader(run_copy, capsys):
    export = run_copy / "generator.safetensors"
    flip_a_data_bit(export)
    with pytest.raises(CheckpointError, match="does not match the checksum"):
        load_generator(export)
    from gankit.cli import main

    assert main(["evaluate", str(export), "--n", "16", "--reference-n", "16", "--metrics", "fid"]) == 2
    err = capsys.readouterr().err
    assert "does not match the checksum" in err and str(export) in err and "Traceback" not in err


def test_an_edited_value_in_a_files_metadata_is_refused(run_copy):
    """The checksum covers the metadata too: a learning rate or a step changed in the header, same length,
    valid JSON, is an error rather than a silently different run."""
    path = last_checkpoint(run_copy)
    data = path.read_bytes()
    assert data.count(b"0.0002") >= 1
    path.write_bytes(data.replace(b"0.0002", b"0.0003", 1))
    with pytest.raises(CheckpointError, match="its data does not match the checksum"):
        read_tensors(path, FORMAT_CHECKPOINT)


def test_a_flipped_bit_in_the_last_checkpoint_resumes_from_the_one_before(tmp_path, tiny_npz):
    run = tmp_path / "run"
    train(
        load_config(None, tiny_overrides(tiny_npz, steps=4, keep_checkpoints=2)),
        run,
        progress=False,
        log=lambda s: None,
    )
    newest = last_checkpoint(run)
    flip_a_data_bit(newest)
    lines = []
    result = train(load_config(str(run), ["train.steps=6"]), run, resume=True, progress=False, log=lines.append)
    assert result.step == 6
    assert any("does not match the checksum" in line and "moved aside" in line for line in lines)
    assert any("resumed" in line and "at step 2" in line for line in lines)
    assert newest.with_suffix(".damaged").is_file()


@pytest.mark.parametrize("craft", ["a NaN weight", "an integer weight", "a transposed weight", "a stray tensor"])
def test_a_crafted_export_is_refused_by_load_generator(run_copy, craft):
    export = run_copy / "generator.safetensors"
    tensors, _ = read_raw(export)
    make, message = CRAFTED_TENSORS[craft]
    changed = make({f"{'D' if craft == 'an integer weight' else 'G'}.{k}": v for k, v in tensors.items()})
    rewrite(export, tensors={k.split(".", 1)[1]: v for k, v in changed.items()})
    with pytest.raises(CheckpointError, match=r"the G weights do not fit the model its config describes") as failure:
        load_generator(export)
    assert str(failure.value).startswith(f"{export}: ")


def test_a_file_without_a_checksum_still_loads_with_a_warning(run_copy):
    export = run_copy / "generator.safetensors"
    rewrite(export)  # rewrite adds a checksum; now remove it by hand
    tensors, metadata = read_raw(export)
    del metadata["checksum"]
    from safetensors.torch import save_file

    save_file(tensors, str(export), metadata=metadata)
    with pytest.warns(UserWarning, match="written before gankit recorded checksums"):
        assert load_generator(export).sample(2).shape[0] == 2


# ------------------------------------------------------------------ class 8: damaged metadata and configs

DAMAGED_METADATA = {
    "no step": ({}, ("step",), r"no 'step' entry"),
    "a negative step": ({"step": "-1"}, (), r"'step' is '-1', expected a non-negative integer"),
    "config that is not JSON": (
        {"config": "{broken"},
        (),
        r"damaged metadata entry 'config': not valid JSON \(.* line 1, column 2\)",
    ),
    "no config": ({}, ("config",), r"no 'config' entry"),
    "no opt_D state": ({}, ("opt_D.param_groups",), r"no opt_D state"),
    "param groups that are not JSON": ({"opt_G.param_groups": "[{"}, (), r"'opt_G.param_groups': not valid JSON"),
    "param groups of another model": (
        {"opt_G.param_groups": '[{"params": [0]}]'},
        (),
        r"opt_G's parameter groups do not match",
    ),
    "a latent_dim of -3": ("latent_dim", -3, r"model.latent_dim must be at least 1, got -3"),
    "another model family": ("name", "mlp", r"configuration it holds is not valid|model section differs"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGED_METADATA))
def test_damaged_checkpoint_metadata_is_an_error_naming_the_file(run_copy, damage):
    changes, drop, message = DAMAGED_METADATA[damage]
    path = last_checkpoint(run_copy)
    if isinstance(changes, str):  # a model field of the stored config
        config = json.loads(read_raw(path)[1]["config"])
        config["model"][changes] = drop
        changes, drop = {"config": json.dumps(config)}, ()
    rewrite(path, metadata=changes, drop=drop)
    with pytest.raises((TrainingError, CheckpointError)) as failure:
        resume(run_copy)
    assert re.search(message, str(failure.value)), str(failure.value)


def test_an_export_whose_config_asks_for_terabytes_is_refused_before_allocating(run_copy):
    export = run_copy / "generator.safetensors"
    config = json.loads(read_raw(export)[1]["config"])
    config["model"].update(num_classes=10**9, label_embedding=0)
    rewrite(export, metadata={"config": json.dumps(config)})
    with pytest.raises(CheckpointError, match=r"GiB of weights, more than half this machine's"):
        load_generator(export)


def test_an_export_with_another_family_in_its_config_does_not_load(run_copy):
    export = run_copy / "generator.safetensors"
    config = json.loads(read_raw(export)[1]["config"])
    config["model"] = {"name": "mlp", "shape": [1, 16, 16], "output": "tanh", "latent_dim": 16}
    rewrite(export, metadata={"config": json.dumps(config)})
    with pytest.raises(CheckpointError, match=r"the G weights do not fit the model its config describes: missing"):
        load_generator(export)


def test_an_altered_condition_description_is_refused(tmp_path, tiny_npz):
    run = tmp_path / "c"
    overrides = tiny_overrides(tiny_npz, steps=2) + ["model.num_classes=null", "objective.name=conditional"]
    train(load_config(None, overrides), run, progress=False, log=lambda s: None)
    export = run / "generator.safetensors"
    rewrite(export, metadata={"condition": json.dumps({"kind": "labels", "num_classes": 1000})})
    with pytest.raises(
        CheckpointError, match=r"does not match its configuration .* in num_classes; the file was altered"
    ):
        load_generator(export)


def test_a_stray_unreadable_checkpoint_is_skipped_with_a_warning(run_copy):
    (run_copy / "checkpoints" / "ckpt-00000009.safetensors").write_bytes(b"not a checkpoint at all")
    lines = []
    result = train(
        load_config(str(run_copy), ["train.steps=4"]), run_copy, resume=True, progress=False, log=lines.append
    )
    assert result.step == 4
    assert any(line.startswith("warning: skipping") and "ckpt-00000009" in line for line in lines)


def test_a_truncated_last_log_line_is_dropped_on_resume(run_copy):
    log_path = run_copy / "train_log.jsonl"
    log_path.write_text(log_path.read_text() + '{"step": 3, "d_lo')
    with pytest.warns(UserWarning, match="line 2 is not a complete log row"):
        resume(run_copy)
    rows = [json.loads(line) for line in log_path.read_text().splitlines()]
    assert [row["step"] for row in rows] == [2, 4]


# ------------------------------------------------------------------ class 5: resume compares with the checkpoint's
# config


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda c: c["train"].update(batch_size=4),
            r"different train.batch_size \(8 in .*ckpt-00000002.safetensors, 4 requested\)",
        ),
        (lambda c: c["train"].update(seed=7), r"different train.seed"),
        (lambda c: c.pop("train"), r"different train.batch_size"),
        (
            lambda c: c["model"].update(g_width=16),
            r"cannot resume from .*ckpt-00000002.safetensors: the model section differs from the configuration "
            r"saved in it \(model.g_width: 8 -> 16\)",
        ),
        (lambda c: c["data"].update(limit=10), r"the data section differs"),
    ],
)
def test_an_edited_config_json_cannot_change_what_a_resumed_run_is(run_copy, edit, message):
    config = json.loads((run_copy / "config.json").read_text())
    edit(config)
    (run_copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(TrainingError, match=message):
        resume(run_copy)


def test_an_edited_learning_rate_is_allowed_and_reported(run_copy):
    config = json.loads((run_copy / "config.json").read_text())
    config["train"]["lr_g"] = 1e-4
    (run_copy / "config.json").write_text(json.dumps(config))
    lines = []
    train(load_config(str(run_copy), ["train.steps=4"]), run_copy, resume=True, progress=False, log=lines.append)
    assert "resume: train.lr_g: 0.0002 -> 0.0001" in lines


# ------------------------------------------------------------------ class 11: messages name the file


def test_malformed_and_non_utf8_config_files_are_named(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"train": {"steps": 10,}}')
    with pytest.raises(ConfigError, match=r"bad.json: not valid JSON \(.* line 1, column 24\)"):
        load_config(str(bad))
    latin = tmp_path / "latin.json"
    latin.write_bytes('{"description": "café"}'.encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin.json: not UTF-8 text \(byte 0xe9 at offset 20\)"):
        load_config(str(latin))
    array = tmp_path / "array.json"
    array.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="array.json: a config is a JSON object"):
        load_config(str(array))


# ------------------------------------------------------------------ class 12: leftovers


def test_temporaries_left_by_killed_writes_are_removed_when_the_run_continues(run_copy):
    stale = run_copy / "checkpoints" / ".ckpt-00000004.safetensors.x1y2z3.tmp"
    stale.write_bytes(b"\0" * 1000)
    resume(run_copy)
    assert not stale.exists()
