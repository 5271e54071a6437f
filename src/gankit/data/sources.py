"""Dataset sources. Each loads into the uint8 / float32 contract of gankit.data."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import math
import pickle
import struct
import urllib.error
import urllib.request
import warnings
import zipfile
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from gankit.data.dataset import DATASETS, DataError, Dataset
from gankit.files import atomic_write_bytes, cache_dir
from gankit.registry import ConfigError, memory_bytes


@dataclasses.dataclass
class ImageOptions:
    """Options every image source shares."""

    split: Literal["train", "test"] = "train"
    resolution: int | None = None  # resize to this square size; None keeps the native size
    channels: int | None = None  # 1 (grayscale) or 3 (RGB); None keeps the native channels
    limit: int | None = None  # keep only the first `limit` samples

    # Whether the source has a test split of its own (data.split=test); the sources that have one say so.
    has_test_split = False

    def __post_init__(self):
        if self.channels not in (None, 1, 3):
            raise ConfigError(f"data.channels must be 1 or 3, got {self.channels}")
        if self.resolution is not None and not 4 <= self.resolution <= MAX_RESOLUTION:
            raise ConfigError(f"data.resolution must be between 4 and {MAX_RESOLUTION}, got {self.resolution}")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"data.limit must be positive, got {self.limit}")


MAX_RESOLUTION = 4096  # no GAN here draws larger images; a typo (100000) must not ask for terabytes


def check_fits_in_memory(count: int, channels: int, resolution: int, where: str) -> None:
    """A DataError before loading when ``count`` uint8 images of this size would take over half the memory."""
    size = count * channels * resolution * resolution
    limit = memory_bytes() // 2
    if limit and size > limit:
        raise DataError(
            f"{where}: {count:,} images of {channels}x{resolution}x{resolution} need "
            f"{size / 2**30:,.1f} GiB, over half this machine's {memory_bytes() / 2**30:,.1f} GiB of memory; "
            "lower data.resolution or data.limit"
        )


def to_uint8_pixels(array: np.ndarray, file: Path | str, what: str = "images") -> np.ndarray:
    """Pixel values as uint8: integer arrays whose values all lie in 0..255 convert exactly; anything else
    (floats, whose scale is ambiguous: 0..1 or 0..255; integers out of range) is refused, naming the file."""
    if array.dtype == np.uint8:
        return array
    if array.dtype.kind not in "iu" or array.dtype == np.bool_:
        raise DataError(
            f"{file}: {what} are {array.dtype}; gankit reads pixels as integers 0..255 (floats are "
            "ambiguous: 0..1 or 0..255?): convert them to uint8 first"
        )
    low, high = (int(array.min()), int(array.max())) if array.size else (0, 0)
    if low < 0 or high > 255:
        raise DataError(
            f"{file}: {what} ({array.dtype}) hold values {low}..{high}, outside 0..255; scale them to uint8 first"
        )
    return array.astype(np.uint8)


def to_labels(array, file: Path | str, count: int | None = None) -> np.ndarray:
    """Class labels as int64 (N,): integers >= 0, or floats that are whole numbers >= 0 (converted exactly);
    fractional, negative, non-finite or boolean labels are refused, naming the file."""
    labels = np.asarray(array)
    if labels.ndim != 1 or (count is not None and len(labels) != count):
        raise DataError(f"{file}: labels must be one per sample ({count},), got shape {labels.shape}")
    if labels.dtype.kind == "f":
        if not np.isfinite(labels).all() or (labels != np.round(labels)).any():
            raise DataError(f"{file}: labels ({labels.dtype}) are not whole numbers; class labels are 0, 1, 2, ...")
    elif labels.dtype.kind not in "iu" or labels.dtype == np.bool_:
        raise DataError(f"{file}: labels are {labels.dtype}; class labels are integers 0, 1, 2, ...")
    if labels.size and labels.min() < 0:
        raise DataError(f"{file}: labels hold negative values ({labels.min()}); class labels are 0, 1, 2, ...")
    return labels.astype(np.int64)


MAX_CLASS_NAME = 200  # characters


def check_class_names(value, file: Path | str) -> list[str] | None:
    """Class names read from a stranger's file: absent (None), or a list of strings of at most 200 characters
    each; anything else is a DataError naming the file."""
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) and len(v) <= MAX_CLASS_NAME for v in value):
        shown = json_preview(value)
        raise DataError(
            f"{file}: class names must be a list of strings (at most {MAX_CLASS_NAME} characters each), got {shown}"
        )
    return list(value)


def json_preview(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def finish_images(
    images: np.ndarray | torch.Tensor,
    labels: np.ndarray | None,
    options: ImageOptions,
    name: str,
    class_names: list[str] | None = None,
) -> Dataset:
    """Apply limit, channel conversion and resizing; return the Dataset."""
    x = torch.as_tensor(images)
    if options.limit is not None:
        x = x[: options.limit]
        labels = None if labels is None else labels[: options.limit]
    if options.resolution is not None:
        check_fits_in_memory(len(x), options.channels or x.shape[1], options.resolution, name)
    if options.channels is not None and options.channels != x.shape[1]:
        if options.channels == 3:
            x = x.expand(-1, 3, -1, -1)
        else:  # ITU-R BT.601 luma
            weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
            x = (x.float() * weights).sum(1, keepdim=True).round().clamp(0, 255).to(torch.uint8)
    if options.resolution is not None and options.resolution != x.shape[-1]:
        x = resize_square(x, options.resolution)
    y = None if labels is None else torch.as_tensor(to_labels(labels, name, len(x)))
    return Dataset(x.contiguous(), y, name, class_names)


def resize_square(x: torch.Tensor, size: int, chunk: int = 4096) -> torch.Tensor:
    """Resize uint8 (N, C, H, W) images to size x size (bilinear, antialiased when shrinking)."""
    out = torch.empty(x.shape[0], x.shape[1], size, size, dtype=torch.uint8)
    for i in range(0, x.shape[0], chunk):
        part = x[i : i + chunk].float()
        part = F.interpolate(part, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        out[i : i + chunk] = part.round().clamp(0, 255).to(torch.uint8)
    return out


# --------------------------------------------------------------------------- digits


@dataclasses.dataclass
class DigitsOptions(ImageOptions):
    has_test_split = True
    resolution: int | None = 32


@DATASETS.register("digits", DigitsOptions, "scikit-learn's 8x8 digits (1,797 images), upscaled; no download")
def load_digits(options: DigitsOptions) -> Dataset:
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]  # 17 gray levels -> 0..255
    labels = bunch.target
    # The set has no official split: the first 80% (in the file's order) train, the rest test.
    cut = int(0.8 * len(images))
    part = slice(0, cut) if options.split == "train" else slice(cut, None)
    return finish_images(images[part], labels[part], options, "digits", [str(i) for i in range(10)])


# --------------------------------------------------------------------------- IDX (MNIST format)


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped) into a uint8 array, checking its header and length."""
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as error:
        raise DataError(f"{path}: cannot read ({error}); the file is corrupt or truncated, fetch it again") from error
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DataError(f"{path}: not an IDX file (bad magic number)")
    if data[2] != 0x08:
        raise DataError(f"{path}: IDX element type 0x{data[2]:02x} is not unsigned bytes")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: truncated IDX header")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    expected = math.prod(dims)
    if len(data) - header != expected:
        raise DataError(
            f"{path}: IDX header says {'x'.join(map(str, dims))} = {expected} bytes of data, "
            f"the file holds {len(data) - header}; the file is truncated or corrupt"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def find_idx_pair(folder: Path, split: str) -> tuple[Path, Path]:
    prefix = "train" if split == "train" else "t10k"
    found = []
    for kind, dims in (("images", 3), ("labels", 1)):
        stem = f"{prefix}-{kind}-idx{dims}-ubyte"
        candidates = [folder / stem, folder / f"{stem}.gz", folder / stem.replace("-idx", ".idx")]
        match = next((c for c in candidates if c.is_file()), None)
        if match is None:
            raise DataError(f"{folder}: no {stem}[.gz] file")
        found.append(match)
    return found[0], found[1]


def load_idx_folder(folder: Path, options: ImageOptions, name: str, class_names: list[str] | None) -> Dataset:
    images_path, labels_path = find_idx_pair(folder, options.split)
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3:
        raise DataError(f"{images_path}: expected (N, H, W) images, got shape {images.shape}")
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataError(f"{labels_path}: {labels.shape} labels do not match {len(images)} images in {images_path}")
    return finish_images(images[:, None].copy(), labels, options, name, class_names)


@dataclasses.dataclass
class IDXOptions(ImageOptions):
    has_test_split = True
    path: str = ""  # folder holding {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]


@DATASETS.register("idx", IDXOptions, "a folder of IDX files in the MNIST layout (MNIST, KMNIST, ...)")
def load_idx(options: IDXOptions) -> Dataset:
    if not options.path:
        raise ConfigError("dataset 'idx' needs data.path=FOLDER holding the MNIST-layout IDX files")
    folder = Path(options.path).expanduser()
    if not folder.is_dir():
        raise DataError(f"data.path {folder} is not a folder")
    return load_idx_folder(folder, options, "idx", None)


FASHION_MNIST_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
FASHION_MNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
# sha256 of the decompressed IDX payloads, so a re-compressed copy (Debian's) verifies too.
FASHION_MNIST_FILES = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def download(url: str, timeout: float = 60.0) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.read()
    except (urllib.error.URLError, OSError) as error:
        raise DataError(f"cannot download {url}: {error}") from error


def fetch_fashion_mnist(folder: Path) -> None:
    """Download the four Fashion-MNIST files into ``folder``, verifying their checksums."""
    for stem, sha in FASHION_MNIST_FILES.items():
        target = folder / f"{stem}.gz"
        if target.is_file():
            continue
        print(f"downloading {FASHION_MNIST_URL}{stem}.gz -> {target}")
        data = download(f"{FASHION_MNIST_URL}{stem}.gz")
        try:
            payload = gzip.decompress(data)
        except (OSError, EOFError) as error:
            raise DataError(f"the download of {stem}.gz is not a valid gzip file ({error})") from error
        if hashlib.sha256(payload).hexdigest() != sha:
            raise DataError(f"the download of {stem}.gz does not match its checksum; try again later")
        atomic_write_bytes(target, data)


@dataclasses.dataclass
class FashionMNISTOptions(ImageOptions):
    has_test_split = True
    path: str | None = None  # None: the Debian package's folder, then gankit's cache, then download
    download: bool = True


@DATASETS.register("fashion-mnist", FashionMNISTOptions, "Fashion-MNIST, 28x28 gray, 10 classes (Xiao et al. 2017)")
def load_fashion_mnist(options: FashionMNISTOptions) -> Dataset:
    if options.path:
        folder = Path(options.path).expanduser()
    elif DEBIAN_FASHION_MNIST.is_dir():
        folder = DEBIAN_FASHION_MNIST
    else:
        folder = cache_dir() / "fashion-mnist"
        if not all((folder / f"{s}.gz").is_file() for s in FASHION_MNIST_FILES):
            if not options.download:
                raise DataError(
                    f"Fashion-MNIST not found in {DEBIAN_FASHION_MNIST} or {folder}; {HOW_TO_GET_FASHION_MNIST}"
                )
            try:
                fetch_fashion_mnist(folder)
            except DataError as error:
                raise DataError(
                    f"{error}\nFashion-MNIST is not available offline. {HOW_TO_GET_FASHION_MNIST}"
                ) from error
    return load_idx_folder(folder, options, "fashion-mnist", FASHION_MNIST_CLASSES)


HOW_TO_GET_FASHION_MNIST = (
    "To get it: on Debian/Ubuntu `apt-get install dataset-fashion-mnist`; or copy the four "
    f"*-ubyte.gz files from {FASHION_MNIST_URL} into {cache_dir() / 'fashion-mnist'}; "
    "or point data.path at a folder holding them."
)


# --------------------------------------------------------------------------- CIFAR-10

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain containers and NumPy arrays only: a data file cannot run code."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 python batch: (N, 3, 32, 32) uint8 images and (N,) labels. The unpickler builds plain
    containers and arrays only; sizes it declares beyond the file (a 'huge string') are refused."""
    try:
        with open(path, "rb") as f:
            batch = _ArrayUnpickler(f, encoding="bytes").load()
        if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
            raise DataError(f"{path}: not a CIFAR-10 batch (a dict with b'data' and b'labels' entries)")
        data = np.asarray(batch[b"data"])
        labels = batch[b"labels"]
    except (
        OSError,
        EOFError,
        pickle.UnpicklingError,
        TypeError,
        ValueError,
        AttributeError,
        IndexError,
        MemoryError,
        OverflowError,
        RecursionError,
    ) as error:
        if isinstance(error, DataError):
            raise
        raise DataError(f"{path}: not a readable CIFAR-10 batch ({type(error).__name__}: {error})") from None
    data = to_uint8_pixels(data, path, "the images (b'data')")
    if data.ndim != 2 or data.shape[1] != 3072:
        raise DataError(f"{path}: expected (N, 3072) image data, got {data.shape}")
    labels = to_labels(labels, path, len(data))
    if labels.size and labels.max() >= len(CIFAR10_CLASSES):
        raise DataError(f"{path}: label {labels.max()} is out of range for CIFAR-10's {len(CIFAR10_CLASSES)} classes")
    return data.reshape(-1, 3, 32, 32), labels


@dataclasses.dataclass
class CIFAR10Options(ImageOptions):
    has_test_split = True
    path: str = ""  # folder holding data_batch_1..5 and test_batch (or a cifar-10-batches-py/ inside it)


@DATASETS.register("cifar10", CIFAR10Options, "CIFAR-10 python pickles from a folder, 32x32 RGB, 10 classes")
def load_cifar10(options: CIFAR10Options) -> Dataset:
    if not options.path:
        raise ConfigError(
            "dataset 'cifar10' needs data.path=FOLDER with the python batches; "
            f"get them from {CIFAR10_URL} and extract the archive"
        )
    folder = Path(options.path).expanduser()
    if (folder / "cifar-10-batches-py").is_dir():
        folder = folder / "cifar-10-batches-py"
    names = [f"data_batch_{i}" for i in range(1, 6)] if options.split == "train" else ["test_batch"]
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise DataError(f"{folder}: missing CIFAR-10 file(s) {', '.join(missing)}")
    parts = [read_cifar_batch(folder / n) for n in names]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    return finish_images(images, labels, options, "cifar10", CIFAR10_CLASSES)


# --------------------------------------------------------------------------- image folder

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff"}


@dataclasses.dataclass
class FolderOptions(ImageOptions):
    path: str = ""  # folder of images; class subfolders become labels
    resolution: int | None = 64
    channels: int | None = 3
    strict: bool = (
        False  # true: any unreadable file stops loading (all of them listed); false: they are skipped, listed
    )


def decode_image(image, path: Path, mode: str, background: tuple[int, int, int] = (255, 255, 255)):
    """A PIL image in ``mode`` ("L" or "RGB") by the one correct conversion for each kind of file:
    rotated upright by its EXIF orientation; 16-bit gray scaled to 8 bits (v / 257, not clipped at 255);
    transparency composited onto ``background`` (white), not dropped; palettes, CMYK and the rest through
    Pillow's standard conversions. Floating-point and 32-bit integer images have no one scale: refused."""
    from PIL import Image, ImageOps

    image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N") or (image.mode == "I" and image.format == "PNG"):
        wide = np.asarray(image, dtype=np.uint32) if image.mode != "I" else np.asarray(image, dtype=np.int64)
        if wide.min() < 0 or wide.max() > 65535:
            raise DataError(f"{path}: 16-bit values out of range ({wide.min()}..{wide.max()})")
        image = Image.fromarray(np.round(wide / 257.0).astype(np.uint8), "L")
    elif image.mode in ("I", "F"):
        raise DataError(
            f"{path}: a {'32-bit integer' if image.mode == 'I' else 'floating-point'} image has no one "
            "8-bit conversion; save it as an 8- or 16-bit PNG"
        )
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    if has_alpha:
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (*background, 255)), rgba)
    return image.convert(mode)


