"""``gankit sweep`` on Optuna (issue 32): grid sweeps of tiny runs, continuing, two workers, failures, bad specs."""

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("optuna")

from gankit.cli import main  # noqa: E402
from gankit.errors import ConfigError  # noqa: E402
from gankit.sweep import read_spec, run_sweep  # noqa: E402


def write_spec(tmp_path, tiny_npz, name="spec.json", **changes):
    spec = {
        "preset": "dcgan-digits",
        "set": [
            "data.name=npz",
            f"data.path={tiny_npz}",
            "model.g_width=8",
            "model.d_width=8",
            "model.latent_dim=16",
            "train.batch_size=8",
            "train.log_every=1",
            "train.sample_every=2",
            "train.checkpoint_every=2",
            "train.sample_grid=4",
            "train.tensorboard=false",
        ],
        "space": {"train.lr_g": {"choice": [0.0002, 0.001]}, "loss.name": {"choice": ["non-saturating", "hinge"]}},
        "sampler": "grid",
        "seeds": [0],
        "budget": {"steps": 2},
        "objective": {"logged": "d_loss"},
        **changes,
    }
    path = tmp_path / name
    path.write_text(json.dumps(spec))
    return path


def trained_folders(out):
    return sorted(p.parent for p in (out / "runs").glob("*/seed-*/finished.json"))


def test_a_grid_sweep_trains_each_configuration_once_and_ends_with_a_page_and_a_command(tmp_path, tiny_npz, capsys):
    out = tmp_path / "sweep"
    assert main(["sweep", str(write_spec(tmp_path, tiny_npz)), "--out", str(out)]) == 0
    assert len(trained_folders(out)) == 4
    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete"] == 4 and summary["failed"] == 0
    assert summary["command"].startswith("gankit train dcgan-digits ") and "--set train.lr_g=" in summary["command"]
    assert (out / "compare.html").read_text().count("<h3>step") >= 1
    assert "train it with" in capsys.readouterr().out


def test_joined_keys_and_bundles_set_several_settings_per_configuration(tmp_path, tiny_npz):
    space = {
        "train.lr_g+train.lr_d": {"choice": [0.0003]},
        "stabilizer": {"choice": [{}, {"objective.r1_weight": 0.5, "train.d_steps": 2}]},
    }
    out = tmp_path / "sweep"
    summary = run_sweep(read_spec(write_spec(tmp_path, tiny_npz, space=space)), out, log=lambda s: None)
    assert summary["complete"] == 2
    configs = [json.loads((f / "config.json").read_text()) for f in trained_folders(out)]
    assert all(c["train"]["lr_g"] == c["train"]["lr_d"] == 0.0003 for c in configs)
    r1 = sorted((c["objective"].get("r1_weight", 0.0), c["train"]["d_steps"]) for c in configs)
    assert r1 == [(0.0, 1), (0.5, 2)]
    names = sorted(p.name for p in (out / "runs").iterdir())
    assert "stabilizer=preset" in names[0] + names[1] and "r1_weight=0.5_d_steps=2" in names[0] + names[1]
    assert "--set train.lr_g=0.0003 --set train.lr_d=0.0003" in summary["command"]
    bundle = json.loads(summary["best"]["params"]["stabilizer"])
    assert all(f"--set {k}={v}" in summary["command"] for k, v in bundle.items())


def test_the_shipped_studies_read_by_name_and_a_wrong_name_says_which_exist(tmp_path):
    from gankit.sweep import shipped_specs, total_trials

    assert shipped_specs() == ["losses-fashion", "stabilizers-ring"]
    losses, stabilizers = read_spec("losses-fashion"), read_spec("stabilizers-ring")
    assert total_trials(losses) == 15 and losses.seeds == [0, 1, 2]  # five losses x three learning rates
    assert total_trials(stabilizers) == 8 and stabilizers.objective_key == "reverse_kl"
    with pytest.raises(ConfigError, match="nor a shipped spec.*losses-fashion, stabilizers-ring"):
        read_spec("losses-fasion")


def test_a_stopped_sweep_continues_without_training_finished_runs_again(tmp_path, tiny_npz):
    import optuna

    from gankit.sweep import open_study

    spec = read_spec(write_spec(tmp_path, tiny_npz))
    out = tmp_path / "sweep"
    run_sweep(spec, out, log=lambda s: None)
    stamps = {f: (f / "finished.json").stat().st_mtime_ns for f in trained_folders(out)}
    # a worker killed during a trial leaves it RUNNING: a dead process's trial is retried, the rest are read
    study = open_study(spec, out, None)
    trial = study.ask()
    trial.set_user_attr("worker", f"{os.uname().nodename}:999999999")
    summary = run_sweep(spec, out, log=lambda s: None)
    assert summary["complete"] >= 4 and len(trained_folders(out)) == 4
    assert {f: (f / "finished.json").stat().st_mtime_ns for f in trained_folders(out)} == stamps
    assert all(t.state != optuna.trial.TrialState.RUNNING for t in open_study(spec, out, None).trials)


