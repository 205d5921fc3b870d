"""A sampler's maths (its docstring) and code (its source, minus the docstring) for the page."""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable

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
    Euler ancestral with its own default eta), that sampler's source after it."""
    source = source_without_docstring(fn)
    body = [n for n in ast.parse(source).body[0].body if not isinstance(n, ast.Pass)]
    call = body[0].value if len(body) == 1 and isinstance(body[0], ast.Return) else None
    called = getattr(getattr(call, "func", None), "id", None) if isinstance(call, ast.Call) else None
    if called in others and others[called] is not fn:
        source += f"\n\n# ... whose update is {called}'s:\n" + source_without_docstring(others[called])
    return source


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
