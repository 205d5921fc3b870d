"""The shared data set cache (ui/common/cache.py): a split is decoded once for every page and session, and a page
that needs only the first digits gets them cut from that decode, the same digits it would have decoded itself."""

from __future__ import annotations

import numpy as np
import pytest

import zoo.datasets
from ui.common import cache


@pytest.fixture
def decodes(app_env, monkeypatch):
    """Every load_image_set call as (split, limit), with the cache empty before and after."""
    calls, real = [], zoo.datasets.load_image_set

    def counted(entry, split="train", limit=None):
        calls.append((split, limit))
        return real(entry, split, limit)

    monkeypatch.setattr(zoo.datasets, "load_image_set", counted)
    cache._image_set.clear()
    yield calls
    cache._image_set.clear()


def test_a_split_is_decoded_once_and_every_caller_reads_the_same_read_only_arrays(decodes):
    first, again = cache.image_set("mnist", "test"), cache.image_set("mnist", "test")
    assert decodes == [("test", None)]
    assert again.images is first.images  # no copy per call (st.cache_data would unpickle one each time)
    assert not first.images.flags.writeable and not first.labels.flags.writeable


def test_a_few_digits_are_cut_from_the_shared_decode_and_match_their_own(decodes):
    whole = cache.image_set("mnist", "test")
    images, labels = cache.mnist_digits("test", 40)
    train_images, train_labels = cache.mnist_digits("train", 30)
    cache.mnist_digits("train", 300)  # another page's size: the same decode
    assert decodes == [("test", None), ("train", cache.LATENT_DIGITS)]
    assert np.shares_memory(images, whole.images) and len(images) == len(labels) == 40
    own = zoo.datasets.load_image_set(cache.registry().dataset("mnist"), "train", 30)  # as a page decoded them
    assert np.array_equal(train_images, own.images) and np.array_equal(train_labels, own.labels)


def test_more_training_digits_than_the_shared_prefix_are_decoded_for_themselves(decodes):
    cache.mnist_digits("train", cache.LATENT_DIGITS + 1)
    assert decodes == [("train", cache.LATENT_DIGITS + 1)]
