"""A bundled pixel model's samples checked against its model card: FD-LeNet and how mnist-lenet reads them.

The cards (zoo/bundled/<name>/README.md, written by bench/zoo_quality.py) give FD-LeNet to the 500 held-out
digits for thousands of samples; a test affords about a hundred. FD falls as the sample set grows, roughly as
FD_n = FD_inf + k / n for a fixed reference (Chong & Forsyth 2020, "Effectively Unbiased FID and Inception Score
and where to find them": FID is linear in 1/n). k comes from the card itself: it gives the FD between the two
halves of the held-out digits (two sets of one law, so FD_inf = 0: split = k (1/h + 1/h) for halves of h).
So a card row (FD at N) predicts FD at n samples as FD + k (1/n - 1/N), and the check allows a margin over that.
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from bench.zoo_quality import generate
from core.diffusion.denoisers import model_denoiser
from core.metrics.images import class_histogram, classify, frechet_distance
from zoo.cards import card_fields
from zoo.loaders import LoadedModel

SAMPLER, STEPS = "dpmpp_2m", 10  # a row every pixel card has (mnist-flow's in its ladder table)
SAMPLES = 128  # unconditional samples a model: about 3.6 s each on one CPU thread (dpmpp_2m 10, 28x28 UNet)
GUIDED = 50  # class-conditional samples (5 a class) for the guided reading: two passes a step
# Measured (dpmpp_2m 10, 1,600 samples of each model from seed 7, cut into 12 disjoint sets of 128): FD-LeNet
# means 88.2, 87.6, 82.8, 171.4 (ddpm-linear, v-cosine, flow, cond-cfg null label) against 94.8, 93.4, 82.8,
# 178.8 predicted from the cards as above; standard deviations 9.2, 14.1, 10.7, 14.5; the largest set 104.0,
# 106.4, 101.2, 188.7. The margin is 3x the largest standard deviation. The test's own sets (seed 0) read 79.4,
# 78.4, 73.8, 183.3 against bounds of 139.8, 138.4, 127.8, 223.8. A denoiser returning noise or its input,
# or the model with its weights negated, reads 1,100-1,280 (the bound is at most about 225).
FD_MARGIN = 45.0
# mnist-cond-guide, autoguidance's weak guide for mnist-cond-cfg, spreads wider: over 12 sets of 128 drawn as above
# its FD-LeNet (null label) averaged 484.0 against 480.6 predicted, standard deviation 27.9, the largest set 523.7.
# Its margin is 3x its own standard deviation; the test's set (seed 0) reads 462.5 against a bound of 565.6.
FD_MARGINS = {"mnist-cond-guide": 85.0}
# The largest class share of n samples is allowed this many binomial standard errors over the card's largest
# share: over the same 12 sets of 128 the largest share came at most 3.8 SE above the card's (v-cosine: 23.4%
# against 12.3%). Noise, identity and negated weights put 96-100% of the samples in one class.
SHARE_SE = 5.0
# Guided samples read as the class asked for: the card gives 0.998 at dpmpp_2m 20; measured at dpmpp_2m 10:
# 0.996 (250 samples), 1.0 (50). The margin allows 5 misread of 50. mnist-cond-guide: 0.842 on its card, 0.828 (250)
# and 0.86 (the test's 50) at dpmpp_2m 10.
GUIDED_MARGIN = 0.1


@dataclass(frozen=True)
class CardRow:
    fd: float  # FD-LeNet to the held-out digits
    n: int  # samples the row was measured on
    min_class: float  # smallest and largest class share as mnist-lenet reads them
    max_class: float


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def card_row(card: Path, name: str, sampler: str = SAMPLER, steps: int = STEPS) -> CardRow:
    """The card's row for `name` at `sampler` `steps` (its own table, or a table with a model column)."""
    lines = [line for line in card.read_text(encoding="utf-8").splitlines() if line.startswith("|")]
    header = _cells(lines[0])
    for line in lines[2:]:
        row = dict(zip(header, _cells(line), strict=True))
        setting = " ".join(v for v in (row["sampler"], row.get("NFE")) if v)
        if setting == f"{sampler} {steps}" and row.get("model", name) == name:
            share = lambda text: float(text.rstrip("%")) / 100  # noqa: E731
            return CardRow(float(row["FD-LeNet"]), int(row["N"]), share(row["min class"]), share(row["max class"]))
    raise LookupError(f"{card} has no row for {name} at {sampler} {steps}")


def split_half(card: Path) -> tuple[float, int]:
    """The card's FD between the two halves of the held-out digits, and the size of a half."""
    found = re.search(r"halves of the held-out digits \((\d+) vs \d+\) are ([\d.]+) apart", card.read_text())
    if found is None:
        raise LookupError(f"{card} gives no split-half distance")
    return float(found[2]), int(found[1])


