"""Captioned images: the scene dataset gankit builds itself, and the `captions` source that loads it or user data.

Every scene holds one Fashion-MNIST item, tinted with one of ``COLOURS``, scaled to one of ``SIZES``
and placed at one of nine ``POSITIONS`` on a dark background. The four attributes are stored next to
several captions per scene, drawn from a small grammar with synonyms and varied sentence forms
("a small red sandal in the top left corner", "top left: a tiny sandal, red"). Some (class, colour)
pairs never appear in the train split: the test split holds them apart (``heldout``) as a test of
composition. Everything is a function of the seed: scene k of a split uses its own generator seeded
with (seed, split, k), and train scenes take items from Fashion-MNIST's train split, test scenes from
its test split.

``parse_caption`` reads the attributes back from any caption the grammar makes: each phrase names
exactly one attribute value, so the round trip is exact (tested).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
from pathlib import Path

import numpy as np
import torch

from gankit.data.dataset import DATASETS, DataError, Dataset, load_dataset
from gankit.data.sources import (
    ImageOptions,
    finish_images,
    image_files,
    load_image_file,
    read_npz,
    to_labels,
    to_uint8_pixels,
)
from gankit.files import atomic_write_text, read_json, read_text, write_json, write_npz
from gankit.registry import ConfigError

CLASSES = ("T-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot")
CLASS_WORDS = (  # per class: its nouns (never a position or size word)
    ("t-shirt", "tee", "tee shirt"),
    ("pair of trousers", "pair of pants", "pair of slacks"),
    ("pullover", "sweater", "jumper"),
    ("dress", "frock"),
    ("coat", "jacket", "overcoat"),
    ("sandal", "flip-flop"),
    ("shirt", "blouse", "button-up shirt"),
    ("sneaker", "trainer", "running shoe"),
    ("bag", "handbag", "purse"),
    ("ankle boot", "boot", "bootie"),
)
COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 180, 60),
    "blue": (50, 90, 230),
    "yellow": (235, 215, 50),
    "purple": (150, 60, 200),
    "orange": (245, 140, 30),
    "white": (235, 235, 235),
    "pink": (245, 130, 180),
}
SIZES = ("small", "medium", "large")
SIZE_WORDS = (("small", "tiny", "little"), ("medium-sized", "mid-sized", "medium"), ("large", "big", "huge"))
SIZE_FRACTION = (0.4, 0.55, 0.75)  # item side / canvas side
POSITIONS = ("top left", "top", "top right", "left", "center", "right", "bottom left", "bottom", "bottom right")
POSITION_PHRASES = (  # phrases used inside a sentence
    ("in the top left corner", "at the top left", "in the upper left"),
    ("at the top", "along the top edge", "in the upper middle"),
    ("in the top right corner", "at the top right", "in the upper right"),
    ("on the left", "at the left edge", "in the middle left"),
    ("in the center", "in the middle", "at the centre"),
    ("on the right", "at the right edge", "in the middle right"),
    ("in the bottom left corner", "at the bottom left", "in the lower left"),
    ("at the bottom", "along the bottom edge", "in the lower middle"),
    ("in the bottom right corner", "at the bottom right", "in the lower right"),
)
POSITION_LABELS = (  # phrases used as a heading: "top left: a tiny sandal, red"
    ("top left", "upper left"),
    ("top", "upper middle"),
    ("top right", "upper right"),
    ("left", "middle left"),
    ("center", "middle"),
    ("right", "middle right"),
    ("bottom left", "lower left"),
    ("bottom", "lower middle"),
    ("bottom right", "lower right"),
)
FORMS = (
    "{a} {size} {colour} {noun} {where}",
    "{label}: {a} {size} {noun}, {colour}",
    "there is {a} {colour} {noun} {where}, and it is {size}",
    "{size} {colour} {noun}, {where}",
    "{a} {noun} in {colour}, {size}, {where}",
    "{where} you can see {a} {size} {colour} {noun}",
)
HELDOUT_PAIRS = 10  # (class, colour) pairs kept out of the train split
SPLITS = {"train": 0, "test": 1}


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def make_caption(attributes: dict[str, int], rng: np.random.Generator) -> str:
    """One caption of ``attributes`` (class, colour, size, position as indices): a random sentence form
    and random synonyms."""
    noun = str(rng.choice(CLASS_WORDS[attributes["class"]]))
    colour = list(COLOURS)[attributes["colour"]]
    size = str(rng.choice(SIZE_WORDS[attributes["size"]]))
    form = FORMS[rng.integers(len(FORMS))]
    first = {"{a} {size}": size, "{a} {colour}": colour, "{a} {noun}": noun}
    a = next((article(word) for key, word in first.items() if key in form), "a")
    text = form.format(
        a=a,
        size=size,
        colour=colour,
        noun=noun,
        where=str(rng.choice(POSITION_PHRASES[attributes["position"]])),
        label=str(rng.choice(POSITION_LABELS[attributes["position"]])),
    )
    return text[0].upper() + text[1:] if rng.random() < 0.5 else text


def _phrase_table(groups) -> list[tuple[str, int]]:
    """(phrase, value) pairs, longest phrase first, so "top left" wins over "top"."""
    return sorted(((p, i) for i, phrases in enumerate(groups) for p in phrases), key=lambda t: -len(t[0]))


_TABLES = {
    "position": _phrase_table([a + b for a, b in zip(POSITION_PHRASES, POSITION_LABELS)]),
    "class": _phrase_table(CLASS_WORDS),
    "size": _phrase_table(SIZE_WORDS),
    "colour": _phrase_table([(c,) for c in COLOURS]),
}


def parse_caption(text: str) -> dict[str, int]:
    """The attributes a grammar caption names (class, colour, size, position as indices).

    Phrases are matched longest first as whole words and removed once matched, position phrases first
    (they contain the most words). Raises ValueError when an attribute is missing."""
    rest = " " + re.sub(r"[^a-z\- ]", " ", text.lower()) + " "
    found = {}
    for kind, table in _TABLES.items():
        for phrase, value in table:
            if f" {phrase} " in rest:
                found[kind] = value
                rest = rest.replace(f" {phrase} ", " ", 1)
                break
        else:
            raise ValueError(f"caption {text!r} names no {kind}")
    return found


def heldout_pairs(seed: int) -> list[tuple[int, int]]:
    """The (class, colour) pairs the train split never shows: one per class, colours spread evenly."""
    rng = np.random.default_rng([seed, 99])
    colours = rng.permutation(np.arange(HELDOUT_PAIRS) % len(COLOURS))
    return [(k, int(colours[k])) for k in range(min(HELDOUT_PAIRS, len(CLASSES)))]


def draw_attributes(rng: np.random.Generator, split: str, heldout: set[tuple[int, int]]) -> dict[str, int]:
    """Attributes of one scene: uniform, except that train scenes skip held-out pairs and half of the test
    scenes use one."""
    if split == "test" and rng.random() < 0.5:
        cls, colour = sorted(heldout)[rng.integers(len(heldout))]
    else:
        while True:
            cls, colour = int(rng.integers(len(CLASSES))), int(rng.integers(len(COLOURS)))
            if (cls, colour) not in heldout:
                break
    return {
        "class": cls,
        "colour": colour,
        "size": int(rng.integers(len(SIZES))),
        "position": int(rng.integers(len(POSITIONS))),
    }


def render(item: np.ndarray, attributes: dict[str, int], resolution: int, background: int) -> np.ndarray:
    """uint8 (R, R, 3) scene: the gray ``item`` (28x28 uint8) scaled, tinted and placed on a gray background.

    The item's intensity is both its opacity and its shading: pixel = background * (1 - a) + colour * a."""
    from PIL import Image

    side = max(4, round(SIZE_FRACTION[attributes["size"]] * resolution))
    alpha = np.asarray(Image.fromarray(item).resize((side, side), Image.BILINEAR), dtype=np.float32)[..., None] / 255.0
    row, col = divmod(attributes["position"], 3)
    top, left = (round(c / 2 * (resolution - side)) for c in (row, col))  # 0, middle or far edge
    canvas = np.full((resolution, resolution, 3), float(background), dtype=np.float32)
    colour = np.array(list(COLOURS.values())[attributes["colour"]], dtype=np.float32)
    patch = canvas[top : top + side, left : left + side]
    canvas[top : top + side, left : left + side] = patch * (1 - alpha) + colour * alpha
    return np.clip(np.round(canvas), 0, 255).astype(np.uint8)


