"""Named comparisons: one module per comparison, each defining ``SPEC`` (a ``ComparisonSpec``);
``python -m orchestrator.compare --list`` shows them beside the methods."""

from __future__ import annotations

from search_spaces.base import ComparisonSpec
from trainables.core.method import discover_specs


def registry() -> dict[str, ComparisonSpec]:
    """All named comparisons, by name."""
    import search_spaces.comparisons as pkg

    return discover_specs(pkg, "SPEC", ComparisonSpec)
