"""The compare CLI without running Ray: plans, defaults, --set routing and bad input."""

from __future__ import annotations

import pytest

from orchestrator import compare
from orchestrator import plan as plans


def _plan(*argv, total=None):
    return plans.build(compare.parse_args(list(argv)), "compare", total or {"CPU": 2.0, "GPU": 0.0})


def test_plan_has_one_arm_per_method_and_trials_per_seed():
    plan = _plan("han", "jomold", "--data", "llp-sim-tiny", "--max-epochs", "2", "--seeds", "3",
                 "--set", "theta_v=2.2", "--set", "han.lr=1e-3")
    assert list(plan.arms) == ["han", "jomold"] and plan.n_trials == 6 and plan.seeds == 3
    assert plan.arms["han"].base == {"lr": 1e-3}  # theta_v is no HAN field: JoMoLD's only
    assert plan.arms["jomold"].base == {"theta_v": 2.2, "estimator_epochs": 2}
    assert plan.arms["jomold"].prepare.endswith(":ensure_estimator") and plan.arms["han"].prepare is None
    assert plan.metric == "val/seg_Type" and plan.max_concurrent == 2 and plan.axis == ["method"]
    assert plan.command == ("python -m orchestrator.compare han jomold --data llp-sim-tiny --max-epochs 2 "
                            "--seed 0 --seeds 3 --set theta_v=2.2 --set han.lr=1e-3")
    # The plan a run saves is the plan it resumes.
    again = plans.Plan.from_json(plan.to_json())
    assert again.arms == plan.arms and again.to_json() == plan.to_json()


def test_defaults_come_from_the_task_and_are_announced():
    plan = _plan("han", "jomold")
    assert (plan.data, plan.epochs) == ("llp-sim-small", 3)
    assert "data llp-sim-small, 3 epochs from the CPU preset of task avvp (no GPU found); " \
           "--data/--max-epochs override" in plan.notes
    gpu = _plan("han", "jomold", total={"CPU": 8.0, "GPU": 1.0})
    assert (gpu.data, gpu.epochs, gpu.gpus) == ("llp-sim", 25, 0.125)


def test_resume_command_names_a_storage_other_than_the_default(tmp_path):
    plan = _plan("han", "--storage", str(tmp_path / "runs"), "--name", "m5")
    assert plan.resume_command == f"python -m orchestrator.compare --resume --name m5 --storage {tmp_path / 'runs'}"
    assert _plan("han", "--name", "m5").resume_command == "python -m orchestrator.compare --resume --name m5"


def test_arms_with_their_own_schedule_announce_the_data_only():
    plan = _plan("llp_sim_v2_prediction")
    assert plan.data == "llp-sim-v2-small"
    assert plan.arms["han_calibration_row"].epochs == 25 and plan.arms["vaplan_5_full"].epochs == 30
    assert "data llp-sim-v2-small from the CPU preset of comparison llp_sim_v2_prediction (no GPU found); " \
           "--data/--max-epochs override" in plan.notes
    assert not any("3 epochs" in n for n in plan.notes)


@pytest.mark.parametrize("argv, needle", [
    (["han", "nope"], "unknown method 'nope'; known methods: avar, "),
    (["han", "avar"], "methods of different tasks cannot share one table: han (avvp), avar (avar)"),
    (["han", "--set", "no_such=1"], "no compared method's config has the field 'no_such'"),
    (["han", "--set", "rlld.lr=1"], "'rlld' is not among the methods compared"),
    (["han", "--set", "han.lr=fast"], "lr=fast"),
    (["han", "--data", "llp-sim-huge"], "unknown data spec 'llp-sim-huge'"),
    (["han", "--set", "epochs=3"], "--max-epochs"),
])
def test_bad_input_is_named_and_exits_2(argv, needle, capsys, tmp_path, monkeypatch):
    from orchestrator import resources

    monkeypatch.setattr(resources, "local_resources", lambda: {"CPU": 2.0, "GPU": 0.0})
    assert compare.main([*argv, "--dry-run", "--storage", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and needle in err
    assert not any(tmp_path.iterdir())


def test_argument_errors_exit_2(capsys):
    for argv, needle in ((["--seeds", "0", "han"], "--seeds must be >= 1"), ([], "name at least one METHOD"),
                         (["han", "han"], "a method is named twice")):
        with pytest.raises(SystemExit) as e:
            compare.main(argv)
        assert e.value.code == 2 and needle in capsys.readouterr().err


def test_from_sweep_needs_a_finished_sweep_of_a_compared_method(tmp_path, capsys, monkeypatch):
    from mlflow.tracking import MlflowClient

    from orchestrator import sweep
    from orchestrator.tracking import RunTracker

    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    swept = plans.build(sweep.parse_args(["jomold_thresholds", "--name", "jt-1", "--data", "llp-sim-tiny",
                                          "--max-epochs", "2", "--mlflow-uri", uri, "--storage", str(tmp_path)]),
                        "sweep", {"CPU": 2.0, "GPU": 0.0})
    tr = RunTracker(swept)
    rows = [{"trial_id": "a", "status": "TERMINATED", "config/theta_a": 0.7, "config/theta_v": 2.1,
             "val/seg_Type": 30.0}, {"trial_id": "b", "status": "TERMINATED", "config/theta_a": 0.5,
                                     "config/theta_v": 1.6, "val/seg_Type": 20.0}]
    tr.finish_run(rows)
    assert MlflowClient(uri).get_run(tr.parent_run_id()).data.params["config/theta_a"] == "0.7"
    p = _plan("han", "jomold", "--from-sweep", "jt-1", "--seeds", "2")
    base = p.arms["jomold"].base
    assert base["theta_a"] == 0.7 and base["theta_v"] == 2.1 and base["estimator_epochs"] == 2
    assert "epochs" not in base and "seed" not in base
    assert (p.data, p.epochs) == ("llp-sim-tiny", 2)  # the sweep's
    assert "--from-sweep jt-1" in p.command
    assert any("best configuration of sweep run 'jt-1'" in n for n in p.notes)
    capsys.readouterr()
    assert compare.main(["han", "--from-sweep", "jt-1", "--dry-run"]) == 2
    assert "that sweep tuned 'jomold', which is not among the methods compared" in capsys.readouterr().err
    assert compare.main(["han", "jomold", "--from-sweep", "nope", "--dry-run"]) == 2
    assert "no avtune run or sweep named 'nope'" in capsys.readouterr().err
