"""Benchmarks: ``python -m orchestrator.bench NAME [options]``.

Each benchmark is a module ``orchestrator/benchmarks/NAME.py`` with ``main(argv) -> int``; its
figures go in issue notes, never in timed tests.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

from orchestrator import benchmarks


def available() -> list[str]:
    """Names of the benchmark modules."""
    return sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__) if not m.name.startswith("_"))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    names = available()
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: python -m orchestrator.bench NAME [options]\n\nbenchmarks: " + ", ".join(names))
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in names:
        print(f"error: unknown benchmark {name!r}; available: {', '.join(names)}", file=sys.stderr)
        return 2
    return int(importlib.import_module(f"orchestrator.benchmarks.{name}").main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
