"""VALOR's released teacher layout: reading it into an avtune data set, and writing it.

VALOR (Lai et al., NeurIPS 2023) releases, per LLP video, the segment pseudo labels its CLIP and
CLAP teachers harvested and the teachers' features, under one root::

    <root>/CLIP/segment_pseudo_labels/<id>.npy   (10, 25) 0/1   visual labels (any numeric dtype)
    <root>/CLAP/segment_pseudo_labels/<id>.npy   (10, 25) 0/1   audio labels
    <root>/CLIP/features/<id>.npy                (10, 768)      CLIP ViT-L/14 image embeddings
    <root>/CLAP/features/<id>.npy                (64, 768)      CLAP HTS-AT token map (2 x 32)

with ``<id>`` the first 11 characters of the video's filename (as the LLP features). Classes are in
LLP order (:data:`~trainables.tasks.avvp.classes.LLP_CLASSES`). The layout is read from the code
that writes and reads those files (the release archives themselves could not be inspected here).

:func:`convert_valor` adds the labels to a copy of an AVVP data set as columns ``pseudo_visual`` and
``pseudo_audio`` ((10, 25) uint8, what VALOR's student trains on: ``teacher="released"``); with
``features=True`` it also makes the CLIP/CLAP features the visual/audio inputs (VALOR++'s inputs).
The CLAP token map is stored as (10, 768) by :func:`clap_segments`: VALOR's student reads it through
a fixed linear resampling followed by its audio projection, so storing the resampled map and
applying the projection is the same function. Everything is validated before anything is written:
a missing file, a wrong shape, a value other than 0/1, NaN/inf, or a positive label outside the
video's weak labels is an error naming the file.

:func:`write_valor_labels` writes segment labels in this layout (into an ``export-llp`` directory),
so VALOR's official code trains on labels harvested by avtune.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from trainables.data.format import (
    DataFormatError,
    atomic_dir,
    read_all,
    read_meta,
    read_split,
    write_dataset,
)
from trainables.tasks.avvp.classes import NUM_CLASSES, NUM_SEGMENTS
from trainables.tasks.avvp.llp import feature_id

MODALITIES = ("visual", "audio")
TEACHER_DIRS = {"visual": "CLIP", "audio": "CLAP"}
LABEL_DIR = "segment_pseudo_labels"
FEATURE_DIR = "features"
# Per-video feature shapes of the release: CLIP one embedding per segment, CLAP a 2 x 32 token map.
FEATURE_SHAPES = {"visual": (NUM_SEGMENTS, 768), "audio": (64, 768)}
# The data set columns the labels go to (any method reading released segment pseudo labels).
COLUMNS = {"visual": "pseudo_visual", "audio": "pseudo_audio"}
# CLAP's token map: 2 frequency groups x 32 time steps, token index f * 32 + t.
_CLAP_GRID = (2, 32)
_CLAP_UPSAMPLED = 1024


def clap_resampling() -> np.ndarray:
    """The fixed ``(10, 64)`` map from CLAP's token map to 10 segments that VALOR's student applies
    before its audio projection (float64; each row sums to 1).

    The student views the (64, D) map as a (2, 32) grid per feature, upsamples it bicubically to
    (2, 1024), projects, averages the 2 rows and average-pools the 1024 steps into 10. Each step is
    linear and keeps constants (weights summing to 1), so projecting after this resampling is the
    same function.
    """
    import torch
    import torch.nn.functional as F

    rows, steps = _CLAP_GRID
    eye = torch.eye(rows * steps, dtype=torch.float64).reshape(rows * steps, 1, rows, steps)
    up = F.interpolate(eye, size=(rows, _CLAP_UPSAMPLED), mode="bicubic", align_corners=False)
    pooled = F.adaptive_avg_pool1d(up.mean(dim=2), NUM_SEGMENTS)  # (64, 1, 10)
    return pooled[:, 0, :].T.numpy()


def clap_segments(token_map: np.ndarray) -> np.ndarray:
    """A (64, D) CLAP token map as (10, D) segment features (:func:`clap_resampling`), float32."""
    return (clap_resampling() @ np.asarray(token_map, np.float64)).astype(np.float32)


def _load(f: Path) -> np.ndarray:
    if not f.is_file():
        raise DataFormatError(f"{f}: missing (every video of the data set needs one)")
    try:
        return np.load(f, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise DataFormatError(f"{f}: not a numpy array file ({e})") from e


def read_label_file(f: Path) -> np.ndarray:
    """One video's (10, 25) segment labels as bool.

    Raises:
        DataFormatError: Missing, unreadable, wrong shape, or values other than 0/1 (names ``f``).
    """
    a = _load(f)
    if a.shape != (NUM_SEGMENTS, NUM_CLASSES):
        raise DataFormatError(f"{f}: shape {a.shape}, expected ({NUM_SEGMENTS}, {NUM_CLASSES})")
    if not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_):
        raise DataFormatError(f"{f}: dtype {a.dtype} is not numeric")
    if not np.isin(a, (0, 1)).all():
        bad = a[~np.isin(a, (0, 1))].ravel()[0].item()
        raise DataFormatError(f"{f}: labels must be 0 or 1, found {bad!r}")
    return a.astype(bool)


def read_feature_file(f: Path, shape: tuple[int, int]) -> np.ndarray:
    """One video's teacher features, float32 of ``shape``.

    Raises:
        DataFormatError: Missing, unreadable, wrong shape or dtype, NaN/inf (names ``f``).
    """
    a = _load(f)
    if a.shape != shape:
        raise DataFormatError(f"{f}: shape {a.shape}, expected {shape}")
    if not np.issubdtype(a.dtype, np.floating):
        raise DataFormatError(f"{f}: dtype {a.dtype}, expected floating point features")
    if not np.isfinite(a).all():
        raise DataFormatError(f"{f}: holds NaN or inf")
    return a.astype(np.float32)


def _dir(root: Path, modality: str, sub: str) -> Path:
    d = root / TEACHER_DIRS[modality] / sub
    if not d.is_dir():
        raise DataFormatError(f"{d}: not a directory (VALOR layout: <root>/{TEACHER_DIRS[modality]}/{sub}/)")
    return d


def read_valor_labels(root: str | os.PathLike, video_ids: Sequence[str], labels: np.ndarray, *,
                      mask_to_weak: bool = False) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Reads both teachers' labels for ``video_ids`` (in that order).

    Args:
        root: The layout's root.
        video_ids: CSV filenames of the videos.
        labels: ``(N, C)`` their weak labels.
        mask_to_weak: AND the labels with the weak labels instead of refusing positives outside
            them (a release harvested against other annotations, or in another class order).

    Returns:
        ``({"visual": (N, 10, 25) bool, "audio": ...}, {modality: positives masked})``.

    Raises:
        DataFormatError: A bad file, or positives outside the weak labels without ``mask_to_weak``.
    """
    root = Path(root)
    weak = np.asarray(labels) != 0
    out: dict[str, np.ndarray] = {}
    masked: dict[str, int] = {}
    for m in MODALITIES:
        d = _dir(root, m, LABEL_DIR)
        y = np.stack([read_label_file(d / f"{feature_id(v)}.npy") for v in video_ids])
        outside = y & ~weak[:, None, :]
        n_out = int(outside.sum())
        if n_out and not mask_to_weak:
            first = int(np.flatnonzero(outside.any((1, 2)))[0])
            raise DataFormatError(
                f"{d / (feature_id(video_ids[first]) + '.npy')}: positive labels for classes outside "
                f"the video's weak labels ({n_out} such labels in {d}); VALOR's labels are ANDed with "
                "the weak labels, so the release and the data set disagree (other annotations or "
                "class order); pass --mask-to-weak to drop them")
        out[m] = y & weak[:, None, :]
        masked[m] = n_out
    return out, masked


