"""The latent plane (manifold grid, decoding) and diffusion in it (core/labs/latent.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import norm

from core.errors import BadInputError
from core.labs.latent import (
    LatentTrainer,
    LatentTrainSettings,
    decode_points,
    manifold_axes,
    manifold_image,
    sample_paths,
)
from tests.helpers import three_clusters


def test_manifold_axes_gaussian_quantiles_and_linear_extent():
    xs, ys = manifold_axes(8, "gaussian")
    np.testing.assert_allclose(norm.cdf(xs), (np.arange(8) + 0.5) / 8)  # equal prior mass per cell
    np.testing.assert_allclose(xs, -xs[::-1]) and np.testing.assert_allclose(xs, ys)
    xs, ys = manifold_axes(5, "linear", (np.array([-1.0, 0.0]), np.array([3.0, 2.0])))
    np.testing.assert_allclose(xs, [-1, 0, 1, 2, 3]) and np.testing.assert_allclose(ys, [0, 0.5, 1, 1.5, 2])
    for n, spacing in ((1, "gaussian"), (31, "gaussian"), (5, "log")):
        with pytest.raises(BadInputError):
            manifold_axes(n, spacing)


class _CoordinateDecoder(torch.nn.Module):
    """A decoder whose digit shows its own latent point: left half brightness z1, right half z2 (in [0, 1])."""

    latent_dim = 2

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(len(z), 1, 28, 28)
        out[:, 0, :, :14] = z[:, :1, None]
        out[:, 0, :, 14:] = z[:, 1:, None]
        return out


def test_manifold_image_puts_large_y_on_top_and_large_x_on_the_right():
    xs, ys = np.array([0.0, 0.5, 1.0]), np.array([0.0, 0.2, 0.4, 1.0])
    image = manifold_image(_CoordinateDecoder(), xs, ys)
    assert image.shape == (4 * 28, 3 * 28)
    tile = lambda r, c: image[r * 28 : (r + 1) * 28, c * 28 : (c + 1) * 28]  # noqa: E731
    assert tile(0, 2)[0, 0] == 255 and tile(0, 2)[0, 20] == 255  # top right: (x, y) = (1, 1)
    assert tile(3, 0)[0, 0] == 0 and tile(3, 0)[0, 20] == 0  # bottom left: (0, 0)
    assert tile(1, 1)[0, 0] == round(0.5 * 255) and tile(1, 1)[0, 20] == round(0.4 * 255)
    with pytest.raises(BadInputError):
        decode_points(_CoordinateDecoder(), np.zeros((3, 5)))


@pytest.fixture(scope="module", params=["epsilon", "flow_prediction"])
def latent_model(request):
    """A latent model of three clusters, trained with each objective (flow matching on the flow path)."""
    points, labels = three_clusters(900, seed=1)
    settings = LatentTrainSettings(steps=600, width=64, depth=2, objective=request.param)
    trainer = LatentTrainer(points, labels, settings, "test")
    assert trainer.schedule.path == ("flow" if request.param == "flow_prediction" else "vp")
    trainer.train()
    losses = [m["loss"] for m in trainer.trainer.metrics]
    assert np.mean(losses[-10:]) < 0.7 * np.mean(losses[:5])  # it learns
    return trainer.model()


def test_guided_samples_land_in_their_class_and_paths_start_as_noise(latent_model):
    frames = []
    paths = sample_paths(
        latent_model,
        "dpmpp_2m",
        25,
        200,
        seed=0,
        label=0,
        scale=3.0,
        on_frame=lambda i, p, done: frames.append((i, len(p), done)),
    )
    assert paths.path.shape == (26, 200, 2) and len(paths.sigmas) == 26 and paths.sigmas[-1] == 0
    # Live callbacks see the path grow, and the last one knows it is the last.
    assert frames[0] == (0, 1, False) and frames[-2] == (24, 25, False) and frames[-1] == (25, 26, True)
    torch.testing.assert_close(paths.path[-1], paths.samples)
    assert (paths.samples - torch.tensor([2.0, -1.0])).norm(dim=1).lt(1.0).float().mean() > 0.9
    start = (paths.path[0] - latent_model.mean) / latent_model.std  # VP state at the top: unit-scale noise
    assert 0.8 < float(start.std()) < 1.2
    free = sample_paths(latent_model, "euler", 25, 500, seed=1, label=None)
    centres = torch.tensor([[2.0, -1.0], [-2.0, 1.5], [0.0, 3.0]])
    nearest = torch.cdist(free.samples, centres).argmin(1)
    shares = torch.bincount(nearest, minlength=3) / len(nearest)
    assert all(0.2 < float(s) < 0.5 for s in shares), shares  # unconditional: every class, in about equal shares


def test_sample_paths_checks_its_inputs(latent_model):
    for kwargs in ({"n": 0}, {"steps": 0}, {"label": 10}, {"scale": -1.0}, {"sampler": "nope"}):
        args = {"sampler": "euler", "steps": 5, "n": 4} | kwargs
        with pytest.raises(BadInputError):
            sample_paths(latent_model, **args)


def test_vae_training_stops_with_a_sentence_when_the_loss_is_not_finite():
    from core.models.vae import ConvVAE
    from core.training.vae import VAETrainConfig, train_vae

    torch.manual_seed(0)
    vae = ConvVAE(channels=4, hidden=16)
    x = torch.rand(64, 1, 28, 28)
    before = {k: v.clone() for k, v in vae.state_dict().items()}
    seen = []

    def poison(record, _):  # after the first step the data go bad, as an overflow would make them
        seen.append(record["step"])
        x.fill_(float("nan"))

    with pytest.raises(BadInputError, match="diverged at step 2"):
        train_vae(vae, x, VAETrainConfig(epochs=1, batch_size=32, log_every=1), x[:8].clone(), torch.zeros(8), poison)
    assert seen == [1]  # the first step ran and was logged
    changed = [k for k, v in vae.state_dict().items() if not torch.equal(v, before[k])]
    assert changed and all(torch.isfinite(v).all() for v in vae.state_dict().values())
