"""Faults during a run (issue 17, classes 2, 3, 4, 10, 12): a diverging update, two processes in one run
folder, a disk that fills up, a config too large to save, bad paths and values, kills during checkpoint
writes. A run survives each with its last good checkpoint, or refuses before it starts, with a message."""

import errno
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import tiny_overrides

from gankit import load_config, train
from gankit.cli import main
from gankit.errors import CheckpointError, ConfigError, TrainingError
from gankit.files import read_tensors
from gankit.formats import FORMAT_CHECKPOINT, list_checkpoints, read_generator
from gankit.monitor import Monitor
from gankit.training import Divergence
from gankit.training.run_folder import RunFolderBusy, SaveError, hold_run_folder

QUIET = dict(progress=False, log=lambda s: None)


def steps_on_disk(run):
    return [step for step, _ in list_checkpoints(run / "checkpoints")]


# ------------------------------------------------------------------ class 2: the divergence guard


def test_an_update_that_makes_g_non_finite_is_never_saved(tmp_path, tiny_npz):
    """The losses of step 3 are computed before G's update and are finite; the update itself (lr 1e39
    overflows float32) leaves G non-finite on a checkpoint step. Nothing of it reaches the disk."""
    run = tmp_path / "run"
    train(load_config(None, tiny_overrides(tiny_npz, steps=2, checkpoint_every=1)), run, **QUIET)
    config = load_config(str(run), ["train.steps=4", "train.lr_g=1e39"])
    with pytest.raises(
        Divergence,
        match=r"by step 3: G.* hold NaN or infinite weights after the update; nothing was "
        r"saved from this step; the last good checkpoint \(step 2\) is intact",
    ):
        train(config, run, resume=True, **QUIET)
    assert steps_on_disk(run) == [1, 2]
    export = read_generator(run / "generator.safetensors")
    assert export.step == 2 and all(
        bool(torch.isfinite(v).all()) for v in export.state.values() if v.is_floating_point()
    )
    tensors, _ = read_tensors(list_checkpoints(run / "checkpoints")[-1][1], FORMAT_CHECKPOINT)
    assert all(bool(torch.isfinite(v).all()) for v in tensors.values() if v.is_floating_point())


# ------------------------------------------------------------------ class 3: one process per run folder


def test_a_second_training_in_a_busy_run_folder_fails_at_once(tmp_path, tiny_npz):
    run = tmp_path / "run"
    config = load_config(None, tiny_overrides(tiny_npz, steps=2))
    with hold_run_folder(run, log=lambda s: None):  # what a running training holds
        with pytest.raises(RunFolderBusy, match=rf"{run} is in use by another gankit training \(pid {os.getpid()}"):
            train(config, run, **QUIET)
        with pytest.raises(RunFolderBusy):
            train(config, run, resume=True, **QUIET)
    assert not (run / "config.json").exists() and not (run / "checkpoints").exists()
    train(config, run, **QUIET)  # released: the folder is usable again
    assert steps_on_disk(run) == [2]