def fd_bound(card: Path, row: CardRow, n: int, margin: float = FD_MARGIN) -> float:
    """The largest FD-LeNet n samples may read: the row's FD moved to n samples (see the module), plus the margin."""
    split, half = split_half(card)
    k = split / (2 / half)
    return row.fd + k * (1 / n - 1 / row.n) + margin


def card_problems(
    card: Path, row: CardRow, feats: np.ndarray, labels: np.ndarray, held: np.ndarray, margin: float = FD_MARGIN
) -> list[str]:
    """What in n unconditional samples (mnist-lenet's features [n, F] and labels [n]) disagrees with the card's
    row; empty when they agree within the tolerances above (`margin` the FD margin)."""
    n, problems = len(labels), []
    fd, bound = frechet_distance(feats, held), fd_bound(card, row, len(labels), margin)
    if not fd <= bound:
        problems.append(f"FD-LeNet {fd:.1f} over {bound:.1f} (card: {row.fd} at {row.n} samples)")
    shares = class_histogram(labels)
    largest = row.max_class + SHARE_SE * math.sqrt(row.max_class * (1 - row.max_class) / n)
    if not shares.max() <= largest:
        problems.append(f"largest class share {shares.max():.1%} over {largest:.1%} (card: {row.max_class:.1%})")
    if shares.min() == 0:
        problems.append(f"class {int(shares.argmin())} never read (card: smallest share {row.min_class:.1%})")
    return problems


def guided_problems(card: Path, read: np.ndarray, asked: np.ndarray) -> list[str]:
    """Guided samples read as the class asked for less often than the card's guided_accuracy_scale3 allows."""
    accuracy, promised = float((read == asked).mean()), float(card_fields(card)["guided_accuracy_scale3"])
    if not accuracy >= promised - GUIDED_MARGIN:
        return [f"{accuracy:.1%} read as the class asked for (card: {promised:.1%})"]
    return []


class BundledQuality:
    """Samples of bundled models (unconditional and guided), drawn once and read by the classifier."""

    def __init__(self, classifier: torch.nn.Module, held_images: torch.Tensor) -> None:
        self.classifier = classifier
        self.held = classify(classifier, held_images)[1]
        self._drawn: dict[tuple[str, str], tuple[torch.Tensor, np.ndarray, np.ndarray]] = {}

    def unconditional(self, key: str, loaded: LoadedModel) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
        """SAMPLES images from seed 0 (the first of the card's), with mnist-lenet's labels and features."""
        if (key, "unconditional") not in self._drawn:
            images = generate(loaded, SAMPLER, STEPS, SAMPLES, seed=0)
            self._drawn[key, "unconditional"] = (images, *classify(self.classifier, images.clamp(-1, 1)))
        return self._drawn[key, "unconditional"]

    def guided(self, key: str, loaded: LoadedModel) -> tuple[np.ndarray, np.ndarray]:
        """mnist-lenet's reading of GUIDED samples at guidance 3 asking for classes 0-9 in turn, and the classes."""
        asked = torch.arange(GUIDED) % 10
        if (key, "guided") not in self._drawn:
            images = generate(loaded, SAMPLER, STEPS, GUIDED, seed=1, labels=asked, scale=3.0)
            self._drawn[key, "guided"] = (images, *classify(self.classifier, images.clamp(-1, 1)))
        return self._drawn[key, "guided"][1], asked.numpy()

    def problems(self, key: str, loaded: LoadedModel) -> list[str]:
        """Everything in `loaded`'s samples that disagrees with its card (see card_problems, guided_problems)."""
        card = Path(loaded.entry.path or "") / "README.md"
        _, labels, feats = self.unconditional(key, loaded)
        margin = FD_MARGINS.get(loaded.name, FD_MARGIN)
        found = card_problems(card, card_row(card, loaded.name), feats, labels, self.held, margin)
        if loaded.supports_guidance:
            found += guided_problems(card, *self.guided(key, loaded))
        return found


def noise_denoiser(x: torch.Tensor, sigma: torch.Tensor, **cond: object) -> torch.Tensor:
    """A broken denoiser: its x_0 estimate is fresh noise, whatever it is given."""
    return torch.randn_like(x)


def identity_denoiser(x: torch.Tensor, sigma: torch.Tensor, **cond: object) -> torch.Tensor:
    """A broken denoiser: its x_0 estimate is its input."""
    return x


def negated(loaded: LoadedModel) -> LoadedModel:
    """The same model with every weight negated (a copy: the loaded network is left as it was)."""
    module = copy.deepcopy(loaded.module)
    for parameter in module.parameters():
        parameter.neg_()
    entry = loaded.entry
    return replace(
        loaded,
        module=module,
        denoiser=model_denoiser(module, loaded.schedule, str(entry.prediction_type), entry.num_classes or None),
    )


def broken(loaded: LoadedModel, kind: str) -> LoadedModel:
    """`loaded` with a wrong denoiser: "noise", "identity" or "negated" (weights)."""
    if kind == "negated":
        return negated(loaded)
    return replace(loaded, denoiser={"noise": noise_denoiser, "identity": identity_denoiser}[kind])