def test_an_interrupted_configuration_is_trained_when_the_sweep_continues(tmp_path, tiny_npz, monkeypatch):
    import gankit.sweep as sweep

    spec = read_spec(write_spec(tmp_path, tiny_npz))
    out = tmp_path / "sweep"
    real, calls = sweep.train_one, []

    def interrupted_on_the_third(*args, **kwargs):  # Ctrl-C while the third configuration trains
        calls.append(args[1])
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(sweep, "train_one", interrupted_on_the_third)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec, out, log=lambda s: None)
    assert len(trained_folders(out)) == 2
    monkeypatch.setattr(sweep, "train_one", real)
    messages = []
    summary = run_sweep(spec, out, log=messages.append)
    assert summary["complete"] == 4 and len(trained_folders(out)) == 4  # the grid point it was on is not lost
    assert any("was interrupted: its configuration runs again" in m for m in messages)


def test_two_workers_on_one_sweep_train_each_configuration_once(tmp_path, tiny_npz):
    spec, out = write_spec(tmp_path, tiny_npz), tmp_path / "sweep"
    command = [sys.executable, "-m", "gankit", "sweep", str(spec), "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    workers = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for _ in range(2)]
    outputs = [w.communicate(timeout=600)[0].decode() for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    folders = trained_folders(out)
    assert len(folders) == 4
    for folder in folders:  # trained once: one log row per step
        steps = [json.loads(line)["step"] for line in (folder / "train_log.jsonl").read_text().splitlines()]
        assert steps == [1, 2], (folder, steps)


def test_a_failing_configuration_is_recorded_and_the_sweep_goes_on(tmp_path, tiny_npz):
    spec = write_spec(tmp_path, tiny_npz, space={"train.batch_size": {"choice": [8, 4096]}})
    summary = run_sweep(read_spec(spec), tmp_path / "sweep", log=lambda s: None)
    assert summary["complete"] == 1 and summary["failed"] == 1
    failed = next(t for t in summary["trials"] if "error" in t)
    assert failed["params"] == {"train.batch_size": 4096} and "\n" not in failed["error"]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"spaces": {}}, "unknown key.*spaces"),
        ({"space": {}}, "'space' must name at least one setting"),
        ({"space": {"train.lr_g": {"log": [0.001, 0.0001]}}}, r"space.train.lr_g.log is \[low, high\]"),
        ({"space": {"train.lr_g": {"log": [1e-4, 1e-3]}}}, "a grid sweep takes choices only"),
        ({"budget": {"steps": 0}}, "'budget' must be a positive number"),
        ({"budget": {"epochs": 3}}, r"'budget' is \{\"steps\": N\}"),
        ({"space": {"train.no_such_key": {"choice": [1]}}}, "space.train.no_such_key"),
        ({"seeds": []}, "'seeds' is a count or a list"),
        ({"space": {"stabilizer": {"choice": [1, 2]}}}, "space.stabilizer names no setting"),
        ({"space": {"stabilizer": {"choice": [{"r1_weight": 1}]}}}, "'r1_weight' is not a setting"),
        ({"space": {"stabilizer": {"choice": [{"objective.no_such": 1}]}}}, "space.stabilizer"),
        ({"space": {"train.lr_g+": {"choice": [1e-4]}}}, "an empty setting between"),
    ],
)
def test_bad_specs_are_one_line_errors_naming_the_key(tmp_path, tiny_npz, change, message):
    with pytest.raises(ConfigError, match=message) as error:
        read_spec(write_spec(tmp_path, tiny_npz, **change))
    assert "\n" not in str(error.value)


