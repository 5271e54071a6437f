"""The best generator by default (issue 29): a run that evaluates during training keeps its best export, and
RUN means that one; RUN@last, RUN@best and RUN@STEP pick the others, with errors that list what exists."""

import json

import pytest
from helpers import tiny_overrides

from gankit import load_config, load_generator, train
from gankit.cli import main
from gankit.errors import CheckpointError, UsageError
from gankit.formats import locate_generator, split_source
from gankit.training import periodic_evaluation as periodic

SCRIPTED = {2: 5.0, 4: 3.0, 6: 4.0}  # step -> "fid": the best is step 4, the last step 6


@pytest.fixture
def scripted_run(tmp_path, tiny_npz, monkeypatch):
    def fake_evaluate(pipeline, *args, **kwargs):
        return {"step": pipeline.step, "metrics": {"fid": SCRIPTED[pipeline.step]}}

    monkeypatch.setattr(periodic, "evaluate_generator", fake_evaluate)
    run = tmp_path / "run"
    overrides = tiny_overrides(tiny_npz, steps=6, checkpoint_every=2, sample_every=2) + [
        "train.eval_every=2",
        "train.eval_samples=16",
        'train.eval_metrics=["fid"]',
        "train.keep_checkpoints=5",
    ]
    result = train(load_config(None, overrides), run, progress=False, log=lambda s: None)
    return run, result


def test_the_best_evaluation_is_kept_and_is_what_run_means(scripted_run):
    run, result = scripted_run
    seconds = result.best.pop("seconds")
    assert result.best == {
        "evaluations": 3,
        "metric": "fid",
        "best_step": 4,
        "best": 3.0,
        "last_step": 6,
        "last": 4.0,
        "lower_is_better": True,
    }
    best = load_generator(run)
    assert (
        best.step == 4
        and "step 4, fid 3" in best.source_note
        and "4 at the last evaluation, step 6" in best.source_note
    )
    assert load_generator(f"{run}@last").step == 6 and load_generator(f"{run}@best").step == 4
    assert load_generator(f"{run}@2").step == 2 and locate_generator(f"{run}@6").file == run / "generator.safetensors"
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [row["metrics"]["fid"] for row in rows] == [5.0, 3.0, 4.0]
    assert all(row["seconds"] >= 0 for row in rows) and seconds == pytest.approx(
        sum(r["seconds"] for r in rows), abs=0.01
    )


def test_the_run_summary_says_which_step_was_best(scripted_run, capsys):
    from gankit.cli.train import best_line

    run, result = scripted_run
    line = best_line(result.best, run)
    assert "step 4, fid 3 vs 4 at step 6, 25% better" in line and "RUN@last" in line
    close = {**result.best, "best": 1.845, "last": 1.846}  # the demo's: not "0% better"
    assert "1.845 vs 1.846 at step 6, less than 1% better" in best_line(close, run)


def test_the_run_summary_says_what_the_evaluations_cost():
    from gankit.cli.train import cost_line

    line = cost_line({"evaluations": 6, "seconds": 5.4}, 120.0)
    assert line.startswith("6 evaluation(s), 5.4 s (4% of this command's 120 s)")


def test_selectors_and_their_errors(scripted_run, tmp_path):
    run, _ = scripted_run
    assert split_source(f"{run}@LAST") == (run, "last") and split_source(run) == (run, None)
    with pytest.raises(UsageError, match="after @ comes best, last or a step number"):
        locate_generator(f"{run}@latest")
    with pytest.raises(UsageError, match="no generator of step 5; steps it has: 2, 4, 6"):
        locate_generator(f"{run}@5")
    with pytest.raises(UsageError, match="is not a run folder"):
        locate_generator(f"{tmp_path / 'nothing'}@last")
    odd = tmp_path / "odd@last"  # a folder whose name holds @ is read as it is
    odd.mkdir()
    with pytest.raises(CheckpointError, match="no generator.safetensors"):
        locate_generator(odd)


def test_a_run_without_periodic_evaluation_has_no_best(tiny_run, capsys):
    assert load_generator(tiny_run).step == 2 and load_generator(tiny_run).source_note == ""
    with pytest.raises(UsageError, match="kept no best generator"):
        locate_generator(f"{tiny_run}@best")
    assert main(["sample", f"{tiny_run}@best", "--out", str(tiny_run.parent / "x.png")]) == 2
    assert "kept no best generator" in capsys.readouterr().err


def test_the_commands_say_which_generator_they_drew_from(scripted_run, capsys):
    run, _ = scripted_run
    assert main(["sample", str(run), "--n", "4", "--out", str(run.parent / "s.png")]) == 0
    assert "the best generator: step 4" in capsys.readouterr().err
    assert main(["sample", f"{run}@last", "--n", "4", "--out", str(run.parent / "t.png")]) == 0
    assert "the last generator" in capsys.readouterr().err


def test_the_report_draws_from_the_best_generator_and_marks_its_row(scripted_run, capsys):
    run, _ = scripted_run
    assert main(["report", str(run)]) == 0
    page = (run / "report.html").read_text()
    assert "Drawn from the best generator: step 4" in page and '<tr class="best"><td>4 (best)</td>' in page
    assert "fid of the periodic evaluation" in page and "64 samples of seed 0" in page
    assert main(["report", f"{run}@last"]) == 0  # another generator: another file, the run's report kept
    last = (run / "report-last.html").read_text()
    assert "Drawn from the last generator" in last and (run / "report.html").read_text() == page
    assert main(["report", f"{run}@5"]) == 2
    assert "no generator of step 5; steps it has: 2, 4, 6" in capsys.readouterr().err


def test_evaluating_during_training_leaves_training_as_it_was(tmp_path, tiny_npz, monkeypatch):
    """InfoGAN draws its codes from the global random state, and building an evaluator's network draws from it
    too: a run that evaluates every 2 steps must end with the weights of the same run that never evaluates."""
    import torch
    from safetensors.torch import load_file

    def drawing_evaluate(pipeline, *args, **kwargs):
        torch.nn.Conv2d(8, 8, 3)  # initialized from the global random state, as an evaluator's network is
        return {"step": pipeline.step, "metrics": {"code_accuracy": 0.5}}

    def drawing_build(extractor):
        return torch.nn.Conv2d(8, 8, 3)  # the check before training builds the evaluator once

    monkeypatch.setattr(periodic, "evaluate_generator", drawing_evaluate)
    monkeypatch.setattr(periodic, "build_extractor", drawing_build)
    base = tiny_overrides(tiny_npz, steps=4) + ["objective.name=infogan", "objective.categorical=[4]"]
    weights = {}
    for every in (0, 2):
        overrides = base + [f"train.eval_every={every}", 'train.eval_metrics=["code_accuracy"]']
        overrides.append("train.eval_best=code_accuracy")
        train(load_config(None, overrides), tmp_path / f"every-{every}", progress=False, log=lambda s: None)
        weights[every] = load_file(tmp_path / f"every-{every}" / "generator.safetensors")
    assert (tmp_path / "every-2" / "metrics.jsonl").is_file() and not (tmp_path / "every-0" / "metrics.jsonl").exists()
    assert weights[0].keys() == weights[2].keys()
    assert all(torch.equal(weights[0][k], weights[2][k]) for k in weights[0])
