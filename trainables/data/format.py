"""avtune's one on-disk format for audio-visual data sets: a single Parquet file per data set.

One row per video. Columns:

* ``video_id`` (string): the CSV ``filename`` for LLP (``<11-char id>_<start>_<end>``).
* ``split`` (string): ``train``, ``val`` or ``test``.
* one ``FixedSizeList`` column per tensor, holding the row's tensor flattened in C order; its
  per-row shape and dtype are recorded in the file metadata (``avtune.shapes``/``avtune.dtypes``).

File metadata (key ``avtune``, JSON): ``format_version``, ``kind`` (``llp``, ``llp-sim``,
``avar-sim``, ...), ``params`` (the generation/conversion parameters), ``shapes``, ``dtypes``,
``truth_splits`` (splits whose truth columns are real, not zero-filled), ``splits`` (row counts),
and anything else the writer adds under ``extra``.

Reading a split returns contiguous NumPy arrays shaped ``(N, *shape)`` straight from the Arrow
buffers (no per-row Python), ready for ``torch.from_numpy(...).to(device)`` in one copy.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

FORMAT_VERSION = 1
META_KEY = b"avtune"
DATA_FILE = "avtune.parquet"
SPLITS = ("train", "val", "test")

_ARROW_TYPES = {
    np.dtype("float16"): pa.float16(),
    np.dtype("float32"): pa.float32(),
    np.dtype("float64"): pa.float64(),
    np.dtype("uint8"): pa.uint8(),
    np.dtype("int8"): pa.int8(),
    np.dtype("int32"): pa.int32(),
    np.dtype("int64"): pa.int64(),
}


class DataFormatError(ValueError):
    """A data file is missing, malformed or of an unsupported format version."""


@contextlib.contextmanager
def file_lock(lock_path: str | os.PathLike) -> Iterator[None]:
    """Holds an exclusive ``flock`` on ``lock_path`` (created with its directory) across
    processes; on a non-POSIX system it does nothing."""
    lock_path = Path(lock_path)
    try:
        import fcntl
    except ImportError:  # not POSIX: rely on the atomic rename alone
        yield
        return
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def data_file(path: str | os.PathLike) -> Path:
    """Resolves a data set path: a directory holding ``avtune.parquet``, or the file itself."""
    p = Path(path)
    if p.is_dir():
        p = p / DATA_FILE
    if not p.is_file():
        raise DataFormatError(f"{p}: no avtune data file here")
    return p


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """A temporary path next to ``path`` that replaces ``path`` when the block succeeds.

    Write to the yielded path; on leaving the block it is renamed onto ``path`` (readers never see
    a half-written file), and if the block raises it is removed (a failed write leaves nothing).
    The file is made world-readable (``mkstemp`` creates it 0600; results and data sets are meant
    to be shared). Parent folders are created.

    Args:
        path: The final path.
        suffix: Suffix of the temporary name, for writers that pick a format from it.
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=out.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary directory next to ``path`` that becomes ``path`` when the block succeeds.

    ``path`` must not exist or be an empty directory (checked before the block runs). The
    directory is made world-readable; if the block raises it is removed (nothing is left).

    Raises:
        ValueError: ``path`` exists and is not an empty directory.
    """
    out = Path(path)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"{out}: exists and is not an empty directory")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        tmp.chmod(0o755)  # mkdtemp makes it private
        yield tmp
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Writes ``data`` to ``path`` atomically (see :func:`atomic_path`) and returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_dataset(
    path: str | os.PathLike,
    *,
    video_ids: Sequence[str],
    split: Sequence[str],
    arrays: Mapping[str, np.ndarray],
    kind: str,
    params: Mapping[str, Any],
    truth_splits: Iterable[str] = (),
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Writes a data set atomically (temp file in the target directory, then rename).

    Args:
        path: Output directory (``avtune.parquet`` is written inside) or a ``.parquet`` path.
        video_ids: One id per row.
        split: One split name per row.
        arrays: Column name -> array shaped ``(N, *shape)``; bool arrays are stored as uint8.
        kind: Data set kind, e.g. ``"llp"`` or ``"llp-sim"``.
        params: Generation/conversion parameters (JSON-serialisable); they key the cache.
        truth_splits: Splits whose truth columns hold real values.
        extra: Further JSON-serialisable metadata.

    Returns:
        The path of the written file.
    """
    out = Path(path)
    if out.suffix != ".parquet":
        out.mkdir(parents=True, exist_ok=True)
        out = out / DATA_FILE
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
    n = len(video_ids)
    if len(split) != n:
        raise ValueError(f"split has {len(split)} entries for {n} videos")
    bad = sorted(set(split) - set(SPLITS))
    if bad:
        raise ValueError(f"unknown split names {bad}; expected {SPLITS}")
    cols: dict[str, pa.Array] = {
        "video_id": pa.array(list(video_ids), pa.string()),
        "split": pa.array(list(split), pa.string()),
    }
    shapes: dict[str, list[int]] = {}
    dtypes: dict[str, str] = {}
    for name, arr in arrays.items():
        arr = np.asarray(arr)
        if arr.dtype == np.bool_:
            arr = arr.astype(np.uint8)
        if arr.shape[0] != n:
            raise ValueError(f"column {name!r} has {arr.shape[0]} rows for {n} videos")
        if arr.dtype not in _ARROW_TYPES:
            raise ValueError(f"column {name!r}: unsupported dtype {arr.dtype}")
        shape = list(arr.shape[1:])
        width = int(np.prod(shape)) if shape else 1
        flat = pa.array(np.ascontiguousarray(arr).reshape(-1), _ARROW_TYPES[arr.dtype])
        cols[name] = pa.FixedSizeListArray.from_arrays(flat, width)
        shapes[name] = shape
        dtypes[name] = str(arr.dtype)
    counts = {s: int(sum(1 for x in split if x == s)) for s in SPLITS}
    meta = {
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "params": dict(params),
        "shapes": shapes,
        "dtypes": dtypes,
        "truth_splits": sorted(set(truth_splits)),
        "splits": counts,
        "extra": dict(extra or {}),
    }
    table = pa.table(cols).replace_schema_metadata({META_KEY: json.dumps(meta).encode()})
    with atomic_path(out, suffix=".parquet") as tmp:
        # Tensor columns are dense noise-like floats: compression and dictionary encoding buy ~10% of
        # size and cost 3-10x in write and read time (measured on 2000 LLP-sized videos), and every
        # trial pays the read. Row groups of ~1k videos keep split filtering cheap.
        pq.write_table(
            table, tmp, row_group_size=1024, use_dictionary=["video_id", "split"],
            compression={name: ("zstd" if name in ("video_id", "split") else "none")
                         for name in table.column_names},
        )
    return out