def test_a_killed_owner_does_not_leave_the_folder_locked(tmp_path):
    run = tmp_path / "run"
    code = (
        f"import time; from pathlib import Path; from gankit.training.run_folder import hold_run_folder\n"
        f"with hold_run_folder(Path({str(run)!r})):\n    print('held', flush=True); time.sleep(60)"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "held"
    with pytest.raises(RunFolderBusy, match=f"pid {child.pid}"):
        with hold_run_folder(run):
            pass
    child.send_signal(signal.SIGKILL)
    child.wait()
    with hold_run_folder(run):
        pass


# ------------------------------------------------------------------ class 4: runs that cannot save


def test_a_config_too_large_for_a_checkpoint_header_fails_before_training(tmp_path, tiny_npz):
    run = tmp_path / "run"
    config = load_config(None, tiny_overrides(tiny_npz, steps=2) + ["description=" + "x" * 101_000_000])
    with pytest.raises(
        CheckpointError, match=r"cannot be written \(.*header too large.*\); a config this large does not fit"
    ):
        train(config, run, **QUIET)
    assert not (run / "train_log.jsonl").exists() and steps_on_disk(run) == []


def test_too_little_disk_space_is_found_before_training(tmp_path, tiny_npz, monkeypatch):
    import gankit.training.run_folder as run_folder

    usage = run_folder.shutil.disk_usage(tmp_path)
    monkeypatch.setattr(run_folder.shutil, "disk_usage", lambda p: usage._replace(free=10_000))
    with pytest.raises(TrainingError, match=r"has 0.0 MiB free; 3 checkpoints of .* MiB and the export need about"):
        train(load_config(None, tiny_overrides(tiny_npz, steps=2)), tmp_path / "run", **QUIET)
    assert not (tmp_path / "run" / "train_log.jsonl").exists()


def test_a_disk_that_fills_up_mid_run_keeps_the_last_checkpoint_and_stops_cleanly(tmp_path, tiny_npz, monkeypatch):
    """The write of step 4's checkpoint fails as on a full disk (ENOSPC at fsync): the run stops with a
    SaveError, step 2's checkpoint is intact, no temporary file is left, and --resume continues."""
    import gankit.files as files

    real_fsync = files.os.fsync

    def full_disk(fd):
        if "ckpt-00000004" in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(files.os, "fsync", full_disk)
    run = tmp_path / "run"
    with pytest.raises(
        SaveError,
        match=r"could not write the checkpoint of step 4 .*\(No space left on device\); "
        r"the last good checkpoint \(step 2\) is intact",
    ):
        train(load_config(None, tiny_overrides(tiny_npz, steps=6)), run, **QUIET)
    assert steps_on_disk(run) == [2]
    assert not [p for p in (run / "checkpoints").iterdir() if p.name.endswith(".tmp")]
    monkeypatch.setattr(files.os, "fsync", real_fsync)
    assert train(load_config(str(run), ["train.steps=6"]), run, resume=True, **QUIET).step == 6


def test_a_file_size_limit_ends_the_command_with_a_message(tmp_path, tiny_npz):
    """A real OS write failure (RLIMIT_FSIZE: EFBIG on the checkpoint, which is the largest file) through
    the command line: exit code 2, the cause named, no traceback."""
    code = (
        "import resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
        "resource.setrlimit(resource.RLIMIT_FSIZE, (60_000, 60_000)); "
        "from gankit.cli import main; sys.exit(main())"
    )
    run = tmp_path / "run"
    args = ["train", "dcgan-digits", "--out", str(run), "--quiet"]
    for option in tiny_overrides(tiny_npz, steps=2):
        args += ["--set", option]
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert "could not write the checkpoint of step 2" in done.stderr and "File too large" in done.stderr
    assert "Traceback" not in done.stderr


# ------------------------------------------------------------------ class 10: paths and values


def test_an_out_that_is_a_file_is_refused_before_the_data_loads(tmp_path, capsys):
    out = tmp_path / "taken"
    out.write_text("a file")
    code = main(
        ["train", "dcgan-digits", "--out", str(out), "--set", "data.name=npz", "--set", "data.path=/no/such.npz"]
    )
    err = capsys.readouterr().err
    assert code == 2 and f"the run folder {out} is a file, not a folder" in err and "such.npz" not in err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["sample", "RUN", "--out", "FILE/x.png"], "is a file, not a folder"),
        (["evaluate", "RUN", "--reference-n", "0"], "--reference-n: must be at least 1, got 0"),
        (["sample", "RUN", "--out", "x.png", "--n", "-5"], "--n: must be at least 1, got -5"),
        (["sample", "RUN", "--out", "x.png", "--seed", "abc"], "--seed: expected a whole number"),
    ],
)
def test_bad_command_line_values_are_refused_before_any_work(tmp_path, capsys, argv, message):
    (tmp_path / "FILE").write_text("")
    argv = [a.replace("FILE", str(tmp_path / "FILE")).replace("RUN", str(tmp_path)) for a in argv]
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize(
    "override, message",
    [
        ("model.g_width=0", "model.g_width must be at least 1, got 0"),
        ("model.latent_dim=-3", "model.latent_dim must be at least 1, got -3"),
        ("data.resolution=100000", "data.resolution must be between 4 and 4096, got 100000"),
        ("train.lr_g=Infinity", "train.lr_g: must be a finite number, got inf"),
        ("loss.real_label=NaN", "loss.real_label: must be a finite number, got nan"),
        ("model.d_hidden=[240, 0]", "model.d_hidden must be at least 1"),
        ("model.d_pack=0", "model.d_pack must be at least 1, got 0"),
        ("loss.name=[]", "loss must be a mapping with a 'name' (a string), got {'name': []}"),
    ],
)
def test_absurd_config_values_are_config_errors(override, message):
    family = ["model.name=mlp"] if override.startswith("model.d_hidden") else []
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(None, family + [override])


def test_a_model_asking_for_terabytes_is_refused_before_it_is_built(tmp_path, tiny_npz):
    config = load_config(None, tiny_overrides(tiny_npz) + ["model.num_classes=1000000000", "model.label_embedding=0"])
    with pytest.raises(ConfigError, match=r"G would need [\d,.]+ GiB of weights, more than half this machine's"):
        train(config, tmp_path / "run", **QUIET)


