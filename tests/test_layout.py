"""The layout's rules (DESIGN.md): imports run app_pages -> ui -> zoo -> core and never back up; core and zoo
never import streamlit; pages stay widgets and layout; the server's code never seeds torch's global RNG."""

from __future__ import annotations

import ast
import re

import pytest

from tests.conftest import ROOT

LAYERS = ("core", "zoo", "ui", "app_pages")  # each may import only the ones before it (and itself)
FORBIDDEN = {
    "core": {"zoo", "ui", "app_pages", "streamlit", "streamlit_drawable_canvas", "bench", "tests"},
    "zoo": {"ui", "app_pages", "streamlit", "bench", "tests"},
    "ui": {"app_pages", "bench", "tests"},
    "app_pages": {"bench", "tests"},
}


def _imports(path) -> set[str]:
    """Top-level package names a file imports (anywhere in it, including inside functions)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("layer", LAYERS)
def test_imports_never_climb_back_up(layer):
    wrong = {
        str(path.relative_to(ROOT)): sorted(_imports(path) & FORBIDDEN[layer])
        for path in sorted((ROOT / layer).rglob("*.py"))
        if _imports(path) & FORBIDDEN[layer]
    }
    assert not wrong, f"{layer} may not import these: {wrong}"


def test_every_package_folder_is_a_package_and_every_page_is_listed_once():
    from ui.shell import PAGES

    for layer in ("core", "ui", "zoo"):
        for folder in (ROOT / layer).rglob("*"):
            if folder.is_dir() and any(folder.glob("*.py")):
                assert (folder / "__init__.py").is_file(), folder
    pages = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "app_pages").glob("*.py"))
    assert sorted(p.path for p in PAGES) == pages


def test_pages_are_short_and_server_code_never_seeds_the_global_rng():
    long = {p.name: n for p in (ROOT / "app_pages").glob("*.py") if (n := len(p.read_text().splitlines())) > 120}
    assert not long, f"pages are widgets and layout (about 100 lines): {long}"
    seeding = re.compile(r"\btorch\.manual_seed\(")
    for layer in ("core", "ui", "app_pages"):
        for path in (ROOT / layer).rglob("*.py"):
            assert not seeding.search(path.read_text()), f"{path}: draws take a torch.Generator"
