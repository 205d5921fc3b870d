"""A sampler's maths (its docstring) and code (its source, minus the docstring) for the page."""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections import Counter
from collections.abc import Callable, Iterable

import streamlit as st


def source_without_docstring(fn: Callable) -> str:
    """The function's source as it runs, with the docstring left out (the page shows it as maths)."""
    source = textwrap.dedent(inspect.getsource(fn))
    node = ast.parse(source).body[0]
    body = getattr(node, "body", [])
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
        lines = source.splitlines()
        first, last = body[0].lineno - 1, body[0].end_lineno
        source = "\n".join(lines[:first] + lines[last:])
    return source


def code_shown(fn: Callable, others: dict[str, Callable]) -> str:
    """The sampler's code as it runs: its source and, when its body only returns another sampler's result (DDIM is
    Euler ancestral with its own default eta), that sampler's source after it; then the functions of its module
    that it calls and few other samplers do (UniPC's step and its weights, DEIS's coefficients), each once."""
    source = source_without_docstring(fn)
    body = [n for n in ast.parse(source).body[0].body if not isinstance(n, ast.Pass)]
    call = body[0].value if len(body) == 1 and isinstance(body[0], ast.Return) else None
    called = getattr(getattr(call, "func", None), "id", None) if isinstance(call, ast.Call) else None
    if called in others and others[called] is not fn:
        source += f"\n\n# ... whose update is {called}'s:\n" + source_without_docstring(others[called])
    common = _shared_calls(others.values())
    for helper in _helpers(source, inspect.getmodule(fn), set(common) | set(others)):
        source += f"\n\n# ... and the helper it calls, {helper.__name__}:\n" + source_without_docstring(helper)
    return source


SHARED = 3  # a helper that more samplers than this call is plumbing (reporting a step, fresh noise), not shown


def _calls(source: str) -> set[str]:
    return {
        node.func.id
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }


def _shared_calls(samplers: Iterable[Callable]) -> set[str]:
    """The functions that more than SHARED of the samplers call."""
    counts = Counter(name for fn in samplers for name in _calls(source_without_docstring(fn)))
    return {name for name, n in counts.items() if n > SHARED}


def _helpers(source: str, module: object, seen: set[str]) -> list[Callable]:
    """The module's own functions that `source` calls (not those in `seen`), then theirs, each once."""
    found = []
    for name in sorted(_calls(source) - seen):
        helper = getattr(module, name, None)
        if inspect.isfunction(helper) and helper.__module__ == getattr(module, "__name__", None):
            seen.add(name)
            found.append(helper)
            found += _helpers(source_without_docstring(helper), module, seen)
    return found


def doc_parts(doc: str) -> list[tuple[str, str]]:
    """Split a docstring into ("text", markdown) and ("math", latex) parts at its $$...$$ blocks."""
    parts: list[tuple[str, str]] = []
    for k, chunk in enumerate(inspect.cleandoc(doc).split("$$")):
        if chunk.strip():
            parts.append(("math" if k % 2 else "text", chunk.strip()))
    return parts


def show_maths(doc: str) -> None:
    for kind, content in doc_parts(doc):
        if kind == "math":
            st.latex(content)
        else:
            st.markdown(content)
