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
    # A quiet console: avtune's own lines, no Ray tables, result dumps or hints.
    for noise in ("╭", "│", "TensorBoard", "Trial status", "Token authentication", "INFO"):
        assert noise not in out + r.stderr, noise
    assert len(out.splitlines()) < 60, out
    assert out.count("[avtune] start  ") == 2 and out.count("[avtune] done   ") == 2
    assert "  lr=0.0005 smooth_a=1 smooth_v=1 dropout=0.1" not in out  # settings are sorted by name
    assert "[avtune] done   1/2  dropout=0.1 lr=0.0005 smooth_a=1 smooth_v=1  val/seg_Type " in out \
        or "[avtune] done   2/2  dropout=0.1 lr=0.0005 smooth_a=1 smooth_v=1  val/seg_Type " in out
    ranked = [ln.split() for ln in out.splitlines() if ln.startswith("  1  ") or ln.startswith("  2  ")]
    assert len(ranked) == 2 and float(ranked[0][5]) >= float(ranked[1][5])  # by val/seg_Type
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
    # Runs named by their settings; the optimised metric of the selected epoch under one name.
    names = {ch.info.run_name for ch in children}
    assert "dropout=0.1 lr=0.0005 smooth_a=1 smooth_v=1" in names
    for ch in children:
        sel = int(ch.data.metrics["best_epoch"])
        hist = {m.step: m.value for m in c.get_metric_history(ch.info.run_id, "val/seg_Type")}
        assert ch.data.metrics["objective"] == hist[sel] == ch.data.metrics["best/val/seg_Type"]
    e = c.get_experiment_by_name("han_baseline")
    assert e.tags["mlflow.experimentKind"] == "custom_model_development"
    # Parent: the best trial's ten scores and the tables.
    best = max(children, key=lambda ch: ch.data.metrics["objective"])
    for k in ("seg_A", "seg_V", "seg_AV", "seg_Type", "seg_Event",
              "event_A", "event_V", "event_AV", "event_Type", "event_Event"):
        assert parent.data.metrics[k] == pytest.approx(best.data.metrics[f"test/{k}"])
    # The parent: the best trial's settings as params, a description with the table and command.
    for key in ("config/lr", "config/smooth_a", "config/smooth_v", "config/dropout", "config/batch_size"):
        assert parent.data.params[key] == best.data.params[key]
    assert parent.data.tags["avtune.sweep"] == "han_baseline" and parent.data.tags["avtune.name"] == "tiny"
    note = parent.data.tags["mlflow.note.content"]
    assert f"Best configuration of **han_baseline** `tiny`: **{best.info.run_name}**, val/seg_Type {best.data.metrics['objective']:.2f}" in note
    assert f"| {best.data.metrics['test/seg_A']:.1f} |" in note and "| Method | Seg A |" in note
    assert ("python -m orchestrator.sweep han_baseline --data llp-sim-tiny --max-epochs 2 --num-samples 2 "
            "--seed 0") in note
    assert any(k.startswith("test/class_A/") for k in best.data.metrics)  # per-class F of the test split
    # --show prints the ranked table again, from MLflow.
    show = subprocess.run([sys.executable, "-m", "orchestrator.sweep", "--show", "tiny"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert show.returncode == 0, show.stderr
    again = [ln.split() for ln in show.stdout.splitlines() if ln.startswith("  1  ") or ln.startswith("  2  ")]
    assert again == ranked
    arts = sorted(a.path for a in c.list_artifacts(parent.info.run_id, "tables"))
    assert arts == ["tables/paper_table.html", "tables/paper_table.md", "tables/summary.txt", "tables/trials.parquet"]
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


# --seeds end to end (Optuna told the mean, names, the parent's mean ± std) is checked on the
# sweep that tests/test_notebooks.py runs the notebook on: one Ray start for both.


@pytest.mark.slow
def test_compare_methods_over_seeds_end_to_end(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    r = subprocess.run([sys.executable, "-m", "orchestrator.compare", "han", "avtune_fake_trainable",
                        "--data", "llp-sim-tiny", "--max-epochs", "1", "--seeds", "2", "--name", "cmp"],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=400)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    out = r.stdout
    assert "[avtune] 4/4 runs finished" in out and "╭" not in out
    c, parents, children = runs_of(tmp_path, "compare")
    (parent,) = parents
    assert sorted(ch.info.run_name for ch in children) == [
        "avtune_fake_trainable seed=0", "avtune_fake_trainable seed=1", "han seed=0", "han seed=1"]
    han = [ch for ch in children if ch.data.params["config/method"] == "han"]
    seg_a = [ch.data.metrics["test/seg_A"] for ch in han]
    mean = sum(seg_a) / 2
    std = abs(seg_a[0] - seg_a[1]) / 2 ** 0.5
    assert parent.data.metrics["han/seg_A"] == pytest.approx(mean)
    row = next(ln for ln in out.splitlines() if ln.strip().startswith("han ") and " 2/2 " in ln)
    assert row.split()[1] == "2/2" and row.split()[3] == f"{mean:.1f}±{std:.1f}"
    # The fake at its defaults (x=0.5, y=1.0) scores 42.6 + epoch (1) + 0.1 per seed.
    fake = next(ln for ln in out.splitlines() if ln.strip().startswith("avtune_fake_trainable ") and " 2/2 " in ln)
    assert fake.split()[2] == "43.65±0.07"
    assert "HAN (Tian et al., 2020) *" in out and "per-class segment F" in out
    tables_dir = tmp_path / "ray_results" / "cmp" / "tables"
    assert {p.name for p in tables_dir.iterdir()} >= {"paper_table.md", "class_f.png", "class_f.md", "summary.txt"}
    md = (tables_dir / "paper_table.md").read_text()
    assert f"| han | {mean:.1f} ± {std:.1f} |" in md
    arts = {a.path for a in c.list_artifacts(parent.info.run_id, "tables")}
    assert "tables/class_f.png" in arts and "tables/paper_table.md" in arts
    note = parent.data.tags["mlflow.note.content"]
    assert "python -m orchestrator.compare han avtune_fake_trainable --data llp-sim-tiny --max-epochs 1" in note
