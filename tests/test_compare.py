"""``gankit compare`` (issue 32): one offline page over several run folders."""

import html
import re

from helpers import tiny_overrides

from gankit import load_config, train
from gankit.cli import main
from gankit.web.compare import build_comparison, differing, seed_groups, Run


def tiny(tmp_path, tiny_npz, name, *extra):
    overrides = tiny_overrides(tiny_npz, steps=4, eval_every=2) + list(extra)
    train(load_config(None, overrides), tmp_path / name, progress=False, log=lambda s: None)
    return tmp_path / name


def test_the_page_shows_what_differs_groups_seeds_and_escapes_names(tmp_path, tiny_npz):
    a = tiny(tmp_path, tiny_npz, "a", "train.seed=0")
    b = tiny(tmp_path, tiny_npz, "b", "train.seed=1")
    hostile = tiny(tmp_path, tiny_npz, "<img src=x onerror=alert(1)>", "train.lr_g=0.001")
    runs = [Run(a), Run(b), Run(hostile)]
    keys, same = differing(runs)
    assert keys == ["train.lr_g", "train.seed"] and same > 20
    assert [len(g) for g in seed_groups(runs)] == [2, 1]  # a and b differ only by their seed
    page = build_comparison([a, b, hostile])
    assert "<img src=x" not in page and html.escape("<img src=x onerror=alert(1)>") in page
    assert "train.lr_g" in page and "(seeds 0, 1)" in page
    assert page.count("<svg") >= 4 and "<script" not in page
    assert page.count("<summary>protocol</summary>") == 6  # the last and the best evaluation of each run
    assert len(re.findall(r"<h3>step [\d,]+</h3>", page)) >= 1  # grids at steps every run drew


def test_the_command_writes_the_page_and_refuses_what_is_not_a_run(tmp_path, tiny_npz, capsys):
    a, b = tiny(tmp_path, tiny_npz, "a"), tiny(tmp_path, tiny_npz, "b", "train.lr_d=0.001")
    assert main(["compare", str(a), str(b), "--out", str(tmp_path / "c.html")]) == 0
    assert (tmp_path / "c.html").read_text().startswith("<!doctype html>")
    assert main(["compare", str(a), "--out", str(tmp_path / "d.html")]) == 2
    assert main(["compare", str(a), str(tmp_path), "--out", str(tmp_path / "d.html")]) == 2
    assert "not a run folder" in capsys.readouterr().err
