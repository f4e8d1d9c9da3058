"""A run's storage: ``<storage>/<name>``, a local directory or a URI (``s3://bucket/prefix``) that
Tune, the plan file and the trials' checkpoints share."""

from __future__ import annotations

import json
import os
from typing import Any

# The plan a run was started with, next to Tune's experiment state: --resume rebuilds it exactly.
PLAN_FILE = "avtune_plan.json"


def run_dir(storage: str, name: str) -> str:
    """``<storage>/<name>``, the run's directory (Ray Tune calls it the experiment): a local path
    or a URI such as ``s3://bucket/prefix/name``."""
    return f"{str(storage).rstrip('/')}/{name}"


def filesystem(path: str):
    """``(pyarrow filesystem, path inside it)`` for a local path or a URI."""
    import pyarrow.fs

    return pyarrow.fs.FileSystem.from_uri(path if "://" in path else os.path.abspath(path))


def has_tune_state(storage: str, name: str) -> bool:
    """Whether Tune saved a state snapshot of the experiment (``experiment_state-*.json``), which
    ``Tuner.restore`` needs; ``tuner.pkl`` alone is written before any trial starts."""
    import pyarrow.fs

    fs, rel = filesystem(run_dir(storage, name))
    infos = fs.get_file_info(pyarrow.fs.FileSelector(rel, allow_not_found=True))
    return any(os.path.basename(i.path).startswith("experiment_state-") for i in infos)


def save_plan_file(storage: str, name: str, blob: dict[str, Any]) -> str:
    """Writes ``blob`` as ``<run dir>/avtune_plan.json`` (atomically on local disks)."""
    path = f"{run_dir(storage, name)}/{PLAN_FILE}"
    data = json.dumps(blob, indent=2, sort_keys=True).encode()
    if "://" not in path:
        from trainables.data.format import atomic_write_bytes

        return str(atomic_write_bytes(path, data))
    fs, rel = filesystem(path)
    fs.create_dir(os.path.dirname(rel), recursive=True)
    with fs.open_output_stream(rel) as f:
        f.write(data)
    return path


def load_plan_file(directory: str) -> dict[str, Any]:
    """Reads ``<run dir>/avtune_plan.json``; a clear error if the run has none."""
    import pyarrow.fs

    path = f"{directory.rstrip('/')}/{PLAN_FILE}"
    fs, rel = filesystem(path)
    if fs.get_file_info(rel).type == pyarrow.fs.FileType.NotFound:
        raise FileNotFoundError(f"{path}: no avtune run to resume here")
    with fs.open_input_stream(rel) as f:
        return json.loads(f.read())
