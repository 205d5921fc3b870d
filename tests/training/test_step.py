"""The one optimiser step (core/training/step.py) and its divergence guard in each trainer that uses it."""

from __future__ import annotations

import math
import re

import pytest
import torch

from core.errors import BadInputError
from core.models.classifier import LeNet
from core.models.vae import ConvVAE
from core.training.classifier import ClassifierTrainConfig, train_classifier
from core.training.diffusion import flatten_parameters
from core.training.step import optimizer_step
from core.training.vae import VAETrainConfig, train_vae

SENTENCE = (
    "Training diverged at step {step}: the loss became {loss}. The model keeps its weights from the step before; "
    "try a smaller learning rate."
)


def _net(seed: int = 0) -> torch.nn.Module:
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(seed + p.numel())))
    return net


def _loss(net: torch.nn.Module, scale: float = 1.0) -> torch.Tensor:
    x = torch.linspace(-1, 1, 15).reshape(5, 3)
    return scale * (net(x) ** 2).sum()


def _state(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_loss_that_is_not_finite_stops_before_anything_changes(bad):
    net = _net()
    opt = torch.optim.AdamW(net.parameters(), lr=0.1)
    optimizer_step(_loss(net), opt, 1)
    weights, moments = _state(net), {k: v.clone() for k, v in opt.state[next(net.parameters())].items()}
    grads = [p.grad.clone() for p in net.parameters()]
    with pytest.raises(BadInputError, match=re.escape(SENTENCE.format(step="1,234", loss=bad))):
        optimizer_step(_loss(net) * bad, opt, 1234)
    assert _same(_state(net), weights)
    assert all(torch.equal(p.grad, g) for p, g in zip(net.parameters(), grads, strict=True))  # no backward ran
    assert all(torch.equal(v, moments[k]) for k, v in opt.state[next(net.parameters())].items())


def test_a_step_is_plain_backward_and_update_and_clipping_bounds_the_gradient():
    ours, theirs = _net(), _net()
    opt_ours, opt_theirs = (torch.optim.SGD(n.parameters(), lr=0.05) for n in (ours, theirs))
    assert optimizer_step(_loss(ours), opt_ours, 1) is None  # no clip: no norm measured
    _loss(theirs).backward()
    opt_theirs.step()
    assert _same(_state(ours), _state(theirs))

    # clip: returns the norm before clipping, and the update is the one of the gradient scaled to norm `clip`
    before = _state(ours)
    grads = torch.autograd.grad(_loss(ours), list(ours.parameters()))
    full = torch.cat([g.reshape(-1) for g in grads]).norm()
    norm = optimizer_step(_loss(ours), opt_ours, 2, clip=0.5)
    assert float(norm) == pytest.approx(float(full), rel=1e-6) and float(full) > 0.5
    moved = torch.cat([(before[k] - v).reshape(-1) for k, v in _state(ours).items()]) / 0.05
    assert float(moved.norm()) == pytest.approx(0.5, rel=1e-4)
    assert float(optimizer_step(_loss(ours), opt_ours, 3, clip=math.inf)) > 0  # inf: measured, not clipped


def test_a_flat_gradient_buffer_is_zeroed_in_place_and_gives_the_same_steps():
    plain, flat = _net(), _net()
    buffer, grad = flatten_parameters(flat)
    opt_plain = torch.optim.AdamW(plain.parameters(), lr=0.01)
    opt_flat = torch.optim.AdamW([buffer], lr=0.01)
    for step in range(1, 4):
        scale = 1.0 if step < 3 else 30.0  # the last step is clipped
        n1 = optimizer_step(_loss(plain, scale), opt_plain, step, clip=1.0)
        n2 = optimizer_step(_loss(flat, scale), opt_flat, step, clip=1.0, flat_grad=grad)
        torch.testing.assert_close(n1, n2)
        for p, q in zip(plain.parameters(), flat.parameters(), strict=True):
            torch.testing.assert_close(p, q)
            assert q.grad.data_ptr() >= grad.data_ptr()  # still a view into the flat buffer ...
            assert q.grad.data_ptr() < grad.data_ptr() + grad.numel() * grad.element_size()
            torch.testing.assert_close(q.grad, p.grad)  # ... holding this step's gradient, not a sum of steps


def test_the_vae_stops_at_a_loss_that_is_not_finite_with_the_weights_of_the_step_before():
    torch.manual_seed(0)
    vae, x = ConvVAE(channels=4, hidden=16), torch.rand(64, 1, 28, 28)
    kept = {}

    def poison(record, _):  # after the first step the data go bad, as an overflow would make them
        kept.update(step=record["step"], weights=_state(vae))
        x.fill_(float("nan"))

    with pytest.raises(BadInputError, match=re.escape(SENTENCE.format(step=2, loss="nan"))):
        train_vae(vae, x, VAETrainConfig(epochs=1, batch_size=32, log_every=1), x[:8].clone(), torch.zeros(8), poison)
    assert kept["step"] == 1 and _same(_state(vae), kept["weights"])


def test_the_classifier_stops_at_a_loss_that_is_not_finite_with_the_weights_of_the_step_before():
    torch.manual_seed(0)
    model = LeNet(width=4, features=16)
    x, y = torch.rand(96, 1, 28, 28) * 2 - 1, torch.arange(96) % 10
    before, kept = _state(model), {}

    def poison(record):
        kept.update(step=record["step"], weights=_state(model))
        x.fill_(float("nan"))

    config = ClassifierTrainConfig(epochs=1, batch_size=32, log_every=2)
    with pytest.raises(BadInputError, match=re.escape(SENTENCE.format(step=3, loss="nan"))):
        train_classifier(model, x, y, config, poison)
    assert kept["step"] == 2 and not _same(kept["weights"], before)  # two steps ran and changed the weights
    assert _same(_state(model), kept["weights"])
