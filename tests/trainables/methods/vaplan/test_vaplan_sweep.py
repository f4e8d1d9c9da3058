"""A tiny ``vaplan_thresholds`` sweep end to end: the new method runs through the unchanged
orchestrator (discovered, planned, tracked), every trial logs its pseudo-label quality, and the
sweep ranks trials by it (the paper's criterion)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from mlflow.tracking import MlflowClient

from search_spaces import vaplan_thresholds as vs
from trainables.methods.vaplan.train import QUALITY_KEY


class _Recorder:
    """A stand-in for an Optuna trial that records what a space suggests."""

    def __init__(self):
        self.names = {}

    def suggest_float(self, name, low, high, log=False):
        self.names[name] = (low, high)
        return low

    def suggest_int(self, name, low, high):
        self.names[name] = (low, high)
        return low

    def suggest_categorical(self, name, choices):
        self.names[name] = tuple(choices)
        return choices[0]


def _suggested(space):
    rec = _Recorder()
    space(rec)
    return rec.names


def test_the_sweep_optimises_val_pseudo_label_f_over_the_papers_choices():
    assert (vs.SPEC.metric, vs.SPEC.mode) == (QUALITY_KEY, "max") == ("pseudo/final_seg_F", "max")
    names = _suggested(vs.SPEC.space)
    assert set(names) == {"tau_v", "tau_a", "prompt_v", "prompt_a", "pld_k_v", "pld_alpha_v"}
    assert names["tau_a"][0] <= 0.040 <= names["tau_a"][1] and len(names["prompt_v"]) == 4
    grid = vs.SPEC.grid
    assert grid["tau_a"] == [0.037, 0.038, 0.039, 0.040] and set(grid["prompt_a"]) == {"AP1", "AP2"}
    assert set(grid["prompt_v"]) == {"VP1", "VP2", "VP3", "VP4"}
    # lambda is the paper's unless asked for; the audio K/alpha only with PLD on the audio labels.
    assert "lam" in _suggested(vs.SPEC_LAMBDA.space) and "lam" not in names
    both = _suggested(vs.SPEC_PLD_BOTH.space)
    assert {"pld_k_a", "pld_alpha_a"} <= set(both) and vs.SPEC_PLD_BOTH.base["pld_modalities"] == ("visual", "audio")
    assert vs.SPEC.points_to_evaluate[0] == vs.PAPER and "lam" not in vs.PAPER


def test_dry_run_plans_the_sweep_and_caps_the_first_stage(tmp_path):
    r = subprocess.run([sys.executable, "-m", "orchestrator.sweep", "vaplan_thresholds", "--dry-run",
                        "--data", "llp-sim-tiny", "--max-epochs", "2", "--storage", str(tmp_path)],
                       capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "trainable   vaplan" in r.stdout and "tau_v: FloatDistribution" in r.stdout
    assert f"metric {QUALITY_KEY} (max)" in r.stdout and "lam:" not in r.stdout
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
        assert m["objective"] == pytest.approx(m[QUALITY_KEY])  # ranked by pseudo-label F
        assert m[QUALITY_KEY] == pytest.approx((m["pseudo/pld_seg_F_v"] + m["pseudo/pld_seg_F_a"]) / 2)
        assert p["config/variant"] == "full" and p["config/d_model"] == "64"
        taus.add(p["config/tau_v"])
    assert "0.041" in taus  # the paper's point is evaluated first