@pytest.fixture
def postgres():
    """A real PostgreSQL server (Debian's package) on a free local port, in a temporary folder, stopped after the
    test. Skipped when the server is not installed, unless GANKIT_REQUIRE_POSTGRES=1 (CI)."""
    import pwd
    import shutil
    import socket
    import tempfile
    from pathlib import Path

    required = os.environ.get("GANKIT_REQUIRE_POSTGRES") == "1"
    try:
        import psycopg  # noqa: F401  (the driver SQLAlchemy uses for postgresql:// URLs; in gankit[sweep])
    except ImportError:
        if required:
            raise
        pytest.skip("the PostgreSQL driver is not installed (pip install 'gankit[sweep]')")
    binaries = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
    if not binaries:
        if required:
            raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    bin_dir = binaries[-1]
    folder = Path(tempfile.mkdtemp(prefix="gankit-pg-"))
    as_postgres = []
    if os.geteuid() == 0:  # the server refuses to run as root: as the package's own user
        user = pwd.getpwnam("postgres")
        os.chown(folder, user.pw_uid, user.pw_gid)
        as_postgres = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    data = folder / "data"

    def run(*command):
        subprocess.run([*as_postgres, *command], check=True, capture_output=True, timeout=120)

    run(str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "gankit")
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1"
    run(str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w", "start")
    try:
        run(str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "gankit", "sweeps")
        yield f"postgresql://gankit@127.0.0.1:{port}/sweeps"
    finally:
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(folder, ignore_errors=True)


def test_two_workers_share_a_study_in_a_real_postgresql(tmp_path, tiny_npz, postgres):
    """Two processes (as on two machines: each its own run folders) work on one study in PostgreSQL."""
    spec = write_spec(tmp_path, tiny_npz)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gankit",
                "sweep",
                str(spec),
                "--out",
                str(tmp_path / name / "lr"),
                "--storage",
                postgres,
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for name in ("machine-a", "machine-b")
    ]
    outputs = [w.communicate(timeout=600)[0].decode() for w in workers]
    assert [w.returncode for w in workers] == [0, 0], "\n".join(line for o in outputs for line in o.splitlines()[-3:])
    trained = [f for name in ("machine-a", "machine-b") for f in trained_folders(tmp_path / name / "lr")]
    summaries = [json.loads((tmp_path / n / "lr" / "summary.json").read_text()) for n in ("machine-a", "machine-b")]
    assert len(trained) == 4 and len({f.parent.name for f in trained}) == 4, (trained, summaries, outputs)
    assert summaries[0]["best"] == summaries[1]["best"]  # one study: the same answer on both machines


def test_a_database_that_cannot_be_reached_is_one_line(tmp_path, tiny_npz):
    spec = read_spec(write_spec(tmp_path, tiny_npz))
    with pytest.raises(ConfigError, match=r"--storage postgresql://nobody@127.0.0.1:1/x: cannot open") as error:
        run_sweep(spec, tmp_path / "s", storage="postgresql://nobody@127.0.0.1:1/x", log=lambda s: None)
    assert "\n" not in str(error.value)


def test_a_run_stops_where_its_evaluation_caller_asks_saving_as_at_a_last_step(tmp_path, tiny_npz):
    from helpers import tiny_overrides

    from gankit import load_config, train

    seen = []

    def on_evaluation(step, metrics):
        seen.append((step, sorted(metrics)))
        return step >= 4

    overrides = tiny_overrides(tiny_npz, steps=8, eval_every=2) + [
        'train.eval_metrics=["kid"]',
        "train.eval_best=kid",
        "train.eval_samples=32",
    ]
    result = train(
        load_config(None, overrides), tmp_path / "run", progress=False, log=lambda s: None, on_evaluation=on_evaluation
    )
    assert result.stopped_by_evaluation and result.step == 4 and [s for s, _ in seen] == [2, 4]
    assert (tmp_path / "run" / "checkpoints" / "ckpt-00000004.safetensors").is_file()
    assert (tmp_path / "run" / "generator.safetensors").is_file() and (tmp_path / "run" / "samples.png").is_file()


def test_hopeless_trials_are_pruned_on_their_periodic_evaluation(tmp_path, tiny_npz, monkeypatch):
    """The pruner's word stops a run at its evaluation; the trial is recorded as pruned, the sweep goes on."""
    import optuna

    class PruneAfterTheFirst(optuna.pruners.BasePruner):
        def prune(self, study, trial):
            return trial.number > 0

    monkeypatch.setattr(optuna.pruners, "MedianPruner", lambda **_: PruneAfterTheFirst())
    spec = write_spec(
        tmp_path,
        tiny_npz,
        budget={"steps": 4},
        evaluate_every=2,
        objective={"metric": "kid", "samples": 32},
    )
    summary = run_sweep(read_spec(spec), tmp_path / "sweep", log=lambda s: None)
    assert summary["complete"] == 1 and summary["pruned"] == 3
    stopped = [json.loads((f / "finished.json").read_text()) for f in trained_folders(tmp_path / "sweep")]
    assert sorted((s["step"], s["pruned"]) for s in stopped) == [(2, True), (2, True), (2, True), (4, False)]
