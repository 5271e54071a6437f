"""Text evaluation's own parts (gankit.metrics.text_consistency): the report, its file name, the scores."""

import types

import numpy as np
import torch

from gankit.data.captions import CLASSES
from gankit.metrics.attributes import consistency
from gankit.metrics.text_consistency import format_text_report, resize, retrieval_rank1, text_report_path

ATTRIBUTES = ("class", "colour", "size", "position")


def test_consistency_counts_all_four_right_split_by_seen_and_held_out_pairs():
    wanted = {k: np.array([0, 1, 2, 3]) for k in ATTRIBUTES}
    predicted = {k: v.copy() for k, v in wanted.items()}
    predicted["colour"][1] = 9  # image 1 wrong in one attribute
    result = consistency(predicted, wanted, heldout=np.array([False, False, True, True]))
    assert result["colour_accuracy"] == 0.75 and result["class_accuracy"] == 1.0
    assert result["all_accuracy"] == 0.75
    assert result["all_accuracy_seen"] == 0.5 and result["all_accuracy_heldout"] == 1.0


def row(scale=1.0, ema=True):
    confusion = np.zeros((len(CLASSES), len(CLASSES)), int)
    confusion[2, 4], confusion[2, 2], confusion[5, 7] = 6, 4, 1
    metrics = {
        "class_accuracy": 0.5,
        "colour_accuracy": 0.9,
        "all_accuracy": 0.4,
        "all_accuracy_seen": 0.5,
        "all_accuracy_heldout": 0.3,
        "fid": 12.345,
        "retrieval_r1": 0.25,
    }
    ceiling = {"all_accuracy": 0.8, "all_accuracy_seen": 0.8, "all_accuracy_heldout": 0.75, "retrieval_r1": 0.5}
    return {
        "metrics": metrics,
        "ceiling": ceiling,
        "ratios": {
            k + "_to_ceiling": metrics[k] / ceiling[k]
            for k in ("all_accuracy", "all_accuracy_seen", "all_accuracy_heldout")
        },
        "class_confusion": confusion.tolist(),
        "class_confusion_real_at_generator_resolution": np.zeros_like(confusion).tolist(),
        "protocol": {"step": 120, "ema_generator": ema, "condition_noise_scale": scale, "scenes": 16},
    }


def test_the_report_prints_each_score_with_its_ceiling_and_the_commonest_misses():
    text = format_text_report(row(scale=0.5))
    assert "step 120, EMA of G, conditioning noise x 0.5" in text
    assert "seen pairs      0.500 / 0.800 / 0.62" in text and "held-out pairs  0.300 / 0.750 / 0.40" in text
    assert f"{CLASSES[2]} as {CLASSES[4]} 6/10" in text and f"{CLASSES[5]} as {CLASSES[7]} 1/1" in text
    assert "real scenes at G's resolution" not in text  # no misses there: no line
    assert (
        "vs the 16 real test scenes): 12.35" in text
        and "R@1 among 100 captions: 0.250 (real test images: 0.500)" in text
    )
    assert "EMA" not in format_text_report(row(ema=False)).splitlines()[0]


def test_the_report_file_is_named_after_what_was_drawn(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text("{}")
    pipeline = types.SimpleNamespace(step=40, settings={"condition_noise_scale": 1.0})
    assert text_report_path(run, pipeline) == run / "text_metrics.json"
    assert text_report_path(run / "generator.safetensors", pipeline) == run / "text_metrics.json"
    checkpoint = run / "checkpoints" / "ckpt-00000040.safetensors"
    assert text_report_path(checkpoint, pipeline, raw_generator=True) == run / "text_metrics-step40-no-ema.json"
    scaled = types.SimpleNamespace(step=40, settings={"condition_noise_scale": 0.25})
    assert text_report_path(run, scaled) == run / "text_metrics-condition-noise-0.25.json"


def test_retrieval_counts_an_image_whose_own_caption_scores_highest():
    # Caption k embeds as the one-hot e_k; image k embeds as e_k too, except image 3, which looks like caption 0.
    text_encoder = lambda captions: torch.eye(4)[[int(c) for c in captions]]  # noqa: E731
    images = torch.tensor([0, 1, 2, 0], dtype=torch.uint8).view(4, 1, 1, 1)
    image_encoder = lambda x: torch.eye(4)[((x.flatten() + 1) * 127.5).round().long()]  # noqa: E731
    score = retrieval_rank1(text_encoder, image_encoder, images, ["0", "1", "2", "3"], np.arange(4), pool=4)
    assert score == 0.75


def test_resize_keeps_the_size_it_is_asked_for_and_averages_when_shrinking():
    x = torch.tensor([[0, 255], [255, 0]], dtype=torch.uint8).view(1, 1, 2, 2)
    assert resize(x, 2) is x
    assert resize(x, 1).item() == 128  # the mean of the four, rounded