def make_split(
    items: np.ndarray,
    item_labels: np.ndarray,
    n: int,
    split: str,
    seed: int,
    resolution: int = 64,
    captions_per_image: int = 5,
) -> dict:
    """``n`` scenes of ``split`` from Fashion-MNIST ``items`` (N, 28, 28) and their labels."""
    heldout = set(heldout_pairs(seed))
    by_class = [np.flatnonzero(item_labels == k) for k in range(len(CLASSES))]
    images = np.empty((n, resolution, resolution, 3), np.uint8)
    attributes = {key: np.empty(n, np.int64) for key in ("class", "colour", "size", "position")}
    background = np.empty(n, np.uint8)
    captions = []
    for k in range(n):
        rng = np.random.default_rng([seed, SPLITS[split], k])
        a = draw_attributes(rng, split, heldout)
        item = items[by_class[a["class"]][rng.integers(len(by_class[a["class"]]))]]
        background[k] = rng.integers(0, 41)
        images[k] = render(item, a, resolution, int(background[k]))
        for key, value in a.items():
            attributes[key][k] = value
        captions.append([make_caption(a, rng) for _ in range(captions_per_image)])
    pairs = list(zip(attributes["class"].tolist(), attributes["colour"].tolist()))
    return {
        "images": images,
        **attributes,
        "background": background,
        "heldout": np.array([p in heldout for p in pairs], dtype=bool),
        "captions": captions,
        "pairs_seen": len(set(pairs)),
    }


