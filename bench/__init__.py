"""Benchmarks that print tables: `python -m bench.<name>`. Tests never assert on wall time."""
