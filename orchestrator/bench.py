"""Benchmarks: ``python -m orchestrator.bench NAME [options]``.

Benchmarks live beside what they measure and are discovered, like methods and sweeps: a method's
``trainables/methods/<name>/bench.py`` is the benchmark ``<name>``; a task's
``trainables/tasks/<task>/bench_<what>.py`` is the benchmark ``<what>``. Each has
``main(argv) -> int``; its figures go in docs/benchmarks.md beside the command, never in timed
tests.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import sys


def available() -> dict[str, str]:
    """Benchmark name -> module, for every method and task package that has one."""
    import trainables.methods
    import trainables.tasks

    out: dict[str, str] = {}
    for m in pkgutil.iter_modules(trainables.methods.__path__):
        mod = f"trainables.methods.{m.name}.bench"
        if m.ispkg and importlib.util.find_spec(mod) is not None:
            out[m.name] = mod
    for t in pkgutil.iter_modules(trainables.tasks.__path__):
        if not t.ispkg:
            continue
        pkg = importlib.import_module(f"trainables.tasks.{t.name}")
        for b in pkgutil.iter_modules(pkg.__path__):
            if b.name.startswith("bench_"):
                out[b.name.removeprefix("bench_")] = f"{pkg.__name__}.{b.name}"
    return dict(sorted(out.items()))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    found = available()
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: python -m orchestrator.bench NAME [options]\n\nbenchmarks: " + ", ".join(found))
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in found:
        print(f"error: unknown benchmark {name!r}; available: {', '.join(found)}", file=sys.stderr)
        return 2
    return int(importlib.import_module(found[name]).main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
