"""Pre-flight checks (bad settings fail before Ray starts, nothing written) and the store lock."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest

from orchestrator import preflight, sweep


def test_sqlite_store_checks(tmp_path):
    preflight.check_tracking(f"sqlite:///{tmp_path / 'mlflow.db'}")  # new file in a writable dir
    with pytest.raises(preflight.PreflightError, match="directory .*missing.* does not exist"):
        preflight.check_tracking(f"sqlite:///{tmp_path / 'missing' / 'mlflow.db'}")
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(preflight.PreflightError, match="is not a writable file"):
        preflight.check_tracking(f"sqlite:///{tmp_path / 'dir.db'}")
    with pytest.raises(preflight.PreflightError, match="expected sqlite:///"):
        preflight.check_tracking("sqlite:/x.db")
    with pytest.raises(preflight.PreflightError, match="unsupported tracking URI scheme"):
        preflight.check_tracking("ftp:relative")
    assert list(tmp_path.iterdir()) == [tmp_path / "dir.db"]  # the checks wrote nothing


def test_unreachable_servers_fail_fast():
    with socket.socket() as s:  # a free port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.time()
    with pytest.raises(preflight.PreflightError, match=f"--address 127.0.0.1:{port}: cannot connect"):
        preflight.check_address(f"127.0.0.1:{port}")
    with pytest.raises(preflight.PreflightError, match="cannot connect"):
        preflight.check_tracking(f"http://127.0.0.1:{port}")
    with pytest.raises(preflight.PreflightError, match="expected auto, HOST:PORT"):
        preflight.check_address("nonsense")
    assert time.time() - t0 < 2 * preflight.CONNECT_TIMEOUT_S
    # A listening server passes.
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        preflight.check_address(f"127.0.0.1:{srv.getsockname()[1]}")


@pytest.mark.parametrize("argv, message", [
    (["--mlflow-uri", "sqlite:////proc/avtune/mlflow.db"], "directory /proc/avtune does not exist"),
    (["--address", "127.0.0.1:9"], "--address 127.0.0.1:9: cannot connect"),
    (["--storage", "/proc/version/x"], "--storage /proc/version/x: /proc/version is not a directory"),
])
def test_sweep_cli_bad_settings_exit_2_before_ray_writing_nothing(tmp_path, monkeypatch, capsys,
                                                                  argv, message):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    t0 = time.time()
    assert sweep.main(["han_baseline", "--data", "llp-sim-tiny", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("error: ") and err.count("\n") == 1
    assert time.time() - t0 < 10
    assert list(tmp_path.iterdir()) == []


def test_ray_address_from_the_environment_is_honoured_and_said(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:9")
    assert sweep.main(["han_baseline", "--data", "llp-sim-tiny"]) == 2
    cap = capsys.readouterr()
    assert "RAY_ADDRESS=127.0.0.1:9 is set: joining that cluster" in cap.out
    assert "--address 127.0.0.1:9: cannot connect" in cap.err


_CREATE = """
import sys
from mlflow.tracking import MlflowClient
from orchestrator import preflight
uri = sys.argv[1]
preflight.ensure_store(uri)
c = MlflowClient(uri)
exp = c.create_experiment(sys.argv[2])
c.create_run(exp)
"""


def test_three_processes_on_one_fresh_store_all_succeed(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    procs = [subprocess.Popen([sys.executable, "-c", _CREATE, uri, f"e{i}"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(3)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [o[1][-2000:] for o in outs]
    from mlflow.tracking import MlflowClient

    names = {e.name for e in MlflowClient(uri).search_experiments()}
    assert {"e0", "e1", "e2"} <= names


def _listening(pids: set[int]) -> list[str]:
    """Local addresses (hex, as in /proc/net/tcp*) of the TCP sockets ``pids`` listen on."""
    import os

    inodes = set()
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
        except OSError:
            continue
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in open(table).read().splitlines()[1:]:
            f = line.split()
            if f[3] == "0A" and f[9] in inodes:  # 0A = LISTEN
                out.append(f[1].split(":")[0])
    return out


def _descendants(pid: int) -> set[int]:
    import os

    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                ppid = int(open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(d))
    out, todo = set(), [pid]
    while todo:
        for k in kids.get(todo.pop(), []):
            out.add(k)
            todo.append(k)
    return out


def test_private_local_ray_listens_on_loopback_only():
    import os

    import ray

    from orchestrator.launch import start_ray

    start_ray(None, {"CPU": 1.0, "GPU": 0.0})
    try:
        assert ray.get(ray.remote(lambda: 1 + 1).remote()) == 2  # it works, workers included
        addrs = _listening(_descendants(os.getpid()) | {os.getpid()})
        assert len(addrs) >= 3  # GCS, raylet, the workers' servers at least
        loopback = {"0100007F", "0000000000000000FFFF00000100007F",
                    "00000000000000000000000001000000"}
        assert set(addrs) <= loopback, addrs  # no 0.0.0.0 / :: / routable address
    finally:
        ray.shutdown()
