"""The one learning-rate description every loop uses (against torch's OneCycleLR as an oracle), and seeded
initialisation that leaves the process's RNG alone."""

from __future__ import annotations

import math

import pytest
import torch

from core.errors import BadInputError
from core.models.init import seeded
from core.models.vae import ConvVAE
from core.training.lr import LRSchedule


@pytest.mark.parametrize("total", [3, 10, 37, 420])
def test_one_cycle_is_torchs_one_cycle_lr_step_for_step(total):
    opt = torch.optim.AdamW(torch.nn.Linear(2, 2).parameters(), lr=2e-3)
    oracle = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=total)
    ours = LRSchedule(peak=2e-3, shape="one_cycle")
    for step in range(total):
        group = opt.param_groups[0]
        assert ours.lr(step, length=total) == pytest.approx(group["lr"], rel=1e-12, abs=0)
        assert ours.beta1(step, length=total) == pytest.approx(group["betas"][0], rel=1e-12)
        opt.step()
        oracle.step()


def test_apply_sets_the_rate_and_only_one_cycle_moves_beta1():
    opt = torch.optim.AdamW(torch.nn.Linear(2, 2).parameters(), lr=1.0, betas=(0.9, 0.99))
    assert LRSchedule(peak=0.1, shape="one_cycle").apply(opt, 0, length=100) == pytest.approx(0.1 / 25)
    assert opt.param_groups[0]["betas"] == (pytest.approx(0.95), 0.99)
    LRSchedule(peak=0.1, shape="cosine", warmup_steps=10).apply(opt, 4, length=100)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5 * 0.5 * (1 + math.cos(math.pi * 4 / 99)))
    assert opt.param_groups[0]["betas"][0] == pytest.approx(0.95)  # left as it was
    with pytest.raises(BadInputError, match="Unknown learning-rate schedule"):
        LRSchedule(peak=0.1, shape="step")


def test_seeded_builds_depend_on_the_seed_alone_and_leave_the_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    a, b, c = seeded(7, ConvVAE), seeded(7, ConvVAE, channels=32), seeded(8, ConvVAE)
    assert torch.equal(torch.rand(3), expected)  # nobody else's draws moved
    wa, wb, wc = (next(m.parameters()) for m in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)
