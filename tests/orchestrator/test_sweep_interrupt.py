"""Ctrl+C tells the truth: exit 130, KILLED runs, no best trial or tables; --resume finishes it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from mlflow.tracking import MlflowClient

from test_sweep_resume import _env, _first_result_logged


@pytest.mark.slow
def test_ctrl_c_exits_130_marks_killed_and_resume_finishes(tmp_path):
    env = {**_env(tmp_path), "AVTUNE_FAKE_FAIL_ONCE": ""}
    argv = [sys.executable, "-m", "orchestrator.sweep", "avtune_fake_sweep:SPEC", "--grid",
            "--name", "g", "--max-concurrent", "1", "--max-epochs", "4", "--set", "sleep_s=1.5"]
    proc = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.time() + 240
        while not _first_result_logged(tmp_path / "mlflow.db"):
            assert proc.poll() is None, proc.communicate()
            assert time.time() < deadline, "no trial result within 240 s"
            time.sleep(0.3)
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl+C sends
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, out[-2000:] + err[-2000:]
    assert "interrupted: 0 of 4 trials finished; resume with: python -m orchestrator.sweep " \
           "avtune_fake_sweep:SPEC --resume --name g" in err
    assert "[avtune] best trial" not in out and "Traceback" not in err

    c = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = c.get_experiment_by_name("fake_quadratic")
    runs = c.search_runs([exp.experiment_id])
    parent = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parent) == 1 and parent[0].info.status == "KILLED"
    assert children and all(r.info.status == "KILLED" for r in children)
    assert not any(k.startswith("best/") for r in runs for k in r.data.metrics)
    assert c.list_artifacts(parent[0].info.run_id) == []  # no tables from partial trials

    r = subprocess.run([sys.executable, "-m", "orchestrator.sweep", "avtune_fake_sweep:SPEC",
                        "--resume"], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=400)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "4/4 trials finished" in r.stdout
    runs = c.search_runs([exp.experiment_id])
    assert len(runs) == 5 and all(x.info.status == "FINISHED" for x in runs)
    parent_id = [x for x in runs if "mlflow.parentRunId" not in x.data.tags][0].info.run_id
    best = c.get_metric_history(parent_id, "best/val/seg_Type")
    assert [m.value for m in best] == [pytest.approx(54.0)]  # one value, from finished trials
    for ch in (x for x in runs if "mlflow.parentRunId" in x.data.tags):
        steps = sorted(m.step for m in c.get_metric_history(ch.info.run_id, "val/seg_Type"))
        assert steps == [1, 2, 3, 4], (ch.info.run_name, steps)