def write_captioned_dataset(
    out: Path,
    seed: int = 0,
    train: int = 20000,
    test: int = 2000,
    resolution: int = 64,
    captions_per_image: int = 5,
    progress=print,
) -> dict:
    """Build both splits from the local Fashion-MNIST and write OUT/{train,test}.npz (uint8 ``images``,
    ``labels`` = class, ``colour``, ``size``, ``position``, ``heldout``, ``background`` gray level),
    OUT/{train,test}_captions.json
    (a list of captions per image) and OUT/info.json (attribute names, colours, held-out pairs, seed)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    counts = {"train": train, "test": test}
    for split, n in counts.items():
        source = load_dataset({"name": "fashion-mnist", "split": split})
        data = make_split(source.x[:, 0].numpy(), source.labels.numpy(), n, split, seed, resolution, captions_per_image)
        write_npz(
            out / f"{split}.npz",
            images=data["images"],
            labels=data["class"],
            colour=data["colour"],
            size=data["size"],
            position=data["position"],
            heldout=data["heldout"],
            background=data["background"],
        )
        atomic_write_text(out / f"{split}_captions.json", json.dumps(data["captions"]))
        progress(
            f"{split}: {n} scenes, {data['pairs_seen']} (class, colour) pairs, "
            f"{int(data['heldout'].sum())} with a held-out pair"
        )
    info = {
        "seed": seed,
        "resolution": resolution,
        "captions_per_image": captions_per_image,
        "counts": counts,
        "classes": list(CLASSES),
        "colours": COLOURS,
        "sizes": list(SIZES),
        "positions": list(POSITIONS),
        "heldout_pairs": [[CLASSES[c], list(COLOURS)[k]] for c, k in heldout_pairs(seed)],
    }
    write_json(out / "info.json", info)
    return info


# --------------------------------------------------------------------------- the `captions` source


@dataclasses.dataclass
class CaptionsOptions(ImageOptions):
    # A folder written by `gankit data make-captions`; a folder of images each with a caption file (the
    # same name with .txt beside it, or under a sibling text/ or text_c10/ tree mirroring images/, as in
    # the CUB and Oxford-102 caption sets); or a CSV with `image` and `caption` columns (one row per
    # caption; paths relative to the CSV). One caption per line in caption files.
    path: str = ""
    channels: int | None = 3

    @property
    def has_test_split(self) -> bool:
        """A make-captions folder has a test split; user caption folders and CSVs have a train split only."""
        root = Path(self.path).expanduser()
        return (root / "info.json").is_file() and (root / "test.npz").is_file()


def caption_file(image: Path, root: Path) -> Path | None:
    """The caption file of ``image``: beside it, or at the same place under root/text or root/text_c10
    when the image lies under root/images."""
    candidates = [image.with_suffix(".txt")]
    relative = image.relative_to(root)
    if relative.parts and relative.parts[0] == "images":
        candidates += [root / tree / Path(*relative.parts[1:]).with_suffix(".txt") for tree in ("text", "text_c10")]
    return next((c for c in candidates if c.is_file()), None)


def check_caption_text(text: str, where: str) -> None:
    """Captions are text: a control character (NUL, escape...) means a binary file, not a caption file."""
    bad = next((i for i, c in enumerate(text) if ord(c) < 32 and c not in "\t\n\r"), None)
    if bad is not None:
        raise DataError(
            f"{where}: holds binary data (character 0x{ord(text[bad]):02x} at offset {bad}); "
            "caption files are UTF-8 text, one caption per line"
        )


def read_caption_lines(path: Path) -> list[str]:
    """The non-empty lines of a caption file: UTF-8 text only (Latin-1 or binary files are refused, not read
    with replacement characters)."""
    text = read_text(path, DataError)
    check_caption_text(text, str(path))
    lines = [line.strip() for line in text.splitlines()]
    return [line for line in lines if line]


def read_caption_csv(csv_file: Path) -> dict[Path, list[str]]:
    """Captions per image path from a CSV with ``image`` and ``caption`` columns (UTF-8)."""
    captions: dict[Path, list[str]] = {}
    text = read_text(csv_file, DataError)
    check_caption_text(text, str(csv_file))
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        if not reader.fieldnames or not {"image", "caption"} <= set(reader.fieldnames):
            raise DataError(f"{csv_file}: needs a header with 'image' and 'caption' columns, got {reader.fieldnames}")
        for row in reader:
            if not isinstance(row["image"], str) or not isinstance(row["caption"], str):
                raise DataError(f"{csv_file}: line {reader.line_num} does not have both an image and a caption")
            if row["caption"].strip():
                captions.setdefault((csv_file.parent / row["image"]).resolve(), []).append(row["caption"].strip())
    except csv.Error as error:
        raise DataError(
            f"{csv_file}: not a readable caption CSV at line {reader.line_num} ({error}); captions are "
            f"at most {csv.field_size_limit():,} characters"
        )
    return captions


def user_captions(root: Path, csv_file: Path | None) -> tuple[list[Path], list[list[str]]]:
    """(image paths, captions per image) of user data, in a stable order."""
    if csv_file is not None:
        captions = read_caption_csv(csv_file)
        missing = [p for p in captions if not p.is_file()]
        if missing:
            raise DataError(f"{csv_file}: {len(missing)} image(s) not found, first: {missing[0]}")
        files = sorted(captions)
        return files, [captions[p] for p in files]
    files = image_files(root)
    texts = [caption_file(p, root) for p in files]
    missing = [p for p, t in zip(files, texts) if t is None]
    if missing:
        raise DataError(
            f"{root}: {len(missing)} of {len(files)} images have no caption file "
            f"(looked for NAME.txt beside each, or under text/ or text_c10/), first: {missing[0]}"
        )
    lists = [read_caption_lines(t) for t in texts]
    empty = [(text, image) for image, text, c in zip(files, texts, lists) if not c]
    if empty:
        raise DataError(
            f"{empty[0][0]}: empty caption file (of {empty[0][1].name}; {len(empty)} empty in {root}); "
            "write at least one caption per image, one per line"
        )
    return files, lists


@DATASETS.register(
    "captions",
    CaptionsOptions,
    "captioned images: `gankit data make-captions` output, a folder with caption files, or a CSV",
)
def load_captions(options: CaptionsOptions) -> Dataset:
    """Images with ``extras["captions"]`` (a list of captions per image); the built dataset also gives
    class labels and ``extras["attributes"]`` (class, colour, size, position, heldout arrays)."""
    if not options.path:
        raise ConfigError("dataset 'captions' needs data.path (a make-captions folder, a captioned folder or a CSV)")
    root = Path(options.path).expanduser()
    if (root / "info.json").is_file() and (root / f"{options.split}.npz").is_file():
        return load_made_captions(root, options)
    if options.split != "train":
        raise ConfigError(f"{root}: user caption data has one split (train); got data.split={options.split!r}")
    if not (root.is_dir() or (root.is_file() and root.suffix.lower() == ".csv")):
        raise DataError(f"data.path {root} is neither a folder nor a .csv file")
    if options.resolution is None:
        raise ConfigError("dataset 'captions' on user images needs data.resolution")
    files, captions = user_captions(root if root.is_dir() else root.parent, root if root.is_file() else None)
    if not files:
        raise DataError(f"{root}: no captioned images found")
    if options.limit is not None:
        files, captions = files[: options.limit], captions[: options.limit]
    mode = "L" if options.channels == 1 else "RGB"
    images = np.stack([load_image_file(p, options.resolution, mode) for p in files])
    dataset = finish_images(images, None, dataclasses.replace(options, limit=None), root.stem)
    dataset.extras["captions"] = captions
    return dataset


ATTRIBUTES = ("labels", "colour", "size", "position", "heldout")  # required; "background" when present


def load_made_captions(root: Path, options: CaptionsOptions) -> Dataset:
    """A folder ``gankit data make-captions`` wrote: every file checked (present, readable, of matching sizes)."""
    npz = root / f"{options.split}.npz"
    caption_path = root / f"{options.split}_captions.json"
    for needed in (caption_path, root / "info.json"):
        if not needed.is_file():
            raise DataError(
                f"{root}: missing {needed.name}; the folder is incomplete: write it again with "
                "gankit data make-captions"
            )
    arrays = read_npz(npz, required=("images", *ATTRIBUTES), optional=("background",))
    images = to_uint8_pixels(arrays["images"], npz, "'images'")
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise DataError(f"{npz}: 'images' must be (N, H, W, C), got {images.shape}")
    n = len(images)
    attributes = {key: value for key, value in arrays.items() if key != "images"}
    for key, value in attributes.items():
        if value.shape != (n,) or value.dtype.kind not in "iub":
            raise DataError(f"{npz}: '{key}' must be {n} integers (one per image), got {value.dtype} {value.shape}")
    attributes["labels"] = to_labels(attributes["labels"], npz, n)
    captions = read_json(caption_path, DataError)
    if (
        not isinstance(captions, list)
        or len(captions) != n
        or not all(isinstance(c, list) and c and all(isinstance(s, str) for s in c) for c in captions)
    ):
        raise DataError(f"{caption_path}: expected a list of {n} non-empty lists of captions (one per image)")
    info = read_json(root / "info.json", DataError)
    attributes["class"] = attributes.pop("labels")
    dataset = finish_images(images.transpose(0, 3, 1, 2), attributes["class"], options, "captions", list(CLASSES))
    n = len(dataset.x)
    dataset.extras.update(captions=captions[:n], attributes={k: v[:n] for k, v in attributes.items()}, info=info)
    return dataset


def attribute_groups(attributes: dict | None) -> torch.Tensor | None:
    """One id per distinct (class, colour, size, position): captions of the same combination say the same
    thing, so the structured loss must not push them apart. None without attributes."""
    if attributes is None:
        return None
    keys = list(zip(*(attributes[k].tolist() for k in ("class", "colour", "size", "position"))))
    index: dict[tuple, int] = {}
    return torch.tensor([index.setdefault(k, len(index)) for k in keys])
