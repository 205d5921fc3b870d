"""Benchmarks that print tables: `python -m bench.<name>`. Tests never assert on wall time."""

import core  # noqa: F401  (before a bench imports torch: core/__init__.py sets OpenMP's wait policy)
