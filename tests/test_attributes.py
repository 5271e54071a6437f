"""The attribute classifier of the captioned scenes and the consistency score."""

import numpy as np
import pytest
import torch

from gankit.data import Dataset
from gankit.data import captions as cap
from gankit.metrics.attributes import HEADS, consistency, predict, train_attribute_classifier


def test_consistency_counts_all_four_attributes_and_splits_seen_from_heldout():
    wanted = {"class": [0, 1, 2, 3], "colour": [0, 0, 1, 1], "size": [0, 1, 2, 0], "position": [8, 7, 6, 5]}
    predicted = {**wanted, "colour": [0, 1, 1, 1]}  # image 1 gets its colour wrong
    result = consistency(predicted, wanted, heldout=np.array([False, True, True, False]))
    assert result["colour_accuracy"] == 0.75 and result["class_accuracy"] == 1.0
    assert result["all_accuracy"] == 0.75
    assert result["all_accuracy_seen"] == 1.0 and result["all_accuracy_heldout"] == 0.5


@pytest.mark.slow
def test_the_classifier_learns_the_attributes_of_toy_scenes():
    items = np.zeros((10, 28, 28), np.uint8)
    for k in range(10):  # each class a different bar pattern
        items[k, 4:24, 2 + 2 * k : 6 + 2 * k] = 255
    split = cap.make_split(items, np.arange(10), 600, "train", seed=0, resolution=16, captions_per_image=1)
    data = Dataset(
        torch.from_numpy(split["images"]).permute(0, 3, 1, 2).contiguous(),
        torch.from_numpy(split["class"]),
        "toy",
        extras={"attributes": {k: split[k] for k in (*HEADS, "background")}},
    )
    net = train_attribute_classifier(data, steps=400, batch_size=64, log=lambda s: None)
    result = consistency(predict(net, data.x), {k: split[k] for k in HEADS})
    assert (
        min(result[f"{k}_accuracy"] for k in HEADS) > 0.85 and result["all_accuracy"] > 0.7
    )  # chance: 0.1, 0.125, 0.33, 0.11
    with pytest.raises(ValueError, match="has no attributes"):
        train_attribute_classifier(Dataset(data.x, None, "plain"), steps=1)


def test_retint_repaints_the_item_and_keeps_the_background():
    from gankit.data.captions import COLOURS, render
    from gankit.metrics.attributes import retint

    item = np.zeros((28, 28), np.uint8)
    item[8:20, 8:20] = 255
    item[10:12, 10:12] = 128  # half-transparent shading

    def scene(colour):
        return torch.from_numpy(render(item, {"class": 0, "colour": colour, "size": 2, "position": 4}, 32, 20)).permute(
            2, 0, 1
        )

    red, blue = list(COLOURS).index("red"), list(COLOURS).index("blue")
    out = retint(scene(red)[None], torch.tensor([red]), torch.tensor([20]), torch.tensor([blue]))[0]
    assert (out.int() - scene(blue).int()).abs().max() <= 1  # the scene as if rendered blue
    same = retint(scene(red)[None], torch.tensor([red]), torch.tensor([20]), torch.tensor([red]))[0]
    assert (same.int() - scene(red).int()).abs().max() <= 1
