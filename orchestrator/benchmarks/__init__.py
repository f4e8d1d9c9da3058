"""Benchmark modules for ``python -m orchestrator.bench``."""
