"""What a sampling job costs and how it is bounded (core/cost.py, core/labs/samplers.py, core/training/budget.py).

An estimate is a model's FLOPs over the speed it reached lately, followed as it runs, so a busy or idle moment does
not stick; an estimate holds no lock while any model is evaluated and never runs a model its FLOPs call slow; a
job stops at the limit per job, between evaluations, keeping the steps and cells it finished. The clock is a fake
one moved by the fake network, so every speed and every stop here is exact, whatever else the machine is doing."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import pytest
import torch

from core import cost
from core.cost import MeteredNetwork
from core.diffusion.denoisers import model_denoiser
from core.diffusion.schedules import NoiseSchedule, make_schedule
from core.errors import BadInputError
from core.labs import compare
from core.labs.samplers import SamplerSettings, run_sampler, sampling_seconds, seconds_per_image
from core.training import budget
from core.training.budget import TimeLimitError

CPU = torch.device("cpu")
FLOPS = 1_000_000  # per image, as the fake network says


class Clock:
    """time.perf_counter and time.monotonic for core/cost.py and core/training/budget.py: moved only by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def perf_counter(self) -> float:
        return self.now

    monotonic = perf_counter


@pytest.fixture(autouse=True)
def _speeds(monkeypatch):
    """Each test starts with no speeds known (they are process-wide)."""
    monkeypatch.setattr(cost, "_rates", {})
    monkeypatch.setattr(cost, "_warm", set())