def read_valor_features(root: str | os.PathLike, video_ids: Sequence[str]) -> dict[str, np.ndarray]:
    """Both teachers' features for ``video_ids``: CLIP (N, 10, 768), CLAP resampled to (N, 10, 768)."""
    root = Path(root)
    out: dict[str, np.ndarray] = {}
    for m in MODALITIES:
        d = _dir(root, m, FEATURE_DIR)
        feats = np.stack([read_feature_file(d / f"{feature_id(v)}.npy", FEATURE_SHAPES[m])
                          for v in video_ids])
        if m == "audio":
            feats = np.einsum("st,ntd->nsd", clap_resampling(), feats.astype(np.float64)).astype(np.float32)
        out[m] = feats
    return out


def convert_valor(data: str | os.PathLike, root: str | os.PathLike, out: str | os.PathLike, *,
                  features: bool = False, mask_to_weak: bool = False) -> Path:
    """Writes a copy of an AVVP data set with VALOR's released segment pseudo labels added.

    Args:
        data: The source data set (converted LLP, or an LLP-sim preset).
        root: The layout's root (``<root>/CLIP/...``, ``<root>/CLAP/...``).
        out: Output directory (the file is written atomically, after every input is validated).
        features: Also replace the ``visual``/``audio`` inputs by the CLIP/CLAP features.
        mask_to_weak: See :func:`read_valor_labels`.

    Returns:
        The written data file.

    Raises:
        DataFormatError: A missing or malformed file (the message names it).
    """
    meta = read_meta(data)
    if meta["kind"] not in ("llp", "llp-sim"):
        raise DataFormatError(f"{data}: kind {meta['kind']!r} is not an AVVP data set")
    ids, splits, merged = read_all(data)
    seg, masked = read_valor_labels(root, ids, merged["labels"], mask_to_weak=mask_to_weak)
    for m in MODALITIES:
        merged[COLUMNS[m]] = seg[m].astype(np.uint8)
    if features:
        merged.update(read_valor_features(root, ids))
    info = {"root": str(Path(root).resolve()), "features": bool(features), "masked": masked}
    extra = {**meta.get("extra", {}), "pseudo_labels": {"source": "valor-layout", "columns": COLUMNS, **info}}
    params = {**meta["params"], "valor_layout": info}
    return write_dataset(out, video_ids=ids, split=splits, arrays=merged, kind=meta["kind"],
                         params=params, truth_splits=meta["truth_splits"], extra=extra)


