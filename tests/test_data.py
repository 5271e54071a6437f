import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.data import BatchStream, DataError, Dataset, load_dataset
from gankit.data.sources import DEBIAN_FASHION_MNIST, read_idx
from gankit.registry import ConfigError


def write_idx(path: Path, array: np.ndarray, compress=True):
    header = struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if compress else data)


def make_idx_folder(folder: Path, n=10, size=28):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (n, size, size), dtype=np.uint8)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    for prefix in ("train", "t10k"):
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return images, labels


def test_idx_round_trip_and_resize(tmp_path):
    images, labels = make_idx_folder(tmp_path / "idx")
    data = load_dataset({"name": "idx", "path": str(tmp_path / "idx")})
    assert data.x.shape == (10, 1, 28, 28) and data.x.dtype == torch.uint8
    assert np.array_equal(data.x[:, 0].numpy(), images) and np.array_equal(data.labels.numpy(), labels)
    resized = load_dataset({"name": "idx", "path": str(tmp_path / "idx"), "resolution": 32, "channels": 3})
    assert resized.x.shape == (10, 3, 32, 32)


def test_truncated_and_corrupt_idx_files_name_the_file(tmp_path):
    good = np.zeros((4, 5, 5), np.uint8)
    path = tmp_path / "x-idx3-ubyte"
    write_idx(path, good, compress=False)
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(DataError, match=r"x-idx3-ubyte: IDX header says 4x5x5 = 100 bytes of data, the file holds 93"):
        read_idx(path)
    bad_gz = tmp_path / "y-idx3-ubyte.gz"
    write_idx(bad_gz, good)
    bad_gz.write_bytes(bad_gz.read_bytes()[:20])
    with pytest.raises(DataError, match="y-idx3-ubyte.gz: cannot read"):
        read_idx(bad_gz)
    junk = tmp_path / "z-idx3-ubyte"
    junk.write_bytes(b"PK\x03\x04 not idx at all")
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(junk)


def test_idx_missing_files_and_mismatched_labels(tmp_path):
    with pytest.raises(DataError, match="no train-images-idx3-ubyte"):
        load_dataset({"name": "idx", "path": str(tmp_path)})
    make_idx_folder(tmp_path / "f", n=10)
    write_idx(tmp_path / "f" / "train-labels-idx1-ubyte.gz", np.zeros(7, np.uint8))
    with pytest.raises(DataError, match="labels do not match 10 images"):
        load_dataset({"name": "idx", "path": str(tmp_path / "f")})
    with pytest.raises(ConfigError, match="needs data.path"):
        load_dataset({"name": "idx"})


@pytest.mark.skipif(not DEBIAN_FASHION_MNIST.is_dir(), reason="apt-get install dataset-fashion-mnist")
def test_fashion_mnist_from_the_debian_package():
    train = load_dataset({"name": "fashion-mnist"})
    test = load_dataset({"name": "fashion-mnist", "split": "test"})
    assert train.x.shape == (60000, 1, 28, 28) and test.x.shape == (10000, 1, 28, 28)
    assert train.class_names[5] == "Sandal"
    assert torch.bincount(train.labels).tolist() == [6000] * 10


def test_fashion_mnist_offline_error_says_how_to_get_it(tmp_path, monkeypatch):
    import gankit.data.sources as sources

    monkeypatch.setattr(sources, "DEBIAN_FASHION_MNIST", tmp_path / "absent")
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        load_dataset({"name": "fashion-mnist", "download": False})

    def offline(url, timeout=60.0):
        raise DataError(f"cannot download {url}: no network")

    monkeypatch.setattr(sources, "download", offline)
    with pytest.raises(DataError, match="not available offline"):
        load_dataset({"name": "fashion-mnist"})


def test_digits_default_is_32px_with_labels():
    data = load_dataset({"name": "digits"})
    assert data.x.shape == (1437, 1, 32, 32) and data.labels.max() == 9
    assert load_dataset({"name": "digits", "split": "test"}).x.shape[0] == 360
    assert data.x.max() == 255


def cifar_batch(path: Path, n: int):
    rng = np.random.default_rng(2)
    batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"labels": list(rng.integers(0, 10, n))}
    path.write_bytes(pickle.dumps(batch))
    return batch


