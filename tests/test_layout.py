"""The layout's rules (DESIGN.md): imports run app_pages -> ui -> zoo -> core and never back up, with no circle
anywhere (deferred imports included); a page's ui folder takes shared pieces from ui/common, never from another
page's folder; core and zoo never import streamlit; pages stay widgets and layout; the server's code never seeds
torch's global RNG."""

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


def _modules() -> dict[str, object]:
    """Every module of ours by dotted name ("core.runs.record"; a package by its folder's name)."""
    found = {}
    for layer in LAYERS:
        for path in (ROOT / layer).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _our_imports(path, modules) -> set[str]:
    """The modules of ours a file imports, anywhere in it (inside functions too): `from a.b import c` counts as
    a.b.c where that is a module, else a.b."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out |= {
                f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module for a in node.names
            }
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
    return out & set(modules)


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


def test_no_module_imports_itself_back_through_others():
    modules = _modules()
    graph = {name: _our_imports(path, modules) - {name} for name, path in modules.items()}
    done: set[str] = set()

    def visit(name: str, trail: list[str]) -> None:
        if name in trail:
            raise AssertionError("import circle: " + " -> ".join([*trail[trail.index(name) :], name]))
        if name in done:
            return
        for other in sorted(graph[name]):
            visit(other, [*trail, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])


def test_page_folders_share_through_ui_common_only():
    modules = _modules()
    pages = {p.name for p in (ROOT / "ui").iterdir() if p.is_dir() and p.name not in ("common", "__pycache__")}
    wrong = {}
    for name, path in modules.items():
        parts = name.split(".")
        if parts[0] == "ui" and len(parts) > 2 and parts[1] in pages:
            others = {
                m for m in _our_imports(path, modules) if m.split(".")[:2] in [["ui", p] for p in pages - {parts[1]}]
            }
            if others:
                wrong[name] = sorted(others)
    assert not wrong, f"a page's folder imports another page's folder (share it through ui/common): {wrong}"
