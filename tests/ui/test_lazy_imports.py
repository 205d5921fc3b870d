"""What the app imports, for a server with 1 GB (issue 33): the shell and the Home page import none of the heavy
libraries that only some pages use, each of those is imported by the function that uses it, and the start-up
warm-up (ui/common/warmup.py) imports them only when the operator leaves ATLAS_WARMUP on. Each check runs in a
fresh Python process: this one has imported everything long ago."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import ROOT

HEAVY = ("diffusers", "scipy", "sklearn", "skimage", "tensorboard")  # ~60-85 MB each, or a slow import


def _fresh(code: str, **env: str) -> dict:
    """Run `code` in a new interpreter at the repository's root and return the JSON it prints last."""
    prelude = (
        "import json, os, sys\nsys.path.insert(0, os.getcwd())\nimport logging\nlogging.disable(logging.WARNING)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        cwd=ROOT,
        env={**os.environ, "HF_HUB_OFFLINE": "1", **env},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


LOADED = "[m for m in {names!r} if m in sys.modules]"


def test_the_shell_and_sidebar_import_no_heavy_library_not_even_pandas():
    found = _fresh(f"import ui.shell\nprint(json.dumps({LOADED.format(names=(*HEAVY, 'pandas'))}))")
    assert found == []


def test_no_pages_imports_bring_in_scipy_sklearn_skimage_tensorboard_or_diffusers():
    """A page script's imports (not its body, which draws): each library comes with the work that needs it."""
    found = _fresh(
        f"""
        import ast, glob, importlib
        found = {{}}
        for page in sorted(glob.glob("app_pages/*.py")):
            for node in ast.parse(open(page).read()).body:
                if isinstance(node, ast.Import):
                    for alias in node.names:
                        importlib.import_module(alias.name)
                elif isinstance(node, ast.ImportFrom) and node.module:
                    module = importlib.import_module(node.module)
                    for alias in node.names:  # `from ui.toy import state` names a module
                        if not hasattr(module, alias.name):
                            importlib.import_module(node.module + "." + alias.name)
            found[page] = {LOADED.format(names=("scipy", "sklearn", "skimage", "tensorboard", "diffusers"))}
        print(json.dumps(found))
        """
    )
    assert len(found) == 10
    assert {page: loaded for page, loaded in found.items() if loaded} == {}


@pytest.mark.slow
def test_the_entry_point_renders_home_and_the_sidebar_without_them(tmp_path):
    found = _fresh(
        f"""
        from streamlit.testing.v1 import AppTest
        at = AppTest.from_file(os.path.join(os.getcwd(), "streamlit_app.py"), default_timeout=120).run()
        assert not at.exception and at.title[0].value == "Diffusion Atlas", at.exception
        print(json.dumps({LOADED.format(names=HEAVY)}))
        """,
        ATLAS_WARMUP="0",
        HF_HOME=str(tmp_path / "hf"),
    )
    assert found == []


CALLS = [  # module, a call that needs the library, the library
    ("core.labs.ground_truth.mixtures", "fit_mixture(torch.randn(200, 2), 2)", "sklearn"),
    ("core.metrics.kde", "kde_log_density(np.random.default_rng(0).normal(size=(50, 2)), np.zeros((1, 2)))", "scipy"),
    ("core.labs.latent", "manifold_axes(5, 'gaussian')", "scipy"),
    ("core.labs.inversion", "noise_moments(np.random.default_rng(0).normal(size=100))", "scipy"),
    ("ui.common.charts", "ema(np.arange(10.0), 0.9)", "scipy"),
    ("core.runs.tensorboard", "_tb()", "tensorboard"),
    ("core.data.images", "photo('coffee')", "skimage"),
    ("core.models.unet", "build_unet(unet_config())", "diffusers"),
]


@pytest.mark.parametrize(("module", "call", "library"), CALLS, ids=[c[2] + "@" + c[0] for c in CALLS])
def test_a_heavy_library_is_imported_by_the_function_that_uses_it(module, call, library):
    """Importing the module leaves the library out; the call brings it in (so the names checked above are the
    ones these modules really import)."""
    found = _fresh(
        f"""
        import numpy as np, torch
        from {module} import *  # noqa: F403
        from {module} import {call.split("(")[0]}
        before = {library!r} in sys.modules
        {call}
        print(json.dumps([before, {library!r} in sys.modules]))
        """
    )
    assert found == [False, True]


def test_the_warm_up_imports_nothing_when_the_operator_turns_it_off():
    found = _fresh(
        """
        import threading
        from ui.common import warmup
        warmup.start_warmup()
        warmup.wait_for_warmup()
        names = [t.name for t in threading.enumerate()]
        print(json.dumps(["atlas-warmup" in names, [m for m in warmup.MODULES if m in sys.modules]]))
        """,
        ATLAS_WARMUP="0",
    )
    assert found == [False, []]


@pytest.mark.slow
def test_the_warm_up_imports_its_modules_when_left_on():
    found = _fresh(
        """
        from ui.common import warmup
        warmup.start_warmup()
        warmup.wait_for_warmup(300)
        print(json.dumps([m for m in warmup.MODULES if m not in sys.modules]))
        """,
        ATLAS_WARMUP="1",
    )
    assert found == []
