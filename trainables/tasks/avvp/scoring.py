"""Scores AVVP predictions from any codebase against the official LLP annotations: the AVVP
task's ``scorer`` (``TASK.scorer``), run as

``python -m orchestrator.score --pred FILE --split val|test [--annotations DIR]
[--protocol P] [--threshold 0.5] [--json] [--verbose]``

The official LLP annotation CSVs ship with avtune (``trainables/tasks/avvp/annotations/``), so
``--annotations`` is only needed for another copy of them.

``FILE`` is ``.npz`` or ``.parquet`` holding ``video_ids`` (the CSV filenames; Parquet may call
the column ``video_id``) and either

* binary ``audio`` and ``visual`` shaped (N, 10, 25), or
* probabilities ``frame_prob`` (N, 10, 2, 25; index 0 audio, 1 visual) with the video-level
  arrays the decoding protocol needs (``trainables.tasks.avvp.metrics.PROTOCOL_KEYS``: the
  official codes' two conventions), each (N, 25), decoded with the protocol and threshold.

Parquet tensor columns hold one row per video, as flat lists (250 values for (10, 25)) or nested
lists. Classes follow ``trainables.tasks.avvp.classes.LLP_CLASSES`` (the official code's order). The file
must cover exactly the videos of the split, in any order.

Prints a table of the ten scores, or with ``--json`` one JSON object with keys ``seg_A`` ...
``event_Event``. Bad input exits with status 2 and a message naming the key, file or videos.
This module never imports Ray or MLflow (it runs where only numpy and pyarrow are installed).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from trainables.tasks.avvp.classes import NUM_CLASSES, NUM_SEGMENTS
from trainables.tasks.avvp.metrics import PROTOCOL_KEYS, PROTOCOLS, SCORE_KEYS, avvp_scores, decode

BINARY_KEYS = ("audio", "visual")
PROB_KEYS = ("frame_prob", "a_prob", "v_prob", "global_prob")
SHAPES = {
    "audio": (NUM_SEGMENTS, NUM_CLASSES),
    "visual": (NUM_SEGMENTS, NUM_CLASSES),
    "frame_prob": (NUM_SEGMENTS, 2, NUM_CLASSES),
    "a_prob": (NUM_CLASSES,),
    "v_prob": (NUM_CLASSES,),
    "global_prob": (NUM_CLASSES,),
}
_MAX_NAMED = 5


class ScoreError(ValueError):
    """Invalid predictions or annotations; the message says which file, key or videos."""


def _some(items: Sequence[str]) -> str:
    shown = ", ".join(items[:_MAX_NAMED])
    return shown + (f", ... ({len(items) - _MAX_NAMED} more)" if len(items) > _MAX_NAMED else "")


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            out = {}
            for k in z.files:
                try:
                    out[k] = z[k]
                except ValueError as e:  # object arrays need pickle, which we refuse
                    raise ScoreError(
                        f"{path}: key {k!r} is an object array ({e}); save strings as a str "
                        f"array, e.g. np.array(ids, dtype=str)"
                    ) from e
            return out
    except ScoreError:
        raise
    except Exception as e:  # zipfile/OSError/ValueError for corrupt or non-npz files
        raise ScoreError(f"{path}: cannot read as .npz ({type(e).__name__}: {e})") from e


def _parquet_column(path: Path, table: Any, name: str) -> np.ndarray:
    """One tensor column as ``(N, *SHAPES[name])``, from flat or nested list columns."""
    import pyarrow as pa
    import pyarrow.compute as pc

    col = table.column(name).combine_chunks()
    dims: list[int] = []
    is_list = (pa.types.is_list, pa.types.is_large_list, pa.types.is_fixed_size_list)
    while any(f(col.type) for f in is_list):
        if col.null_count:
            raise ScoreError(f"{path}: column {name!r} has null entries")
        lengths = pc.list_value_length(col).to_numpy(zero_copy_only=False)
        if lengths.size and (lengths != lengths[0]).any():
            raise ScoreError(
                f"{path}: column {name!r} has rows of different lengths "
                f"({int(lengths.min())}..{int(lengths.max())}) at nesting level {len(dims) + 1}"
            )
        dims.append(int(lengths[0]) if lengths.size else 0)
        col = col.flatten()
    if col.null_count:
        raise ScoreError(f"{path}: column {name!r} has null entries")
    want = SHAPES[name]
    n = table.num_rows
    if dims and dims != list(want) and dims != [int(np.prod(want))]:
        raise ScoreError(
            f"{path}: column {name!r} holds {'x'.join(map(str, dims))} values per row, "
            f"expected {want} (nested or flat)"
        )
    try:
        values = col.to_numpy(zero_copy_only=False)
    except Exception as e:
        raise ScoreError(f"{path}: column {name!r} is not numeric ({col.type})") from e
    if not dims:
        return values  # a scalar column; the shape check downstream names it
    return values.reshape(n, *want)


def _load_parquet(path: Path) -> dict[str, np.ndarray]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as e:  # pyarrow raises several types for corrupt files
        raise ScoreError(f"{path}: cannot read as Parquet ({type(e).__name__}: {e})") from e
    out: dict[str, np.ndarray] = {}
    for name in table.column_names:
        if name in ("video_ids", "video_id"):
            out["video_ids"] = np.asarray(table.column(name).to_pylist(), dtype=object)
        elif name in SHAPES:
            out[name] = _parquet_column(path, table, name)
    return out


def load_predictions(path: str | Path) -> dict[str, np.ndarray]:
    """Reads a predictions file (``.npz`` or ``.parquet``) into ``{key: array}``.

    Raises:
        ScoreError: Missing/unreadable file or unsupported extension.
    """
    p = Path(path)
    if not p.is_file():
        raise ScoreError(f"{p}: predictions file not found")
    if p.suffix == ".npz":
        return _load_npz(p)
    if p.suffix == ".parquet":
        return _load_parquet(p)
    raise ScoreError(f"{p}: unsupported file type {p.suffix!r}; expected .npz or .parquet")


def _video_ids(path: Path, data: dict[str, np.ndarray]) -> list[str]:
    if "video_ids" not in data:
        raise ScoreError(f"{path}: missing key 'video_ids' (the CSV filenames, one per row)")
    ids = data["video_ids"]
    if ids.ndim != 1:
        raise ScoreError(f"{path}: 'video_ids' must be 1-D, got shape {ids.shape}")
    bad = [i for i, v in enumerate(ids.tolist()) if not isinstance(v, str)]
    if bad:
        raise ScoreError(f"{path}: 'video_ids' entries must be strings (row {bad[0]} is not)")
    out = [str(v) for v in ids.tolist()]
    dups = sorted(v for v, k in Counter(out).items() if k > 1)
    if dups:
        raise ScoreError(f"{path}: duplicate video ids: {_some(dups)}")
    return out


def _checked(path: Path, data: dict[str, np.ndarray], key: str, n: int, binary: bool) -> np.ndarray:
    arr = np.asarray(data[key])
    want = (n, *SHAPES[key])
    if arr.shape != want:
        raise ScoreError(f"{path}: key {key!r} has shape {arr.shape}, expected {want}")
    if arr.dtype == np.bool_:
        return arr
    if arr.dtype.kind not in "iuf":
        raise ScoreError(f"{path}: key {key!r} has non-numeric dtype {arr.dtype}")
    a = arr.astype(np.float64, copy=False)
    bad = ~((a >= 0) & (a <= 1))  # also catches NaN
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ScoreError(
            f"{path}: key {key!r} has {int(bad.sum())} value(s) outside [0, 1] "
            f"(first at index {first}: {a[first]!r})"
        )
    if binary and not ((a == 0) | (a == 1)).all():
        raise ScoreError(
            f"{path}: key {key!r} must be binary 0/1; for probabilities give frame_prob and the "
            f"video-level probabilities instead"
        )
    return arr


def predictions_for_split(
    path: str | Path,
    data: dict[str, np.ndarray],
    split_ids: Sequence[str],
    protocol: str = PROTOCOLS[0],
    threshold: float = 0.5,
) -> tuple[np.ndarray, np.ndarray, str]:
    """Validates loaded predictions and returns binary ``(pred_a, pred_v)`` in ``split_ids`` order.

    Returns:
        ``(pred_a, pred_v, kind)`` with kind ``"binary"`` or ``"probabilities"``.

    Raises:
        ScoreError: Missing keys, wrong shapes, values outside [0, 1], or video ids that are
            unknown to / missing from the split.
    """
    path = Path(path)
    ids = _video_ids(path, data)
    has_bin = [k for k in BINARY_KEYS if k in data]
    has_prob = [k for k in PROB_KEYS if k in data]
    if has_bin and "frame_prob" in data:
        raise ScoreError(
            f"{path}: has both binary ({', '.join(has_bin)}) and probability (frame_prob) keys; "
            f"keep one kind"
        )
    if has_bin:
        missing = [k for k in BINARY_KEYS if k not in data]
        kind = "binary"
    elif has_prob:
        missing = [k for k in PROTOCOL_KEYS[protocol] if k not in data]
        kind = "probabilities"
    else:
        raise ScoreError(
            f"{path}: missing keys: need binary 'audio' and 'visual', or probabilities "
            + " / ".join(f"{'+'.join(k)} ({p} protocol)" for p, k in PROTOCOL_KEYS.items())
            + f"; found {sorted(data)}"
        )
    if missing:
        extra = f" for protocol {protocol!r}" if kind == "probabilities" else ""
        raise ScoreError(f"{path}: missing key(s) {', '.join(map(repr, missing))}{extra}")

    known = set(split_ids)
    unknown = [v for v in ids if v not in known]
    if unknown:
        hint = " (none is; is --split right?)" if len(unknown) == len(ids) else ""
        raise ScoreError(
            f"{path}: {len(unknown)} video id(s) not in the split{hint}: {_some(unknown)}"
        )
    given = set(ids)
    absent = [v for v in split_ids if v not in given]
    if absent:
        raise ScoreError(f"{path}: no predictions for {len(absent)} video(s) of the split: {_some(absent)}")
    n = len(ids)
    pos = {v: i for i, v in enumerate(ids)}
    order = np.fromiter((pos[v] for v in split_ids), dtype=np.int64, count=len(split_ids))

    if kind == "binary":
        a = _checked(path, data, "audio", n, binary=True)
        v = _checked(path, data, "visual", n, binary=True)
        return a[order] != 0, v[order] != 0, kind
    probs = {k: _checked(path, data, k, n, binary=False)[order] for k in PROTOCOL_KEYS[protocol]}
    pa, pv = decode(
        probs["frame_prob"], probs.get("a_prob"), probs.get("v_prob"), probs.get("global_prob"),
        protocol=protocol, threshold=threshold,
    )
    return pa, pv, kind


def format_table(scores: dict[str, float]) -> str:
    """The ten scores as a two-row table (segment and event level)."""
    cols = (("A", "Audio"), ("V", "Visual"), ("AV", "Audio-Visual"), ("Type", "Type@AV"),
            ("Event", "Event@AV"))
    head = f"{'':10}" + "".join(f"{title:>14}" for _, title in cols)
    rows = [head]
    for level, name in (("seg", "Segment"), ("event", "Event")):
        rows.append(f"{name:10}" + "".join(f"{scores[f'{level}_{k}']:14.2f}" for k, _ in cols))
    return "\n".join(rows)


def score_file(
    pred: str | Path,
    annotations: str | Path | None,
    split: str,
    protocol: str = PROTOCOLS[0],
    threshold: float = 0.5,
) -> tuple[dict[str, float], dict[str, Any]]:
    """Scores a predictions file against one split of the LLP annotations.

    Args:
        annotations: Directory of the LLP CSVs; None for the copy packaged with avtune.

    Returns:
        ``(scores, info)``: the ten scores and ``{"videos", "kind", "warnings"}``.

    Raises:
        ScoreError: Invalid predictions.
        trainables.tasks.avvp.llp.AnnotationError: Malformed annotations.
    """
    from trainables.tasks.avvp.llp import read_annotations

    if annotations is None:
        from trainables.tasks.avvp.annotations import DIR as annotations
    ann = read_annotations(annotations, split)
    if ann.gt_audio is None or ann.gt_visual is None:
        raise ScoreError(f"split {split!r} has no dense truth to score against")
    data = load_predictions(pred)
    pa, pv, kind = predictions_for_split(pred, data, ann.video_ids, protocol, threshold)
    scores = avvp_scores(pa, pv, ann.gt_audio, ann.gt_visual)
    return scores, {"videos": len(ann.video_ids), "kind": kind, "warnings": list(ann.warnings)}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m orchestrator.score",
        description="Score AVVP predictions (.npz or .parquet) with the official LLP F-scores.",
    )
    p.add_argument("--pred", required=True, help="predictions file (.npz or .parquet)")
    p.add_argument("--annotations", default=None,
                   help="directory of the official LLP CSVs (default: the copy packaged with avtune, "
                        "trainables/tasks/avvp/annotations)")
    p.add_argument("--split", required=True, choices=("val", "test"), help="split to score against")
    p.add_argument("--protocol", choices=PROTOCOLS, default=PROTOCOLS[0],
                   help=f"decoding of probabilities (default {PROTOCOLS[0]}; ignored for binary predictions)")
    p.add_argument("--threshold", type=float, default=0.5,
                   help="decision threshold for probabilities (default 0.5)")
    p.add_argument("--json", action="store_true", help="print one JSON object of the ten scores")
    p.add_argument("-v", "--verbose", action="store_true", help="list annotation warnings")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit status (0 ok, 2 bad input)."""
    args = _parser().parse_args(argv)
    if not 0.0 <= args.threshold <= 1.0:
        print(f"error: --threshold must be in [0, 1], got {args.threshold}", file=sys.stderr)
        return 2
    from trainables.tasks.avvp.llp import AnnotationError

    if args.annotations is None:
        from trainables.tasks.avvp.annotations import DIR as packaged

        args.annotations = packaged
    try:
        scores, info = score_file(args.pred, args.annotations, args.split, args.protocol, args.threshold)
    except (ScoreError, AnnotationError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if info["warnings"]:
        if args.verbose:
            for w in info["warnings"]:
                print(f"note: {w}", file=sys.stderr)
        else:
            print(f"note: the annotations reader skipped some rows ({len(info['warnings'])} "
                  f"warning(s); --verbose lists them)", file=sys.stderr)
    if args.json:
        print(json.dumps({k: scores[k] for k in SCORE_KEYS}))
        return 0
    how = (f"probabilities decoded with protocol {args.protocol}, threshold {args.threshold:g}"
           if info["kind"] == "probabilities" else "binary predictions")
    print(f"LLP {args.split}: {info['videos']} videos, {how}")
    print(format_table(scores))
    return 0

