"""benchmarks/device_check.py (issue 33) runs end to end: its CPU smoke run drives every part the GPU run does
(the CUDA tests on the CPU, each throughput row, the evaluation timing) and writes its JSON and table."""

import json
import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import device_check  # noqa: E402


@pytest.mark.slow
def test_the_device_check_smoke_run_measures_every_part(tmp_path):
    assert device_check.main(["--device", "cpu", "--quick", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "device-check.json").read_text())
    assert report["tests"]["passed"] == 1 and report["tests"]["failures"] == report["tests"]["errors"] == 0
    assert set(report["throughput"]) == set(device_check.WORKLOADS)
    for workload in report["throughput"].values():
        rows = workload["rows"]
        assert list(rows) == [*device_check.CANONICAL, *device_check.GANKIT, *device_check.COMPILED]
        for name in [*device_check.CANONICAL, *device_check.GANKIT]:
            row = rows[name]
            assert row["images_per_second"] > 0 and math.isfinite(row["images_per_second"]), (name, row)
            assert len(row["d"]) == len(row["g"]) == 3  # 6 steps logged every 2
        assert rows["gankit fp32 NCHW"]["max_d_loss_gap"] == 0.0  # the reference against itself
        assert rows["gankit bf16"]["max_d_loss_gap"] > 0.0  # bf16 rounds: its curve departs from fp32's
        assert all("skipped" in rows[name] for name in device_check.COMPILED)  # --quick leaves compile out
    assert report["evaluation"]["seconds"] > 0 and math.isfinite(report["evaluation"]["fid"])
    table = (tmp_path / "device-check.md").read_text()
    assert "| dcgan-paper-64 b128 | gankit default (fp32, channels-last, fused Adam) |" in table
    assert "**tests**" in table and "**evaluation**" in table


def test_the_device_check_refuses_cuda_without_a_gpu(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(device_check.torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit):
        device_check.main(["--out", str(tmp_path)])
    assert "--device cpu --quick" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
