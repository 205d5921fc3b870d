"""Typed local paths are read only under the allowed roots (core/paths.py), symlinks that escape included."""

from __future__ import annotations

import os

import pytest

from core.paths import resolve_allowed
from core.runs.folders import discover_runs
from tests.helpers import write_long_log
from zoo.errors import BadInputError


@pytest.fixture
def roots(tmp_path, monkeypatch):
    runs, extra, outside = tmp_path / "runs", tmp_path / "shared", tmp_path / "private"
    for folder in (runs, extra, outside):
        folder.mkdir()
    monkeypatch.setenv("ATLAS_RUNS", str(runs))
    monkeypatch.setenv("ATLAS_ALLOWED_ROOTS", str(extra))
    return runs, extra, outside


def test_paths_under_the_roots_are_accepted_and_others_refused(roots):
    runs, extra, outside = roots
    assert resolve_allowed(str(runs)) == runs.resolve()
    assert resolve_allowed(f"  {extra}/sub  ") == (extra / "sub").resolve()  # need not exist yet
    for bad in ("/", "/etc", str(outside), f"{runs}/../private", "~"):
        with pytest.raises(BadInputError, match="reads runs only from"):
            resolve_allowed(bad)
    for bad in ("x" * 10_000, "runs\x00/etc", ""):
        with pytest.raises(BadInputError):
            resolve_allowed(bad)


def test_a_symlink_out_of_a_root_is_refused_and_skipped_when_listing(roots):
    runs, _, outside = roots
    write_long_log(outside / "secret-run", n=3)
    write_long_log(runs / "mine", n=3)
    os.symlink(outside, runs / "door")
    with pytest.raises(BadInputError, match="reads runs only from"):
        resolve_allowed(str(runs / "door"))
    os.symlink(outside / "secret-run", runs / "looks-like-a-run")
    found, notes = discover_runs(runs)
    assert [f.name for f in found] == ["mine"]  # the runs behind the symlinks are not read
    assert sum("leads outside the runs folder" in n for n in notes) == 2
