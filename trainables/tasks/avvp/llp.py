"""The real LLP data set: reading the official annotation CSVs and converting the official features.

Annotation files (tab-separated, as published with LLP):

* ``AVVP_train.csv``, ``AVVP_val_pd.csv``, ``AVVP_test_pd.csv``: ``filename``, ``event_labels``
  (comma-separated class names) -- the weak video-level labels of each split.
* ``AVVP_eval_audio.csv``, ``AVVP_eval_visual.csv``: ``filename``, ``onset``, ``offset``,
  ``event_labels`` (one class per row, integer seconds, offset exclusive) -- the dense truth of the
  val and test videos. Audio-visual truth (audio AND visual) is computed by consumers.

``filename`` is ``<11-char YouTube id>_<start>_<end>``; the feature files are named by the id.

Facts about the published (corrected) eval CSVs that this reader handles on purpose:

* ``AVVP_eval_audio.csv`` has zero-length rows (``onset == offset``). The official evaluation
  builds ``GT[onset:offset] = 1``, an empty slice, so they mark nothing; we skip them and report
  how many in :attr:`LLPAnnotations.warnings`.
* It also has one reversed row (``8DF2PxdT5tE_390_400  9  0  Cheering``), again an empty slice in
  the official evaluation. It is listed in :data:`KNOWN_ERRATA` and skipped with a warning; any
  other reversed row is an error (a CSV with swapped columns must not load silently).
* Both eval CSVs hold a few rows for filenames that are in no split (ids that lost leading
  characters, a typo'd end time). The official evaluation never looks them up; we skip them and
  report them. They must still look like filenames: a class name or a stray backtick in the
  filename column is the corruption of an older copy of the file, and is an error.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from trainables.tasks.avvp.classes import CLASS_INDEX, NUM_CLASSES, NUM_SEGMENTS
from trainables.data import format as fmt

WEAK_FILES = {"train": "AVVP_train.csv", "val": "AVVP_val_pd.csv", "test": "AVVP_test_pd.csv"}
EVAL_AUDIO = "AVVP_eval_audio.csv"
EVAL_VISUAL = "AVVP_eval_visual.csv"
TRUTH_SPLITS = ("val", "test")

WEAK_HEADER = ("filename", "event_labels")
EVAL_HEADER = ("filename", "onset", "offset", "event_labels")

# A split's filenames: exactly 11 id characters, then start and end times (a few are fractional).
FILENAME_RE = re.compile(r"[A-Za-z0-9_-]{11}_\d+(?:\.\d+)?_\d+(?:\.\d+)?")
# Eval rows may name videos outside every split (ids that lost characters upstream); they must
# still have the shape of a filename, which a class name or a trailing backtick does not.
LOOSE_FILENAME_RE = re.compile(r"[A-Za-z0-9_-]+_\d+(?:\.\d+)?_\d+(?:\.\d+)?")

# Rows of the official release known to be reversed (onset > offset): (file, filename, onset,
# offset, class). The official evaluation turns them into empty slices; so do we.
KNOWN_ERRATA: frozenset[tuple[str, str, int, int, str]] = frozenset(
    {(EVAL_AUDIO, "8DF2PxdT5tE_390_400", 9, 0, "Cheering")}
)


class AnnotationError(ValueError):
    """An LLP annotation file is missing or malformed; the message names the file and line."""


class FeatureError(ValueError):
    """An LLP feature file is missing, misshapen or holds NaN/inf; the message names the video."""


@dataclass
class LLPAnnotations:
    """The annotations of one LLP split.

    Attributes:
        video_ids: CSV filenames (``<id>_<start>_<end>``) in file order.
        labels: (N, 25) uint8 weak video-level labels in ``LLP_CLASSES`` order.
        gt_audio: (N, 10, 25) uint8 dense audio truth, or None for the train split.
        gt_visual: (N, 10, 25) uint8 dense visual truth, or None for the train split.
        warnings: Human-readable notes on rows that were skipped (zero-length, known errata,
            filenames outside every split).
        split: The split name.
    """

    video_ids: list[str]
    labels: np.ndarray
    gt_audio: np.ndarray | None = None
    gt_visual: np.ndarray | None = None
    warnings: list[str] = field(default_factory=list)
    split: str = ""


def feature_id(filename: str) -> str:
    """The 11-character YouTube id that names a video's feature files."""
    return filename[:11]


