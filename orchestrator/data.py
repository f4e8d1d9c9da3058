"""Data-set command line: convert real features, generate simulated presets, inspect files.

Usage::

    python -m orchestrator.data convert-llp --feats DIR --annotations DIR --out DIR \\
        [--no-average-frames] [--float16]
    python -m orchestrator.data make-sim PRESET --out DIR [--seed N]
    python -m orchestrator.data convert-avar --feats DIR --labels CSV --out DIR
    python -m orchestrator.data export-llp DATASET --out DIR
    python -m orchestrator.data info PATH [--json]

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


def _convert_teachers(args: argparse.Namespace) -> int:
    from trainables.data.registry import resolve_data
    from trainables.tasks.avvp.teacher_data import convert_teachers

    t0 = time.perf_counter()
    models = {m: v for m, v in (("visual", args.visual_model), ("audio", args.audio_model)) if v}
    path = convert_teachers(resolve_data(args.dataset), Path(args.out), visual_dir=args.visual,
                            audio_dir=args.audio, text=args.text, models=models,
                            as_inputs=args.as_inputs)
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


def _scalar(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_scalar(x) for x in v) + "]"
    if isinstance(v, dict):
        return " ".join(f"{k}={_scalar(x)}" for k, x in v.items())
    return str(v)


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
    _print_info(args.path, as_json=args.json)
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
                   help="keep res152's 8 frames per segment (8x larger; averaging is exact for models that average frames first)")
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

    t = sub.add_parser("convert-teachers", help="add CLIP/CLAP segment embeddings (per-video .npy, "
                       "(10, D)) and class text embeddings (.npz) to an AVVP data set (teacher columns for pseudo-label methods)")
    t.add_argument("dataset", help="llp=PATH, llp-sim-small, ... (the data set to extend)")
    t.add_argument("--visual", help="folder of <video_id>.npy CLIP segment embeddings")
    t.add_argument("--audio", help="folder of <video_id>.npy CLAP segment embeddings")
    t.add_argument("--text", required=True, help=".npz with keys visual/VP1 ..., audio/AP2 ... (25, D)")
    t.add_argument("--visual-model", default="", help="teacher model name to record")
    t.add_argument("--audio-model", default="", help="teacher model name to record")
    t.add_argument("--as-inputs", action="store_true",
                   help="also use the embeddings as the visual/audio input features")
    t.add_argument("--out", required=True, help="output directory")
    t.set_defaults(func=_convert_teachers)

    e = sub.add_parser("export-llp", help="write an AVVP data set in the official LLP layout "
                       "(per-video .npy features and the five CSVs), for other AVVP codebases")
    e.add_argument("dataset", help="llp-sim, llp-sim-small, llp-sim-tiny, llp=PATH or a data set directory")
    e.add_argument("--out", required=True, help="output directory (must not exist or be empty)")
    e.set_defaults(func=_export_llp)

    i = sub.add_parser("info", help="print a data set's metadata (readable; --json for all of it)")
    i.add_argument("path", help="data set directory or avtune.parquet")
    i.add_argument("--json", action="store_true", help="print the whole metadata as JSON")
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
