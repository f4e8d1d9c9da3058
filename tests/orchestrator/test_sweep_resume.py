"""Interrupt a sweep hard (SIGKILL after the first trial result), then ``--resume`` it."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

HERE = Path(__file__).resolve().parent


def _env(tmp_path):
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
            "AVTUNE_FAKE_LOG": str(tmp_path / "fake.log"),
            # The last grid cell crashes once in epoch 2: FailureConfig restarts it from epoch 1.
            "AVTUNE_FAKE_FAIL_ONCE": "0.6,2.0,2"}


def _first_result_logged(db: Path) -> bool:
    try:
        with sqlite3.connect(db) as con:
            return con.execute("select count(*) from metrics where key='val/seg_Type'").fetchone()[0] > 0
    except sqlite3.Error:
        return False


@pytest.mark.slow
def test_interrupted_grid_sweep_resumes_without_duplicates(tmp_path):
    argv = [sys.executable, "-m", "orchestrator.sweep", "avtune_fake_sweep:SPEC", "--grid", "--name", "g",
            "--max-concurrent", "1", "--set", "sleep_s=2.5"]
    proc = subprocess.Popen(argv, cwd=tmp_path, env=_env(tmp_path), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 240
        while not _first_result_logged(tmp_path / "mlflow.db"):
            assert proc.poll() is None, "sweep ended before its first result"
            assert time.time() < deadline, "no trial result within 240 s"
            time.sleep(0.3)
        time.sleep(0.5)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the whole process group: driver and its Ray
        proc.wait()
    first_run = (tmp_path / "fake.log").read_text().splitlines()
    assert len(first_run) == 1, first_run  # killed inside the first trial

    r = subprocess.run([sys.executable, "-m", "orchestrator.sweep", "avtune_fake_sweep:SPEC", "--resume"],
                       cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True, timeout=400)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "4/4 trials finished" in r.stdout and "x=0.6, y=1.8" in r.stdout

    starts = (tmp_path / "fake.log").read_text().splitlines()
    interrupted = first_run[0].split(" from=")[0]
    resumed = [s for s in starts[1:] if s.startswith(interrupted)]
    # The interrupted trial continued from its last checkpoint (epoch 1, or 2 if the kill came
    # after that one was written) instead of starting over.
    assert len(resumed) == 1 and resumed[0].split(" from=")[1].split()[0] in ("1", "2"), starts
    crashed = [s for s in starts if s.startswith("start x=0.600000 y=2.000000")]
    assert (tmp_path / "fake.log.failed").exists()
    assert [s.split(" from=")[1].split()[0] for s in crashed] == ["0", "1"], starts
    assert len(starts) == 1 + 4 + 1  # 3 fresh cells + the resumed one + the crash restart

    c = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = c.get_experiment_by_name("fake_quadratic")
    runs = c.search_runs([exp.experiment_id])
    parents = [x for x in runs if "mlflow.parentRunId" not in x.data.tags]
    children = [x for x in runs if "mlflow.parentRunId" in x.data.tags]
    assert len(parents) == 1 and len(children) == 4  # no duplicate runs
    assert all(x.info.status == "FINISHED" for x in runs)  # nothing RUNNING or KILLED
    assert len({x.data.tags["avtune.trial_id"] for x in children}) == 4
    for ch in children:
        steps = [m.step for m in c.get_metric_history(ch.info.run_id, "val/seg_Type")]
        assert sorted(steps) == [1, 2], (ch.info.run_name, steps)
    arts = sorted(a.path for a in c.list_artifacts(parents[0].info.run_id, "tables"))
    assert arts == ["tables/heatmap.png", "tables/paper_table.html", "tables/paper_table.md",
                    "tables/summary.txt", "tables/trials.parquet"]
    assert parents[0].data.metrics["best/val/seg_Type"] == pytest.approx(52.0)


def _crash_after_plan(tmp_path, monkeypatch, name):
    """Runs the CLI until Tune would start, then crashes: a plan, but no Tune state."""
    from orchestrator import sweep, tune_runner

    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(HERE))

    def crash(*a, **k):
        raise RuntimeError("driver died before Tune's first snapshot")

    monkeypatch.setattr(tune_runner, "make_tuner", crash)
    with pytest.raises(RuntimeError, match="first snapshot"):
        sweep.main(["avtune_fake_sweep:SPEC", "--grid", "--name", name, "--max-epochs", "1"])
    assert (tmp_path / "ray_results" / name / "avtune_plan.json").is_file()
    from orchestrator.storage import has_tune_state

    assert not has_tune_state(str(tmp_path / "ray_results"), name)


def test_resume_skips_experiments_that_never_saved_state(tmp_path, monkeypatch, capsys):
    from orchestrator import sweep

    _crash_after_plan(tmp_path, monkeypatch, "broken")
    capsys.readouterr()
    assert sweep.main(["avtune_fake_sweep:SPEC", "--resume", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "saved any trial state (broken)" in err and "--resume --name NAME restarts" in err


@pytest.mark.slow
def test_resume_without_tune_state_restarts_the_planned_sweep(tmp_path, monkeypatch):
    _crash_after_plan(tmp_path, monkeypatch, "early")
    r = subprocess.run([sys.executable, "-m", "orchestrator.sweep", "avtune_fake_sweep:SPEC",
                        "--resume", "--name", "early"], cwd=tmp_path, env=_env(tmp_path),
                       capture_output=True, text=True, timeout=400)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "restarting its 4 planned trial(s) from the start" in r.stdout
    assert "4/4 trials finished" in r.stdout  # the planned grid, not a 1-trial default sweep
    c = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = c.search_runs([c.get_experiment_by_name("fake_quadratic").experiment_id])
    assert len(runs) == 5 and all(x.info.status == "FINISHED" for x in runs)
    assert len({x.data.tags["avtune.sweep_id"] for x in runs}) == 1
