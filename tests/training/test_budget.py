"""The server's time budget for training jobs on the pages (core/training/budget.py): estimated before the
job starts, refused over the limit with a sentence, and nothing trained or replaced when refused."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest
import torch

from core.data.toy import get_toy_set
from core.errors import AtlasError, BadInputError
from core.labs.latent import LatentTrainer, LatentTrainSettings, vae_training_seconds
from core.labs.toy import ToyRun, ToySettings, training_seconds
from core.models.mlp import MLPConfig, build_mlp, parameter_count
from core.training import budget
from core.training.vae import VAETrainConfig

PAGE_LIMITS = ToySettings(width=512, depth=8, batch_size=4096)  # the toy lab's largest choices


def test_limit_comes_from_the_environment_with_a_safe_default(monkeypatch):
    monkeypatch.delenv("ATLAS_MAX_JOB_SECONDS", raising=False)
    assert budget.max_job_seconds() == 300.0
    monkeypatch.setenv("ATLAS_MAX_JOB_SECONDS", "42.5")
    assert budget.max_job_seconds() == 42.5
    for bad in ("abc", "", "nan", "inf", "-inf"):
        monkeypatch.setenv("ATLAS_MAX_JOB_SECONDS", bad)
        assert budget.max_job_seconds() == 300.0
    monkeypatch.setenv("ATLAS_MAX_JOB_SECONDS", "-5")
    assert budget.max_job_seconds() == 1.0


def test_estimate_is_linear_in_steps_and_grows_with_batch_and_network():
    a, b = budget.step_cost()
    assert a >= 0 and b > 0
    one = budget.estimate_seconds(1000, 512, 20_000)
    assert budget.estimate_seconds(3000, 512, 20_000) == pytest.approx(3 * one)
    assert budget.estimate_seconds(1000, 4096, 20_000) > one
    assert budget.estimate_seconds(1000, 512, 2_000_000) > one


def test_parameter_count_matches_the_built_network():
    config = MLPConfig(dim=3, width=48, depth=2, num_classes=10)
    assert parameter_count(config) == sum(p.numel() for p in build_mlp(config, seed=3).parameters())


def test_check_passes_what_fits_and_refuses_the_rest_with_what_to_lower(monkeypatch):
    monkeypatch.setenv("ATLAS_MAX_JOB_SECONDS", "60")
    assert budget.check(59.0, "training") == 59.0
    with pytest.raises(BadInputError, match=r"about 2\.0 min .* limit of 60 s .* fewer steps"):
        budget.check(120.0, "training")
    assert [budget.describe(s) for s in (12.4, 210, 72_000)] == ["12 s", "3.5 min", "20 h"]


def test_toy_run_at_the_pages_limits_is_refused_before_a_single_step():
    cloud = get_toy_set("moons").cloud(1000, seed=0)
    steps = 20_000
    assert training_seconds(PAGE_LIMITS, 2, steps) > 20 * budget.max_job_seconds()  # hours of a shared core
    run = ToyRun(cloud, PAGE_LIMITS)
    before = [p.detach().clone() for p in run.trainer.model.parameters()]
    with pytest.raises(BadInputError, match="over its limit"):
        run.train(steps)
    assert run.step == 0 and not run.trainer.metrics
    assert all(torch.equal(p, q) for p, q in zip(before, run.trainer.model.parameters(), strict=True))


def test_toy_run_within_the_budget_trains(monkeypatch):
    cloud = get_toy_set("moons").cloud(500, seed=0)
    run = ToyRun(cloud, ToySettings(width=32, batch_size=64))
    monkeypatch.setenv("ATLAS_MAX_JOB_SECONDS", str(10 * training_seconds(run.settings, 2, 30)))
    run.train(30)
    assert run.step == 30


def test_latent_trainer_is_refused_before_it_is_built(monkeypatch):
    z, labels = torch.randn(300, 2).numpy(), torch.randint(0, 10, (300,)).numpy()
    settings = LatentTrainSettings(steps=500)
    monkeypatch.setenv("ATLAS_MAX_JOB_SECONDS", str(settings.seconds() / 2))
    with pytest.raises(BadInputError, match="over its limit"):
        LatentTrainer(z, labels, settings, "latent-x")
    monkeypatch.setenv("ATLAS_MAX_JOB_SECONDS", str(settings.seconds() * 2))
    assert LatentTrainer(z, labels, settings, "latent-x").trainer.step == 0


def test_vae_estimate_counts_whole_batches_of_each_pass():
    config = VAETrainConfig(epochs=3, batch_size=100)
    assert config.total_steps(450) == 12 and config.total_steps(50) == 3  # a pass is at least one step
    assert vae_training_seconds(config, 450, 10_000) == pytest.approx(budget.estimate_seconds(12, 100, 10_000))


def test_a_deadline_is_armed_for_the_code_it_encloses_and_shared_by_a_jobs_parts(monkeypatch):
    monkeypatch.setenv("ATLAS_MAX_JOB_SECONDS", "42")
    assert budget.current_deadline() is None
    budget.check_deadline()  # outside a job: nothing to check
    with budget.limited() as job:
        assert job.limit == 42 and budget.current_deadline() is job
        with budget.limited() as part:  # a part of the job (a comparison's run) shares its deadline
            assert part is job
        own = budget.Deadline(5)
        with budget.limited(own):
            assert budget.current_deadline() is own
        assert budget.current_deadline() is job
        seen = []
        other = threading.Thread(target=lambda: seen.append(budget.current_deadline()))  # another session's thread
        other.start()
        other.join()
        assert seen == [None]
    assert budget.current_deadline() is None


def test_a_deadline_past_its_limit_stops_the_job_with_a_sentence(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(budget, "time", SimpleNamespace(perf_counter=lambda: clock[0]))
    deadline = budget.Deadline(90)
    clock[0] += 90
    deadline.check()  # at the limit: not past it
    clock[0] += 0.5
    assert deadline.passed()
    stopped = r"limit of 1\.5 min per job .* what it finished is kept"
    with pytest.raises(budget.TimeLimitError, match=stopped), budget.limited(deadline):
        budget.check_deadline()
    assert isinstance(budget.TimeLimitError("x"), AtlasError)  # the pages show it as a sentence
