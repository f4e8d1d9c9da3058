"""Writing an avtune AVVP data set in the official LLP layout, so any AVVP codebase can train on it.

``export_llp(data, out)`` writes what :func:`trainables.tasks.avvp.llp.convert_llp` reads:

* ``vggish/<id>.npy`` (10, 128), ``res152/<id>.npy`` (80, 2048), ``r2plus1d_18/<id>.npy``
  (10, 512), float32, ``<id>`` = the first 11 characters of the video's filename;
* ``AVVP_train.csv``, ``AVVP_val_pd.csv``, ``AVVP_test_pd.csv`` (weak labels) and
  ``AVVP_eval_audio.csv``, ``AVVP_eval_visual.csv`` (dense val/test truth, one row per maximal run
  of consecutive positive segments of a class, offset exclusive), tab-separated as published.

Frame-averaged ResNet-152 features (avtune's default storage) are written as the segment mean
repeated over the 8 frames of each segment. For HAN-family models that is exact: their per-frame
linear layer commutes with the average they take over a segment's frames.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from trainables.tasks.avvp.classes import LLP_CLASSES
from trainables.data import format as fmt
from trainables.tasks.avvp.llp import (EVAL_AUDIO, EVAL_HEADER, EVAL_VISUAL, FEATURES,
                                 FRAMES_PER_SEGMENT, TRUTH_SPLITS, WEAK_FILES, WEAK_HEADER,
                                 feature_id)


def _weak_rows(ids: list[str], labels: np.ndarray) -> list[str]:
    rows = []
    for fname, y in zip(ids, labels):
        names = [LLP_CLASSES[c] for c in np.flatnonzero(y)]
        if not names:
            raise ValueError(f"video {fname}: no weak label (the official CSVs need at least one)")
        rows.append(f"{fname}\t{','.join(names)}")
    return rows


def eval_rows(ids: list[str], gt: np.ndarray) -> list[str]:
    """Dense-truth CSV rows (``filename, onset, offset, class``) of (N, T, C) truth ``gt``.

    One row per maximal run of consecutive positive segments, ordered by video, class, onset.
    """
    rows = []
    for fname, g in zip(ids, gt.astype(bool)):
        for c in np.flatnonzero(g.any(axis=0)):
            col = np.concatenate([[False], g[:, c], [False]]).astype(np.int8)
            edges = np.flatnonzero(np.diff(col))
            for on, off in zip(edges[0::2], edges[1::2]):
                rows.append(f"{fname}\t{on}\t{off}\t{LLP_CLASSES[c]}")
    return rows


def _write_tsv(path: Path, header: tuple[str, ...], rows: list[str]) -> None:
    path.write_text("\t".join(header) + "\n" + "".join(r + "\n" for r in rows), encoding="utf-8")


def _frames(visual: np.ndarray) -> np.ndarray:
    """(T, Dv) segment means or (T, F, Dv) frames -> (T * 8, Dv) in the official frame order."""
    if visual.ndim == 2:
        visual = np.repeat(visual[:, None, :], FRAMES_PER_SEGMENT, axis=1)
    if visual.shape[1] != FRAMES_PER_SEGMENT:
        raise ValueError(f"visual features have {visual.shape[1]} frames per segment; the official "
                         f"layout has {FRAMES_PER_SEGMENT}")
    return visual.reshape(-1, visual.shape[-1])


def export_llp(data_path: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """Writes an AVVP data set (LLP or LLP-sim) in the official LLP feature and CSV layout.

    The output is built in a temporary directory beside ``out_dir`` and renamed into place, so
    a failure leaves nothing behind.

    Args:
        data_path: avtune AVVP data set (directory or ``avtune.parquet``).
        out_dir: Directory to create; it must not exist or be empty.

    Returns:
        ``out_dir`` as a Path.

    Raises:
        ValueError: Not an AVVP data set, ``out_dir`` not empty, a video without a weak label,
            two videos sharing a feature id, or feature sizes other than the official ones.
    """
    meta = fmt.read_meta(data_path)
    if meta["kind"] not in ("llp", "llp-sim"):
        raise ValueError(f"{fmt.data_file(data_path)}: kind {meta['kind']!r} is not an AVVP data set")
    out = Path(out_dir)
    with fmt.atomic_dir(out) as tmp:
        for sub, _ in FEATURES.values():
            (tmp / sub).mkdir()
        seen: dict[str, str] = {}
        eval_a: list[str] = []
        eval_v: list[str] = []
        for split in fmt.SPLITS:
            with_truth = split in TRUTH_SPLITS and split in meta["truth_splits"]
            cols = ["audio", "visual", "motion", "labels"]
            ids, arr = fmt.read_split(data_path, split, cols + (["gt_audio", "gt_visual"]
                                                                if with_truth else []))
            for i, fname in enumerate(ids):
                fid = feature_id(fname)
                if fid in seen:
                    raise ValueError(f"videos {seen[fid]!r} and {fname!r} share feature id {fid!r}")
                seen[fid] = fname
                x = {"audio": arr["audio"][i], "visual": _frames(arr["visual"][i]),
                     "motion": arr["motion"][i]}
                for col, (sub, shape) in FEATURES.items():
                    v = np.ascontiguousarray(x[col], dtype=np.float32)
                    if v.shape != shape:
                        raise ValueError(f"video {fname}: {col} has shape {v.shape}; the official "
                                         f"{sub}/ files are {shape}")
                    np.save(tmp / sub / f"{fid}.npy", v)
            _write_tsv(tmp / WEAK_FILES[split], WEAK_HEADER, _weak_rows(ids, arr["labels"]))
            if with_truth:
                eval_a += eval_rows(ids, arr["gt_audio"])
                eval_v += eval_rows(ids, arr["gt_visual"])
        _write_tsv(tmp / EVAL_AUDIO, EVAL_HEADER, eval_a)
        _write_tsv(tmp / EVAL_VISUAL, EVAL_HEADER, eval_v)
    return out