def _read_tsv(path: Path, header: tuple[str, ...]) -> list[tuple[int, list[str]]]:
    """Reads a tab-separated file, checking its header and column count.

    Returns:
        ``(line_number, fields)`` per data row (1-based line numbers, header is line 1).
    """
    if not path.is_file():
        raise AnnotationError(f"{path}: annotation file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise AnnotationError(f"{path}: not UTF-8 text ({e})") from e
    lines = text.splitlines()
    if not lines or tuple(c.strip() for c in lines[0].split("\t")) != header:
        got = lines[0] if lines else "<empty file>"
        raise AnnotationError(f"{path}:1: expected header {'<TAB>'.join(header)!r}, got {got!r}")
    rows = []
    for no, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue  # trailing blank lines are harmless
        cols = line.split("\t")
        if len(cols) != len(header):
            raise AnnotationError(
                f"{path}:{no}: expected {len(header)} tab-separated columns, got {len(cols)}: {line!r}"
            )
        rows.append((no, [c.strip() for c in cols]))
    return rows


def _class_index(path: Path, no: int, name: str) -> int:
    idx = CLASS_INDEX.get(name)
    if idx is None:
        raise AnnotationError(f"{path}:{no}: unknown class name {name!r}")
    return idx


def read_weak_labels(path: str | os.PathLike) -> tuple[list[str], np.ndarray]:
    """Reads a weak-label CSV (``filename``, ``event_labels``).

    Returns:
        ``(filenames, labels)`` with labels (N, 25) uint8.

    Raises:
        AnnotationError: Bad header, column count, filename, class name, empty label list or a
            duplicate filename; the message names file and line.
    """
    path = Path(path)
    rows = _read_tsv(path, WEAK_HEADER)
    ids: list[str] = []
    seen: dict[str, int] = {}
    labels = np.zeros((len(rows), NUM_CLASSES), np.uint8)
    for i, (no, (fname, ev)) in enumerate(rows):
        if not FILENAME_RE.fullmatch(fname):
            raise AnnotationError(
                f"{path}:{no}: malformed filename {fname!r} (expected <11-char id>_<start>_<end>)"
            )
        if fname in seen:
            raise AnnotationError(f"{path}:{no}: duplicate filename {fname!r} (first on line {seen[fname]})")
        # Two filenames of one YouTube id would share (and overwrite) one feature file.
        seen[fname] = no
        names = [c.strip() for c in ev.split(",") if c.strip()]
        if not names:
            raise AnnotationError(f"{path}:{no}: no event labels for {fname!r}")
        for name in names:
            labels[i, _class_index(path, no, name)] = 1
        ids.append(fname)
    by_id: dict[str, str] = {}
    for fname in ids:
        fid = feature_id(fname)
        if fid in by_id:
            raise AnnotationError(
                f"{path}:{seen[fname]}: {fname!r} has the same feature id {fid!r} as {by_id[fid]!r} "
                f"(line {seen[by_id[fid]]})"
            )
        by_id[fid] = fname
    return ids, labels


def _parse_second(path: Path, no: int, what: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise AnnotationError(f"{path}:{no}: {what} {value!r} is not an integer second") from None


def read_dense_truth(
    path: str | os.PathLike,
    video_ids: Iterable[str],
    *,
    other_ids: Iterable[str] = (),
    warnings: list[str] | None = None,
) -> np.ndarray:
    """Builds dense (N, 10, 25) truth for ``video_ids`` from an eval CSV.

    Row ``onset, offset, class`` marks segments ``onset .. offset-1`` (offset exclusive).

    Args:
        path: ``AVVP_eval_audio.csv`` or ``AVVP_eval_visual.csv``.
        video_ids: Filenames whose truth is built, in output order.
        other_ids: Filenames of other splits: their rows are validated and skipped silently.
        warnings: Receives one note per kind of skipped row (zero-length, known errata, rows
            of filenames in no split).

    Raises:
        AnnotationError: Malformed rows, unknown classes, non-integer, reversed or out-of-range
            times; the message names file and line.
    """
    path = Path(path)
    ids = list(video_ids)
    index = {v: i for i, v in enumerate(ids)}
    others = set(other_ids)
    gt = np.zeros((len(ids), NUM_SEGMENTS, NUM_CLASSES), np.uint8)
    zero_len: list[int] = []
    errata: list[int] = []
    orphans: dict[str, list[int]] = {}
    for no, (fname, on_s, off_s, cls) in _read_tsv(path, EVAL_HEADER):
        if not LOOSE_FILENAME_RE.fullmatch(fname):
            raise AnnotationError(
                f"{path}:{no}: malformed filename {fname!r} (expected <11-char id>_<start>_<end>)"
            )
        c = _class_index(path, no, cls)
        on = _parse_second(path, no, "onset", on_s)
        off = _parse_second(path, no, "offset", off_s)
        if not (0 <= on <= NUM_SEGMENTS and 0 <= off <= NUM_SEGMENTS):
            raise AnnotationError(
                f"{path}:{no}: onset/offset {on}/{off} outside 0..{NUM_SEGMENTS} for {fname!r}"
            )
        if on > off:
            if (path.name, fname, on, off, cls) not in KNOWN_ERRATA:
                raise AnnotationError(f"{path}:{no}: onset {on} > offset {off} for {fname!r}")
            errata.append(no)
            continue
        if on == off:
            zero_len.append(no)
            continue
        i = index.get(fname)
        if i is not None:
            gt[i, on:off, c] = 1
        elif fname not in others:
            orphans.setdefault(fname, []).append(no)
    if warnings is not None:
        if zero_len:
            warnings.append(
                f"{path}: skipped {len(zero_len)} zero-length row(s) (onset == offset) on line(s) "
                f"{', '.join(map(str, zero_len))}"
            )
        if errata:
            warnings.append(
                f"{path}: skipped {len(errata)} known reversed row(s) (onset > offset, empty in the "
                f"official evaluation) on line(s) {', '.join(map(str, errata))}"
            )
        if orphans:
            n = sum(len(v) for v in orphans.values())
            warnings.append(
                f"{path}: skipped {n} row(s) of {len(orphans)} filename(s) in no split: "
                + ", ".join(f"{k} (line {v[0]})" for k, v in sorted(orphans.items()))
            )
    return gt


def read_annotations(annotations_dir: str | os.PathLike, split: str) -> LLPAnnotations:
    """Reads one split's weak labels and, for val/test, its dense audio and visual truth.

    Args:
        annotations_dir: Directory holding the official CSVs.
        split: ``train``, ``val`` or ``test``.

    Returns:
        The split's annotations; ``gt_audio``/``gt_visual`` are None for ``train``.

    Raises:
        AnnotationError: Any malformed file or row (the message names file and line), or a
            filename that appears in both val and test.
    """
    if split not in WEAK_FILES:
        raise ValueError(f"unknown split {split!r}; expected one of {tuple(WEAK_FILES)}")
    d = Path(annotations_dir)
    ids, labels = read_weak_labels(d / WEAK_FILES[split])
    out = LLPAnnotations(video_ids=ids, labels=labels, split=split)
    if split in TRUTH_SPLITS:
        other = "test" if split == "val" else "val"
        other_ids, _ = read_weak_labels(d / WEAK_FILES[other])
        clash = set(ids) & set(other_ids)
        if clash:
            raise AnnotationError(
                f"{d / WEAK_FILES[split]}: {len(clash)} filename(s) also in {WEAK_FILES[other]}, "
                f"e.g. {sorted(clash)[0]!r}"
            )
        out.gt_audio = read_dense_truth(d / EVAL_AUDIO, ids, other_ids=other_ids, warnings=out.warnings)
        out.gt_visual = read_dense_truth(d / EVAL_VISUAL, ids, other_ids=other_ids, warnings=out.warnings)
    return out


# Official feature layout: subdirectory, per-video shape.
FEATURES = {
    "audio": ("vggish", (10, 128)),
    "visual": ("res152", (80, 2048)),
    "motion": ("r2plus1d_18", (10, 512)),
}
FRAMES_PER_SEGMENT = 8
_MAX_LISTED_ERRORS = 10


def _load_one(path: Path, shape: tuple[int, ...], fname: str) -> tuple[np.ndarray | None, str | None]:
    if not path.is_file():
        return None, f"video {fname}: missing feature file {path}"
    try:
        x = np.load(path, allow_pickle=False)
    except Exception as e:  # truncated/corrupt files raise several types
        return None, f"video {fname}: cannot read {path} ({e})"
    if x.shape != shape:
        return None, f"video {fname}: {path} has shape {x.shape}, expected {shape}"
    if not np.issubdtype(x.dtype, np.floating) and not np.issubdtype(x.dtype, np.integer):
        return None, f"video {fname}: {path} has non-numeric dtype {x.dtype}"
    if not np.isfinite(x).all():
        bad = int(x.size - np.isfinite(x).sum())
        return None, f"video {fname}: {path} holds {bad} NaN/inf value(s)"
    return x, None


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def convert_llp(
    feats_dir: str | os.PathLike,
    annotations_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    average_frames: bool = True,
    float16: bool = False,
    workers: int = 16,
) -> Path:
    """Converts the official LLP features and annotations into one avtune data set.

    Reads ``feats_dir/vggish/<id>.npy`` (10, 128), ``feats_dir/res152/<id>.npy`` (80, 2048: 8
    frames per segment) and ``feats_dir/r2plus1d_18/<id>.npy`` (10, 512) for every video of the
    train/val/test CSVs (``<id>`` = first 11 characters of the filename).

    Args:
        feats_dir: Root of the official feature layout.
        annotations_dir: Directory of the official CSVs.
        out_dir: Output directory (``avtune.parquet`` is written inside, atomically).
        average_frames: Store res152 averaged over its 8 frames per segment, (10, 2048). Exact
            for HAN, whose per-frame linear layer commutes with the average; 8x smaller.
        float16: Store features as float16 (half the size; values beyond float16's range are
            reported as errors).
        workers: Threads for the (I/O-bound) ``np.load`` calls.

    Returns:
        Path of the written ``avtune.parquet``.

    Raises:
        AnnotationError: A malformed annotation file (file and line named).
        FeatureError: Missing, misshapen, unreadable or non-finite feature files (video ids and
            files named, up to 10 listed). Nothing is written in that case.
    """
    feats = Path(feats_dir)
    ann_dir = Path(annotations_dir)
    for sub, _ in FEATURES.values():
        if not (feats / sub).is_dir():
            raise FeatureError(f"{feats}: no {sub}/ directory (expected the official feature layout)")
    anns = [read_annotations(ann_dir, s) for s in fmt.SPLITS]
    ids = [v for a in anns for v in a.video_ids]
    split = [a.split for a in anns for _ in a.video_ids]
    # Within a file this is checked per line; across files a video would silently appear twice.
    seen: dict[str, str] = {}
    for a in anns:
        for v in a.video_ids:
            fid = feature_id(v)
            if fid in seen:
                raise AnnotationError(
                    f"{ann_dir}: video {v!r} ({WEAK_FILES[a.split]}) has feature id {fid!r}, "
                    f"already used by {seen[fid]!r}"
                )
            seen[fid] = f"{v} ({WEAK_FILES[a.split]})"
    n = len(ids)
    dtype = np.float16 if float16 else np.float32
    shapes = {
        "audio": (10, 128),
        "visual": (10, 2048) if average_frames else (10, FRAMES_PER_SEGMENT, 2048),
        "motion": (10, 512),
    }
    arrays = {k: np.empty((n, *s), dtype) for k, s in shapes.items()}
    errors: list[tuple[int, str]] = []

    def work(i: int) -> None:
        fname = ids[i]
        for col, (sub, shape) in FEATURES.items():
            x, err = _load_one(feats / sub / f"{feature_id(fname)}.npy", shape, fname)
            if err is not None:
                errors.append((i, err))  # list.append is atomic under the GIL
                continue
            if col == "visual":
                x = x.reshape(10, FRAMES_PER_SEGMENT, 2048)
                if average_frames:
                    x = x.mean(axis=1, dtype=np.float64)
            with np.errstate(over="ignore"):  # overflow is detected and reported just below
                y = x.astype(dtype)
            if float16 and not np.isfinite(y).all():
                errors.append((i, f"video {fname}: {feats / sub} values exceed the float16 range"))
                continue
            arrays[col][i] = y

    with ThreadPoolExecutor(max_workers=max(1, workers)) as ex:
        list(ex.map(work, range(n)))
    if errors:
        errors.sort()
        listed = "\n  ".join(e for _, e in errors[:_MAX_LISTED_ERRORS])
        more = f"\n  ... and {len(errors) - _MAX_LISTED_ERRORS} more" if len(errors) > _MAX_LISTED_ERRORS else ""
        raise FeatureError(f"{len(errors)} feature problem(s) under {feats}:\n  {listed}{more}")

    labels = np.concatenate([a.labels for a in anns])
    gt = {}
    for col in ("gt_audio", "gt_visual"):
        gt[col] = np.concatenate(
            [getattr(a, col) if getattr(a, col) is not None
             else np.zeros((len(a.video_ids), NUM_SEGMENTS, NUM_CLASSES), np.uint8) for a in anns]
        )
    params = {
        "average_frames": bool(average_frames),
        "float16": bool(float16),
        "annotations": {f: _sha256(ann_dir / f)
                        for f in (*WEAK_FILES.values(), EVAL_AUDIO, EVAL_VISUAL)},
    }
    warnings = sorted({w for a in anns for w in a.warnings})
    out = Path(out_dir)
    created = not out.exists()
    try:
        return fmt.write_dataset(
            out,
            video_ids=ids,
            split=split,
            arrays={**arrays, "labels": labels, **gt},
            kind="llp",
            params=params,
            truth_splits=TRUTH_SPLITS,
            extra={"feats_dir": str(feats), "annotations_dir": str(ann_dir), "warnings": warnings},
        )
    except BaseException:
        # write_dataset removes its temp file; also drop the directory if we made it.
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        raise