def test_a_library_error_is_one_line_and_debug_shows_the_traceback(tmp_path, capsys):
    assert main(["sample", str(tmp_path / "missing"), "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"gankit sample: error: {tmp_path / 'missing'} does not exist"
    with pytest.raises(CheckpointError):
        main(["--debug", "sample", str(tmp_path / "missing"), "--out", str(tmp_path / "x.png")])


# ------------------------------------------------------------------ class 12: monitor state, kills during writes


def test_the_monitor_state_travels_in_the_checkpoint(tmp_path, tiny_npz):
    """A straight run and one split by a resume raise the same alarms at the same steps (the streak and the
    active alarm are restored, so an alarm is neither repeated nor forgotten)."""
    overrides = tiny_overrides(tiny_npz, steps=12, log_every=1, checkpoint_every=6, sample_every=6) + [
        "train.lr_g=1e-5",
        "train.lr_d=2e-3",
    ]
    train(load_config(None, overrides), tmp_path / "straight", **QUIET)
    split = [o.replace("train.steps=12", "train.steps=6") for o in overrides]
    train(load_config(None, split), tmp_path / "split", **QUIET)
    train(load_config(None, overrides), tmp_path / "split", resume=True, **QUIET)
    alarms = {
        name: [
            (r["step"], r["alarms"])
            for r in map(json.loads, (tmp_path / name / "train_log.jsonl").read_text().splitlines())
            if "alarms" in r
        ]
        for name in ("straight", "split")
    }
    assert alarms["straight"], "the tiny run should make D win (the test needs an alarm to compare)"
    assert alarms["split"] == alarms["straight"]
    _, metadata = read_tensors(list_checkpoints(tmp_path / "split" / "checkpoints")[-1][1], FORMAT_CHECKPOINT)
    saved = json.loads(metadata["run"])["monitor"]  # the run's own record, apart from the condition's entries
    monitor = Monitor()
    monitor.load_state_dict(saved)
    assert monitor.state_dict() == saved and "monitor" not in metadata


KILLED_DURING_WRITE = """
import os, sys, time
import gankit.files as files
from gankit import load_config, train
real_fsync = files.os.fsync
def slow_fsync(fd):
    if "ckpt-00000003" in os.readlink(f"/proc/self/fd/{fd}"):
        open(sys.argv[2], "w").close()  # tell the parent: the temporary file of step 3 is being written
        time.sleep(120)
    real_fsync(fd)
files.os.fsync = slow_fsync
train(load_config(None, sys.argv[3:]), sys.argv[1], progress=False, log=lambda s: None)
"""


def test_a_run_killed_while_writing_a_checkpoint_resumes_bit_exactly(tmp_path, tiny_npz):
    overrides = tiny_overrides(tiny_npz, steps=5, checkpoint_every=1)
    run, marker = tmp_path / "killed", tmp_path / "writing"
    child = subprocess.Popen([sys.executable, "-c", KILLED_DURING_WRITE, str(run), str(marker), *overrides])
    deadline = time.time() + 240
    while not marker.exists() and child.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert marker.exists(), "the child never reached the checkpoint write of step 3"
    child.send_signal(signal.SIGKILL)
    child.wait()
    leftovers = [p for p in (run / "checkpoints").iterdir() if p.name.endswith(".tmp")]
    assert leftovers and steps_on_disk(run) == [1, 2]  # killed mid-write: a temporary file, no step-3 file

    train(load_config(None, overrides), run, resume=True, **QUIET)  # the lock died with the child
    train(load_config(None, overrides), tmp_path / "straight", **QUIET)
    assert not any(p.exists() for p in leftovers)
    resumed, _ = read_tensors(list_checkpoints(run / "checkpoints")[-1][1], FORMAT_CHECKPOINT)
    straight, _ = read_tensors(list_checkpoints(tmp_path / "straight" / "checkpoints")[-1][1], FORMAT_CHECKPOINT)
    assert resumed.keys() == straight.keys()
    assert all(torch.equal(resumed[k], straight[k]) for k in straight)


def test_checkpoints_written_before_the_run_record_still_read():
    """Older checkpoints kept the monitor and the process count among the condition's top-level entries."""
    from gankit.training.checkpoints import saved_run_record

    state = Monitor().state_dict()
    old = {"monitor": json.dumps(state), "world_size": "2"}
    assert saved_run_record(Path("old.safetensors"), old) == {"monitor": state, "world_size": 2}
    assert saved_run_record(Path("older.safetensors"), {}) == {"monitor": None, "world_size": 1}
    new = {"run": json.dumps({"monitor": state, "world_size": 1}), "monitor": "ignored"}
    assert saved_run_record(Path("new.safetensors"), new) == {"monitor": state, "world_size": 1}
