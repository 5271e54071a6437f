"""Generators exported to ONNX and torch.export (issue 21): every variant exports and its graph draws what
gankit draws (the parity check), inputs and outputs are named and documented, the batch is dynamic, and a bad
graph is caught. Needs the onnx extra (pip install 'gankit[onnx]'); CI installs it."""

import json

import numpy as np
import pytest
import torch

from gankit.inference import load_generator

onnx = pytest.importorskip("onnx", reason="the onnx extra is not installed (pip install 'gankit[onnx]')")
onnxruntime = pytest.importorskip("onnxruntime", reason="the onnx extra is not installed (pip install 'gankit[onnx]')")
pytest.importorskip("onnxscript", reason="the onnx extra is not installed (pip install 'gankit[onnx]')")

from gankit.portable import ExportError, check_export, export, export_onnx  # noqa: E402


@pytest.fixture(scope="module")
def runs(variant_runs):
    return variant_runs


INPUTS = {
    "plain": ["z"],
    "labels": ["z", "labels"],
    "codes": ["z"],
    "sr": ["source"],
    "points": ["z"],
    "image": ["source"],
    "text": ["z", "text_embedding", "condition_noise"],
}


@pytest.mark.parametrize("kind", list(INPUTS))
def test_every_variant_exports_to_onnx_and_draws_what_gankit_draws(runs, tmp_path, kind):
    out = tmp_path / f"{kind}.onnx"
    meta = export_onnx(runs[kind], out)
    assert [i["name"] for i in meta["inputs"]] == INPUTS[kind]
    parity = meta["parity"]
    assert parity["passed"] and parity["max_abs_difference"] <= 1 / 255
    assert parity.get("max_pixel_difference", 0) <= 1
    assert json.loads(out.with_name(out.name + ".json").read_text())["inputs"] == meta["inputs"]
    assert json.loads(out.with_name(out.name + ".parity.json").read_text())["passed"]
    stored = json.loads({p.key: p.value for p in onnx.load(str(out)).metadata_props}["gankit"])
    assert stored["step"] == 2 and stored["condition"]["kind"] == load_generator(runs[kind]).condition.kind


def test_the_batch_is_dynamic_and_a_super_resolution_graph_takes_any_size(runs, tmp_path):
    export_onnx(runs["labels"], tmp_path / "c.onnx")
    session = onnxruntime.InferenceSession(str(tmp_path / "c.onnx"), providers=["CPUExecutionProvider"])
    for n in (1, 5, 33):
        image = session.run(None, {"z": np.random.randn(n, 16).astype(np.float32), "labels": np.arange(n) % 4})[0]
        assert image.shape == (n, 1, 16, 16) and np.abs(image).max() <= 1
    export_onnx(runs["sr"], tmp_path / "sr.onnx")
    session = onnxruntime.InferenceSession(str(tmp_path / "sr.onnx"), providers=["CPUExecutionProvider"])
    assert session.run(None, {"source": np.zeros((2, 1, 10, 6), np.float32)})[0].shape == (2, 1, 20, 12)


def test_dcgan_transposed_convolutions_without_bias_export_faithfully(runs, tmp_path):
    """DCGAN's ConvTranspose2d layers have bias=False, each followed by BatchNorm (a known exporter trouble
    spot). The exporter folds each BatchNorm into its convolution: the bias it gives the ConvTranspose node
    must be exactly BatchNorm's shift, beta - mean * gamma / sqrt(var + eps); and the parity check holds."""
    from onnx import numpy_helper

    G = load_generator(runs["plain"]).G
    layers = list(G.net)
    pairs = [
        (m, layers[i + 1])
        for i, m in enumerate(layers[:-1])
        if isinstance(m, torch.nn.ConvTranspose2d)
        and m.bias is None
        and isinstance(layers[i + 1], torch.nn.BatchNorm2d)
    ]
    assert len(pairs) >= 2
    meta = export_onnx(runs["plain"], tmp_path / "g.onnx")
    model = onnx.load(str(tmp_path / "g.onnx"))
    weights = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    nodes = [n for n in model.graph.node if n.op_type == "ConvTranspose"]
    assert not [n for n in model.graph.node if n.op_type == "BatchNormalization"]
    for node, (conv, norm) in zip(nodes, pairs):
        shift = norm.bias - norm.running_mean * norm.weight / torch.sqrt(norm.running_var + norm.eps)
        np.testing.assert_allclose(weights[node.input[2]], shift.detach().numpy(), rtol=1e-5, atol=1e-6)
    assert meta["parity"]["max_pixel_difference"] == 0


