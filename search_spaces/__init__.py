"""Named sweeps: one module per sweep, each defining ``SPEC``; discovered automatically."""

from __future__ import annotations

import importlib
import pkgutil

from search_spaces.base import SweepSpec


def registry() -> dict[str, SweepSpec]:
    """All named sweeps, by name (modules in this package that define ``SPEC``)."""
    out: dict[str, SweepSpec] = {}
    for m in pkgutil.iter_modules(__path__):
        if m.name.startswith("_") or m.name == "base":
            continue
        spec = getattr(importlib.import_module(f"{__name__}.{m.name}"), "SPEC", None)
        if isinstance(spec, SweepSpec):
            if spec.name in out:
                raise RuntimeError(f"two sweeps are named {spec.name!r}")
            out[spec.name] = spec
    return dict(sorted(out.items()))


def get(name: str) -> SweepSpec:
    """The sweep called ``name``; a clear error listing the known names otherwise."""
    reg = registry()
    if name not in reg:
        raise KeyError(f"unknown sweep {name!r}; known sweeps: {', '.join(reg) or '(none)'}")
    return reg[name]
