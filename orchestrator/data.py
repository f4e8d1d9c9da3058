"""Data-set command line: convert real features, generate simulated presets, inspect files.

Usage::

    python -m orchestrator.data convert-llp --feats DIR --annotations DIR --out DIR \\
        [--no-average-frames] [--float16]
    python -m orchestrator.data make-sim PRESET --out DIR [--seed N]
    python -m orchestrator.data convert-avar --feats DIR --labels CSV --out DIR
    python -m orchestrator.data export-llp DATASET --out DIR
    python -m orchestrator.data info PATH

Errors go to stderr with exit code 2; no partial output is left behind.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def _convert_llp(args: argparse.Namespace) -> int:
    from trainables.tasks.avvp.llp import convert_llp

    t0 = time.perf_counter()
    path = convert_llp(
        args.feats, args.annotations, args.out,
        average_frames=not args.no_average_frames, float16=args.float16, workers=args.workers,
    )
    _print_info(path)
    print(f"wrote {path} in {time.perf_counter() - t0:.1f} s")
    return 0


def _make_sim(args: argparse.Namespace) -> int:
    from trainables.data.registry import make_preset

    t0 = time.perf_counter()
    path = make_preset(args.preset, Path(args.out), seed=args.seed)
    _print_info(path)
    print(f"wrote {path} in {time.perf_counter() - t0:.1f} s")
    return 0


def _convert_avar(args: argparse.Namespace) -> int:
    from trainables.tasks.avar.data import convert_avar

    t0 = time.perf_counter()
    path = convert_avar(Path(args.feats), Path(args.labels), Path(args.out))
    _print_info(path)
    print(f"wrote {path} in {time.perf_counter() - t0:.1f} s")
    return 0


def _export_llp(args: argparse.Namespace) -> int:
    from trainables.tasks.avvp.llp_export import export_llp
    from trainables.data.registry import resolve_data

    t0 = time.perf_counter()
    src = Path(args.dataset) if Path(args.dataset).exists() else resolve_data(args.dataset)
    out = export_llp(src, Path(args.out))
    print(f"wrote the official LLP layout of {args.dataset} to {out} in "
          f"{time.perf_counter() - t0:.1f} s")
    return 0


def _print_info(path) -> None:
    from trainables.data.format import data_file, fingerprint, read_meta

    f = data_file(path)
    meta = read_meta(f)
    print(f"{f}  ({f.stat().st_size / 2**20:.1f} MiB, fingerprint {fingerprint(f)})")
    print(json.dumps(meta, indent=2, sort_keys=True))


def _info(args: argparse.Namespace) -> int:
    _print_info(args.path)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m orchestrator.data`` argument parser."""
    p = argparse.ArgumentParser(prog="python -m orchestrator.data", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("convert-llp", help="convert the official LLP features + annotation CSVs")
    c.add_argument("--feats", required=True, help="directory with vggish/, res152/, r2plus1d_18/")
    c.add_argument("--annotations", required=True, help="directory with the official AVVP_*.csv files")
    c.add_argument("--out", required=True, help="output directory")
    c.add_argument("--no-average-frames", action="store_true",
                   help="keep res152's 8 frames per segment (8x larger; averaging is exact for HAN)")
    c.add_argument("--float16", action="store_true", help="store features as float16")
    c.add_argument("--workers", type=int, default=16, help="threads for loading .npy files")
    c.set_defaults(func=_convert_llp)

    m = sub.add_parser("make-sim", help="generate a simulated data set preset")
    m.add_argument("preset", help="llp-sim, llp-sim-small, llp-sim-tiny, avar-sim, avar-sim-small, avar-sim-tiny")
    m.add_argument("--out", required=True, help="output directory")
    m.add_argument("--seed", type=int, default=0)
    m.set_defaults(func=_make_sim)

    a = sub.add_parser("convert-avar", help="convert audio-visual action-recognition features")
    a.add_argument("--feats", required=True)
    a.add_argument("--labels", required=True, help="labels CSV")
    a.add_argument("--out", required=True)
    a.set_defaults(func=_convert_avar)

    e = sub.add_parser("export-llp", help="write an AVVP data set in the official LLP layout "
                       "(per-video .npy features and the five CSVs), for other AVVP codebases")
    e.add_argument("dataset", help="llp-sim, llp-sim-small, llp-sim-tiny, llp=PATH or a data set directory")
    e.add_argument("--out", required=True, help="output directory (must not exist or be empty)")
    e.set_defaults(func=_export_llp)

    i = sub.add_parser("info", help="print a data set's metadata")
    i.add_argument("path", help="data set directory or avtune.parquet")
    i.set_defaults(func=_info)
    return p


def main(argv: list[str] | None = None) -> int:
    """Runs the CLI; returns the exit code (0 ok, 2 on any input error)."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, OSError, KeyError, ImportError) as e:
        # AnnotationError, FeatureError and DataFormatError are ValueErrors with file/line.
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
