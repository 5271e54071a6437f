"""Hostile and unusual data files (issue 17, classes 6 and 9): what has one correct conversion is converted
(checked pixel by pixel), the rest is refused with a DataError naming the file and the reason."""

import io
import pickle
import struct
import zipfile

import numpy as np
import pytest
from PIL import Image

from gankit.data import load_dataset
from gankit.errors import ConfigError, DataError


def load_folder(path, resolution=8, channels=3):
    return load_dataset({"name": "folder", "path": str(path), "resolution": resolution, "channels": channels})


# ------------------------------------------------------------------ images: 16-bit, alpha, EXIF, bombs


def test_16_bit_grayscale_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 1000], [32768, 65535]], dtype=np.uint16).repeat(4, 0).repeat(4, 1)
    Image.fromarray(values).save(tmp_path / "deep.png")
    x = load_folder(tmp_path, resolution=8, channels=1).x[0, 0].numpy()
    assert x[0, 0] == 0 and x[0, 7] == 4 and x[7, 0] == 128 and x[7, 7] == 255  # v / 257, rounded


def test_transparency_is_composited_on_white(tmp_path):
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[:, :4] = (255, 0, 0, 0)  # fully transparent red: white
    rgba[:, 4:] = (0, 0, 255, 128)  # half-transparent blue over white
    Image.fromarray(rgba, "RGBA").save(tmp_path / "alpha.png")
    x = load_folder(tmp_path).x[0].numpy()
    assert tuple(x[:, 0, 0]) == (255, 255, 255)
    assert tuple(x[:, 0, 7]) == (127, 127, 255)


def test_a_palette_image_with_a_transparent_colour_is_composited(tmp_path):
    image = Image.new("P", (8, 8), 0)
    image.putpalette([0, 255, 0] + [0, 0, 0] * 255)  # index 0 is green ...
    image.save(tmp_path / "palette.png", transparency=0)  # ... and transparent
    assert tuple(load_folder(tmp_path).x[0, :, 3, 3].numpy()) == (255, 255, 255)


