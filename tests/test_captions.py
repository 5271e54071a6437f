"""The captioned scene dataset (issue 7): grammar, attribute round trip, held-out pairs, rendering, determinism."""

import json

import numpy as np
import pytest

from gankit.data import captions as cap


def _attributes(rng):
    return {
        "class": int(rng.integers(10)),
        "colour": int(rng.integers(len(cap.COLOURS))),
        "size": int(rng.integers(3)),
        "position": int(rng.integers(9)),
    }


def test_every_caption_parses_back_to_its_attributes():
    rng = np.random.default_rng(0)
    forms = set()
    for _ in range(3000):
        attributes = _attributes(rng)
        text = cap.make_caption(attributes, rng)
        assert cap.parse_caption(text) == attributes, text
        forms.add(text.split()[0].lower())
    assert len(forms) > 6  # varied sentence openings


def test_phrases_name_one_attribute_value_each():
    phrases = [p for table in cap._TABLES.values() for p, _ in table]
    assert len(phrases) == len(set(phrases))
    with pytest.raises(ValueError, match="names no colour"):
        cap.parse_caption("a small sandal in the top left corner")


def test_captions_are_deterministic_and_use_articles():
    a = cap.make_caption({"class": 5, "colour": 5, "size": 0, "position": 0}, np.random.default_rng(3))
    assert a == cap.make_caption({"class": 5, "colour": 5, "size": 0, "position": 0}, np.random.default_rng(3))
    assert cap.article("orange") == "an" and cap.article("red") == "a"


def test_render_places_a_tinted_item_at_its_size_and_position():
    item = np.zeros((28, 28), np.uint8)
    item[4:24, 4:24] = 255
    scene = cap.render(item, {"class": 0, "colour": 0, "size": 0, "position": 0}, 64, background=10)
    assert scene.shape == (64, 64, 3) and scene.dtype == np.uint8
    ink = np.argwhere((scene != 10).any(axis=2))
    assert ink.max(axis=0).tolist()[0] < 32 and ink.max(axis=0).tolist()[1] < 32  # top left quarter
    assert tuple(scene[13, 13]) == cap.COLOURS["red"] and tuple(scene[0, 0]) == (10, 10, 10)  # item centre, corner
    large = cap.render(item, {"class": 0, "colour": 2, "size": 2, "position": 8}, 64, background=10)
    large_ink = np.argwhere((large != 10).any(axis=2))
    assert len(large_ink) > 2 * len(ink) and large_ink.min(axis=0).tolist()[0] > 16  # bigger, lower right


def test_splits_keep_held_out_pairs_out_of_training_and_are_reproducible():
    rng = np.random.default_rng(1)
    items, labels = rng.integers(0, 256, (200, 28, 28)).astype(np.uint8), np.arange(200) % 10
    heldout = set(cap.heldout_pairs(seed=4))
    assert len(heldout) == 10 and {c for c, _ in heldout} == set(range(10))
    train = cap.make_split(items, labels, 300, "train", seed=4, resolution=32, captions_per_image=3)
    test = cap.make_split(items, labels, 200, "test", seed=4, resolution=32, captions_per_image=3)
    assert not train["heldout"].any() and not {(c, k) for c, k in zip(train["class"], train["colour"])} & heldout
    assert 0.3 < test["heldout"].mean() < 0.7
    assert train["images"].shape == (300, 32, 32, 3) and len(train["captions"][0]) == 3
    for k in range(20):
        attributes = {key: int(train[key][k]) for key in ("class", "colour", "size", "position")}
        assert all(cap.parse_caption(c) == attributes for c in train["captions"][k])
    again = cap.make_split(items, labels, 300, "train", seed=4, resolution=32, captions_per_image=3)
    assert np.array_equal(again["images"], train["images"]) and again["captions"] == train["captions"]


def test_cli_makes_the_dataset(tmp_path, capsys):
    from gankit.cli import main
    from gankit.data import load_dataset

    try:
        load_dataset({"name": "fashion-mnist", "split": "test", "download": False, "limit": 1})
    except Exception:
        pytest.skip("Fashion-MNIST is not installed here")
    assert (
        main(["data", "make-captions", "--out", str(tmp_path), "--train", "40", "--test", "20", "--resolution", "32"])
        == 0
    )
    info = json.loads((tmp_path / "info.json").read_text())
    assert info["counts"] == {"train": 40, "test": 20} and len(info["heldout_pairs"]) == 10
    with np.load(tmp_path / "train.npz") as train:
        assert train["images"].shape == (40, 32, 32, 3) and train["labels"].shape == (40,)
    assert len(json.loads((tmp_path / "test_captions.json").read_text())) == 20
    assert "held-out pair" in capsys.readouterr().out


