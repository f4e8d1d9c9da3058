"""Sweep CLI without running Ray: listing, dry runs, plans, resources and bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

import search_spaces
from orchestrator import plan as plans
from orchestrator import resources, sweep, tune_runner
from orchestrator.rows import SEED_INDEX

HERE = Path(__file__).resolve().parent


def _plan(*argv, total=None):
    return plans.build(sweep.parse_args(list(argv)), "sweep", total or {"CPU": 2.0, "GPU": 0.0})


def _spec(plan):
    return search_spaces.get(plan.experiment)


def test_list_names_every_sweep_with_metric_and_mode(capsys):
    assert sweep.main(["--list"]) == 0
    out = capsys.readouterr().out
    for name, spec in search_spaces.registry().items():
        line = next(ln for ln in out.splitlines() if ln.startswith(name + " "))
        assert spec.metric in line and f"({spec.mode})" in line and spec.description in line


@pytest.mark.parametrize("argv, needle", [
    (["no_such_sweep"], "unknown sweep 'no_such_sweep'"),
    (["jomold_thresholds", "--data", "llp-sim-huge"], "unknown data spec 'llp-sim-huge'"),
    (["jomold_thresholds", "--data", "llp=/no/such/dir"], "/no/such/dir"),
    (["jomold_thresholds", "--set", "no_such_field=1"], "unknown config key 'no_such_field'"),
    (["jomold_thresholds", "--set", "lr=fast"], "lr=fast"),
    (["jomold_thresholds", "--set", "warmup_mode=sideways"], "warmup_mode"),
    (["jomold_thresholds", "--set", "epochs=3"], "--max-epochs"),
    (["han_baseline", "--grid"], "defines no grid"),
    (["jomold_thresholds", "--gpus-per-trial", "0.5"], "no GPU"),
    # Every method's validate() and data checks run at plan time, AVAR's included.
    (["avar_alpha", "--set", "variant=swav"], "variant must be one of"),
    (["avar_alpha", "--set", "tau2=0"], "tau2 must be > 0"),
    (["avar_alpha", "--data", "avar-sim-tiny", "--set", "batch_size=5"],
     "batch_size=5 must exceed the number of classes K=5"),
    (["han_baseline", "--set", "smooth_v=1.5"], "smooth_v must be in [0, 1]"),
])
def test_bad_input_is_named_and_exits_2(argv, needle, capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(resources, "local_resources", lambda: {"CPU": 2.0, "GPU": 0.0})
    assert sweep.main([*argv, "--dry-run", "--storage", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and needle in err


@pytest.mark.parametrize("argv, needle", [
    (["jomold_thresholds", "--num-samples", "0"], "--num-samples must be >= 1"),
    (["jomold_thresholds", "--gpus-per-trial", "-1"], "--gpus-per-trial must be >= 0"),
    (["jomold_thresholds", "--gpus-per-trial", "1.5"], "whole number"),
    (["jomold_thresholds", "--cpus-per-trial", "0"], "--cpus-per-trial must be > 0"),
    (["jomold_thresholds", "--max-epochs", "x"], "--max-epochs must be an integer"),
    (["jomold_thresholds", "--seed", "-3"], "--seed must be in"),
    (["jomold_thresholds", "--scheduler", "pbt"], "invalid choice"),
    (["jomold_thresholds", "--set", "novalue"], "KEY=VALUE"),
    ([], "a sweep NAME is required"),
])
def test_out_of_range_options_exit_2(argv, needle, capsys):
    with pytest.raises(SystemExit) as e:
        sweep.main(argv)
    assert e.value.code == 2
    assert needle in capsys.readouterr().err


def test_cli_process_exit_code_and_message(tmp_path):
    r = subprocess.run([sys.executable, "-m", "orchestrator.sweep", "nope", "--dry-run"],
                       capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert r.returncode == 2 and "unknown sweep 'nope'" in r.stderr and r.stdout == ""


def test_resume_without_a_previous_sweep_is_an_error(tmp_path, capsys):
    assert sweep.main(["jomold_thresholds", "--resume", "--storage", str(tmp_path)]) == 2
    assert "no interrupted sweep of 'jomold_thresholds'" in capsys.readouterr().err


def test_cpu_preset_is_used_and_announced():
    plan = _plan("jomold_thresholds")
    spec = _spec(plan)
    assert plan.data == spec.cpu_data and plan.epochs == spec.cpu_epochs
    assert plan.num_samples == spec.cpu_num_samples and plan.gpus == 0.0
    assert any("no GPU found" in n and spec.cpu_data in n for n in plan.notes)
    # JoMoLD's estimator follows the shortened run.
    assert plan.only_arm().base["estimator_epochs"] == spec.cpu_epochs
    assert plan.max_concurrent == 2  # 2 CPUs, 1 CPU per trial


def test_gpu_defaults_and_fractional_sharing():
    plan = _plan("jomold_thresholds", "--grid", total={"CPU": 16.0, "GPU": 1.0})
    spec = _spec(plan)
    assert plan.data == spec.default_data and plan.epochs == spec.default_epochs
    assert not plan.notes or not any("no GPU" in n for n in plan.notes)
    assert plan.gpus == 0.125 and plan.max_concurrent == 8
    assert plan.num_samples == 1 and plan.search == "grid"


def test_explicit_flags_override_the_preset_and_set_is_typed():
    plan = _plan("han_baseline", "--data", "llp-sim-tiny", "--max-epochs", "2", "--num-samples", "3",
                 "--cpus-per-trial", "2", "--set", "batch_size=64", "--set", "with_ca=false",
                 "--seed", "7")
    assert (plan.data, plan.epochs, plan.num_samples, plan.seed) == ("llp-sim-tiny", 2, 3, 7)
    assert plan.only_arm().base == {"batch_size": 64, "with_ca": False}
    assert plan.max_concurrent == 1  # 2 CPUs per trial on a 2-CPU machine
    assert not any("no GPU found" in n for n in plan.notes)


def test_max_concurrent_from_resources():
    mc = resources.max_concurrent
    assert mc({"CPU": 16, "GPU": 1}, {"CPU": 1, "GPU": 0.25}, None, 20) == 4
    assert mc({"CPU": 16, "GPU": 1}, {"CPU": 1, "GPU": 0.25}, 2, 20) == 2
    assert mc({"CPU": 2}, {"CPU": 1, "GPU": 0.0}, None, 1) == 1
    # An autoscaling cluster without GPU nodes yet: the GPU demand does not cap concurrency.
    assert mc({"CPU": 8, "GPU": 0}, {"CPU": 1, "GPU": 1}, None, 20) == 8
    assert mc({"CPU": 1}, {"CPU": 4}, None, 5) == 1


def test_trial_resources_and_names():
    res = SimpleNamespace
    pgf = tune_runner.trial_resources(res(cpus=2, gpus=0.25, workers=1), [{"CPU": 1}])
    assert pgf.bundles == [{"CPU": 2.0, "GPU": 0.25}, {"CPU": 1}]
    ddp = tune_runner.trial_resources(res(cpus=1, gpus=0, workers=2))
    assert "CPU" not in ddp.bundles[0]  # the DDP workers reserve their own CPUs
    assert resources.per_trial_demand(res(cpus=1, gpus=0.5, workers=2), [{"CPU": 1}]) == \
        {"CPU": 3.0, "GPU": 1.0}
    trial = SimpleNamespace(trial_id="abc12", config={"theta_v": 1.8, "theta_a": 0.612345, "mode": "paper"})
    assert tune_runner.trial_name(trial) == "abc12[mode=paper,theta_a=0.6123,theta_v=1.8]"


def test_trial_overrides_merge_base_tuned_epochs_seed():
    plan = _plan("jomold_thresholds", "--set", "lr=1e-3", "--set", "theta_a=0.1", "--max-epochs", "3",
                 "--seed", "5", "--data", "llp-sim-tiny")
    assert plans.trial_overrides(plan, {"theta_a": 0.6}) == \
        {"lr": 1e-3, "theta_a": 0.6, "estimator_epochs": 3, "epochs": 3, "seed": 5}


def test_dry_run_prints_resolved_plan(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(resources, "local_resources", lambda: {"CPU": 2.0, "GPU": 0.0})
    assert sweep.main(["jomold_thresholds", "--dry-run", "--grid", "--storage", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "grid of 20 cells" in out and "theta_v: [1.6, 1.7, 1.8, 1.9, 2.0]" in out
    assert "data        llp-sim-small" in out and str(tmp_path) in out
    assert not any(tmp_path.iterdir())  # a dry run writes nothing


def test_existing_experiment_name_needs_resume(tmp_path, capsys):
    (tmp_path / "taken").mkdir()
    assert sweep.main(["jomold_thresholds", "--name", "taken", "--storage", str(tmp_path), "--dry-run"]) == 2
    assert "already exists" in capsys.readouterr().err


def test_grid_cell_receives_the_constants_its_space_derives():
    # rlld_reward_mix's grid fixes alpha1 only; its space also suggests a dozen other fields and
    # returns alpha2 = 1 - alpha1. Every cell must get its own alpha2, not the config default 0.4.
    plan = _plan("rlld_reward_mix", "--grid", "--max-epochs", "2", "--data", "llp-sim-tiny")
    assert plan.only_arm().base["eval_actor_cpus"] == 0.5
    for a1 in (0.0, 0.2, 0.8, 1.0):
        got = plans.trial_overrides(plan, {"alpha1": a1})
        assert got["alpha1"] == a1 and got["alpha2"] == pytest.approx(1.0 - a1)
        assert got["eval_actor_cpus"] == 0.5 and (got["epochs"], got["seed"]) == (2, 0)
        # The parameters the grid leaves alone are not turned into overrides.
        assert "terminal_scale" not in got


def test_cpu_preset_note_names_only_what_the_preset_decides():
    plan = _plan("jomold_thresholds", "--data", "llp-sim-tiny")
    note = next(n for n in plan.notes if "no GPU found" in n)
    assert "llp-sim-small" not in note and "3 epochs, 4 trials" in note and plan.data == "llp-sim-tiny"
    assert "--max-epochs/--num-samples override it" in note
    assert not any("no GPU found" in n for n in _plan("jomold_thresholds", "--data", "llp-sim-tiny",
                                                      "--max-epochs", "1", "--num-samples", "1").notes)


def test_help_lists_sweeps_and_defaults(capsys):
    with pytest.raises(SystemExit) as e:
        sweep.main(["--help"])
    assert e.value.code == 0
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    for name in search_spaces.registry():
        assert name in out
    assert "--max-failures N retries of a failed trial from its checkpoint (default: 2)" in out
    assert "(default: ./ray_results)" in out and "--seed S first seed" in out and "(default: 0)" in out
    assert "--seeds N run every configuration under N seeds" in out and "(default: fifo)" in out


def test_every_sweep_is_named_as_its_module():
    from orchestrator.specs import sweep_names

    assert sweep_names() == sorted(search_spaces.registry())


@pytest.mark.parametrize("argv", [["nope"], ["jomold_thresholds", "--data", "nope", "--dry-run"],
                                  ["jomold_thresholds", "--seed", "-1"]])
def test_cli_errors_come_before_heavy_imports(argv, tmp_path):
    code = ("import sys, time; t = time.perf_counter(); from orchestrator.sweep import main\n"
            "try:\n    rc = main(sys.argv[1:])\nexcept SystemExit as e:\n    rc = e.code\n"
            "heavy = sorted(m for m in ('torch', 'ray', 'mlflow') if m in sys.modules)\n"
            "print('HEAVY', heavy, 'RC', rc, 'S', round(time.perf_counter() - t, 2))")
    r = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, cwd=tmp_path,
                       timeout=120)
    assert "error" in r.stderr
    assert "HEAVY [] RC 2" in r.stdout, r.stdout + r.stderr


def test_seeds_multiply_the_trials_and_the_command_reproduces_the_plan(capsys, tmp_path, monkeypatch):
    plan = _plan("jomold_thresholds", "--grid", "--seeds", "3", "--set", "theta_v=2.0", "--data", "llp-sim-tiny")
    assert plan.n_trials == 20 * 3 and plan.seeds == 3
    assert plan.command == ("python -m orchestrator.sweep jomold_thresholds --data llp-sim-tiny "
                            "--max-epochs 3 --grid --seed 0 --seeds 3 --set theta_v=2.0")
    assert plan.resume_command.startswith("python -m orchestrator.sweep jomold_thresholds --resume --name ")
    sampled = _plan("han_baseline", "--num-samples", "4", "--seeds", "2", "--seed", "5")
    assert sampled.n_trials == 8 and "--num-samples 4 --seed 5 --seeds 2" in sampled.command
    monkeypatch.setattr(resources, "local_resources", lambda: {"CPU": 2.0, "GPU": 0.0})
    assert sweep.main(["han_baseline", "--seeds", "2", "--dry-run", "--storage", str(tmp_path)]) == 0
    assert "4 trials, each under 2 seeds (0..1; Optuna sees the mean): 8 runs" in capsys.readouterr().out


def test_seed_index_becomes_the_trial_seed():
    plan = _plan("han_baseline", "--max-epochs", "2", "--seed", "10", "--data", "llp-sim-tiny")
    assert plans.trial_overrides(plan, {"lr": 0.1, SEED_INDEX: 2}) == {"lr": 0.1, "epochs": 2, "seed": 12}
    trial = SimpleNamespace(trial_id="ab", config={"lr": 0.1, SEED_INDEX: 2})
    assert tune_runner.trial_name(trial) == "ab[lr=0.1,seed+2]"
    # A comparison's trial runs its arm: the arm label is no config value.
    from orchestrator import compare

    cmp = plans.build(compare.parse_args(["han", "jomold", "--set", "jomold.theta_v=2.0", "--max-epochs", "2",
                                          "--data", "llp-sim-tiny"]), "compare", {"CPU": 2.0, "GPU": 0.0})
    arm, own = plans.trial_arm(cmp, {"method": "jomold", SEED_INDEX: 1})
    assert arm.method == "jomold" and own == {}
    assert plans.trial_overrides(cmp, {"method": "jomold", SEED_INDEX: 1}) == \
        {"theta_v": 2.0, "estimator_epochs": 2, "epochs": 2, "seed": 1}


def test_show_without_a_store_is_an_error_that_writes_nothing(tmp_path, capsys):
    db = tmp_path / "none.db"
    assert sweep.main(["--show", "--mlflow-uri", f"sqlite:///{db}"]) == 2
    assert f"no MLflow store at {db}" in capsys.readouterr().err and not db.exists()


def _label(cfg):
    return " ".join(f"{k}={v}" for k, v in sorted(cfg.items()) if k != "__trial_index__")


def test_console_progress_lines(tmp_path, capsys, monkeypatch):
    """One line per trial event, a status line with the best so far and an ETA, errors named."""
    from orchestrator import progress

    monkeypatch.setenv("AVTUNE_STATUS_S", "0")
    cb = progress.ConsoleProgress(3, "val/seg_Type", "max", 2, _label, score=("test/seg_Type", "Seg Type"))
    t1 = SimpleNamespace(trial_id="a", config={"x": 0.6}, last_result=None, error_file=None)
    t2 = SimpleNamespace(trial_id="b", config={"x": 0.5}, last_result=None, error_file=None)
    cb.on_trial_start(0, [], t1)
    cb.on_trial_start(0, [], t2)
    cb.on_trial_result(0, [], t1, {"training_iteration": 1, "val/seg_Type": 40.0})
    cb.on_trial_result(0, [], t1, {"training_iteration": 2, "val/seg_Type": 38.0})
    t1.last_result = {"final": 1, "val/seg_Type": 40.0, "best_epoch": 0, "test/seg_Type": 35.25}
    cb.on_trial_complete(0, [], t1)
    (tmp_path / "error.txt").write_text("Traceback (most recent call last):\n  ...\nRuntimeError: out of memory\n")
    t2.error_file = str(tmp_path / "error.txt")
    cb.on_trial_error(0, [], t2)
    cb.t0 -= 60  # a minute in; epochs of 10 s: the pending trial's 2 epochs left, 2 trials at once
    cb.epoch_s = [10.0, 10.0]
    status = cb.status_line()
    out = capsys.readouterr().out.splitlines()
    assert out == ["[avtune] start  1/3  x=0.6", "[avtune] start  2/3  x=0.5",
                   "[avtune]        1/3  x=0.6  epoch 1/2  val/seg_Type 40.00",
                   "[avtune]        1/3  x=0.6  epoch 2/2  val/seg_Type 38.00",
                   "[avtune] done   1/3  x=0.6  val/seg_Type 40.00 (epoch 1 of 2)  test Seg Type 35.2",
                   f"[avtune] FAILED 2/3  x=0.5: RuntimeError: out of memory  ({tmp_path / 'error.txt'})"]
    assert status.startswith("status 1:00  1 done, 0 running, 1 pending, 1 failed  best val/seg_Type 40.00 (x=0.6)")
    assert status.endswith("ETA ~0:10")
    import pickle

    again = pickle.loads(pickle.dumps(cb))  # pickled with the Tuner for --resume: counts start again
    assert again.done == {} and again.planned == 3


def test_console_progress_arms_on_their_own_schedules(capsys, monkeypatch):
    """A comparison whose arms keep their own epochs (25 and 30) shows each trial's own length,
    and the ETA counts each arm's epochs, not the longest for every trial."""
    from orchestrator import progress

    monkeypatch.setenv("AVTUNE_STATUS_S", "0")
    cb = progress.ConsoleProgress(4, "val/seg_Type", "max", 30, _label, arm_epochs={"han": 25, "vaplan": 30},
                                  total_epochs=2 * (25 + 30))
    han = SimpleNamespace(trial_id="a", config={"method": "han"}, last_result=None, error_file=None)
    vap = SimpleNamespace(trial_id="b", config={"method": "vaplan"}, last_result=None, error_file=None)
    cb.on_trial_start(0, [], han)
    cb.on_trial_start(0, [], vap)
    cb.on_trial_result(0, [], han, {"training_iteration": 1, "val/seg_Type": 40.0})
    cb.on_trial_result(0, [], vap, {"training_iteration": 1, "val/seg_Type": 41.0})
    han.last_result = {"final": 1, "val/seg_Type": 40.0, "best_epoch": 4}
    cb.iters["a"] = 25
    cb.on_trial_complete(0, [], han)
    out = capsys.readouterr().out.splitlines()
    assert out[2:] == ["[avtune]        1/4  method=han  epoch 1/25  val/seg_Type 40.00",
                       "[avtune]        2/4  method=vaplan  epoch 1/30  val/seg_Type 41.00",
                       "[avtune] done   1/4  method=han  val/seg_Type 40.00 (epoch 5 of 25)"]
    # 110 epochs planned, 25 + 1 done; 84 left at 10 s an epoch, two at a time: 420 s less the
    # running epoch's share (it has just reported, so none).
    cb.epoch_s = [10.0]
    cb.last_report["b"] = 1000.0
    assert cb.eta(1000.0) == 420.0