def test_cifar10_batches(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    batches = [cifar_batch(folder / f"data_batch_{i}", 3) for i in range(1, 6)]
    cifar_batch(folder / "test_batch", 2)
    data = load_dataset({"name": "cifar10", "path": str(tmp_path)})
    assert data.x.shape == (15, 3, 32, 32)
    assert np.array_equal(data.x[0].numpy().reshape(-1), batches[0][b"data"][0])
    assert load_dataset({"name": "cifar10", "path": str(folder), "split": "test"}).x.shape[0] == 2


def test_cifar10_refuses_pickled_code_and_reports_missing_files(tmp_path):
    (tmp_path / "test_batch").write_bytes(pickle.dumps({b"data": Path("x"), b"labels": []}))
    with pytest.raises(DataError, match="test_batch: not a readable CIFAR-10 batch"):
        load_dataset({"name": "cifar10", "path": str(tmp_path), "split": "test"})
    with pytest.raises(DataError, match="missing CIFAR-10 file"):
        load_dataset({"name": "cifar10", "path": str(tmp_path)})


def test_image_folder_resizes_crops_and_labels_subfolders(tmp_path):
    for cls, colour in (("cats", (255, 0, 0)), ("dogs", (0, 0, 255))):
        (tmp_path / cls).mkdir()
        for i in range(2):
            Image.new("RGB", (40 + 20 * i, 30), colour).save(tmp_path / cls / f"{i}.png")
    data = load_dataset({"name": "folder", "path": str(tmp_path), "resolution": 16})
    assert data.x.shape == (4, 3, 16, 16)
    assert data.class_names == ["cats", "dogs"] and data.labels.tolist() == [0, 0, 1, 1]
    assert data.x[0, 0].float().mean() > 250 and data.x[3, 2].float().mean() > 250
    (tmp_path / "dogs" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(DataError, match="broken.jpg: cannot read this image"):  # strict: an error
        load_dataset({"name": "folder", "path": str(tmp_path), "resolution": 16, "strict": True})
    with pytest.warns(
        UserWarning, match="broken.jpg: cannot read this image"
    ):  # by default: skipped, labels kept in step
        skipped = load_dataset({"name": "folder", "path": str(tmp_path), "resolution": 16})
    assert skipped.labels.tolist() == [0, 0, 1, 1] and torch.equal(skipped.x, data.x)


def test_empty_folder_and_bad_npz(tmp_path):
    with pytest.raises(DataError, match="no images"):
        load_dataset({"name": "folder", "path": str(tmp_path)})
    np.savez(tmp_path / "f.npz", images=np.zeros((3, 8, 8), np.float32))
    with pytest.raises(DataError, match="'images' are float32; gankit reads pixels as integers 0..255"):
        load_dataset({"name": "npz", "path": str(tmp_path / "f.npz")})
    np.savez(tmp_path / "g.npz", pictures=np.zeros((3, 8, 8), np.uint8))
    with pytest.raises(DataError, match="no 'images' array \\(found: pictures\\)"):
        load_dataset({"name": "npz", "path": str(tmp_path / "g.npz")})
    (tmp_path / "h.npz").write_bytes(b"garbage")
    with pytest.raises(DataError, match="h.npz: not an .npz archive"):
        load_dataset({"name": "npz", "path": str(tmp_path / "h.npz")})


def test_npz_layouts(tmp_path):
    nhwc = np.zeros((5, 8, 8, 3), np.uint8)
    nhwc[..., 1] = 200
    np.savez(tmp_path / "a.npz", images=nhwc)
    data = load_dataset({"name": "npz", "path": str(tmp_path / "a.npz")})
    assert data.x.shape == (5, 3, 8, 8) and data.x[:, 1].eq(200).all() and data.labels is None


def test_mixtures_match_the_pacgan_protocol():
    ring = load_dataset({"name": "ring", "num_points": 4000})
    radii = ring.x.norm(dim=1)
    assert ring.x.dtype == torch.float32 and len(ring.extras["modes"]) == 8
    assert radii.mean().item() == pytest.approx(1.0, abs=0.01)
    grid = load_dataset({"name": "grid", "num_points": 5000})
    modes = torch.tensor(grid.extras["modes"])
    assert sorted(set(modes[:, 0].tolist())) == [-4.0, -2.0, 0.0, 2.0, 4.0]
    nearest = torch.cdist(grid.x, modes).min(dim=1).values
    assert nearest.max().item() < 0.05 * 5


def test_model_input_scales_to_minus_one_one():
    data = Dataset(torch.tensor([0, 255, 128], dtype=torch.uint8).view(3, 1, 1, 1))
    x = data.model_input(torch.arange(3))
    assert x.flatten().tolist() == pytest.approx([-1.0, 1.0, 128 / 127.5 - 1], abs=1e-6)


def test_batch_stream_is_a_function_of_seed_and_index():
    data = Dataset(torch.zeros(10, 2))
    a, b = BatchStream(data, 3, seed=5), BatchStream(data, 3, seed=5)
    first_epoch = torch.cat([a.indices(k) for k in range(3)])
    assert len(set(first_epoch.tolist())) == 9  # no repeats inside an epoch
    assert torch.equal(b.indices(4), a.indices(4)) and torch.equal(b.indices(1), a.indices(1))
    with pytest.raises(DataError, match="larger than the dataset"):
        BatchStream(data, 11, seed=0)
