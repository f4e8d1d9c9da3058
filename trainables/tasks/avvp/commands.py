"""The AVVP task's data commands (``python -m orchestrator.data COMMAND``): converting real LLP
features, adding CLIP/CLAP teacher embeddings or VALOR's released pseudo labels, exporting the
official layout.

A command's ``func(args)`` returns the data set it wrote (the CLI prints its description) or an
exit status; its errors are ``ValueError``/``OSError`` naming the file, which the CLI reports with
exit status 2 (nothing is written on failure).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def _convert_llp(args: argparse.Namespace) -> Path:
    from trainables.tasks.avvp.llp import convert_llp

    return convert_llp(args.feats, args.annotations, args.out, average_frames=not args.no_average_frames,
                       float16=args.float16, workers=args.workers)


def _convert_teachers(args: argparse.Namespace) -> Path:
    from trainables.data.registry import resolve_data
    from trainables.tasks.avvp.teacher_data import convert_teachers

    models = {m: v for m, v in (("visual", args.visual_model), ("audio", args.audio_model)) if v}
    return convert_teachers(resolve_data(args.dataset), Path(args.out), visual_dir=args.visual,
                            audio_dir=args.audio, text=args.text, models=models, as_inputs=args.as_inputs)


def _convert_valor(args: argparse.Namespace) -> Path:
    from trainables.data.registry import resolve_data
    from trainables.tasks.avvp.valor_layout import convert_valor

    src = Path(args.dataset) if Path(args.dataset).exists() else resolve_data(args.dataset)
    return convert_valor(src, Path(args.root), Path(args.out), features=args.features,
                         mask_to_weak=args.mask_to_weak)


def _export_llp(args: argparse.Namespace) -> int:
    import time

    from trainables.data.registry import resolve_data
    from trainables.tasks.avvp.llp_export import export_llp

    t0 = time.perf_counter()
    src = Path(args.dataset) if Path(args.dataset).exists() else resolve_data(args.dataset)
    out = export_llp(src, Path(args.out))
    print(f"wrote the official LLP layout of {args.dataset} to {out} in {time.perf_counter() - t0:.1f} s")
    return 0


def register(sub) -> None:
    """Adds the AVVP commands to the data CLI's subparsers."""
    c = sub.add_parser("convert-llp", help="convert the official LLP features + annotation CSVs")
    c.add_argument("--feats", required=True, help="directory with vggish/, res152/, r2plus1d_18/")
    c.add_argument("--annotations", required=True, help="directory with the official AVVP_*.csv files")
    c.add_argument("--out", required=True, help="output directory")
    c.add_argument("--no-average-frames", action="store_true",
                   help="keep res152's 8 frames per segment (8x larger; averaging is exact for models "
                        "that average frames first)")
    c.add_argument("--float16", action="store_true", help="store features as float16")
    c.add_argument("--workers", type=int, default=16, help="threads for loading .npy files")
    c.set_defaults(func=_convert_llp)

    t = sub.add_parser("convert-teachers", help="add CLIP/CLAP segment embeddings (per-video .npy, "
                       "(10, D)) and class text embeddings (.npz) to an AVVP data set (teacher columns "
                       "for pseudo-label methods)")
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

    v = sub.add_parser("convert-valor", help="add VALOR's released segment pseudo labels "
                       "(<root>/{CLIP,CLAP}/segment_pseudo_labels/<id>.npy, (10, 25) 0/1) to an AVVP "
                       "data set (columns pseudo_visual/pseudo_audio)")
    v.add_argument("dataset", help="llp=PATH, llp-sim-small, ... or a data set directory (the data set to extend)")
    v.add_argument("--root", required=True, help="the release's root, holding CLIP/ and CLAP/")
    v.add_argument("--features", action="store_true",
                   help="also make CLIP/features (10, 768) and CLAP/features (64, 768, resampled to "
                        "10 segments) the visual/audio inputs (VALOR++)")
    v.add_argument("--mask-to-weak", action="store_true",
                   help="drop positive labels outside a video's weak labels instead of refusing them")
    v.add_argument("--out", required=True, help="output directory")
    v.set_defaults(func=_convert_valor)
