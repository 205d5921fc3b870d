"""The operator's limits (core/limits.py): each read from the environment at call time, with its floor and its
default for nonsense, and each named in the README; the ones that bound a visitor's input take effect."""

from __future__ import annotations

import re

import pytest

from core import limits
from core.data.images import read_upload
from core.data.points_csv import points_from_csv
from core.data.toy import get_toy_set
from core.errors import BadInputError
from tests.conftest import ROOT

NAMES = re.findall(r"^(ATLAS_[A-Z_]+)\s", limits.__doc__, re.M)
READERS = {  # environment name -> the function that reads it
    name: getattr(limits, fn)
    for name, fn in {
        "ATLAS_MAX_JOB_SECONDS": "max_job_seconds",
        "ATLAS_MAX_DOWNLOAD_MB": "max_download_bytes",
        "ATLAS_MAX_PARAMETERS": "max_parameters",
        "ATLAS_MAX_IMAGE_SIDE": "max_image_side",
        "ATLAS_MAX_GFLOPS_PER_IMAGE": "max_flops_per_image",
        "ATLAS_MAX_UPLOAD_MB": "max_upload_bytes",
        "ATLAS_MAX_CSV_MB": "max_csv_bytes",
        "ATLAS_MAX_POINTS": "max_points",
        "ATLAS_MAX_COMPARE_WORK": "max_compare_work",
        "ATLAS_MAX_QUALITY_WORK": "max_quality_work",
        "ATLAS_MAX_LOG_SCALARS": "max_log_scalars",
        "ATLAS_MAX_LOG_IMAGES": "max_log_images",
        "ATLAS_MAX_LOG_MB": "max_log_bytes",
        "ATLAS_MAX_SESSION_RUNS": "max_session_runs",
        "ATLAS_SESSION_CHECKPOINTS": "session_checkpoints",
        "ATLAS_MEMORY_MB": "memory_limit_mb",
        "ATLAS_CACHE_MINUTES": "cache_seconds",
        "ATLAS_WARMUP": "warmup_imports",
    }.items()
}


def test_every_limit_is_documented_read_and_named_in_the_readme():
    assert sorted(NAMES) == sorted(READERS)
    readme = (ROOT / "README.md").read_text()
    assert [n for n in NAMES if n not in readme] == []


@pytest.mark.parametrize("name", sorted(READERS))
def test_each_limit_follows_the_environment_at_call_time(name, monkeypatch):
    read = READERS[name]
    monkeypatch.delenv(name, raising=False)
    default = read()
    monkeypatch.setenv(name, "nonsense")
    assert read() == default
    monkeypatch.setenv(name, "inf")
    assert read() == default
    monkeypatch.setenv(name, "-1e12")
    floor = read()
    assert 0 <= floor < default or floor == default == 0  # 0: "not set" (ATLAS_MEMORY_MB: the container's)
    monkeypatch.setenv(name, "1e15")
    assert read() > default


def test_lower_upload_limits_refuse_what_the_defaults_accept(monkeypatch):
    data = b"x" * (2 * 2**20)  # 2 MB: over a 1 MB limit before any decoding
    monkeypatch.setenv("ATLAS_MAX_UPLOAD_MB", "1")
    with pytest.raises(BadInputError, match="up to 1 MB"):
        read_upload(data, "big.png")
    monkeypatch.setenv("ATLAS_MAX_CSV_MB", "1")
    with pytest.raises(BadInputError, match="the limit is 1 MB"):
        points_from_csv(b"1,2\n" * (2**20 // 2))


def test_a_lower_point_limit_refuses_a_toy_set_the_default_allows(monkeypatch):
    moons = get_toy_set("moons")
    assert len(moons.cloud(300).points) == 300
    monkeypatch.setenv("ATLAS_MAX_POINTS", "200")
    with pytest.raises(BadInputError, match="between 16 and 200"):
        moons.cloud(300)


def test_too_few_points_get_the_sentence_with_the_limit_in_it():
    from core.labs.toy import ToyRun, ToySettings, run_sampler

    moons = get_toy_set("moons")
    with pytest.raises(BadInputError, match=f"between 16 and {limits.max_points():,}"):
        moons.cloud(3)
    run = ToyRun(moons.cloud(100), ToySettings())
    with pytest.raises(BadInputError, match=f"Sample 1 to {limits.max_points():,} points"):
        run_sampler(run, "euler", 4, 0)