def test_exif_orientation_is_applied(tmp_path):
    pixels = np.zeros((8, 16, 3), np.uint8)
    pixels[:, :8] = (255, 0, 0)  # left half red, right half blue, as stored
    pixels[:, 8:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    Image.fromarray(pixels).save(tmp_path / "rotated.png", exif=exif)
    x = load_folder(tmp_path, resolution=8).x[0].numpy()
    assert tuple(x[:, 0, 4]) == (255, 0, 0) and tuple(x[:, 7, 4]) == (0, 0, 255)  # red on top once upright


def test_float_and_32_bit_images_are_refused_with_the_file_named(tmp_path):
    Image.fromarray(np.ones((8, 8), np.float32)).save(tmp_path / "float.tif")
    with pytest.raises(DataError, match=r"float.tif: a floating-point image has no one 8-bit conversion"):
        load_folder(tmp_path)


def test_a_decompression_bomb_is_a_data_error(tmp_path, monkeypatch):
    Image.new("L", (64, 64)).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 4096 pixels > 2 x the limit: Pillow's bomb error
    with pytest.raises(DataError, match=r"big.png: refused: Image size \(4096 pixels\) exceeds limit"):
        load_folder(tmp_path)


def test_a_truncated_image_is_a_data_error(tmp_path):
    Image.new("RGB", (32, 32), (10, 20, 30)).save(tmp_path / "cut.png")
    (tmp_path / "cut.png").write_bytes((tmp_path / "cut.png").read_bytes()[:60])
    with pytest.raises(DataError, match=r"cut.png: cannot read this image"):
        load_folder(tmp_path)


# ------------------------------------------------------------------ CIFAR pickles


def write_cifar(folder, data, labels, name="test_batch"):
    folder.mkdir(exist_ok=True)
    with open(folder / name, "wb") as f:
        pickle.dump({b"data": data, b"labels": labels}, f)


def load_cifar(folder):
    return load_dataset({"name": "cifar10", "path": str(folder), "split": "test"})


def test_cifar_int64_pixels_in_range_convert_exactly(tmp_path):
    data = np.random.default_rng(0).integers(0, 256, (4, 3072))
    write_cifar(tmp_path, data.astype(np.int64), [0, 1, 2, 9])
    dataset = load_cifar(tmp_path)
    assert np.array_equal(dataset.x.numpy().reshape(4, -1), data) and dataset.labels.tolist() == [0, 1, 2, 9]


@pytest.mark.parametrize(
    "data, labels, message",
    [
        (
            np.zeros((2, 3072), np.float32),
            [0, 1],
            r"test_batch: the images \(b'data'\) are float32; .*\(floats are ambiguous",
        ),
        (
            np.full((2, 3072), 300, np.int64),
            [0, 1],
            r"test_batch: the images \(b'data'\) \(int64\) hold values 300..300, outside 0..255",
        ),
        (np.zeros((2, 3072), np.uint8), [0.0, 1.5], r"test_batch: labels \(float64\) are not whole numbers"),
        (np.zeros((2, 3072), np.uint8), [0, -1], r"test_batch: labels hold negative values"),
        (np.zeros((2, 3072), np.uint8), [0, 10], r"test_batch: label 10 is out of range for CIFAR-10's 10 classes"),
        (np.zeros((2, 100), np.uint8), [0, 1], r"expected \(N, 3072\) image data"),
    ],
)
def test_cifar_batches_without_one_correct_conversion_are_refused(tmp_path, data, labels, message):
    write_cifar(tmp_path, data, labels)
    with pytest.raises(DataError, match=message):
        load_cifar(tmp_path)


def test_cifar_whole_float_labels_convert(tmp_path):
    write_cifar(tmp_path, np.zeros((2, 3072), np.uint8), [3.0, 4.0])
    assert load_cifar(tmp_path).labels.tolist() == [3, 4]


@pytest.mark.parametrize(
    "payload, message",
    [
        (b"\x80\x02X" + struct.pack("<I", 2**32 - 1) + b"abc", "pickle data was truncated"),  # a 4 GB string
        (b"\x80\x04\x8d" + struct.pack("<Q", 2**50) + b"abc", "MemoryError"),  # a petabyte string
        (b"cos\nsystem\n(S'echo pwned'\ntR.", "refusing to load os.system"),  # code
        (pickle.dumps([1, 2, 3]), "not a CIFAR-10 batch"),
    ],
)
def test_hostile_cifar_pickles_run_nothing_and_allocate_nothing(tmp_path, payload, message):
    tmp_path.joinpath("test_batch").write_bytes(payload)
    with pytest.raises(DataError, match=message):
        load_cifar(tmp_path)


# ------------------------------------------------------------------ .npz files


def npz_with_header(path, shape, descr="|u1", body=b"\0" * 64):
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": descr, "fortran_order": False, "shape": shape})
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("images.npy", header.getvalue() + body)


def load_npz(path):
    return load_dataset({"name": "npz", "path": str(path)})


def test_npz_header_declaring_terabytes_is_refused_before_reading(tmp_path):
    npz_with_header(tmp_path / "huge.npz", (10**7, 10**6))
    with pytest.raises(
        DataError,
        match=r"huge.npz: 'images' declares shape \(10000000, 1000000\) of uint8 "
        r"\(10,000,000,000,000 bytes\) but holds",
    ):
        load_npz(tmp_path / "huge.npz")


def test_npy_renamed_npz_and_object_arrays_are_refused(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((2, 8, 8), np.uint8))
    (tmp_path / "a.npy").rename(tmp_path / "a.npz")
    with pytest.raises(DataError, match=r"a.npz: not an .npz archive \(it is a single .npy array"):
        load_npz(tmp_path / "a.npz")
    np.savez(tmp_path / "objects.npz", images=np.array([{"x": 1}], dtype=object))
    with pytest.raises(DataError, match=r"objects.npz: 'images' holds Python objects"):
        load_npz(tmp_path / "objects.npz")


@pytest.mark.parametrize(
    "labels, result",
    [
        (np.array([0.0, 2.0, 1.0, 0.0]), [0, 2, 1, 0]),
        (np.array([0.0, 2.5, 1.0, 0.0]), "labels \\(float64\\) are not whole numbers"),
        (np.array([0, -2, 1, 0]), "labels hold negative values"),
        (np.array([True, False, True, False]), "labels are bool"),
        (np.array([0, 1]), "labels must be one per sample \\(4,\\)"),
    ],
)
def test_npz_labels_convert_only_when_exact(tmp_path, labels, result):
    np.savez(tmp_path / "d.npz", images=np.zeros((4, 8, 8), np.uint16), labels=labels)
    if isinstance(result, list):
        dataset = load_npz(tmp_path / "d.npz")
        assert dataset.labels.tolist() == result and dataset.x.dtype.is_floating_point is False
    else:
        with pytest.raises(DataError, match=f"d.npz: {result}"):
            load_npz(tmp_path / "d.npz")


def test_labels_beyond_the_models_classes_are_a_config_error(tmp_path, tiny_npz):
    from helpers import tiny_overrides

    from gankit import load_config, train

    config = load_config(
        None, tiny_overrides(tiny_npz, steps=1) + ["model.num_classes=2", "objective.name=conditional"]
    )
    with pytest.raises(ConfigError, match="model.num_classes is 2 but the data has 4 classes"):
        train(config, tmp_path / "run", progress=False, log=lambda s: None)


def test_images_that_would_not_fit_in_memory_are_refused_before_resizing(tmp_path):
    with pytest.raises(DataError, match=r"digits: 1,437 images of 1x4096x4096 need [\d.,]+ GiB"):
        load_dataset({"name": "digits", "resolution": 4096})


# ------------------------------------------------------------------ captions


def captioned_folder(tmp_path, caption_bytes):
    Image.new("RGB", (8, 8), (200, 0, 0)).save(tmp_path / "a.png")
    (tmp_path / "a.txt").write_bytes(caption_bytes)
    return {"name": "captions", "path": str(tmp_path), "resolution": 8}


def test_captions_in_utf8_load_and_other_encodings_are_refused(tmp_path):
    section = captioned_folder(tmp_path, "a café bag\n".encode())
    assert load_dataset(section).extras["captions"] == [["a café bag"]]
    (tmp_path / "a.txt").write_bytes("a café bag\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"a.txt: not UTF-8 text \(byte 0xe9 at offset 5\); save it as UTF-8"):
        load_dataset(section)
    (tmp_path / "a.txt").write_bytes(b"a bag\x00\x01\x02\xff")
    with pytest.raises(DataError, match=r"a.txt: not UTF-8 text"):
        load_dataset(section)
    (tmp_path / "a.txt").write_bytes(b"a bag\x00\x01\x02")
    with pytest.raises(DataError, match=r"a.txt: holds binary data \(character 0x00 at offset 5\)"):
        load_dataset(section)


def test_a_caption_csv_with_a_giant_field_is_a_data_error(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    (tmp_path / "c.csv").write_text('image,caption\na.png,"' + "word " * 40_000 + '"\n')
    with pytest.raises(
        DataError, match=r"c.csv: not a readable caption CSV at line \d+ \(field larger than field limit"
    ):
        load_dataset({"name": "captions", "path": str(tmp_path / "c.csv"), "resolution": 8})


def test_an_incomplete_make_captions_folder_names_what_is_missing(tmp_path):
    from gankit.data.captions import write_captioned_dataset

    write_captioned_dataset(tmp_path, train=4, test=4, resolution=16)
    (tmp_path / "train_captions.json").unlink()
    with pytest.raises(DataError, match=r"missing train_captions.json; the folder is incomplete"):
        load_dataset({"name": "captions", "path": str(tmp_path)})
    (tmp_path / "train_captions.json").write_text('[["a bag"], ')
    with pytest.raises(DataError, match=r"train_captions.json: not valid JSON"):
        load_dataset({"name": "captions", "path": str(tmp_path)})
    (tmp_path / "train_captions.json").write_text('[["a bag"]]')
    with pytest.raises(DataError, match=r"train_captions.json: expected a list of 4 non-empty lists of captions"):
        load_dataset({"name": "captions", "path": str(tmp_path)})
