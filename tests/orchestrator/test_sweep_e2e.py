"""Sweeps end to end on a private local Ray (2 CPUs): MLflow nesting, metrics, tables, grid, DDP."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

HERE = Path(__file__).resolve().parent


def run_sweep(tmp_path, *argv, timeout=400, env_extra=None):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
           "AVTUNE_FAKE_LOG": str(tmp_path / "fake.log"), **(env_extra or {})}
    r = subprocess.run([sys.executable, "-m", "orchestrator.sweep", *argv], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=timeout)
    return r


def runs_of(tmp_path, experiment):
    c = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = c.get_experiment_by_name(experiment)
    assert exp is not None, f"no MLflow experiment {experiment}"
    runs = c.search_runs([exp.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return c, parents, children


@pytest.mark.slow
def test_tiny_han_sweep_end_to_end(tmp_path):
    r = run_sweep(tmp_path, "han_baseline", "--data", "llp-sim-tiny", "--num-samples", "2",
                  "--max-epochs", "2", "--name", "tiny")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    out = r.stdout
    assert f"mlflow ui --backend-store-uri sqlite:///{tmp_path / 'mlflow.db'} --host 127.0.0.1" in out
    assert "[avtune] 2/2 trials finished" in out and "[avtune] best trial" in out
    c, parents, children = runs_of(tmp_path, "han_baseline")
    assert len(parents) == 1 and len(children) == 2
    parent = parents[0]
    assert parent.info.status == "FINISHED" and parent.info.run_name == "tiny"
    assert all(ch.data.tags["mlflow.parentRunId"] == parent.info.run_id for ch in children)
    assert len({ch.data.tags["avtune.trial_id"] for ch in children}) == 2
    for ch in children:
        assert ch.info.status == "FINISHED"
        p = ch.data.params
        assert {"config/lr", "config/smooth_a", "config/smooth_v", "config/dropout"} <= set(p)
        assert p["seed"] == "0" and len(p["data_fingerprint"]) == 16 and p["data"] == "llp-sim-tiny"
        # step = the epoch the trainable reports (HAN counts from 0): one point per epoch.
        steps = sorted(m.step for m in c.get_metric_history(ch.info.run_id, "val/seg_Type"))
        assert len(steps) == 2 and steps[1] == steps[0] + 1
        epochs = sorted(m.value for m in c.get_metric_history(ch.info.run_id, "epoch"))
        assert [int(e) for e in epochs][-2:] == steps
        assert sorted(m.step for m in c.get_metric_history(ch.info.run_id, "train/loss")) == steps
        for k in ("test/seg_A", "test/event_Event", "best/val/seg_Type"):
            assert k in ch.data.metrics
        assert 0.0 <= ch.data.metrics["test/seg_V"] <= 100.0
    # The paper defaults are evaluated first.
    assert {ch.data.params["config/lr"] for ch in children} >= {"0.0005"}
    # Parent: the best trial's ten scores and the tables.
    best = max(children, key=lambda ch: ch.data.metrics["val/seg_Type"])
    for k in ("seg_A", "seg_V", "seg_AV", "seg_Type", "seg_Event",
              "event_A", "event_V", "event_AV", "event_Type", "event_Event"):
        assert parent.data.metrics[k] == pytest.approx(best.data.metrics[f"test/{k}"])
    arts = sorted(a.path for a in c.list_artifacts(parent.info.run_id, "tables"))
    assert arts == ["tables/paper_table.html", "tables/paper_table.md", "tables/trials.parquet"]
    md = Path(c.download_artifacts(parent.info.run_id, "tables/paper_table.md", str(tmp_path))).read_text()
    assert "real LLP, reference" in md and f"{best.data.metrics['test/seg_A']:.1f}" in md
    assert (tmp_path / "ray_results" / "tiny" / "avtune_plan.json").is_file()


@pytest.mark.slow
def test_ddp_trial_with_two_workers(tmp_path):
    r = run_sweep(tmp_path, "avtune_fake_sweep:SPEC", "--num-samples", "1", "--workers-per-trial", "2",
                  "--name", "ddp", env_extra={"RAY_TRAIN_WORKER_GROUP_START_TIMEOUT_S": "120"})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    starts = (tmp_path / "fake.log").read_text().splitlines()
    assert len(starts) == 2  # one fit per worker
    c, parents, children = runs_of(tmp_path, "fake_quadratic")
    (ch,) = children
    assert sorted(m.step for m in c.get_metric_history(ch.info.run_id, "val/seg_Type")) == [1, 2]
    assert ch.data.metrics["test/seg_A"] == pytest.approx(52.0)
