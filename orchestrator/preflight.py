"""Checks a sweep makes before it starts Ray or writes anything, and the tracking-store lock.

* :func:`check_tracking`: the MLflow tracking store is writable (SQLite, local files) or its server
  answers (HTTP, databases) within a few seconds;
* :func:`check_storage`: the Tune storage directory can be created or written;
* :func:`check_address`: a ``--address`` names a Ray cluster that answers within a few seconds;
* :func:`ensure_store`: creates or migrates a SQLite tracking store under a file lock beside it,
  so sweeps started together on one fresh store do not race in MLflow's schema migration.

Each check raises :class:`PreflightError` (a ``ValueError``) with one line naming the bad value.
"""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
from pathlib import Path
from urllib.parse import urlparse

CONNECT_TIMEOUT_S = 3.0


class PreflightError(ValueError):
    """A sweep's setting that cannot work; the message names it."""


def _writable_dir(path: Path, what: str) -> None:
    """``path`` is a writable directory, or the nearest existing ancestor is one (it is created
    later, by the writer)."""
    p = path
    while not p.exists():
        if p.parent == p:
            break
        p = p.parent
    if not p.is_dir():
        raise PreflightError(f"{what} {path}: {p} is not a directory")
    try:
        # os.access says yes to root on most directories; creating a file is the real test.
        with tempfile.TemporaryFile(dir=p):
            pass
    except OSError as e:
        raise PreflightError(f"{what} {path}: {p} is not writable ({e.strerror or e})") from None


def _reachable(host: str, port: int, what: str) -> None:
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as e:
        raise PreflightError(f"{what}: cannot connect to {host}:{port} within "
                             f"{CONNECT_TIMEOUT_S:g} s ({e.strerror or e})") from None


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` tracking URI (None for other schemes)."""
    if not uri.startswith("sqlite:"):
        return None
    rest = uri[len("sqlite:"):]
    if not rest.startswith("///"):
        raise PreflightError(f"--mlflow-uri {uri}: expected sqlite:///RELATIVE or "
                             "sqlite:////ABSOLUTE/path.db")
    return Path(rest[3:])


def check_tracking(uri: str) -> None:
    """The tracking store can be written (local) or reached (server)."""
    db = sqlite_path(uri)
    if db is not None:
        if db.exists() and not (db.is_file() and os.access(db, os.R_OK | os.W_OK)):
            raise PreflightError(f"--mlflow-uri {uri}: {db} is not a writable file")
        if not db.exists():
            # MLflow creates the file, not its directory.
            if not db.parent.is_dir():
                raise PreflightError(f"--mlflow-uri {uri}: directory {db.parent} does not exist")
            _writable_dir(db.parent, f"--mlflow-uri {uri}: directory")
        return
    u = urlparse(uri)
    if u.scheme in ("", "file"):
        _writable_dir(Path(u.path if u.scheme else uri), f"--mlflow-uri {uri}: directory")
        return
    if u.scheme in ("http", "https") or u.hostname:
        if not u.hostname:
            raise PreflightError(f"--mlflow-uri {uri}: no host")
        port = u.port or {"http": 80, "https": 443, "postgresql": 5432,
                          "mysql": 3306}.get(u.scheme.split("+")[0])
        if port is None:
            raise PreflightError(f"--mlflow-uri {uri}: no port")
        _reachable(u.hostname, port, f"--mlflow-uri {uri}")
        return
    raise PreflightError(f"--mlflow-uri {uri}: unsupported tracking URI scheme {u.scheme!r}")


def check_storage(storage: str) -> None:
    """A local Tune storage path can be created or written (remote URIs are checked by Ray)."""
    if "://" not in storage:
        _writable_dir(Path(storage), "--storage")


def check_address(address: str) -> None:
    """``address`` names a Ray cluster that answers: ``auto`` (a cluster started on this machine
    with ``ray start``), ``HOST:PORT`` (its GCS) or ``ray://HOST:PORT`` (Ray Client)."""
    if address == "local":
        return
    if address == "auto":
        current = Path(os.environ.get("RAY_TMPDIR", "/tmp")) / "ray" / "ray_current_cluster"
        try:
            address = current.read_text().strip()
        except OSError:
            raise PreflightError("--address auto: no Ray cluster was started on this machine "
                                 "(`ray start --head` writes /tmp/ray/ray_current_cluster)") from None
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise PreflightError(f"--address {address}: expected auto, HOST:PORT or ray://HOST:PORT")
    _reachable(host.strip("[]"), int(port), f"--address {address}")


def store_lock(uri: str):
    """An exclusive lock on ``<db>.lock`` beside a SQLite store (a null context for others)."""
    from trainables.data.format import file_lock

    db = sqlite_path(uri)
    return contextlib.nullcontext() if db is None else file_lock(f"{db}.lock")


def ensure_store(uri: str) -> None:
    """Creates or migrates the tracking store once, serialised across processes."""
    from mlflow.tracking import MlflowClient

    with store_lock(uri):
        MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
