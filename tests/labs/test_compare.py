"""Same-seed comparisons (core/labs/compare.py) on an exact mixture denoiser: the plan is checked before any
work, and cells come one at a time, so a Stop keeps the finished ones."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch

from core import cost
from core.diffusion.mixture import GaussianMixture
from core.diffusion.schedules import NoiseSchedule, make_schedule
from core.errors import BadInputError
from core.labs import compare, samplers
from core.labs.compare import compare_cells, plan_quality, plan_work
from core.labs.samplers import SamplerSettings, evaluations_per_image

CPU = torch.device("cpu")


@dataclass
class MixtureImages:
    """An ImageModel whose 'images' are 1 x 2 x 2 draws of an exact Gaussian mixture; counts its calls."""

    schedule: NoiseSchedule
    calls: int = 0
    name: str = "mixture"
    title: str = "A mixture"
    data: str | None = None
    device: torch.device = CPU
    sample_shape: tuple[int, ...] = (1, 2, 2)
    num_classes: int = 0
    null_label: int | None = None
    flops_per_image: int | None = None  # not counted: seconds_per_image times it

    def __post_init__(self) -> None:
        self._mix = GaussianMixture(torch.tensor([[-0.5] * 4, [0.5] * 4]), 0.1)

    def denoiser(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self._mix.denoise(x, sigma)


def known_speed(model: MixtureImages, batch: int, flops_per_second: float) -> None:
    """As if the model had been evaluated at `batch` images a call at this speed (the first call is a warm-up)."""
    for _ in range(2):
        cost.observe(model.name, model.device, batch, flops_per_second, 1.0)


def test_cells_come_one_at_a_time_and_the_plan_is_checked_before_any_work():
    model = MixtureImages(make_schedule("linear", 100), name="mixture-cells", flops_per_image=1000)
    known_speed(model, 3, 1e12)  # the plan's estimate needs no evaluation: only the cells call the model
    base = SamplerSettings(batch=3, clip=False)
    cells = compare_cells([model], ["euler", "heun"], [4, 8], base)
    first = next(cells)
    assert (first.sampler, first.steps, first.nfe) == ("euler", 4, 4) and model.calls == 4  # nothing more yet
    rest = list(cells)
    assert [(c.sampler, c.steps) for c in rest] == [("euler", 8), ("heun", 4), ("heun", 8)]
    assert model.calls == 4 + 8 + 7 + 15 and first.images.shape == (3, 1, 2, 2)
    for steps, message in (([4, 500], "allows at most 100 steps"), ([], "at least one")):
        model.calls = 0
        with pytest.raises(BadInputError, match=message):
            next(compare_cells([model], ["euler"], steps, base))
        assert model.calls == 0


def test_guidance_doubles_what_an_image_costs():
    conditional = MixtureImages(make_schedule("linear", 100), num_classes=10, null_label=10)
    settings = SamplerSettings(sampler="heun", steps=10, label=3, guidance=3.0)
    assert evaluations_per_image(conditional, settings) == 2 * 19
    assert evaluations_per_image(conditional, SamplerSettings(sampler="heun", steps=10, label=3)) == 19  # scale 1
    assert evaluations_per_image(MixtureImages(make_schedule("linear", 100)), settings) == 19  # no classes


def test_plans_are_refused_by_the_time_they_would_take(monkeypatch):
    """A big UNet costs far more a step than an MNIST one: the same plan can fit for one and not the other."""
    model = MixtureImages(make_schedule("linear", 100))
    plan = SamplerSettings(sampler="dpmpp_2m", steps=20, batch=16)
    monkeypatch.setattr(samplers, "seconds_per_image", lambda m, batch: 0.001)  # 640 evaluations: under a second
    monkeypatch.setattr(compare, "seconds_per_image", lambda m, batch: 0.001)
    assert plan_work([model, model], ["dpmpp_2m"], [20], plan) == 640
    monkeypatch.setattr(samplers, "seconds_per_image", lambda m, batch: 0.5)  # a large UNet on a CPU
    monkeypatch.setattr(compare, "seconds_per_image", lambda m, batch: 0.5)
    with pytest.raises(BadInputError, match=r"would take about 5\.3 min .* 5\.0 min .* fewer images, steps or checkp"):
        plan_work([model, model], ["dpmpp_2m"], [20], plan)
    with pytest.raises(BadInputError, match="That measure would take about"):
        plan_quality([model], plan, 1000)
    model.calls = 0
    with pytest.raises(BadInputError):
        next(compare_cells([model, model], ["dpmpp_2m"], [20], plan))
    assert model.calls == 0  # refused before any sampling


def test_checks_before_comparing_name_the_odd_one_out():
    from types import SimpleNamespace

    from core.diffusion.schedules import make_schedule
    from core.labs.compare import check_same_shape, check_steps

    check_same_shape({"a": (1, 28, 28), "b": [1, 28, 28]})
    with pytest.raises(BadInputError, match=r"different shapes.*a: 1x28x28, b: 3x32x32"):
        check_same_shape({"a": (1, 28, 28), "b": (3, 32, 32)})
    model = SimpleNamespace(schedule=make_schedule("linear", 100))
    usable = model.schedule.usable_steps(model.schedule.sampling_cap)
    check_steps({"m": model}, usable)
    with pytest.raises(BadInputError, match=f"m allows at most {usable} steps"):
        check_steps({"m": model}, usable + 1)


def test_sampler_settings_are_keys_whatever_options_they_hold():
    """Results are kept by the settings they were made with (ui/common/memo.py): equal settings, the sampler's
    options given in any order, find the same entry; another option value does not."""
    a = SamplerSettings(sampler="ddim", options={"eta": 0.5, "noise_until": 3})
    b = SamplerSettings(sampler="ddim", options={"noise_until": 3, "eta": 0.5})
    kept = {a: "made"}
    assert kept[b] == "made" and hash(a) == hash(b)
    assert SamplerSettings(sampler="ddim", options={"eta": 1.0, "noise_until": 3}) not in kept
    assert SamplerSettings(sampler="ddim", options={"eta": 0.5, "noise_until": 3}, seed=1) not in kept


@pytest.fixture(scope="module")
def reader():
    """The bundled classifier, its held-out reference features and 300 training digits as images in [-1, 1]."""
    from core.data.images import uint8_to_tensor
    from zoo.datasets import load_image_set
    from zoo.loaders import load_model
    from zoo.registry import load_registry

    registry = load_registry()
    classifier = load_model(registry.model("mnist-lenet")).module
    reference = compare.held_out_features(classifier, load_image_set(registry.dataset("mnist"), "test").images)
    train = uint8_to_tensor(load_image_set(registry.dataset("mnist"), "train", 300).images)
    return classifier, reference, train


def test_score_reads_real_digits_as_faithful_and_diverse_and_noise_as_neither(reader):
    classifier, reference, train = reader
    real = compare.score(train, None, classifier, reference)
    p = real.prdc
    assert (p.k, p.real, p.fake) == (compare.PRDC_K, 300, 300)  # as many held-out digits as samples
    assert p.precision > 0.9 and p.recall > 0.8 and p.coverage > 0.8 and 0.7 < p.density < 1.3
    assert all(0 < getattr(p, f"{m}_se") < 0.05 for m in ("precision", "recall", "density", "coverage"))
    scored = compare.score(torch.rand(300, 1, 28, 28) * 2 - 1, None, classifier, reference)
    noise = scored.prdc
    # Uniform noise lands in one small region of LeNet's features, among the digits: their fidelity measures pass it
    # (precision 1.0, density 1.28 measured), their diversity measures do not (and FD-LeNet does not)
    assert noise.recall < 0.05 and noise.coverage < 0.1 and scored.fd_lenet > 10 * real.fd_lenet
    assert compare.score(train[:5], None, classifier, reference).prdc is None  # fewer than k + 1: no balls
    row = real.fields()  # flat, as the command line writes it
    assert list(row)[:3] == ["samples", "fd_lenet", "fd_se"] and row["prdc_k"] == 5 and row["prdc_n"] == 300
    assert row["precision"] == p.precision and row["coverage_se"] == p.coverage_se
    assert all(not isinstance(v, dict) for v in row.values())


def test_the_prdc_reference_is_one_fixed_draw_of_the_size_asked():
    reference = np.arange(40.0)[:, None]
    first = compare.prdc_reference(reference, 10)
    assert len(first) == 10 and len(np.unique(first)) == 10 and np.isin(first, reference).all()
    assert np.array_equal(first, compare.prdc_reference(reference, 10))  # every checkpoint meets the same digits
    assert not np.array_equal(first.ravel(), np.arange(10.0))  # a draw, not the first rows (the split's order)
    assert compare.prdc_reference(reference, 60) is reference
