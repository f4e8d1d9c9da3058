"""A cache of first-stage results that several trials share (JoMoLD's noise estimator, VAPLAN's
first-stage model for label denoising).

A stage is keyed by a hash of what determines it (the data fingerprint and the stage's config,
seed included), stored as one ``torch.save`` dict of tensors and plain values under
``cache_root()/<kind>/<key>.pt`` (loadable with ``weights_only=True``), written atomically. On one
process (no torch.distributed) a file lock beside it makes concurrent trials on one machine compute
it once; under DDP every rank computes (the work is collective), rank 0 writes and all read.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from trainables.core.dist import dist_info
from trainables.data.format import atomic_path, cache_root, file_lock


def stage_key(payload: Mapping[str, Any]) -> str:
    """A short stable hash of a JSON-able description of a stage."""
    blob = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def stage_path(kind: str, key: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """Where a stage's result lives: ``<cache_dir or cache_root()/kind>/<key>.pt``."""
    root = Path(cache_dir) if cache_dir is not None else cache_root() / kind
    return root / f"{key}.pt"


def _read(path: Path, key: str) -> dict[str, Any]:
    d = torch.load(path, map_location="cpu", weights_only=True)
    if d.get("key") != key:
        raise ValueError(f"{path}: stage cache holds key {d.get('key')!r}, expected {key!r}")
    return d


def cached_stage(kind: str, key: str, compute: Callable[[], dict[str, Any]], *,
                 cache_dir: str | os.PathLike | None = None) -> tuple[dict[str, Any], Path]:
    """The stored result of stage ``key``, computing and storing it first if absent.

    Args:
        kind: Cache folder name (``estimators``, ``vaplan-stage1``).
        key: From :func:`stage_key`.
        compute: Returns the result: a dict of tensors and plain values (``key`` is added).
        cache_dir: Override of the folder.

    Returns:
        ``(result, path)``; the result is the one read back from disk, so every caller sees the
        same stored values.
    """
    path = stage_path(kind, key, cache_dir)
    world = dist_info()[1]
    if world == 1:
        if path.is_file():
            return _read(path, key), path
        with file_lock(path.with_suffix(".lock")):
            if not path.is_file():  # another process may have written it while we waited
                _write(path, key, compute())
        return _read(path, key), path
    if not path.is_file():
        blob = compute()  # collective under DDP: every rank computes
        if dist_info()[0] == 0:
            _write(path, key, blob)
        dist.barrier()
    return _read(path, key), path


def _write(path: Path, key: str, blob: Mapping[str, Any]) -> None:
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save({**blob, "key": key}, tmp)
