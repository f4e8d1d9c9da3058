"""Named sweeps: one module per sweep, each defining ``SPEC``; discovered automatically."""

from __future__ import annotations

from search_spaces.base import SweepSpec
from trainables.core.method import discover_specs


def registry() -> dict[str, SweepSpec]:
    """All named sweeps, by name (modules in this package that define ``SPEC``)."""
    import search_spaces

    return discover_specs(search_spaces, "SPEC", SweepSpec, skip=("base", "comparisons"))


def get(name: str) -> SweepSpec:
    """The sweep called ``name``; a clear error listing the known names otherwise."""
    reg = registry()
    if name not in reg:
        raise KeyError(f"unknown sweep {name!r}; known sweeps: {', '.join(reg) or '(none)'}")
    return reg[name]
