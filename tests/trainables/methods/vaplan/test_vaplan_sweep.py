"""A tiny ``vaplan_thresholds`` sweep end to end: the new method runs through the unchanged
orchestrator (discovered, planned, tracked), and every trial logs its pseudo-label quality."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from mlflow.tracking import MlflowClient


def test_dry_run_plans_the_sweep_and_caps_the_first_stage(tmp_path):
    r = subprocess.run([sys.executable, "-m", "orchestrator.sweep", "vaplan_thresholds", "--dry-run",
                        "--data", "llp-sim-tiny", "--max-epochs", "2", "--storage", str(tmp_path)],
                       capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "trainable   vaplan" in r.stdout and "tau_v: FloatDistribution" in r.stdout
    assert "stage1_epochs capped at 2" in r.stdout
    bad = subprocess.run([sys.executable, "-m", "orchestrator.sweep", "vaplan_thresholds", "--dry-run",
                          "--set", "variant=row9", "--storage", str(tmp_path)],
                         capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert bad.returncode == 2 and "variant must be one of" in bad.stderr


@pytest.mark.slow
def test_tiny_vaplan_sweep_end_to_end(tmp_path):
    env = {**os.environ, "AVTUNE_CACHE": str(tmp_path / "cache")}
    r = subprocess.run([sys.executable, "-m", "orchestrator.sweep", "vaplan_thresholds", "--data",
                        "llp-sim-tiny", "--num-samples", "2", "--max-epochs", "1", "--set", "d_model=64",
                        "--name", "tiny"], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    c = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = c.get_experiment_by_name("vaplan_thresholds")
    runs = c.search_runs([exp.experiment_id])
    children = [x for x in runs if "mlflow.parentRunId" in x.data.tags]
    assert len(children) == 2 and all(ch.info.status == "FINISHED" for ch in children)
    taus = set()
    for ch in children:
        m, p = ch.data.metrics, ch.data.params
        for k in ("pseudo/seg_F_v", "pseudo/event_F_a", "pseudo/pld_seg_F_v", "test/seg_Type"):
            assert 0 <= m[k] <= 100, k
        assert p["config/variant"] == "full" and p["config/d_model"] == "64"
        taus.add(p["config/tau_v"])
    assert "0.041" in taus  # the paper's point is evaluated first
