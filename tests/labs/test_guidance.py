"""The guidance sweep (core/labs/guidance.py): its measures on real digits with known answers, and both
conditional models drawn the way the sweep draws them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.data.images import uint8_to_tensor
from core.labs.compare import held_out_features
from core.labs.guidance import latent_draw, pixel_draw, sweep, within_class_diversity
from core.labs.latent import latent_diffusion
from zoo.datasets import load_image_set
from zoo.loaders import load_model
from zoo.registry import load_registry


@pytest.fixture(scope="module")
def reader():
    registry = load_registry()
    classifier = load_model(registry.model("mnist-lenet")).module
    held_out = load_image_set(registry.dataset("mnist"), "test")
    return registry, classifier, held_out, held_out_features(classifier, held_out.images)


def test_within_class_diversity_is_the_mean_pairwise_distance_per_class():
    features = np.array([[0.0, 0.0], [3.0, 4.0], [10.0, 0.0], [10.0, 2.0], [10.0, 4.0]])
    labels = np.array([0, 0, 1, 1, 1])
    mean, se = within_class_diversity(features, labels)
    class_1 = (2 + 4 + 2) / 3  # distances 2, 4, 2
    assert mean == pytest.approx((5.0 + class_1) / 2) and se == pytest.approx(abs(5.0 - class_1) / 2)


def test_sweep_reads_real_digits_as_their_own_class_and_shuffled_labels_as_chance(reader):
    _, classifier, held_out, reference = reader
    images, labels = uint8_to_tensor(held_out.images[:300]), torch.from_numpy(held_out.labels[:300].copy())
    shuffled = labels[torch.randperm(300, generator=torch.Generator().manual_seed(0))]
    honest, wrong = (
        next(sweep(lambda w, n, s, y=y: (images, y), [1.0], 300, classifier, reference)) for y in (labels, shuffled)
    )
    assert honest.accuracy > 0.9 and wrong.accuracy < 0.3  # the LeNet reads MNIST well; a wrong ask is chance
    assert honest.accuracy_se == pytest.approx(np.sqrt(honest.accuracy * (1 - honest.accuracy) / 300))
    assert honest.fd_lenet == wrong.fd_lenet  # FD-LeNet does not look at the labels
    assert honest.diversity > 0 and honest.diversity_se > 0


def test_more_guidance_reads_more_often_as_the_class_asked_for_on_both_models(reader):
    registry, classifier, _, reference = reader
    pixel = load_model(registry.model("mnist-cond-cfg"))
    latent = latent_diffusion(load_model(registry.model("mnist-latent-cond")))
    vae = load_model(registry.model("mnist-vae-2d")).module
    for draw in (pixel_draw(pixel, steps=10), latent_draw(latent, vae, steps=10)):
        images, asked = draw(3.0, 20, 0)
        assert images.shape == (20, 1, 28, 28) and asked.tolist() == [k % 10 for k in range(20)]
        assert float(images.min()) >= -1 and float(images.max()) <= 1
        low, high = sweep(draw, [0.0, 5.0], 100, classifier, reference)
        assert high.accuracy > low.accuracy  # w = 0 is the unconditional model: about chance
        assert low.accuracy < 0.4
