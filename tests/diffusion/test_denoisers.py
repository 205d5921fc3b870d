from __future__ import annotations

import pytest
import torch

from core.diffusion.denoisers import (
    DiscreteTimeDenoiser,
    clip_denoised,
    with_labels,
)
from core.diffusion.guidance import Guidance, Guided
from core.diffusion.mixture import GaussianMixture
from core.diffusion.schedules import make_schedule
from core.errors import BadInputError
from tests.helpers import tiny_unet


def _mixture() -> GaussianMixture:
    return GaussianMixture(
        torch.tensor([[-2.0, 0.0], [2.0, 1.0], [0.0, -3.0]]),
        torch.tensor([[0.5, 0.3], [0.7, 0.7], [0.4, 1.0]]),
        torch.tensor([0.5, 0.3, 0.2]),
    )


class ExactDiscreteModel:
    """What a perfectly trained discrete-time model of a mixture would output, for any prediction type."""

    def __init__(self, mixture: GaussianMixture, schedule, prediction_type: str) -> None:
        self.mixture, self.schedule, self.prediction_type = mixture, schedule, prediction_type
        self.seen_t: list[torch.Tensor] = []

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        self.seen_t.append(t)
        sigma = self.schedule.t_to_sigma(t.double()).float()
        sqrt_ab = (1 + sigma**2).rsqrt()[:, None]
        x = x_t / sqrt_ab
        x0 = self.mixture.denoise(x, sigma)
        eps = (x - x0) / sigma[:, None]
        if self.prediction_type == "epsilon":
            return eps
        if self.prediction_type == "sample":
            return x0
        return sqrt_ab * eps - (1 - sqrt_ab**2).sqrt() * x0


