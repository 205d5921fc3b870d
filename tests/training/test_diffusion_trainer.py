"""The MLP denoiser and the generic training loop: shapes, seeds, targets, interruption and resumption."""

from __future__ import annotations

import math

import pytest
import torch

from core.data.toy import get_toy_set
from core.diffusion.schedules import make_schedule
from core.errors import BadInputError
from core.models.mlp import TIME_EMBEDDINGS, MLPConfig, build_mlp
from core.training.diffusion import DiffusionTrainer, TrainConfig, flatten_parameters, tensor_batches


@pytest.fixture(autouse=True)
def _one_thread():
    """Small models train faster on one thread, and cannot stall on a busy second core."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _randomise_output(model):
    with torch.no_grad():
        model.out.weight.normal_(0, 0.1, generator=torch.Generator().manual_seed(9))
    return model


@pytest.mark.parametrize("embedding", list(TIME_EMBEDDINGS))
def test_mlp_maps_x_and_t_to_a_prediction_of_x_shape(embedding):
    model = build_mlp(MLPConfig(dim=3, width=32, depth=2, time_embedding=embedding, num_steps=100), seed=1)
    x, t = torch.randn(7, 3), torch.linspace(0, 99, 7)
    assert torch.equal(model(x, t), torch.zeros(7, 3))  # the output layer starts at zero
    _randomise_output(model)
    out = model(x, t)
    assert out.shape == (7, 3) and bool(out.isfinite().all())
    assert not torch.allclose(model(x, torch.zeros(7)), model(x, torch.full((7,), 99.0)))  # t matters
    assert torch.allclose(model(x[:1], t[:1]), out[:1], atol=1e-6)  # rows are independent


def test_one_time_for_the_whole_batch_is_embedded_once_with_the_same_result():
    model = _randomise_output(build_mlp(MLPConfig(dim=2, width=16, depth=2, num_steps=100), seed=2))
    x, t = torch.randn(9, 2), torch.full((9,), 37.5)
    with torch.no_grad():
        fast = model(x, t)
    assert torch.allclose(fast, model(x, t), atol=1e-6)  # with gradients on, every row is embedded


def test_mlp_weights_follow_the_seed():
    a, b, c = (build_mlp(MLPConfig(dim=2, width=16, depth=1), seed=s) for s in (0, 0, 1))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters(), strict=True))


def test_mlp_class_embedding_has_a_no_class_label():
    model = _randomise_output(build_mlp(MLPConfig(dim=2, width=16, depth=1, num_classes=10), seed=0))
    x, t = torch.randn(4, 2), torch.full((4,), 5.0)
    null = model(x, t, torch.full((4,), 10))
    assert torch.equal(model(x, t), null)  # no labels given = the "no class" row, as CFG's unconditional half
    assert not torch.allclose(model(x, t, torch.tensor([0, 1, 2, 3])), null)


def test_mlp_config_is_checked():
    for bad in ({"time_embedding": "wavelet"}, {"width": 0}, {"depth": 99}, {"embed_dim": 3}):
        with pytest.raises(BadInputError):
            MLPConfig(dim=2, **bad)
    assert MLPConfig(dim=2).to_dict()["dim"] == 2


def _trainer(steps_data: int = 2000, **overrides) -> DiffusionTrainer:
    data = get_toy_set("moons").cloud(steps_data, seed=0).points
    data = (data - data.mean(0)) / data.std()
    cfg = TrainConfig(**{"batch_size": 256, "lr": 1e-2, "log_every": 10, **overrides})
    model = build_mlp(MLPConfig(dim=2, width=32, depth=2, num_steps=100), seed=cfg.seed)
    return DiffusionTrainer(model, make_schedule("linear", 100), cfg, tensor_batches(data))


def test_the_loss_falls_and_metrics_follow_the_run_log_format():
    tr = _trainer()
    tr.train(200)
    assert tr.step == 200 and len(tr.metrics) == 20
    assert set(tr.metrics[0]) == {"step", "loss", "lr", "seconds", "grad_norm"}
    first, last = tr.metrics[0]["loss"], sum(m["loss"] for m in tr.metrics[-5:]) / 5
    assert last < 0.8 * first
    assert all(math.isfinite(m["grad_norm"]) for m in tr.metrics)
    assert [m["step"] for m in tr.metrics] == list(range(10, 201, 10))


@pytest.mark.parametrize("target", ["epsilon", "sample", "v_prediction"])
def test_every_prediction_target_trains(target):
    tr = _trainer(prediction_type=target, continuous_time=target != "sample")
    tr.train(60)
    assert tr.metrics[-1]["loss"] < tr.metrics[0]["loss"]


def test_same_seed_same_run():
    a, b = _trainer(seed=3), _trainer(seed=3)
    a.train(30)
    b.train(30)
    assert [m["loss"] for m in a.metrics] == [m["loss"] for m in b.metrics]


def test_an_interrupted_run_is_consistent_and_resumes_with_the_same_optimizer():
    class Stop(Exception):
        pass

    def stop_at_40(tr):
        if tr.step == 40:
            raise Stop

    tr = _trainer()
    with pytest.raises(Stop):
        tr.train(100, stop_at_40, every=10)
    assert tr.step == 40 and not tr.model.training
    assert int(tr.optimizer.state[tr.optimizer.param_groups[0]["params"][0]]["step"]) == 40
    tr.train(20)
    assert tr.step == 60 and tr.metrics[-1]["step"] == 60
    assert int(tr.optimizer.state[tr.optimizer.param_groups[0]["params"][0]]["step"]) == 60


def test_ema_weights_lag_the_model_and_are_used_for_sampling():
    tr = _trainer(ema_decay=0.9)
    tr.train(30)
    assert tr.sampling_model is tr.ema
    assert not all(torch.equal(p, q) for p, q in zip(tr.model.parameters(), tr.ema.parameters(), strict=True))
    assert _trainer(ema_decay=None).sampling_model is not None


def test_flat_parameters_are_views_of_one_buffer():
    model = build_mlp(MLPConfig(dim=2, width=8, depth=1))
    before = [p.detach().clone() for p in model.parameters()]
    flat, grad = flatten_parameters(model)
    assert flat.numel() == sum(p.numel() for p in before)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), before, strict=True))
    with torch.no_grad():
        flat.add_(1.0)
    assert torch.equal(next(model.parameters()), before[0] + 1)
    model(torch.randn(3, 2), torch.ones(3)).sum().backward()
    assert grad.abs().sum() > 0 and torch.equal(model.out.bias.grad, torch.ones(2) * 3)


def test_alpha_bar_is_exact_at_training_steps_and_the_lr_schedules():
    tr = _trainer(lr_schedule="cosine", warmup_steps=10, lr_min_ratio=0.0)
    t = torch.tensor([0.0, 17.0, 99.0])
    assert tr.alpha_bar(t).double().allclose(tr.schedule.alphas_cumprod[[0, 17, 99]], rtol=1e-5)
    tr.train(1)
    tr._cycle = (0, 101)
    assert tr.lr_at(0) == pytest.approx(1e-3)  # warm-up: 1/10 of the peak
    assert tr.lr_at(9) == pytest.approx(1e-2 * 0.5 * (1 + math.cos(math.pi * 9 / 100)))
    assert tr.lr_at(50) == pytest.approx(5e-3) and tr.lr_at(100) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(BadInputError):
        TrainConfig(lr_schedule="step")
    with pytest.raises(BadInputError):
        tr.train(0)


def test_a_diverging_run_stops_with_a_sentence_and_keeps_its_last_good_weights():
    points = get_toy_set("moons").cloud(256, seed=0).points.float()
    data = points.clone()
    model = build_mlp(MLPConfig(dim=2, width=16, depth=1, num_steps=100))
    tr = DiffusionTrainer(model, make_schedule("linear", 100), TrainConfig(batch_size=64), tensor_batches(data))
    tr.train(20)
    good = {k: v.clone() for k, v in tr.model.state_dict().items()}
    data.fill_(float("inf"))  # what an overflow looks like to the loss
    with pytest.raises(BadInputError, match="diverged at step 21"):
        tr.train(20)
    assert tr.step == 20
    assert all(torch.equal(v, good[k]) for k, v in tr.model.state_dict().items())
    data.copy_(points)  # the run can go on once the cause is gone
    tr.train(10)
    assert tr.step == 30 and math.isfinite(tr.metrics[-1]["loss"])