def _image(path, colour):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (40, 30), colour).save(path)


def test_user_folders_and_csv_load_with_their_captions(tmp_path):
    from gankit.data import DataError, load_dataset
    from gankit.registry import ConfigError

    beside = tmp_path / "beside"
    _image(beside / "a.png", (255, 0, 0))
    (beside / "a.txt").write_text("a red square\n\nred, square\n")
    _image(beside / "sub" / "b.jpg", (0, 0, 255))
    (beside / "sub" / "b.txt").write_text("blue\n")
    data = load_dataset({"name": "captions", "path": str(beside), "resolution": 16})
    assert data.x.shape == (2, 3, 16, 16) and data.extras["captions"] == [["a red square", "red, square"], ["blue"]]
    assert data.x[0, 0].float().mean() > 200 and data.x[1, 2].float().mean() > 200  # red first, then blue

    cub = tmp_path / "cub"  # images/<class>/x.jpg with text_c10/<class>/x.txt
    _image(cub / "images" / "001.Gull" / "x.jpg", (200, 200, 200))
    (cub / "text_c10" / "001.Gull").mkdir(parents=True)
    (cub / "text_c10" / "001.Gull" / "x.txt").write_text("a grey bird\nthis bird is grey\n")
    assert load_dataset({"name": "captions", "path": str(cub), "resolution": 8}).extras["captions"] == [
        ["a grey bird", "this bird is grey"]
    ]

    table = tmp_path / "pairs.csv"
    table.write_text("image,caption\nbeside/a.png,first\nbeside/sub/b.jpg,second\nbeside/a.png,third\n")
    data = load_dataset({"name": "captions", "path": str(table), "resolution": 8})
    assert data.extras["captions"] == [["first", "third"], ["second"]]

    (beside / "sub" / "b.txt").unlink()
    with pytest.raises(DataError, match="1 of 2 images have no caption file"):
        load_dataset({"name": "captions", "path": str(beside), "resolution": 16})
    with pytest.raises(ConfigError, match="needs data.resolution"):
        load_dataset({"name": "captions", "path": str(cub)})
    with pytest.raises(ConfigError, match="one split"):
        load_dataset({"name": "captions", "path": str(cub), "resolution": 8, "split": "test"})
    table.write_text("path,text\nx.png,y\n")
    with pytest.raises(DataError, match="'image' and 'caption' columns"):
        load_dataset({"name": "captions", "path": str(table), "resolution": 8})


def test_the_built_dataset_loads_with_labels_attributes_and_captions(tmp_path):
    from gankit.data import load_dataset

    rng = np.random.default_rng(0)
    items, labels = rng.integers(0, 256, (100, 28, 28)).astype(np.uint8), np.arange(100) % 10
    for split, n in (("train", 30), ("test", 12)):
        data = cap.make_split(items, labels, n, split, seed=0, resolution=32, captions_per_image=2)
        np.savez(
            tmp_path / f"{split}.npz",
            images=data["images"],
            labels=data["class"],
            colour=data["colour"],
            size=data["size"],
            position=data["position"],
            heldout=data["heldout"],
        )
        (tmp_path / f"{split}_captions.json").write_text(json.dumps(data["captions"]))
    (tmp_path / "info.json").write_text(json.dumps({"seed": 0}))
    test = load_dataset({"name": "captions", "path": str(tmp_path), "split": "test", "limit": 10})
    assert test.x.shape == (10, 3, 32, 32) and test.labels.shape == (10,) and len(test.extras["captions"]) == 10
    attributes = test.extras["attributes"]
    assert set(attributes) == {"class", "colour", "size", "position", "heldout"} and len(attributes["colour"]) == 10
    k = 3
    assert cap.parse_caption(test.extras["captions"][k][0]) == {
        key: int(attributes[key][k]) for key in ("class", "colour", "size", "position")
    }
    assert test.class_names[0] == "T-shirt"