@pytest.mark.parametrize("prediction_type", ["epsilon", "sample", "v_prediction"])
def test_adapter_recovers_the_exact_denoiser_from_every_prediction_type(prediction_type):
    sched = make_schedule("cosine", 1000)
    mix = _mixture()
    model = ExactDiscreteModel(mix, sched, prediction_type)
    denoiser = DiscreteTimeDenoiser(model, sched, prediction_type)
    x0, _ = mix.sample(64, torch.Generator().manual_seed(0))
    for t in (5, 250, 700.5):
        sigma = sched.t_to_sigma(torch.tensor(t)).float().expand(64)
        x = x0.float() + sigma[:, None] * torch.randn(64, 2)
        torch.testing.assert_close(denoiser(x, sigma), mix.denoise(x, sigma), rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(model.seen_t[-1].double(), torch.full((64,), float(t), dtype=torch.float64))


def test_adapter_feeds_the_unet_scaled_input_and_class_labels():
    sched = make_schedule("linear", 1000)
    unet = tiny_unet(seed=0, channels=1, num_class_embeds=11)
    denoiser = DiscreteTimeDenoiser(unet, sched, "epsilon", num_classes=10)
    x, sigma, labels = torch.randn(3, 1, 8, 8) * 5, torch.full((3,), 5.0), torch.tensor([0, 3, 10])
    t = sched.sigma_to_t(sigma).float()
    eps = unet(x / (1 + 25.0) ** 0.5, t, class_labels=labels).sample
    torch.testing.assert_close(denoiser(x, sigma, class_labels=labels), x - 5.0 * eps)
    assert not torch.equal(denoiser(x, sigma, class_labels=labels), denoiser(x, sigma, class_labels=labels.flip(0)))


def test_adapter_rejects_unknown_prediction_type():
    with pytest.raises(BadInputError):
        DiscreteTimeDenoiser(lambda x, t: x, make_schedule(), "noise")


class CountingConditional:
    """A conditional denoiser whose answer depends on the label; counts calls and batch sizes."""

    def __init__(self) -> None:
        self.batches: list[int] = []

    def __call__(self, x, sigma, class_labels):
        self.batches.append(len(x))
        return x * 0.5 + class_labels.float()[:, None] - sigma[:, None]


def test_cfg_is_one_batched_forward_and_follows_the_formula():
    base = CountingConditional()
    x, sigma, y = torch.randn(4, 2), torch.rand(4), torch.tensor([0, 1, 2, 3])
    guided = Guided(base, Guidance(scale=3.0), null_label=10)(x, sigma, class_labels=y)
    assert base.batches == [8]
    cond, uncond = base(x, sigma, y), base(x, sigma, torch.full_like(y, 10))
    torch.testing.assert_close(guided, uncond + 3.0 * (cond - uncond))


def test_with_labels_binds_each_samples_class_and_the_guidance():
    base = CountingConditional()
    x, sigma, y = torch.randn(4, 2), torch.rand(4), torch.tensor([0, 1, 2, 3])
    plain = with_labels(base, y)
    torch.testing.assert_close(plain(x, sigma), base(x, sigma, y))  # a sampler calls D(x, sigma) alone
    base.batches.clear()
    guided = with_labels(base, y, 2.5, null_label=10)(x, sigma)
    assert base.batches == [8]  # both halves in one forward
    torch.testing.assert_close(guided, Guided(base, Guidance(scale=2.5), 10)(x, sigma, class_labels=y))
    with pytest.raises(BadInputError, match="unconditional"):
        with_labels(base, y, 2.5)  # guidance without a "no class" label


def test_cfg_scale_one_is_the_conditional_model():
    unet = tiny_unet(seed=3, channels=1, num_class_embeds=11)
    denoiser = DiscreteTimeDenoiser(unet, make_schedule("cosine"), "epsilon", num_classes=10)
    x, sigma, y = torch.randn(2, 1, 8, 8), torch.tensor([1.0, 2.0]), torch.tensor([4, 7])
    torch.testing.assert_close(
        Guided(denoiser, Guidance(scale=1.0), 10)(x, sigma, class_labels=y), denoiser(x, sigma, y)
    )
    # and the batched path at a scale near 1 agrees with it to first order
    near = Guided(denoiser, Guidance(scale=1.0 + 1e-6), 10)(x, sigma, class_labels=y)
    torch.testing.assert_close(near, denoiser(x, sigma, y), rtol=1e-4, atol=1e-4)


def test_mixture_score_is_the_gradient_of_its_log_density():
    mix = _mixture()
    x = torch.randn(16, 2, dtype=torch.float64) * 2
    for sigma in (0.1, 1.0, 5.0):
        xg = x.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(mix.log_prob(xg, sigma).sum(), xg)
        torch.testing.assert_close(mix.score(x, sigma), grad)


def test_mixture_denoiser_limits_and_class_pinning():
    mix = _mixture()
    x = torch.randn(8, 2, dtype=torch.float64)
    # tiny noise: D(x) ~ x; huge noise: D(x) ~ the mixture mean
    torch.testing.assert_close(mix.denoise(x, torch.full((8,), 1e-6)), x, atol=1e-6, rtol=0)
    mean = (mix.weights[:, None] * mix.means).sum(0)
    torch.testing.assert_close(mix.denoise(x, torch.full((8,), 1e6)), mean.expand(8, 2), atol=1e-6, rtol=0)
    # pinned to component 1, the denoiser is that Gaussian's own posterior mean
    pinned = mix.denoise(x, torch.full((8,), 1.0), class_labels=torch.full((8,), 1))
    var = mix.stds[1] ** 2
    torch.testing.assert_close(pinned, mix.means[1] + var / (var + 1) * (x - mix.means[1]))
    # label K means any component
    torch.testing.assert_close(
        mix.denoise(x, torch.ones(8), class_labels=torch.full((8,), 3)), mix.denoise(x, torch.ones(8))
    )


def test_mixture_works_for_images_and_isotropic_stds():
    mix = GaussianMixture(torch.zeros(2, 12), torch.tensor([1.0, 2.0]))
    x = torch.randn(5, 3, 2, 2)
    out = mix.denoise(x, torch.full((5,), 1.0))
    assert out.shape == x.shape and out.dtype == x.dtype


def test_mixture_rejects_bad_parameters():
    with pytest.raises(BadInputError):
        GaussianMixture(torch.zeros(2, 3), torch.tensor([1.0, -1.0]))
    with pytest.raises(BadInputError):
        GaussianMixture(torch.zeros(3), 1.0)


def test_clip_denoised():
    clipped = clip_denoised(lambda x, sigma: x * 10)
    assert float(clipped(torch.ones(2, 2), torch.ones(2)).max()) == 1.0


def test_guidance_interval_guides_only_inside_its_sigma_range():
    """A toy denoiser whose x_0 estimate is its class label: guided, it reads null + w (c - null) inside the
    interval, and c (the conditional model alone) outside it, sample by sample."""
    from core.diffusion.denoisers import with_labels

    calls = []

    def labelled(x, sigma, class_labels):
        calls.append(len(x))
        return class_labels.to(x.dtype).reshape(-1, 1).expand_as(x).clone()

    labels, x = torch.tensor([2, 2, 2]), torch.zeros(3, 4)
    guided = with_labels(labelled, labels, 3.0, null_label=10, interval=(1.0, 5.0))
    out = guided(x, torch.tensor([0.5, 2.0, 10.0]))
    assert out[:, 0].tolist() == [2.0, 10 + 3 * (2 - 10), 2.0]
    calls.clear()
    outside = guided(x, torch.full((3,), 20.0))
    assert outside[:, 0].tolist() == [2.0] * 3 and calls == [3]  # one pass of size B, no unconditional half
    everywhere = with_labels(labelled, labels, 3.0, null_label=10)(x, torch.tensor([0.5, 2.0, 10.0]))
    assert everywhere[:, 0].tolist() == [-14.0] * 3
    with pytest.raises(BadInputError, match="guidance interval"):
        with_labels(labelled, labels, 3.0, null_label=10, interval=(5.0, 1.0))


def test_a_network_sees_a_batch_of_images_in_pieces_on_the_cpu_with_the_same_result():
    from core.diffusion.denoisers import CPU_IMAGES, NetworkDenoiser

    unet, seen = tiny_unet(seed=3, channels=1, num_class_embeds=10), []
    unet.register_forward_pre_hook(lambda _, args: seen.append(len(args[0])))
    x = torch.randn(2 * CPU_IMAGES + 7, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    t, labels = torch.linspace(10, 900, len(x)), torch.arange(len(x)) % 10
    pieces = NetworkDenoiser(unet).run(x, t, labels)
    assert seen == [CPU_IMAGES, CPU_IMAGES, 7]
    with torch.inference_mode():
        whole = unet(x, t, class_labels=labels).sample
    torch.testing.assert_close(pieces, whole, atol=1e-5, rtol=1e-4)  # each sample its own time and label

    class PointNet(torch.nn.Module):  # a 2-D lab's denoiser network: points, not images
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(2, 2)

        def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            seen.append(len(x))
            return self.layer(x)

    seen.clear()
    NetworkDenoiser(PointNet()).run(torch.randn(500, 2), torch.zeros(500), None)
    assert seen == [500]  # points go whole: splitting them would only slow the labs