def read_meta(path: str | os.PathLike) -> dict[str, Any]:
    """Reads the avtune metadata of a data set (directory or file) without loading its rows."""
    f = data_file(path)
    try:
        schema = pq.read_schema(f)
    except Exception as e:  # pyarrow raises several types for corrupt files
        raise DataFormatError(f"{f}: not a readable Parquet file ({e})") from e
    raw = (schema.metadata or {}).get(META_KEY)
    if raw is None:
        raise DataFormatError(f"{f}: no avtune metadata (not written by avtune)")
    meta = json.loads(raw)
    if meta.get("format_version") != FORMAT_VERSION:
        raise DataFormatError(
            f"{f}: format version {meta.get('format_version')} not supported "
            f"(this avtune reads version {FORMAT_VERSION}); re-create the data set"
        )
    return meta


def read_split(
    path: str | os.PathLike, split: str, columns: Sequence[str] | None = None
) -> tuple[list[str], dict[str, np.ndarray]]:
    """Reads one split as contiguous arrays.

    Args:
        path: Data set directory or file.
        split: ``train``, ``val`` or ``test``.
        columns: Tensor columns to read (default: all).

    Returns:
        ``(video_ids, arrays)`` with arrays shaped ``(N, *shape)`` in their stored dtypes.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    f = data_file(path)
    meta = read_meta(f)
    names = list(meta["shapes"]) if columns is None else list(columns)
    missing = [c for c in names if c not in meta["shapes"]]
    if missing:
        raise DataFormatError(f"{f}: no column(s) {missing}; has {sorted(meta['shapes'])}")
    table = pq.read_table(
        f, columns=["video_id", *names], filters=[("split", "==", split)], use_threads=True
    )
    ids = table.column("video_id").to_pylist()
    out: dict[str, np.ndarray] = {}
    for name in names:
        col = table.column(name).combine_chunks()
        shape = meta["shapes"][name]
        values = col.values.to_numpy(zero_copy_only=False).reshape(len(ids), *shape)
        # Zero-copy views of Arrow buffers are read-only; torch.from_numpy needs writable memory.
        if not values.flags.writeable or not values.flags.c_contiguous:
            values = np.array(values, order="C", copy=True)
        out[name] = values
    return ids, out


def read_all(path: str | os.PathLike) -> tuple[list[str], list[str], dict[str, np.ndarray]]:
    """Every split of a data set as one table: ``(video_ids, split of each row, columns)``, the
    splits in :data:`SPLITS` order (what a converter that adds columns rewrites)."""
    meta = read_meta(path)
    ids: list[str] = []
    splits: list[str] = []
    arrays: dict[str, list[np.ndarray]] = {}
    for split in SPLITS:
        if not meta["splits"].get(split):
            continue
        sids, cols = read_split(path, split)
        ids += sids
        splits += [split] * len(sids)
        for k, v in cols.items():
            arrays.setdefault(k, []).append(v)
    return ids, splits, {k: np.concatenate(v) for k, v in arrays.items()}


def fingerprint(path: str | os.PathLike) -> str:
    """A short content key of a data set: hash of its metadata and file size.

    Cheap (no full read) yet changes whenever the data set is regenerated with other parameters
    or converted from other inputs.
    """
    f = data_file(path)
    meta = read_meta(f)
    h = hashlib.sha256(json.dumps(meta, sort_keys=True).encode())
    h.update(str(f.stat().st_size).encode())
    return h.hexdigest()[:16]


def params_key(kind: str, params: Mapping[str, Any]) -> str:
    """The cache key of a generated/converted data set: kind, format version and parameters."""
    blob = json.dumps({"kind": kind, "v": FORMAT_VERSION, "params": params}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def cache_root() -> Path:
    """Where generated data sets are cached: ``$AVTUNE_CACHE`` or ``~/.cache/avtune``."""
    return Path(os.environ.get("AVTUNE_CACHE", Path.home() / ".cache" / "avtune"))