def read_image_file(path: Path, mode: str):
    """One image file as a PIL image in ``mode`` (see :func:`decode_image`). Any file Pillow cannot decode, or one
    over its decompression-bomb limit, is a DataError naming the file."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return decode_image(image, path, mode).copy()
    except DataError:
        raise
    except Image.DecompressionBombError as error:
        raise DataError(f"{path}: refused: {error}") from None
    except Exception as error:  # a third-party decoder on arbitrary bytes: any failure means "cannot decode"
        raise DataError(f"{path}: cannot read this image ({type(error).__name__}: {error})") from None


def load_image_file(path: Path, resolution: int, mode: str) -> np.ndarray:
    """Open one image (:func:`read_image_file`), resize its shorter side to ``resolution`` and center-crop a
    square: uint8 (C, H, W)."""
    from PIL import Image

    image = read_image_file(path, mode)
    scale = resolution / min(image.size)
    size = (max(resolution, round(image.width * scale)), max(resolution, round(image.height * scale)))
    image = image.resize(size, Image.Resampling.BICUBIC, reducing_gap=3.0)
    left, top = (size[0] - resolution) // 2, (size[1] - resolution) // 2
    array = np.asarray(image.crop((left, top, left + resolution, top + resolution)), dtype=np.uint8)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def image_files(root: Path) -> list[Path]:
    """The image files under ``root``, recursively, in a stable order."""
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def folder_images(options: FolderOptions) -> tuple[Path, list[Path], np.ndarray | None, list[str] | None]:
    """(root, image files, labels, class names) of an image folder's options: class subfolders become int64
    labels; images directly in the folder mean no labels. Checked: the folder, its sizes, at least one image."""
    if not options.path:
        raise ConfigError("dataset 'folder' needs data.path=FOLDER")
    root = Path(options.path).expanduser()
    if not root.is_dir():
        raise DataError(f"data.path {root} is not a folder")
    if options.resolution is None or options.channels is None:
        raise ConfigError("dataset 'folder' needs data.resolution and data.channels")
    files = image_files(root)
    if not files:
        raise DataError(f"{root}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) found")
    if options.limit is not None:
        files = files[: options.limit]
    classes = sorted({p.parent.relative_to(root).as_posix() for p in files})
    if classes == ["."]:
        return root, files, None, None
    index = {c: i for i, c in enumerate(classes)}
    return root, files, np.array([index[p.parent.relative_to(root).as_posix()] for p in files], dtype=np.int64), classes


@DATASETS.register("folder", FolderOptions, "a folder of images (resized, center-cropped); subfolders = classes")
def load_folder(options: FolderOptions) -> Dataset:
    root, files, labels, classes = folder_images(options)
    from tqdm.auto import tqdm

    check_fits_in_memory(len(files), options.channels, options.resolution, str(root))
    mode = "L" if options.channels == 1 else "RGB"
    images, kept, skipped = [], [], []
    for i, path in enumerate(tqdm(files, desc=f"loading {root}", unit="image", leave=False, disable=len(files) < 500)):
        try:
            images.append(load_image_file(path, options.resolution, mode))
            kept.append(i)
        except DataError as error:
            skipped.append((str(path), str(error).removeprefix(f"{path}: ")))
    report_unreadable(root, len(files), skipped, options.strict)
    if labels is not None and skipped:
        labels = labels[kept]
    dataset = finish_images(np.stack(images), labels, dataclasses.replace(options, limit=None), "folder", classes)
    if skipped:
        dataset.extras["skipped_files"] = skipped
    return dataset


def report_unreadable(root: Path, total: int, skipped: list[tuple[str, str]], strict: bool, shown: int = 30) -> None:
    """All the files of a folder that could not be read, with a count, before any training: an error in strict
    mode (data.strict=true) or when none could be read, else a warning (the rest of the folder is used)."""
    if not skipped:
        return
    lines = [f"  {path}: {why}" for path, why in skipped[:shown]]
    if len(skipped) > shown:
        lines.append(f"  ... and {len(skipped) - shown:,} more (a run lists them all in skipped_files.txt)")
    listing = "\n".join(lines)
    if strict or len(skipped) == total:
        fix = (
            "remove or repair them, or set data.strict=false to train on the rest"
            if len(skipped) < total
            else "none of its images could be read"
        )
        raise DataError(f"{root}: {len(skipped):,} of {total:,} files cannot be read as images; {fix}:\n{listing}")
    warnings.warn(
        f"{root}: skipped {len(skipped):,} of {total:,} files that cannot be read as images (the other "
        f"{total - len(skipped):,} are used; data.strict=true makes this an error):\n{listing}",
        stacklevel=3,
    )


# --------------------------------------------------------------------------- .npz arrays


@dataclasses.dataclass
class NPZOptions(ImageOptions):
    path: str = ""  # .npz with `images` uint8 (N, H, W), (N, H, W, C) or (N, C, H, W), optional `labels`


@DATASETS.register("npz", NPZOptions, "an .npz file with uint8 `images` and optional `labels`")
def load_npz(options: NPZOptions) -> Dataset:
    if not options.path:
        raise ConfigError("dataset 'npz' needs data.path=FILE.npz")
    path = Path(options.path).expanduser()
    arrays = read_npz(path, required=("images",), optional=("labels",))
    images = nchw_images(arrays["images"], path, "images")
    labels = arrays.get("labels")
    labels = None if labels is None else to_labels(labels, path, len(images))
    return finish_images(images, labels, options, path.stem)


def nchw_images(array: np.ndarray, path: Path, key: str) -> np.ndarray:
    """An .npz member of images as uint8 (N, C, H, W): (N, H, W), (N, H, W, C) and (N, C, H, W) are read, C in 1, 3."""
    images = to_uint8_pixels(array, path, f"'{key}'")
    if images.ndim == 3:
        images = images[:, None]
    elif images.ndim == 4 and images.shape[-1] in (1, 3) and images.shape[1] not in (1, 3):
        images = images.transpose(0, 3, 1, 2)
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise DataError(
            f"{path}: '{key}' must be (N, H, W), (N, H, W, C) or (N, C, H, W) with C in 1, 3; got {images.shape}"
        )
    return np.ascontiguousarray(images)


def read_npz(path: Path, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """Arrays of an .npz archive, read without pickles. Each member's header is checked before it is read:
    a header declaring more data than the member holds (terabytes) is refused; so are a plain .npy renamed
    .npz, a missing required array, and a damaged archive, each with the file named."""
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        with open(path, "rb") as f:
            is_npy = f.read(6) == b"\x93NUMPY"
        hint = (
            "it is a single .npy array, not an .npz archive: save with np.savez(FILE, images=...)"
            if is_npy
            else str(error)
        )
        raise DataError(f"{path}: not an .npz archive ({hint})") from None
    arrays = {}
    with archive:
        members = {name[: -len(".npy")]: name for name in archive.namelist() if name.endswith(".npy")}
        missing = [key for key in required if key not in members]
        if missing:
            raise DataError(
                f"{path}: no {', '.join(repr(k) for k in missing)} array "
                f"(found: {', '.join(sorted(members)) or 'none'})"
            )
        for key in (*required, *(k for k in optional if k in members)):
            info = archive.getinfo(members[key])
            try:
                with archive.open(info) as f:
                    version = np.lib.format.read_magic(f)
                    read_header = (
                        np.lib.format.read_array_header_1_0
                        if version == (1, 0)
                        else np.lib.format.read_array_header_2_0
                    )
                    shape, _, dtype = read_header(f)
                    if dtype.hasobject:
                        raise DataError(
                            f"{path}: '{key}' holds Python objects (a pickle); gankit reads plain arrays only"
                        )
                    declared = math.prod(shape) * dtype.itemsize
                    if declared > info.file_size:
                        raise DataError(
                            f"{path}: '{key}' declares shape {shape} of {dtype} ({declared:,} bytes) but "
                            f"holds {info.file_size:,} bytes; the file is damaged or crafted"
                        )
                with archive.open(info) as f:
                    arrays[key] = np.lib.format.read_array(f, allow_pickle=False)
            except DataError:
                raise
            except (ValueError, OSError, EOFError, zipfile.BadZipFile, MemoryError, OverflowError) as error:
                raise DataError(f"{path}: cannot read '{key}' ({type(error).__name__}: {error})") from None
    return arrays


# --------------------------------------------------------------------------- 2D mixtures


@dataclasses.dataclass
class RingOptions:
    modes: int = 8
    radius: float = 1.0
    std: float = 0.01
    num_points: int = 100_000
    seed: int = 0


@dataclasses.dataclass
class GridOptions:
    side: int = 5  # side x side modes
    spacing: float = 2.0
    std: float = 0.05
    num_points: int = 100_000
    seed: int = 0


def mixture(centers: np.ndarray, std: float, num_points: int, seed: int, name: str) -> Dataset:
    rng = np.random.default_rng(seed)
    which = rng.integers(len(centers), size=num_points)
    points = centers[which] + std * rng.standard_normal((num_points, 2))
    return Dataset(
        torch.from_numpy(points.astype(np.float32)),
        torch.from_numpy(which.astype(np.int64)),
        name,
        extras={"modes": centers.astype(np.float32).tolist(), "std": std},
    )


@DATASETS.register("ring", RingOptions, "2D ring of 8 Gaussians, radius 1, std 0.01 (PacGAN/VEEGAN)")
def load_ring(options: RingOptions) -> Dataset:
    angles = 2 * np.pi * np.arange(options.modes) / options.modes
    centers = options.radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return mixture(centers, options.std, options.num_points, options.seed, "ring")


@DATASETS.register("grid", GridOptions, "2D grid of 25 Gaussians at {-4,...,4}^2, std 0.05 (PacGAN/VEEGAN)")
def load_grid(options: GridOptions) -> Dataset:
    offsets = (np.arange(options.side) - (options.side - 1) / 2) * options.spacing
    centers = np.stack(np.meshgrid(offsets, offsets, indexing="ij"), axis=-1).reshape(-1, 2)
    return mixture(centers, options.std, options.num_points, options.seed, "grid")
