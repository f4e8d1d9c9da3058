"""Three sweeps started at once on one fresh SQLite tracking store all succeed: creating the
store is serialised by the lock beside it, and each sweep gets its own parent run and children."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from mlflow.tracking import MlflowClient


@pytest.mark.slow
def test_three_sweeps_at_once_on_one_fresh_store(tmp_path):
    db = tmp_path / "mlflow.db"
    assert not db.exists()
    env = {**os.environ, "RAY_ADDRESS": ""}
    procs = [subprocess.Popen(
        [sys.executable, "-m", "orchestrator.sweep", "han_baseline", "--data", "llp-sim-tiny",
         "--num-samples", "1", "--max-epochs", "1", "--set", "d_model=32", "--name", f"s{i}",
         "--mlflow-uri", f"sqlite:///{db}", "--storage", str(tmp_path / "ray_results"),
         "--cpus-per-trial", "1"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for i in range(3)]
    outs = [p.communicate(timeout=900)[0] for p in procs]
    for p, out in zip(procs, outs):
        assert p.returncode == 0, out[-3000:]
    c = MlflowClient(f"sqlite:///{db}")
    exp = c.get_experiment_by_name("han_baseline")
    runs = c.search_runs([exp.experiment_id])
    parents = {r.info.run_name: r for r in runs if "mlflow.parentRunId" not in r.data.tags}
    assert sorted(parents) == ["s0", "s1", "s2"]
    assert all(r.info.status == "FINISHED" for r in parents.values())
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert sorted(ch.data.tags["mlflow.parentRunId"] for ch in children) == sorted(
        r.info.run_id for r in parents.values())
