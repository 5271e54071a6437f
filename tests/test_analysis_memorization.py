import json

import numpy as np
import torch

from gankit.analysis.memorization import (
    bits_for,
    collisions,
    memorization_report,
    nearest_neighbours,
    pack_bits,
    write_memorization,
)
from gankit.cli import main


def test_nearest_neighbour_of_a_training_image_is_itself_at_distance_zero():
    train = torch.randint(0, 256, (300, 1, 8, 8), dtype=torch.uint8)
    d, index = nearest_neighbours(train[[5, 17, 250]].float(), train.float(), k=2)
    assert index[:, 0].tolist() == [5, 17, 250]
    assert torch.allclose(d[:, 0], torch.zeros(3), atol=1e-2) and (d[:, 1] > 1).all()


def test_nearest_neighbours_match_brute_force():
    q, keys = torch.randn(37, 5), torch.randn(200, 5)
    d, index = nearest_neighbours(q, keys, k=3, chunk=8)
    brute = torch.cdist(q, keys).topk(3, largest=False)
    assert torch.equal(index, brute.indices)
    torch.testing.assert_close(d, brute.values, atol=1e-4, rtol=1e-4)


def test_hash_collisions_on_hand_made_codes():
    a = pack_bits(np.array([[1, 0, 1], [0, 0, 0], [1, 1, 1]], bool))
    b = pack_bits(np.array([[1, 0, 1], [1, 1, 0]], bool))
    assert collisions(a, b) == {"colliding": 1, "total": 3, "rate": 1 / 3}
    assert len(set(pack_bits(np.eye(20, dtype=bool)))) == 20  # codes longer than a byte stay distinct
    assert bits_for(784) == 64 and bits_for(3072) == 128 and bits_for(64) == 16


def test_report_flags_a_copying_generator(tmp_path):
    train = torch.randint(0, 256, (400, 1, 8, 8), dtype=torch.uint8)
    test = torch.randint(0, 256, (100, 1, 8, 8), dtype=torch.uint8)
    copies = train[:50]  # a generator that memorized its training set
    report = memorization_report(copies, train, test, panel_samples=3, neighbours=2, hash_epochs=1, log=lambda s: None)
    pixel = report.summary["pixel"]
    assert pixel["generated_to_train_median"] < 1e-3 < pixel["test_to_train_median"]
    assert pixel["generated_below_test_1st_percentile"] == 1.0
    assert report.summary["hash"]["generated_vs_train"]["rate"] == 1.0  # identical images, identical codes
    assert report.panel.shape == (9, 8, 8, 1)
    out = write_memorization(report, tmp_path / "m", neighbours=2)
    assert (out / "neighbours.png").is_file() and (out / "distances-pixel.png").is_file()
    assert "histograms" not in json.loads((out / "memorization.json").read_text())


def test_cli_memorization(tiny_run, tmp_path, capsys):
    assert main(["memorization", str(tiny_run), "--n", "20", "--hash-epochs", "1", "--out", str(tmp_path / "m")]) == 0
    summary = json.loads((tmp_path / "m" / "memorization.json").read_text())
    assert summary["num_generated"] == 20 and summary["hash"]["bits"] == 24
    assert "hash (24 bits)" in capsys.readouterr().out
