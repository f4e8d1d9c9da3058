"""Data-set command line: generate simulated presets, inspect files, and each task's own
commands (converting real features, exporting, ...), which the tasks register
(``TASK.commands``), so this module names no task.

Usage::

    python -m orchestrator.data make-sim PRESET --out DIR [--seed N]
    python -m orchestrator.data info PATH|SPEC [--json]
    python -m orchestrator.data COMMAND ...      # a task's: --help lists them

Errors go to stderr with exit code 2; no partial output is left behind.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def _make_sim(args: argparse.Namespace) -> Path:
    from trainables.data.registry import make_preset

    return make_preset(args.preset, Path(args.out), seed=args.seed)


def _scalar(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (list, tuple)):
        if len(v) > 8 or any(isinstance(x, (list, tuple)) for x in v):
            return f"<{_shape(v)} values; info --json prints them>"  # an embedding matrix is data, not a fact
        return "[" + ", ".join(_scalar(x) for x in v) + "]"
    if isinstance(v, dict):
        return " ".join(f"{k}={_scalar(x)}" for k, x in v.items())
    return str(v)


def _shape(v) -> str:
    """A nested list's shape as ``A x B`` (the first element's, for ragged lists)."""
    dims = []
    while isinstance(v, (list, tuple)):
        dims.append(len(v))
        v = v[0] if v else None
    return " x ".join(map(str, dims))


def _wrapped(label: str, items: list[str], width: int = 100, sep: str = "  ") -> list[str]:
    """``label`` then ``items`` joined by ``sep``, wrapped under a 14-column indent."""
    lines, cur = [], ""
    for it in items:
        if cur and 14 + len(cur) + len(sep) + len(it) > width:
            lines.append(cur)
            cur = it
        else:
            cur = f"{cur}{sep}{it}" if cur else it
    lines.append(cur)
    return [f"  {label:<12}{lines[0]}"] + [f"  {'':12}{ln}" for ln in lines[1:]]


def format_info(f: Path, meta: dict, size_mib: float, fp: str) -> str:
    """A data set's metadata as a few labelled lines (``info --json`` prints the raw JSON)."""
    extra = dict(meta.get("extra") or {})
    kind = str(meta.get("kind", "?"))
    if extra.get("preset"):
        kind += f" (preset {extra.pop('preset')})"
    out = [str(f),
           f"  {'kind':<12}{kind}, format version {meta.get('format_version', '?')}",
           f"  {'size':<12}{size_mib:.1f} MiB, fingerprint {fp}"]
    splits = meta.get("splits") or {}
    if splits:
        line = ", ".join(f"{k} {v:,}" for k, v in splits.items())
        truth = sorted(meta.get("truth_splits") or (), key=lambda k: (list(splits).index(k)
                                                                     if k in splits else len(splits), k))
        if truth:
            line += f" (hidden truth: {', '.join(truth)})"
        out.append(f"  {'splits':<12}{line}")
    shapes, dtypes = meta.get("shapes") or {}, meta.get("dtypes") or {}
    if shapes:
        cols = [f"{k} {tuple(v)} {dtypes.get(k, '')}".rstrip() for k, v in shapes.items()]
        out += _wrapped("columns", [c + "," for c in cols[:-1]] + cols[-1:], sep=" ")
    params = dict(meta.get("params") or {})
    nested = {k: params.pop(k) for k in list(params) if isinstance(params[k], dict)}
    if params:
        out += _wrapped("params", [f"{k}={_scalar(v)}" for k, v in params.items()])
    for name, sub in nested.items():
        out += _wrapped(name, [f"{k}={_scalar(v)}" for k, v in sub.items()])
    warnings = extra.pop("warnings", None)
    if extra:
        out += _wrapped("extra", [f"{k}: {_scalar(v)}" for k, v in extra.items()])
    if warnings:
        out.append(f"  {'warnings':<12}{len(warnings)} from conversion:")
        out += [f"  {'':12}- {w}" for w in warnings]
    known = {"kind", "format_version", "splits", "truth_splits", "shapes", "dtypes", "params", "extra"}
    for k in sorted(set(meta) - known):
        out += _wrapped(k, [_scalar(meta[k])])
    return "\n".join(out)


def _print_info(path, as_json: bool = False) -> None:
    from trainables.data.format import data_file, fingerprint, read_meta

    f = data_file(path)
    meta = read_meta(f)
    size, fp = f.stat().st_size / 2**20, fingerprint(f)
    if as_json:
        print(json.dumps({"path": str(f), "size_mib": round(size, 3), "fingerprint": fp, "meta": meta},
                         indent=2, sort_keys=True))
    else:
        print(format_info(f, meta, size, fp))


def _info(args: argparse.Namespace) -> int:
    path = Path(args.path)
    if not path.exists():
        from trainables.data.registry import resolve_data

        path = resolve_data(args.path)  # a data spec: a preset is built on first use
    _print_info(path, as_json=args.json)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m orchestrator.data`` argument parser: the generic commands and every
    task's own."""
    from orchestrator.methods import discover_tasks, load_hook

    p = argparse.ArgumentParser(prog="python -m orchestrator.data", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    m = sub.add_parser("make-sim", help="generate a simulated data set preset")
    m.add_argument("preset", help="a simulated preset, e.g. llp-sim-small or avar-sim-tiny")
    m.add_argument("--out", required=True, help="output directory")
    m.add_argument("--seed", type=int, default=0)
    m.set_defaults(func=_make_sim)
    for task in discover_tasks().values():
        register = load_hook(task.commands)
        if register is not None:
            register(sub)
    i = sub.add_parser("info", help="print a data set's metadata (readable; --json for all of it)")
    i.add_argument("path", help="data set directory, avtune.parquet, or a data spec (built if needed)")
    i.add_argument("--json", action="store_true", help="print the whole metadata as JSON")
    i.set_defaults(func=_info)
    return p


def main(argv: list[str] | None = None) -> int:
    """Runs the CLI; returns the exit code (0 ok, 2 on any input error)."""
    args = build_parser().parse_args(argv)
    t0 = time.perf_counter()
    try:
        out = args.func(args)
        if isinstance(out, Path):  # a data set was written: describe it
            _print_info(out)
            print(f"wrote {out} in {time.perf_counter() - t0:.1f} s")
            return 0
        return int(out or 0)
    except (ValueError, OSError, KeyError, ImportError) as e:
        # AnnotationError, FeatureError and DataFormatError are ValueErrors with file/line.
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