@pytest.fixture
def clock(monkeypatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(cost, "time", fake)
    monkeypatch.setattr(budget, "time", fake)
    monkeypatch.setattr(cost, "machine_rate", lambda device: 1e9)
    return fake


class ClockedNet(torch.nn.Module):
    """An epsilon network that predicts 0 and takes `seconds_per_image` x batch seconds of the fake clock."""

    def __init__(self, clock: Clock, seconds_per_image: float) -> None:
        super().__init__()
        self.clock, self.seconds_per_image, self.calls, self.batches = clock, seconds_per_image, 0, []

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.batches.append(len(x))
        self.clock.now += self.seconds_per_image * len(x)
        return torch.zeros_like(x)


@dataclass
class Images:
    """An ImageModel of 1 x 4 x 4 images over a network, metered as the zoo's loader meters it (a FLOP count and
    MeteredNetwork), or given as a plain denoiser."""

    name: str
    net: torch.nn.Module | None = None
    plain: object = None
    flops_per_image: int | None = FLOPS
    schedule: NoiseSchedule = field(default_factory=lambda: make_schedule("linear", 100))
    title: str = "Test images"
    data: str | None = None
    device: torch.device = CPU
    sample_shape: tuple[int, ...] = (1, 4, 4)
    num_classes: int = 0
    null_label: int | None = None

    @property
    def denoiser(self):
        if self.plain is not None:
            return self.plain
        return model_denoiser(MeteredNetwork(self.net, self.name, self.flops_per_image), self.schedule, "epsilon")


def test_an_estimate_is_the_flops_over_the_speed_the_model_reached_lately(clock, monkeypatch):
    net = ClockedNet(clock, 0.01)
    model = Images("clocked", net)
    assert seconds_per_image(model, 4) == pytest.approx(0.01)  # measured: a warm-up call, then one timed call
    assert net.calls == 2
    assert seconds_per_image(model, 4) == pytest.approx(0.01) and net.calls == 2  # fresh: nothing evaluated
    # A busy moment: every evaluation of a job feeds the average, which follows it.
    net.seconds_per_image = 1.0
    run_sampler(model, SamplerSettings(sampler="euler", steps=20, batch=4, clip=False))
    fast, slow, kept = FLOPS / 0.01, FLOPS / 1.0, (1 - cost.WEIGHT) ** 20
    assert seconds_per_image(model, 4) == pytest.approx(FLOPS / (kept * fast + (1 - kept) * slow))
    assert seconds_per_image(model, 4) > 0.5 and net.calls == 22
    assert sampling_seconds(model, SamplerSettings(sampler="euler", steps=20, batch=4)) == pytest.approx(
        4 * 20 * seconds_per_image(model, 4)
    )
    # ... and does not stick: once nothing has fed it for FRESH_S, it is measured again (warm now: one call).
    net.seconds_per_image = 0.01
    clock.now += cost.FRESH_S + 1
    assert seconds_per_image(model, 4) == pytest.approx(0.01) and net.calls == 23
    # Other batch sizes are followed on their own (small batches reach fewer FLOP/s).
    net.seconds_per_image = 0.05
    assert seconds_per_image(model, 1) == pytest.approx(0.05) and net.calls == 25


def test_a_model_is_timed_at_a_batch_its_flops_say_is_quick(clock):
    """At the machine's 1 GFLOP/s, 64 images of 100 MFLOP are 6.4 s a call: it is timed at 5 images (0.5 s)."""
    net = ClockedNet(clock, 0.02)
    model = Images("probed", net, flops_per_image=10**8)
    assert seconds_per_image(model, 64) == pytest.approx(0.02) and net.batches == [5, 5]
    assert seconds_per_image(model, 64) == pytest.approx(0.02) and net.calls == 2  # the batch of 5's, still fresh
    run_sampler(model, SamplerSettings(sampler="euler", steps=2, batch=64, clip=False))  # the job, at its batch
    assert cost.model_rate(model.name, CPU, 64) == pytest.approx(10**8 / 0.02)


def test_a_model_its_flops_call_slow_is_never_evaluated_to_estimate_it(monkeypatch):
    monkeypatch.setattr(cost, "machine_rate", lambda device: 1e10)
    calls = []
    huge = Images("huge", plain=lambda x, sigma: calls.append(len(x)) or x, flops_per_image=10**15)
    assert seconds_per_image(huge, 2) == pytest.approx(1e5)  # 1 PFLOP at the machine's 10 GFLOP/s
    with pytest.raises(BadInputError, match="over its limit"):
        compare.plan_work([huge], ["euler"], [2], SamplerSettings(batch=1))
    assert calls == []


def test_the_machines_speed_is_measured_briefly_then_follows_every_models_evaluations():
    rate = cost.machine_rate(CPU)  # none lately: a few reference convolutions
    assert rate > 1e6 and cost.machine_rate(CPU) == rate  # kept while fresh
    for _ in range(2):  # the first is a warm-up
        cost.observe("any-model", CPU, 1, 1e6, 1.0)
    assert cost.machine_rate(CPU) == pytest.approx((1 - cost.WEIGHT) * rate + cost.WEIGHT * 1e6)


def test_an_estimate_waits_for_no_other_sessions_evaluation():
    """The issue's stall: timing one visitor's slow model held a lock every other estimate took."""
    inside, release = threading.Event(), threading.Event()

    def stuck(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        inside.set()
        release.wait(60)
        return x

    slow = Images("stuck", plain=stuck, flops_per_image=None)  # not counted: it is timed
    quick = Images("quick", plain=lambda x, sigma: x * 0, flops_per_image=None)
    first = threading.Thread(target=seconds_per_image, args=(slow,), daemon=True)
    first.start()
    try:
        assert inside.wait(60)
        answered = []
        second = threading.Thread(target=lambda: answered.append(seconds_per_image(quick)), daemon=True)
        second.start()
        second.join(60)
        assert answered and answered[0] >= 0  # while the first is still inside its model
        assert first.is_alive()
    finally:
        release.set()
        first.join(60)


def test_a_run_stops_at_the_limit_per_job_keeping_the_steps_done(clock, monkeypatch):
    monkeypatch.setenv("ATLAS_MAX_JOB_SECONDS", "1")
    net = ClockedNet(clock, 0.3)
    steps, frames = [], []
    settings = SamplerSettings(sampler="euler", steps=20, batch=1, clip=False)
    model = Images("limited", net)
    with pytest.raises(TimeLimitError, match=r"limit of 1 s per job .* what it finished is kept"), budget.limited():
        run_sampler(model, settings, on_frame=frames.append, every=1, on_step=steps.append)
    assert steps == [0, 1, 2, 3] and [f.index for f in frames] == steps  # 1.2 s after step 4: stopped there
    assert net.calls == 4  # no evaluation after the limit
    assert run_sampler(model, settings).images.shape == (1, 1, 4, 4)  # outside a job (the command line): no limit
    assert net.calls == 4 + 20


def test_the_cells_of_a_comparison_share_one_deadline(clock, monkeypatch):
    monkeypatch.setenv("ATLAS_MAX_JOB_SECONDS", "1")
    net = ClockedNet(clock, 0.15)
    model = Images("cells", net)
    cost.observe(model.name, CPU, 2, 1e15, 1.0)
    cost.observe(model.name, CPU, 2, 1e15, 1.0)  # a known speed: the plan evaluates nothing
    cells, kept = compare.compare_cells([model], ["euler"], [3, 4], SamplerSettings(batch=2, clip=False)), []
    with pytest.raises(TimeLimitError), budget.limited():  # as the page consumes them
        for cell in cells:
            kept.append(cell)
    assert [c.steps for c in kept] == [3] and kept[0].images.shape == (2, 1, 4, 4)  # 3 steps of 0.3 s: 0.9 s
    assert net.calls == 3 + 1  # a deadline per cell would have let the second one finish


def test_a_zoo_network_checks_the_deadline_of_the_job_it_runs_in(clock, monkeypatch):
    """Work that runs a model outside run_sampler (an inversion's round trips) is bounded once its page runs it
    as a job (budget.limited): the metered network checks before each evaluation."""
    monkeypatch.setenv("ATLAS_MAX_JOB_SECONDS", "1")
    net = ClockedNet(clock, 0.6)
    denoiser = Images("rows", net).denoiser
    x, sigma = torch.zeros(1, 1, 4, 4), torch.ones(1)
    with budget.limited():
        denoiser(x, sigma)
        denoiser(x, sigma)  # 0.6 s in when it starts
        with pytest.raises(TimeLimitError):
            denoiser(x, sigma)
    assert net.calls == 2
    denoiser(x, sigma)  # outside a job nothing is bounded
    assert net.calls == 3


def test_the_chunks_of_sample_many_share_one_deadline(clock, monkeypatch):
    monkeypatch.setattr(compare, "CHUNK", 2)
    monkeypatch.setenv("ATLAS_MAX_JOB_SECONDS", "1")
    net = ClockedNet(clock, 0.15)
    progress = []
    settings = SamplerSettings(sampler="euler", steps=2, clip=False)
    with pytest.raises(TimeLimitError), budget.limited():  # chunks of 2 images x 2 steps: 0.6 s each
        compare.sample_many(Images("chunks", net), settings, 8, progress.append)
    assert net.calls == 4 and progress[-1] == pytest.approx(0.5)  # stopped after the second chunk's last step


def test_speeds_are_kept_per_model_device_kind_and_batch_bucket():
    assert [cost.bucket(b) for b in (1, 2, 3, 4, 7, 8, 64, 100)] == [1, 2, 2, 4, 4, 8, 64, 64]
    cost.observe("bucketed", "cuda:0", 5, 4e9, 1.0)  # a warm-up: not counted
    assert cost.model_rate("bucketed", "cuda", 4) is None
    cost.observe("bucketed", "cuda:0", 5, 4e9, 1.0)
    assert cost.model_rate("bucketed", "cuda", 6) == pytest.approx(4e9)  # the same kind and bucket
    assert cost.model_rate("bucketed", "cuda", 8) is None and cost.model_rate("bucketed", "cpu", 4) is None
