"""Benchmarks: run each as `python -m benchmarks.<name>`; they print tables, not assertions."""
