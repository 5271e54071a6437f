"""``gankit data pack`` and the ``packed`` source (issue 18): memory-mapped data that trains like the original."""

import json

import numpy as np
import pytest
import torch
from helpers import tiny_overrides
from PIL import Image

from gankit import load_config, train
from gankit.cli import main
from gankit.data import BatchStream, load_dataset
from gankit.data.packed import pack
from gankit.errors import DataError


@pytest.fixture
def image_folder(tmp_path):
    root = tmp_path / "images"
    for label in ("cats", "dogs"):
        (root / label).mkdir(parents=True)
        for i in range(12):
            pixels = np.random.default_rng(i + 100 * len(label)).integers(0, 256, (20, 24, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / label / f"{i:02d}.png")
    return root


def test_a_packed_folder_gives_the_same_batches_as_the_folder_in_memory(tmp_path, image_folder, capsys):
    assert (
        main(["data", "pack", str(image_folder), "--out", str(tmp_path / "packed"), "--resolution", "16", "--quiet"])
        == 0
    )
    packed = load_dataset({"name": "packed", "path": str(tmp_path / "packed")})
    folder = load_dataset({"name": "folder", "path": str(image_folder), "resolution": 16})
    assert packed.memory_mapped and packed.class_names == ["cats", "dogs"]
    a, b = BatchStream(packed, 8, seed=3), BatchStream(folder, 8, seed=3)
    for k in range(6):  # across an epoch boundary (24 images, 3 batches an epoch)
        assert torch.equal(a.indices(k), b.indices(k))
        assert torch.equal(packed.model_input(a.indices(k)), folder.model_input(b.indices(k)))
        assert torch.equal(packed.labels[a.indices(k)], folder.labels[b.indices(k)])


def test_an_interrupted_pack_resumes_where_it_stopped(tmp_path, image_folder, monkeypatch):
    import gankit.data.packed as packed_module

    real_load, calls = packed_module.load_image_file, []

    def failing_load(path, resolution, mode):
        calls.append(path)
        if len(calls) == 15:
            raise KeyboardInterrupt  # the user stops the pack
        return real_load(path, resolution, mode)

    monkeypatch.setattr(
        packed_module, "time", type("Clock", (), {"monotonic": staticmethod(lambda: len(calls) * 11.0)})
    )
    monkeypatch.setattr(packed_module, "load_image_file", failing_load)
    section = {"name": "folder", "path": str(image_folder), "resolution": 16}
    with pytest.raises(KeyboardInterrupt):
        pack(section, tmp_path / "p", progress=False, log=lambda s: None)
    saved = json.loads((tmp_path / "p" / "progress.json").read_text())["done"]
    assert saved == 14 and not (tmp_path / "p" / "index.json").exists()
    with pytest.raises(DataError, match="an unfinished pack"):
        load_dataset({"name": "packed", "path": str(tmp_path / "p")})
    monkeypatch.setattr(packed_module, "load_image_file", real_load)
    lines = []
    pack(section, tmp_path / "p", progress=False, log=lines.append)
    assert lines[0].startswith("resuming the pack") and "at image 14 of 24" in lines[0]
    packed = load_dataset({"name": "packed", "path": str(tmp_path / "p")})
    assert torch.equal(packed.x, load_dataset(section).x)


def test_corrupt_images_are_skipped_and_listed_or_stop_a_strict_pack(tmp_path, image_folder):
    for name in ("dogs/05.png", "cats/00.png"):
        (image_folder / name).write_bytes(b"\x89PNG\r\n\x1a\n broken")
    section = {"name": "folder", "path": str(image_folder), "resolution": 16}
    with pytest.raises(
        DataError,
        match=r"2 of 24 files cannot be read as images(.|\n)*cats/00.png: cannot read this "
        r"image(.|\n)*dogs/05.png",
    ):
        pack({**section, "strict": True}, tmp_path / "strict", progress=False)
    with pytest.warns(UserWarning, match="skipped 2 of 24 files"):
        index = pack(section, tmp_path / "p", progress=False, log=lambda s: None)
    assert index["count"] == 22 and len((tmp_path / "p" / "skipped_files.txt").read_text().splitlines()) == 2
    with pytest.warns(UserWarning, match="skipped 2 of 24 files"):
        in_memory = load_dataset(section)
    packed = load_dataset({"name": "packed", "path": str(tmp_path / "p")})
    assert torch.equal(packed.x, in_memory.x) and torch.equal(packed.labels, in_memory.labels)


def test_a_run_trains_on_packed_data(tmp_path, tiny_npz):
    pack({"name": "npz", "path": str(tiny_npz)}, tmp_path / "p", progress=False, log=lambda s: None)
    overrides = [o for o in tiny_overrides(tiny_npz, steps=2) if not o.startswith("data.")]
    overrides += ["data.name=packed", f"data.path={tmp_path / 'p'}"]
    result = train(load_config(None, overrides), tmp_path / "run", progress=False, log=lambda s: None)
    assert result.step == 2 and (tmp_path / "run" / "generator.safetensors").is_file()


def test_the_prefetcher_gives_the_batches_of_the_direct_reads(tmp_path, image_folder):
    from gankit.data.dataset import Prefetcher

    pack(
        {"name": "folder", "path": str(image_folder), "resolution": 16},
        tmp_path / "p",
        progress=False,
        log=lambda s: None,
    )
    packed = load_dataset({"name": "packed", "path": str(tmp_path / "p")})
    stream = BatchStream(packed, 8, seed=5)
    prefetcher = Prefetcher(packed, stream, slice(2, 6), channels_last=True)
    assert prefetcher.pool is not None  # memory-mapped: batch k + 1 is read while batch k trains
    for k in [0, 1, 2, 3, 4, 7, 8]:  # in order, across epochs, and with a jump (a resume)
        expected = packed.model_input(BatchStream(packed, 8, seed=5).indices(k)[2:6], channels_last=True)
        got = prefetcher.get(k)
        assert torch.equal(got, expected) and got.is_contiguous(memory_format=torch.channels_last)
    prefetcher.close()
    assert (
        Prefetcher(
            load_dataset({"name": "folder", "path": str(image_folder), "resolution": 16}), stream, slice(0, 8), False
        ).pool
        is None
    )


def test_a_run_on_packed_data_resumes_exactly(tmp_path, tiny_npz):
    from helpers import assert_resume_is_exact

    pack({"name": "npz", "path": str(tiny_npz)}, tmp_path / "p", progress=False, log=lambda s: None)
    overrides = [o for o in tiny_overrides(tiny_npz, steps=4) if not o.startswith("data.")]
    assert_resume_is_exact(tmp_path, overrides + ["data.name=packed", f"data.path={tmp_path / 'p'}"])


@pytest.mark.parametrize(
    "damage, message",
    [
        ("fortran", "fortran_order: True"),
        ("empty", "not a readable .npy file"),
        ("truncated", "truncated"),
        ("extra", "extra bytes at the end"),
        ("dtype", "holds float32"),
        ("index", "count 'many' and shape"),
    ],
)
def test_a_damaged_pack_is_refused_when_opened(tmp_path, tiny_npz, damage, message):
    """The audit: a Fortran-ordered images.npy trained on scrambled images with exit 0; an empty one crashed."""
    root = tmp_path / "p"
    pack({"name": "npz", "path": str(tiny_npz)}, root, progress=False, log=lambda s: None)
    images = np.load(root / "images.npy")
    path = root / "images.npy"
    if damage == "fortran":
        np.save(path, np.asfortranarray(images))
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:-10])
    elif damage == "extra":
        path.write_bytes(path.read_bytes() + b"\0" * 7)
    elif damage == "dtype":
        np.save(path, images.astype(np.float32))
    else:
        index = json.loads((root / "index.json").read_text())
        (root / "index.json").write_text(json.dumps({**index, "count": "many"}))
    with pytest.raises(DataError, match=message):
        load_dataset({"name": "packed", "path": str(root)})