def test_torch_export_programs_are_checked_too(runs, tmp_path):
    meta = export(runs["codes"], tmp_path / "g.pt2", "torch-export")
    assert meta["parity"]["runtime"] == "torch.export program" and meta["parity"]["passed"]
    program = torch.export.load(str(tmp_path / "g.pt2")).module()
    assert program(torch.zeros(3, 16)).shape == (3, 1, 16, 16)


def test_a_graph_that_draws_something_else_fails_the_check(runs, tmp_path):
    export_onnx(runs["plain"], tmp_path / "g.onnx")
    other = load_generator(runs["labels"])  # another generator: same input size, different weights
    other_plain = load_generator(runs["plain"])
    with torch.no_grad():
        for p in other_plain.G.parameters():
            p.add_(0.05)
    with pytest.raises(ExportError, match="does not draw what gankit draws"):
        check_export(tmp_path / "g.onnx", other_plain)
    assert not json.loads((tmp_path / "g.onnx.parity.json").read_text())["passed"]
    assert other.condition.num_classes == 4


def test_the_cli_exports_and_reports(runs, tmp_path, capsys):
    from gankit.cli import main

    assert main(["export", str(runs["image"]), "--out", str(tmp_path / "p.onnx")]) == 0
    printed = capsys.readouterr().out
    assert "inputs source ['N', 1, 32, 32] float32" in printed and "passed" in printed
    assert (
        main(["export", str(runs["plain"]), "--format", "torch-export", "--out", str(tmp_path / "g.pt2"), "--no-check"])
        == 0
    )
    assert "parity check skipped" in capsys.readouterr().out and not (tmp_path / "g.pt2.parity.json").exists()


def test_an_export_never_writes_over_a_runs_own_files(runs, tmp_path, capsys):
    """The audit's data loss: ``gankit export RUN --out RUN/generator.safetensors`` wrote over the run's export.
    Refused before anything is written (the argument check, and the library call), the run still samples."""
    import shutil

    from gankit.cli import main
    from gankit.errors import UsageError

    run = tmp_path / "run"
    shutil.copytree(runs["plain"], run)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    for target in ("generator.safetensors", "config.json", "checkpoints/new.onnx", "samples", "best/g.onnx"):
        with pytest.raises(SystemExit) as stopped:
            main(["export", str(run), "--out", str(run / target)])
        assert stopped.value.code == 2 and "belongs to the run in" in capsys.readouterr().err, target
    with pytest.raises(UsageError, match="belongs to the run in"):
        export_onnx(run, run / "generator.safetensors")
    with pytest.raises(UsageError, match="belongs to the run in"):  # a side file (OUT.json) that would be the config
        export_onnx(run, run / "config")
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
    assert load_generator(run).sample(2).shape == (2, 16, 16, 1)
    assert main(["export", str(run), "--out", str(run / "g.onnx")]) == 0  # a new file in the run folder is fine


def test_a_failed_export_leaves_the_earlier_file_and_no_temporary(runs, tmp_path):
    out = tmp_path / "g.onnx"
    out.write_bytes(b"an earlier export")
    broken = load_generator(runs["plain"])
    with pytest.raises(ExportError):
        export_onnx(broken, out, samples=10**9)  # refused before any work
    with torch.no_grad():
        broken.G.net[-2].weight.fill_(float("nan"))  # the graph then draws NaN: the parity check fails
    with pytest.raises(ExportError, match="does not draw what gankit draws"):
        export_onnx(broken, out)
    assert out.read_bytes() == b"an earlier export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.onnx", "g.onnx.parity.json"]


def test_the_parity_sample_count_is_bounded(runs, capsys):
    from gankit.cli import main

    with pytest.raises(SystemExit) as stopped:
        main(["export", str(runs["plain"]), "--samples", "1000000000", "--out", "g.onnx"])
    assert stopped.value.code == 2 and "must be at most 4,096" in capsys.readouterr().err