def has_released_labels(path: str | os.PathLike) -> bool:
    """Whether a data set carries segment pseudo-label columns (:func:`convert_valor`)."""
    return set(COLUMNS.values()) <= set(read_meta(path)["shapes"])


def load_released_labels(path: str | os.PathLike, split: str, video_ids: Sequence[str]
                         ) -> dict[str, np.ndarray]:
    """One split's released labels ``{"visual", "audio"}`` (N, 10, 25) bool, rows as ``video_ids``.

    Raises:
        DataFormatError: The data set has no such columns, or its rows are in another order.
    """
    if not has_released_labels(path):
        raise DataFormatError(f"{path}: no segment pseudo-label columns {sorted(COLUMNS.values())}; "
                              "add VALOR's released labels with python -m orchestrator.data convert-valor")
    ids, arr = read_split(path, split, list(COLUMNS.values()))
    if list(ids) != list(video_ids):
        raise DataFormatError(f"{path}: the {split} rows of the pseudo-label columns are not in the "
                              "split's order")
    return {m: arr[COLUMNS[m]] != 0 for m in MODALITIES}


def write_valor_labels(root: str | os.PathLike, video_ids: Sequence[str],
                       seg_labels: Mapping[str, np.ndarray]) -> Path:
    """Writes segment labels in VALOR's layout: ``<root>/{CLIP,CLAP}/segment_pseudo_labels/<id>.npy``,
    int64 (10, 25), one file per video (each label folder is built aside and renamed into place).

    Args:
        root: The layout's root (e.g. an ``export-llp`` directory); the label folders must not
            exist yet (or be empty).
        video_ids: CSV filenames.
        seg_labels: ``{"visual": (N, 10, 25), "audio": ...}`` 0/1 or bool, rows as ``video_ids``.

    Returns:
        ``root`` as a Path.

    Raises:
        ValueError: Shapes that do not match, or two videos sharing a feature id.
    """
    root = Path(root)
    fids = [feature_id(v) for v in video_ids]
    if len(set(fids)) != len(fids):
        raise ValueError("two videos share a feature id (the first 11 characters of the filename)")
    for m in MODALITIES:
        y = np.asarray(seg_labels[m])
        if y.shape != (len(fids), NUM_SEGMENTS, NUM_CLASSES):
            raise ValueError(f"{m} labels: shape {y.shape}, expected ({len(fids)}, {NUM_SEGMENTS}, "
                             f"{NUM_CLASSES})")
        with atomic_dir(root / TEACHER_DIRS[m] / LABEL_DIR) as tmp:
            for fid, row in zip(fids, y):
                np.save(tmp / f"{fid}.npy", (row != 0).astype(np.int64))
    return root
