"""Sample-quality numbers for image models: Frechet distance in a network's features, class histograms.

FD-LeNet is the Frechet distance (Heusel et al. 2017) between Gaussians fitted to the penultimate
features of our small MNIST classifier: the same formula as FID, in a different network's features, so
its values are not comparable with Inception FID numbers.
"""

from __future__ import annotations

import numpy as np
import torch

from core.errors import BadInputError
from core.metrics.reference import REPEATS, ReferenceBand, reference_bands


def frechet_distance(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor) -> float:
    """||mu_a - mu_b||^2 + Tr(C_a + C_b - 2 (C_a C_b)^(1/2)) for feature sets a [N, F] and b [M, F].

    Tr((C_a C_b)^(1/2)) is computed as the sum of square roots of the eigenvalues of the symmetric
    C_a^(1/2) C_b C_a^(1/2), which is stable where a general matrix square root is not.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise BadInputError("Frechet distance needs two feature sets [N, F] with N >= 2 and the same F.")
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    vals, vecs = np.linalg.eigh(cov_a)
    root_a = (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T
    middle = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    trace_sqrt = np.sqrt(np.clip(middle, 0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_sqrt)


def frechet_distance_se(a: np.ndarray, b: np.ndarray, resamples: int = 20, seed: int = 0) -> tuple[float, float]:
    """The Frechet distance of feature sets a and b, and its bootstrap standard error over the rows of `a`
    (the generated samples; `b` is the fixed reference): the std of the distance over `resamples` redraws of
    a with replacement (Efron & Tibshirani 1993). With a few hundred samples the error is a few units."""
    rng = np.random.default_rng(seed)
    a = np.asarray(a, dtype=np.float64)
    draws = [frechet_distance(a[rng.integers(0, len(a), len(a))], b) for _ in range(resamples)]
    return frechet_distance(a, b), float(np.std(draws, ddof=1))


def split_half_distance(features: np.ndarray, seed: int = 0) -> float:
    """The Frechet distance between two random halves of one feature set: what "no difference" reads as at
    that sample size (at a model's own sample sizes, with its spread: `frechet_reference_band`)."""
    order = np.random.default_rng(seed).permutation(len(features))
    half = len(features) // 2
    return frechet_distance(features[order[:half]], features[order[half : 2 * half]])


def frechet_reference_band(
    pool: np.ndarray,
    reference: np.ndarray,
    n: int,
    repeats: int = REPEATS,
    seed: int = 0,
    what: str = "real images against the reference",
) -> ReferenceBand:
    """The Frechet distance of n rows of `pool` (features of real images that are not in `reference`), drawn
    without replacement, to the whole `reference`, over `repeats` draws: what a model's FD of n samples to that
    same reference reads when its samples are real images (core/metrics/reference.py)."""
    pool = np.asarray(pool, dtype=np.float64)
    if not 2 <= n <= len(pool):
        raise BadInputError(f"Drawing {n:,} real images needs a pool of at least that many (it has {len(pool):,}).")

    def draw(m: int, g: torch.Generator) -> np.ndarray:
        return pool[torch.randperm(len(pool), generator=g)[:m].numpy()]

    bands = reference_bands(
        draw,
        (n, len(reference)),
        {"fd": frechet_distance},
        repeats=repeats,
        seed=seed,
        reference=np.asarray(reference, dtype=np.float64),
        what=what,
    )
    return bands["fd"]


@torch.no_grad()
def classify(classifier: torch.nn.Module, images: torch.Tensor, batch: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """Predicted labels [N] and the penultimate features [N, F] of images in [-1, 1] [N, C, H, W]."""
    labels, feats = [], []
    for i in range(0, len(images), batch):
        x = images[i : i + batch].float()
        f = classifier.features(x)
        feats.append(f.cpu().numpy())
        labels.append(classifier.head(f).argmax(1).cpu().numpy())
    return np.concatenate(labels), np.concatenate(feats)


def class_histogram(labels: np.ndarray, num_classes: int = 10) -> np.ndarray:
    """Share of each class among the labels, [num_classes], summing to 1."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes)[:num_classes]
    return counts / max(1, counts.sum())


@torch.no_grad()
def class_probabilities(classifier: torch.nn.Module, images: torch.Tensor) -> np.ndarray:
    """The classifier's softmax probabilities [N, classes] for images in [-1, 1] [N, C, H, W]."""
    logits = classifier.head(classifier.features(images.float()))
    return torch.softmax(logits.float(), dim=1).cpu().numpy()
