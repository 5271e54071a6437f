"""Everyday use (issue 23): a safe Ctrl-C, unreadable files skipped and listed, a stated ETA, curves during
training, one exit code per kind of error."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import tiny_overrides
from PIL import Image

from gankit import load_config, train
from gankit.cli import main
from gankit.data import load_dataset
from gankit.errors import DataError
from gankit.files import read_tensors
from gankit.formats import FORMAT_CHECKPOINT, list_checkpoints
from gankit.images import nice_ticks, tick_labels
from gankit.training import loop

QUIET = dict(progress=False, log=lambda s: None)


def gankit_process(*argv: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "gankit", *argv], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )


def test_ctrl_c_saves_a_checkpoint_and_the_pictures_and_says_how_to_resume(tmp_path, tiny_npz):
    config = tmp_path / "tiny.json"
    config.write_text(
        json.dumps(
            load_config(
                None, tiny_overrides(tiny_npz, steps=1_000_000, log_every=1, sample_every=1000, checkpoint_every=1000)
            ).to_dict()
        )
    )
    run = tmp_path / "run"
    child = gankit_process("train", str(config), "--out", str(run), "--quiet")
    deadline = time.monotonic() + 120
    log = run / "train_log.jsonl"
    while not (log.is_file() and len(log.read_text().splitlines()) >= 5):
        assert child.poll() is None and time.monotonic() < deadline, (
            child.stdout.read() if child.poll() is not None else "no steps"
        )
        time.sleep(0.2)
    child.send_signal(signal.SIGINT)
    output, _ = child.communicate(timeout=120)
    assert child.returncode == 130, output
    saved = [step for step, _ in list_checkpoints(run / "checkpoints")]
    assert len(saved) == 1 and saved[0] >= 5, output
    step = saved[0]
    assert f"stopped at step {step:,} of 1,000,000" in output, output
    assert f"gankit train {run} --resume" in output
    for picture in ("samples.png", "losses.png", "generator.safetensors"):
        assert (run / picture).is_file(), picture
    assert (run / "samples" / f"step-{step:08d}.png").is_file()

    # The saved step is a step boundary: resuming it for 2 steps equals training step + 2 steps straight.
    base = tiny_overrides(tiny_npz, steps=step + 2, log_every=1, sample_every=1000, checkpoint_every=1000)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the child (OMP_NUM_THREADS=1): the same arithmetic order
    try:
        train(load_config(str(run), [f"train.steps={step + 2}"]), run, resume=True, **QUIET)
        train(load_config(None, base), tmp_path / "straight", **QUIET)
    finally:
        torch.set_num_threads(threads)
    resumed, _ = read_tensors(list_checkpoints(run / "checkpoints")[-1][1], FORMAT_CHECKPOINT)
    straight, _ = read_tensors(list_checkpoints(tmp_path / "straight" / "checkpoints")[-1][1], FORMAT_CHECKPOINT)
    weights = [k for k in straight if k.startswith(("G.", "D."))]
    assert weights and all(torch.equal(resumed[k], straight[k]) for k in weights)


@pytest.mark.parametrize("how", ["SIGINT", "SIGHUP"])
def test_a_stop_saves_the_run_when_the_reader_of_its_output_is_gone(tmp_path, tiny_npz, how):
    """`gankit train ... 2>&1 | tee log` and Ctrl-C: the terminal's Ctrl-C ends tee too, so every later write
    finds a closed pipe. (SIGHUP: the terminal went away.) The run must still save and exit 130."""
    config = tmp_path / "tiny.json"
    config.write_text(
        json.dumps(
            load_config(
                None, tiny_overrides(tiny_npz, steps=1_000_000, log_every=1, sample_every=1000, checkpoint_every=1000)
            ).to_dict()
        )
    )
    run = tmp_path / "run"
    child = gankit_process("train", str(config), "--out", str(run))  # progress bar and all, into the pipe
    deadline = time.monotonic() + 120
    log = run / "train_log.jsonl"
    while not (log.is_file() and len(log.read_text().splitlines()) >= 5):
        assert child.poll() is None and time.monotonic() < deadline, "no steps"
        time.sleep(0.2)
    child.stdout.close()  # the reader is gone
    child.send_signal(getattr(signal, how))
    assert child.wait(timeout=120) == 130
    saved = [step for step, _ in list_checkpoints(run / "checkpoints")]
    assert len(saved) == 1 and saved[0] >= 5
    assert (run / "samples" / f"step-{saved[0]:08d}.png").is_file() and (run / "generator.safetensors").is_file()
    assert not list(run.rglob(".*.tmp"))


def test_temporary_files_are_removed_when_a_training_exits_however_it_exits(tmp_path):
    from gankit.training.run_folder import hold_run_folder

    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):  # a second Ctrl-C in the middle of a checkpoint write
        with hold_run_folder(run, log=lambda s: None):
            (run / "checkpoints").mkdir()
            (run / "checkpoints" / ".ckpt-00000007.safetensors.x1y2.tmp").write_bytes(b"")
            raise KeyboardInterrupt
    assert list((run / "checkpoints").iterdir()) == []


def test_a_second_signal_or_one_outside_the_loop_stops_at_once():
    request = loop.StopRequest()
    with pytest.raises(KeyboardInterrupt):  # not armed: loading data, building nets
        request.handle(signal.SIGINT, None)
    request.armed = True
    request.handle(signal.SIGINT, None)
    assert request.requested
    with pytest.raises(KeyboardInterrupt):
        request.handle(signal.SIGINT, None)


def test_the_handlers_are_restored_after_training(tmp_path, tiny_npz):
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    train(load_config(None, tiny_overrides(tiny_npz, steps=2)), tmp_path / "run", **QUIET)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_the_eta_is_said_after_warm_up_and_a_many_hour_run_is_warned_about():
    now = [0.0]
    said = []
    clock = loop.RunClock(0, 50_000, "cpu", said.append, now=lambda: now[0])
    warm = loop.RunClock.WARM_UP_STEPS
    for step in range(1, warm + 1):  # warm-up: slow first steps are not measured
        now[0] += 30.0
        clock.tick(step)
    for step in range(warm + 1, warm + 11):  # 2 s a step from here: said after 15 s (8 steps)
        now[0] += 2.0
        clock.tick(step)
    assert len(said) == 2, said
    assert "0.50 steps/s after warm-up: about 27.8 h to step 50,000" in said[0]
    assert "WARNING: this run will take about 27.8 h on this cpu" in said[1] and "dcgan-cpu-64" in said[1]
    now[0] += 100
    clock.tick(warm + 11)
    assert len(said) == 2  # said once

    said.clear()
    quick = loop.RunClock(0, 200, "cpu", said.append, now=lambda: now[0])
    for step in range(1, 40):
        now[0] += 1.0
        quick.tick(step)
    assert len(said) == 1 and "about 3 min to step 200" in said[0]


def test_duration_reads_like_a_person_would_say_it():
    assert [loop.duration(s) for s in (45, 720, 3.4 * 3600, 70 * 3600)] == ["45 s", "12 min", "3.4 h", "2.9 days"]


def test_loss_curves_exist_during_training_and_have_round_ticks(tmp_path, tiny_npz):
    run = tmp_path / "run"
    train(
        load_config(None, tiny_overrides(tiny_npz, steps=4, log_every=1, sample_every=2, checkpoint_every=4)),
        run,
        **QUIET,
    )
    assert (run / "losses.png").is_file()
    first = (run / "losses.png").stat().st_mtime_ns
    # written at each sample step (not only at the end): resume to 6 and see the file rewritten with 6 rows
    train(load_config(str(run), ["train.steps=6"]), run, resume=True, **QUIET)
    assert (run / "losses.png").stat().st_mtime_ns > first
    assert tick_labels(nice_ticks(50, 2000)) == ["500", "1,000", "1,500", "2,000"]
    assert tick_labels(nice_ticks(0.31, 1.73)) == ["0.5", "1.0", "1.5"]
    assert tick_labels(nice_ticks(100, 50000)) == ["10,000", "20,000", "30,000", "40,000", "50,000"]
    assert tick_labels(nice_ticks(-0.002, 0.004)) == ["-0.002", "0.000", "0.002", "0.004"]


def test_tensorboard_gets_the_sample_grid(tmp_path, tiny_npz):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    train(load_config(None, tiny_overrides(tiny_npz, steps=4, tensorboard=True)), run, **QUIET)
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    assert [e.step for e in events.Images("samples")] == [2, 4]
    assert "d_loss" in events.Tags()["scalars"]


def image_folder(root: Path, good: int, bad: list[str]) -> Path:
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(good):
        Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(root / f"ok{i:02d}.png")
    for name in bad:
        (root / name).write_bytes(b"this is not an image")
    return root


def test_unreadable_files_are_skipped_and_all_listed_or_refused_in_strict_mode(tmp_path):
    root = image_folder(tmp_path / "photos", 6, ["broken.png", "truncated.jpg"])
    section = {"name": "folder", "path": str(root), "resolution": 16, "channels": 3}
    with pytest.warns(
        UserWarning, match=r"skipped 2 of 8 files that cannot be read as images \(the other 6 are used"
    ) as caught:
        data = load_dataset(section)
    message = str(caught[0].message)
    assert "broken.png: cannot read this image" in message and "truncated.jpg" in message
    assert len(data) == 6 and [Path(p).name for p, _ in data.extras["skipped_files"]] == ["broken.png", "truncated.jpg"]
    with pytest.raises(
        DataError,
        match=r"2 of 8 files cannot be read as images; remove or repair them, or set "
        r"data.strict=false(.|\n)*broken.png(.|\n)*truncated.jpg",
    ):
        load_dataset({**section, "strict": True})
    empty = image_folder(tmp_path / "junk", 0, ["a.png", "b.png"])
    with pytest.raises(DataError, match="2 of 2 files cannot be read as images; none of its images could be read"):
        load_dataset({**section, "path": str(empty)})


def test_a_run_on_a_folder_with_bad_files_trains_and_keeps_their_list(tmp_path):
    root = image_folder(tmp_path / "photos", 8, ["broken.png"])
    overrides = [
        f"data.path={root}",
        "data.resolution=16",
        "model.g_width=8",
        "model.d_width=8",
        "model.latent_dim=8",
        "train.batch_size=4",
        "train.steps=2",
        "train.sample_grid=4",
        "train.tensorboard=false",
    ]
    with pytest.warns(UserWarning, match="skipped 1 of 9 files"):
        train(load_config("dcgan-paper-64", overrides), tmp_path / "run", **QUIET)
    listed = (tmp_path / "run" / "skipped_files.txt").read_text().splitlines()
    assert len(listed) == 1 and listed[0].startswith(str(root / "broken.png") + "\t")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["sample", "RUN", "--labels", "0", "--out", "x.png"], "--labels: this generator is not class-conditional"),
        (["sample", "RUN", "--codes.cat0", "1", "--out", "x.png"], "--codes.cat0: this generator has no latent codes"),
        (["sample", "RUN", "--sed", "1", "--out", "x.png"], "--sed: this generator is an unconditional generator"),
        (["evaluate"], "give a run folder, export or checkpoint"),
        (["evaluate", "--real-vs-real"], "--real-vs-real needs --dataset NAME or a run folder"),
        (["train", "no-such-preset"], "no-such-preset"),
        (["sample", "NOWHERE", "--out", "x.png"], "NOWHERE"),
        (["sample", "RUN", "--n", "0", "--out", "x.png"], "must be at least 1"),
        (
            ["interpolate", "RUN", "--seeds", "x,y"],
            "--seeds: expected comma-separated seeds (whole numbers >= 0) such as 0,1,5",
        ),
        (["interpolate", "RUN", "--seeds", "3"], "--seeds: expected 2 to 64 seeds"),
        (["sample", "RUN", "--n", "2000000000", "--out", "x.png"], "--n: must be at most 1,000,000"),
        (["evaluate", "RUN", "--samples", "1000000000"], "must be at most 1,000,000"),
        (["export", "RUN", "--samples", "1000000000", "--out", "g.onnx"], "--samples: must be at most 4,096"),
    ],
)
def test_every_user_error_exits_with_code_2_and_one_message(tiny_run, capsys, argv, message):
    argv = [a.replace("RUN", str(tiny_run)).replace("NOWHERE", str(tiny_run / "nowhere")) for a in argv]
    try:
        code = main(argv)
    except SystemExit as done:  # argparse's own refusals
        code = done.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert message.replace("NOWHERE", str(tiny_run / "nowhere")) in err and "Traceback" not in err


def saved_evaluator(tmp_path, **info):
    from gankit.networks.classifier import ClassifierNet, Evaluator, save_evaluator

    base = {
        "kind": "classifier",
        "channels": 1,
        "resolution": 16,
        "num_classes": 3,
        "width": 4,
        "class_names": None,
        "dataset": {"name": "npz"},
        "test_accuracy": 0.9,
    }
    return str(save_evaluator(Evaluator(ClassifierNet(1, 3, 4), {**base, **info}), tmp_path / "e.safetensors"))


@pytest.mark.parametrize(
    "info, refused",
    [
        ({"test_accuracy": 0.33}, "scarcely better than chance (test accuracy 0.330, chance 0.3333: 0% of the way"),
        (
            {"test_accuracy": 0.58, "chance_accuracy": 0.55},
            "scarcely better than chance (test accuracy 0.580, chance 0.55: 7% of the way",
        ),
        (
            {"kind": "self-supervised", "test_accuracy": None, "pair_accuracy_heldout": 0.05, "pair_chance": 0.002},
            "held-out pair accuracy 0.050, chance 0.002: 5% of the way from chance to perfect, under 10%",
        ),
        (
            {"separation": {"floor_fid": 1.0, "noisy_fid": 1.5, "ratio": 1.5, "noise_std": 0.1}},
            "cannot tell real images from a noisy copy (FID 1.5 between "
            "real images and a copy with noise of std 0.1, 1 between "
            "two halves of the real images: ratio 1.5, under 2)",
        ),
    ],
)
def test_an_evaluator_at_chance_is_refused(tmp_path, info, refused):
    from gankit.metrics.extractors import build_extractor
    from gankit.registry import ConfigError

    with pytest.raises(ConfigError, match=re_escape(refused) + ".*would mean nothing"):
        build_extractor({"name": "evaluator", "weights": saved_evaluator(tmp_path, **info)})


def re_escape(text):
    import re

    return re.escape(text)


def test_a_weak_evaluator_is_warned_about_and_a_good_one_is_not(tmp_path, recwarn):
    from gankit.metrics.extractors import build_extractor

    with pytest.warns(
        UserWarning,
        match=r"is weak \(test accuracy 0.500, chance 0.3333: 25% of the way from chance to perfect, under halfway\)",
    ):
        build_extractor({"name": "evaluator", "weights": saved_evaluator(tmp_path, test_accuracy=0.5)})
    separation = {"floor_fid": 1.0, "noisy_fid": 4.0, "ratio": 4.0, "noise_std": 0.1}
    with pytest.warns(UserWarning, match=r"tells real images from a noisy copy only coarsely .*ratio 4, under 5"):
        build_extractor({"name": "evaluator", "weights": saved_evaluator(tmp_path, separation=separation)})
    recwarn.clear()
    extractor = build_extractor({"name": "evaluator", "weights": saved_evaluator(tmp_path, test_accuracy=0.9)})
    assert not [w for w in recwarn if "evaluator" in str(w.message)]
    assert extractor.card["evaluator_skill"] == ["test accuracy", 0.9, 1 / 3] or tuple(
        extractor.card["evaluator_skill"]
    ) == ("test accuracy", 0.9, 1 / 3)


def test_a_folder_without_a_test_split_gets_a_floor_from_images_outside_the_reference(tmp_path):
    from gankit.metrics.evaluation import evaluate_real_vs_real

    root = image_folder(tmp_path / "photos", 30, [])
    section = {"name": "folder", "path": str(root), "resolution": 16, "channels": 3}
    row = evaluate_real_vs_real(
        section, "fid", num_samples=100, num_reference=20, extractor={"name": "raw"}, use_cache=False
    )
    assert row["protocol"]["num_reference"] == 20 and row["generated"]["num_samples"] == 10
    assert row["generated"]["split"] == "train, images outside the reference subset" and row["metrics"]["fid"] > 0
    halves = evaluate_real_vs_real(
        section, "fid", num_samples=100, num_reference=100, extractor={"name": "raw"}, use_cache=False
    )
    assert halves["protocol"]["num_reference"] == 15 and halves["generated"]["num_samples"] == 15
    assert halves["generated"]["split"] == "train: one half of it against the other half as the reference"


def test_the_inception_extractor_offline_is_one_line_not_a_traceback(tiny_run, monkeypatch, capsys):
    import types
    import urllib.error

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setitem(sys.modules, "torch_fidelity", types.SimpleNamespace(FeatureExtractorInceptionV3=offline))
    assert main(["evaluate", str(tiny_run), "--extractor", "inception", "--n", "8"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "could not fetch the Inception weights" in err
    assert "gankit evaluate --inception-weights inception-fid.safetensors" in err


def test_info_shows_every_section_of_a_preset_and_of_a_run(tiny_run, capsys):
    assert main(["info", "dcgan-cpu-64", "--set", "train.steps=123"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["preset"] == "dcgan-cpu-64" and shown["train"]["steps"] == 123
    assert {"description", "data", "model", "loss", "objective", "train"} <= set(shown)
    assert main(["info", str(tiny_run)]) == 0
    run = json.loads(capsys.readouterr().out)
    assert {"data", "model", "loss", "objective", "train"} <= set(run["config"]) and run["step"] == 2


def every_parser():
    import argparse

    from gankit.cli import build_parser

    stack = [("gankit", build_parser())]
    while stack:
        name, parser = stack.pop()
        yield name, parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                stack += [(f"{name} {sub}", p) for sub, p in action.choices.items()]


def test_every_option_has_a_description_and_help_shows_defaults():
    import argparse

    missing = [
        f"{name} {action.option_strings or action.dest}"
        for name, parser in every_parser()
        for action in parser._actions
        if not action.help and not isinstance(action, argparse._SubParsersAction)
    ]
    assert not missing
    helps = {name: parser.format_help() for name, parser in every_parser()}
    assert "(default: 10000)" in helps["gankit evaluate"] and "code_monotonicity" in helps["gankit evaluate"]
    assert "(default: cpu)" in helps["gankit sample"] and "exit codes: 0 done; 2 a user error" in helps["gankit"]


def test_a_log_row_with_alarms_goes_to_tensorboard_without_breaking_the_run(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from torch.utils.tensorboard import SummaryWriter

    from gankit.training.outputs import write_tensorboard_scalars

    writer = SummaryWriter(str(tmp_path / "tb"))
    write_tensorboard_scalars(writer, {"step": 200, "d_loss": 0.1, "D(x)": 0.99, "alarms": ["step 200: D wins"]}, 200)
    writer.close()
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    assert set(events.Tags()["scalars"]) == {"d_loss", "D_x"} and [e.step for e in events.Scalars("D_x")] == [200]


def test_picture_text_keeps_its_spaces():
    """losses.png's title read "mean Doutputon real": Pillow's default font at 10 px has spaces of no width."""
    from PIL import Image, ImageDraw

    from gankit.images import font

    draw = ImageDraw.Draw(Image.new("RGB", (10, 10)))
    assert draw.textlength("D output", font=font()) - draw.textlength("Doutput", font=font()) >= 3


def test_long_phases_say_they_run_and_bars_keep_moving(tmp_path, tiny_npz):
    """The first-time user: `probe` sat on a frozen bar for 10 minutes; `train --quiet` said nothing for 8."""
    from gankit.progress import phase, ticking

    class Bar:
        disable, refreshed = False, 0

        def refresh(self):
            self.refreshed += 1

    bar = Bar()
    with ticking(bar, every=0.05):
        time.sleep(0.4)  # one long item: no update, but the elapsed time is redrawn
    assert bar.refreshed >= 3
    lines = []
    with phase("embedding captions", lines.append, quiet_below=0.0):
        pass
    assert lines[0] == "embedding captions..." and lines[1].startswith("embedding captions: done in")
    said = []
    train(load_config(None, tiny_overrides(tiny_npz, steps=1)), tmp_path / "run", progress=False, log=said.append)
    assert said[0] == "loading the data (npz)..." and any(
        s.startswith("preparing the standard objective") for s in said
    )
