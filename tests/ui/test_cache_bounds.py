"""Every Streamlit cache of the app is bounded (issue 33: one process with 1 GB serves every visitor): by its number
of entries, and, where its values are large (models, data sets, encoded digits, latent planes, run readers), also by
a time to live, the one ui/common/cache.CACHE_TTL that ATLAS_CACHE_MINUTES sets. Read from the source, so a cache
added anywhere under ui/ or app_pages/ is checked, and must be listed here as large or small."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

LARGE = {  # file::function -> what it holds
    "ui/common/cache.py::_zoo_model": "a zoo model",
    "ui/common/cache.py::_hub_model": "a model from a typed Hub repo",
    "ui/common/cache.py::_local_model": "a local checkpoint",
    "ui/common/cache.py::_posthoc_models": "a run's checkpoint rebuilt at up to 8 post-hoc EMA lengths",
    "ui/common/cache.py::_image_set": "a decoded data set split",
    "ui/common/cache.py::_latent_plane": "the latent model, its VAE and encoded held-out digits",
    "ui/common/cache.py::_training_latents": "encoded training digits",
    "ui/common/cache.py::_digit_features": "a classifier's features of up to 5,000 digits",
    "ui/latent/state.py::_bundled_vae": "the bundled VAE with its snapshots and encoded digits",
    "ui/latent/state.py::densities": "density grids, overall and per class",
    "ui/latent/state.py::_bundled_latent": "the bundled latent model",
    "ui/common/runs.py::_reader": "a run folder's reader (its scalars and images)",
}
SMALL = {
    "ui/inversion/state.py::_fitted": "a few Gaussians fitted to a toy set",
    "ui/compare_checkpoints/state.py::_digits_band": "a reference band: a few numbers",
    "ui/compare_checkpoints/state.py::_digits_prdc": "real digits' precision, recall, density, coverage: a few numbers",
}


def _caches() -> dict[str, ast.Call | None]:
    """file::function -> its st.cache_data / st.cache_resource decorator's call (None: used bare, no arguments)."""
    found: dict[str, ast.Call | None] = {}
    for folder in ("ui", "app_pages"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    continue
                for deco in node.decorator_list:
                    target = deco.func if isinstance(deco, ast.Call) else deco
                    if isinstance(target, ast.Attribute) and target.attr in ("cache_data", "cache_resource"):
                        name = f"{path.relative_to(ROOT).as_posix()}::{node.name}"
                        found[name] = deco if isinstance(deco, ast.Call) else None
    return found


CACHES = _caches()


def _keyword(call: ast.Call | None, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None) if call is not None else None


def test_every_cache_is_listed_as_large_or_small_and_every_listed_one_exists():
    assert sorted(CACHES) == sorted({**LARGE, **SMALL})


@pytest.mark.parametrize("name", sorted(CACHES))
def test_every_cache_has_a_positive_number_of_entries(name):
    entries = _keyword(CACHES[name], "max_entries")
    assert isinstance(entries, ast.Constant) and isinstance(entries.value, int) and entries.value > 0, name


@pytest.mark.parametrize(
    "name",
    sorted(LARGE),
)
def test_every_cache_of_large_values_lives_at_most_the_shared_time(name):
    ttl = _keyword(CACHES.get(name), "ttl")
    shared = (isinstance(ttl, ast.Name) and ttl.id == "CACHE_TTL") or (
        isinstance(ttl, ast.Attribute) and ttl.attr == "CACHE_TTL"
    )
    assert shared, f"{name} ({LARGE[name]}) has no ttl=CACHE_TTL"


def test_the_shared_time_to_live_follows_the_operators_setting():
    """Read once, when the caches are defined: a fresh process for each setting."""

    def ttl(minutes: str | None) -> float:
        env = {k: v for k, v in os.environ.items() if k != "ATLAS_CACHE_MINUTES"}
        if minutes is not None:
            env["ATLAS_CACHE_MINUTES"] = minutes
        code = (
            "import json, sys; sys.path.insert(0, '.'); from ui.common import cache; print(json.dumps(cache.CACHE_TTL))"
        )
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr[-2000:]
        return json.loads(out.stdout.strip().splitlines()[-1])

    assert ttl(None) == 3600
    assert ttl("2") == 120
    assert ttl("0") == 60  # at least a minute
