"""The report layer without Ray: rows and groups, the one table renderer, the run's report and
files, and the MLflow tracker (runs found by tag, nesting, statuses, artifacts) and reader."""

from __future__ import annotations

import math
import os
import pickle

import pyarrow.parquet as pq
import pytest
from mlflow.tracking import MlflowClient

from orchestrator import figures, report, rows as R, tables
from orchestrator import plan as plans
from orchestrator.rows import RunInfo, flatten, numeric_metrics
from orchestrator.tracking import RunTracker
from trainables.tasks.avar import TASK as AVAR
from trainables.tasks.avvp import TASK as AVVP

SCORES = AVVP.score_keys


def _row(tid, x, y, metric, status="TERMINATED", keys=("x", "y")):
    r = {"trial_id": tid, "trial_name": f"{tid}[{keys[0]}={x},{keys[1]}={y}]", "status": status,
         f"config/{keys[0]}": x, f"config/{keys[1]}": y, "val/seg_Type": metric}
    r.update({f"test/{k}": metric - i for i, k in enumerate(SCORES)})
    return r


THETAS = ("theta_a", "theta_v")


def test_flatten_and_numeric_metrics():
    assert flatten({"a": {"b": 1, "c": {"d": 2}}, "e": 3}) == {"a/b": 1, "a/c/d": 2, "e": 3}
    m = numeric_metrics({"val/seg_V": 50.0, "epoch": 2, "timestamp": 5, "seed": 0, "data": "x",
                         "done": True, "bad": float("nan"), "replay": {"epoch": 1}})
    assert m == {"val/seg_V": 50.0, "epoch": 2.0}


def _one(label, row):
    return [(label, R.Group({}, [row]))]


def test_best_group_respects_mode_and_skips_unfinished():
    rows = [_row("a", 0.5, 1.6, 40.0), _row("b", 0.6, 1.8, 55.0), {"trial_id": "c", "status": "ERROR"}]
    assert R.best_group(rows, "val/seg_Type", "max").rows[0]["trial_id"] == "b"
    assert R.best_group(rows, "val/seg_Type", "min").rows[0]["trial_id"] == "a"
    assert R.best_group([{"trial_id": "c"}], "val/seg_Type", "max") is None


def test_paper_table_has_best_row_and_marked_references():
    best = _one("sweep best", _row("b", 0.6, 1.8, 55.0))
    md = tables.paper_table(best, AVVP, methods=["jomold"], data_note="llp-sim-tiny").markdown()
    lines = [ln for ln in md.splitlines() if ln.startswith("| ")]
    assert lines[1].startswith("| sweep best | 55.0 | 54.0 | 53.0 | 52.0 | 51.0 | 50.0 | 49.0 | 48.0 | 47.0 | 46.0 |")
    han = next(ln for ln in lines if ln.startswith("| HAN"))
    assert "real LLP" in han and "| 60.1 | 52.9 | 48.9 | 54.0 | 55.4 | 51.3 | 48.9 | 43.0 | 47.7 | 48.0 |" in han
    jo = next(ln for ln in lines if ln.startswith("| JoMoLD w/o CL"))
    assert "real LLP" in jo and "| 60.6 | 62.2 | 56.0 | 59.6 | 58.6 | 53.1 | 58.9 | 49.4 | 53.8 | 51.4 |" in jo
    html = tables.paper_table(best, AVVP, methods=["jomold"], data_note="llp-sim-tiny").html()
    assert html.count("<tr") == 2 + len(AVVP.references_for(["jomold"])) and "real LLP" in html and "<td>55.0</td>" in html
    # A HAN sweep shows HAN's row once; no JoMoLD or VAPLAN rows it does not compare against.
    han_md = tables.paper_table(best, AVVP, methods=["han"], data_note="tiny").markdown()
    assert han_md.count("| HAN") == 1 and "JoMoLD" not in han_md and "VAPLAN" not in han_md


def test_marked_rows_carry_their_protocol_footnote():
    best = _one("cmpae", _row("b", 0.6, 1.8, 55.0))
    t = tables.paper_table(best, AVVP, marks={"cmpae": "†"}, mark_notes={"†": "thresholds chosen on val"})
    assert t.rows[0][0] == "cmpae †" and "† thresholds chosen on val" in t.markdown()
    assert "cmpae †" in t.text() and "† thresholds chosen on val" in t.html()


def test_one_renderer_aligns_text_and_splits_two_row_headers():
    t = tables.Table(["name", "Seg A", "Seg V", "Event A"], [["x", "1.0", "22.5", "-"]], notes=["n"])
    lines = t.text().splitlines()
    assert lines[0].split() == ["Seg", "Event"] and lines[1].split() == ["name", "A", "V", "A"]
    assert lines[3].split() == ["x", "1.0", "22.5", "-"] and lines[-1] == "n"
    assert t.markdown().splitlines()[:2] == ["| name | Seg A | Seg V | Event A |", "|---|---:|---:|---:|"]
    assert tables.fmt_pm(61.23, 0.44, 3) == "61.2 ± 0.4" and tables.fmt_pm(61.23, 0.44, 1) == "61.2"
    assert tables.fmt_pm(float("nan"), 0.0, 3) == "-" and tables.fmt_pm(1.0, 0.5, 2, digits=2, sep="±") == "1.00±0.50"


def test_action_recognition_table_has_its_own_columns_and_no_llp_rows():
    best = _one("avar best", {"test/clip_top1": 81.25, "test/clip_top5": 97.5, "test/video_top1": 88.0})
    md = tables.paper_table(best, AVAR, methods=["avar"], data_note="avar-sim-tiny").markdown()
    lines = [ln for ln in md.splitlines() if ln.startswith("| ")]
    assert lines[0] == "| Method | Clip top-1 | Clip top-5 | Video top-1 |"
    assert lines[1] == "| avar best | 81.2 | 97.5 | 88.0 |" and len(lines) == 2
    assert "real LLP" not in md and "HAN" not in md


def test_heatmap_grid_cells_are_means():
    rows = [_row("a", 0.5, 1.6, 40.0), _row("b", 0.5, 1.6, 44.0), _row("c", 0.6, 1.8, 50.0)]
    xl, yl, mat = figures.heatmap_grid(rows, "config/x", "config/y", "val/seg_Type")
    assert xl == ["0.5", "0.6"] and yl == ["1.6", "1.8"]
    assert mat[0][0] == 42.0 and mat[1][1] == 50.0
    assert math.isnan(mat[0][1]) and math.isnan(mat[1][0])


def test_heatmap_grid_bins_continuous_samples():
    rows = [_row(str(i), i / 20, 1.2 + i / 20, float(i)) for i in range(20)]
    xl, yl, mat = figures.heatmap_grid(rows, "config/x", "config/y", "val/seg_Type")
    assert len(xl) == len(yl) == 6
    counted = sum(1 for r in mat for v in r if not math.isnan(v))
    assert counted == 6  # samples lie on the diagonal: one filled cell per row
    assert mat[0][0] < mat[5][5]


def _info(kind="sweep", axis=("x", "y"), **kw):
    return RunInfo(kind=kind, ref=kw.pop("ref", "s"), name=kw.pop("name", "run"), task=kw.pop("task", "avvp"),
                   metric=kw.pop("metric", "val/seg_Type"), mode="max", methods=kw.pop("methods", ["han"]),
                   axis=list(axis), data_note=kw.pop("data_note", "tiny"), **kw)


def test_write_sweep_tables(tmp_path):
    rows = [_row("a", 0.5, 1.6, 40.0), _row("b", 0.6, 1.8, 55.0), _row("c", 0.7, 2.0, 45.0)]
    paths = report.write_tables(_info(), rows, tmp_path)
    names = sorted(p.name for p in paths)
    assert names == ["heatmap.png", "paper_table.html", "paper_table.md", "summary.txt", "trials.parquet"]
    t = pq.read_table(tmp_path / "trials.parquet").to_pylist()
    assert [r["trial_id"] for r in t] == ["a", "b", "c"] and t[1]["test/seg_A"] == 55.0
    assert (tmp_path / "heatmap.png").read_bytes()[:4] == b"\x89PNG"
    assert "| best: x=0.6 y=1.8 | 55.0 |" in (tmp_path / "paper_table.md").read_text()
    assert "[avtune] best trial b: x=0.6, y=1.8  val/seg_Type=55.00" in (tmp_path / "summary.txt").read_text()
    one = report.write_tables(_info(axis=("x",)), rows, tmp_path / "one")
    assert "heatmap.png" not in [p.name for p in one]


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    # One SQLite store for the module (creating one costs seconds); each test has its experiment.
    # MLflow puts a SQLite store's artifacts under ./mlruns, so work inside the temp dir.
    d = tmp_path_factory.mktemp("mlflow")
    old = os.getcwd()
    os.chdir(d)
    try:
        yield f"sqlite:///{d / 'mlflow.db'}"
    finally:
        os.chdir(old)


@pytest.fixture()
def uri(db, request):
    return db, request.node.name


def _plan(uri, *argv, kind="sweep"):
    """A run's plan as its CLI builds it, tracked in the test's own experiment."""
    from orchestrator import compare, sweep

    db, exp = uri
    cli = sweep if kind == "sweep" else compare
    p = plans.build(cli.parse_args([*argv, "--mlflow-uri", db, "--data", "llp-sim-tiny"]), kind,
                    {"CPU": 2.0, "GPU": 0.0})
    p.experiment = exp  # one experiment per test: run counts stay the test's own
    return p


def _tracker(uri):
    return RunTracker(_plan(uri, "jomold_thresholds", "--max-epochs", "2", "--set", "lr=0.001"))


def test_tracker_nests_children_and_resumes_by_tag(uri):
    tr = _tracker(uri)
    parent = tr.parent_run_id()
    tr.log_result("t1", {"theta_a": 0.5, "theta_v": 1.6},
                  {"epoch": 1, "val/seg_Type": 40.0, "train/loss": 1.0, "seed": 7, "data_fingerprint": "abc"})
    # A restored sweep unpickles the tracker (no cached ids) and must find the same runs.
    tr2 = pickle.loads(pickle.dumps(tr))
    assert tr2._parent is None and tr2.parent_run_id() == parent
    tr2.log_result("t1", {"theta_a": 0.5, "theta_v": 1.6},
                   {"epoch": 2, "val/seg_Type": 38.0, "train/loss": 0.5, "seed": 7, "data_fingerprint": "abc"})
    # fit's final report: the selected epoch (1, not the last) with its test scores.
    tr2.log_result("t1", {"theta_a": 0.5, "theta_v": 1.6},
                   {"epoch": 1, "val/seg_Type": 40.0, "train/loss": 1.0, "test/seg_A": 33.0,
                    "best_epoch": 1, "last_epoch": 2, "final": 1, "seed": 7})
    tr2.finish_trial("t1", {"theta_a": 0.5, "theta_v": 1.6}, "FINISHED")
    c = MlflowClient(uri[0])
    exp = c.get_experiment_by_name(uri[1])
    runs = c.search_runs([exp.experiment_id])
    assert len(runs) == 2
    child = next(r for r in runs if r.data.tags.get("avtune.trial_id") == "t1")
    assert child.data.tags["mlflow.parentRunId"] == parent
    assert child.info.status == "FINISHED"
    assert child.data.params["config/theta_a"] == "0.5" and child.data.params["seed"] == "7"
    assert child.data.params["data_fingerprint"] == "abc"
    hist = c.get_metric_history(child.info.run_id, "val/seg_Type")
    assert sorted((m.step, m.value) for m in hist) == [(1, 40.0), (2, 38.0)]  # one point per epoch
    # MLflow's latest val/seg_Type is the last epoch's (38); the trial's result is the selected
    # epoch's, under one stable name on every child.
    assert child.data.metrics["val/seg_Type"] == 38.0
    assert child.data.metrics["objective"] == 40.0 and child.data.metrics["best/val/seg_Type"] == 40.0
    assert child.data.metrics["best/epoch"] == 1.0 and child.data.metrics["test/seg_A"] == 33.0
    assert child.info.run_name == "theta_a=0.5 theta_v=1.6"  # named by its settings
    assert child.data.tags["avtune.objective_metric"] == "val/seg_Type"
    par = c.get_run(parent)
    assert par.data.params["arms/jomold/base/lr"] == "0.001" and par.data.params["epochs"] == "2"
    assert par.info.status == "RUNNING" and par.data.tags["avtune.kind"] == "sweep"


def test_tracker_replay_fills_missing_epoch_once(uri):
    tr = _tracker(uri)
    cfg = {"theta_a": 0.5, "theta_v": 1.6}
    tr.log_result("t1", cfg, {"epoch": 1, "val/seg_Type": 40.0})
    # Epoch 2 was checkpointed but its result never reached the driver; epoch 3 replays it.
    tr.log_result("t1", cfg, {"epoch": 3, "val/seg_Type": 44.0, "replay": {"epoch": 2, "val/seg_Type": 42.0}})
    tr.log_result("t1", cfg, {"epoch": 4, "val/seg_Type": 45.0, "replay": {"epoch": 3, "val/seg_Type": 44.0}})
    c = MlflowClient(uri[0])
    rid = tr.child_run_id("t1", cfg)
    steps = sorted(m.step for m in c.get_metric_history(rid, "val/seg_Type"))
    assert steps == [1, 2, 3, 4]


def test_finish_run_logs_best_scores_tables_and_closes_runs(uri):
    tr = _tracker(uri)
    for tid, x, v in (("a", 0.5, 40.0), ("b", 0.6, 55.0)):
        tr.log_result(tid, {"theta_a": x, "theta_v": 1.6}, {"epoch": 1, "val/seg_Type": v})
    tr.finish_trial("a", {"theta_a": 0.5, "theta_v": 1.6}, "FINISHED")
    # "b" never finished: finish_run must not leave it RUNNING.
    rows = [_row("a", 0.5, 1.6, 40.0, keys=THETAS), _row("b", 0.6, 1.8, 55.0, keys=THETAS)]
    logged = tr.finish_run(rows)
    assert logged["seg_A"] == 55.0 and logged["event_Event"] == 46.0
    c = MlflowClient(uri[0])
    exp = c.get_experiment_by_name(uri[1])
    statuses = {r.data.tags.get("avtune.trial_id", "parent"): r.info.status for r in c.search_runs([exp.experiment_id])}
    assert statuses == {"parent": "FINISHED", "a": "FINISHED", "b": "KILLED"}
    arts = sorted(a.path for a in c.list_artifacts(tr.parent_run_id(), "tables"))
    assert arts == ["tables/heatmap.png", "tables/paper_table.html", "tables/paper_table.md", "tables/summary.txt",
                    "tables/trials.parquet"]
    par = c.get_run(tr.parent_run_id())
    assert par.data.metrics["seg_V"] == 54.0 and par.data.tags["avtune.best_trial_id"] == "b"


def test_child_run_logs_every_resolved_config_field(uri):
    """A trial is reproducible from MLflow alone: every Config field, not only the tuned ones."""
    import dataclasses

    from trainables.methods.han.train import Config

    tr = RunTracker(_plan(uri, "han_baseline", "--set", "d_model=64", "--max-epochs", "3", "--seed", "7"))
    rid = tr.child_run_id("t1", {"lr": 0.002, "smooth_v": 0.9})
    params = MlflowClient(uri[0]).get_run(rid).data.params
    fields = [f.name for f in dataclasses.fields(Config)]
    assert all(f"config/{f}" in params for f in fields)
    assert params["config/lr"] == "0.002" and params["config/smooth_v"] == "0.9"
    assert params["config/d_model"] == "64" and params["config/epochs"] == "3"
    assert params["config/seed"] == "7" and params["config/lr_step"] == str(Config().lr_step)


def _seeded_rows():
    """Two configurations x two seeds (lr 0.001 is better on average, 0.002 has the best single run)."""
    rows = []
    for tid, lr, seed, val in (("a0", 0.001, 0, 41.0), ("a1", 0.001, 1, 43.0),
                               ("b0", 0.002, 0, 44.0), ("b1", 0.002, 1, 36.0)):
        r = {"trial_id": tid, "status": "TERMINATED", "config/lr": lr, "config/__trial_index__": seed,
             "seed": seed, "val/seg_Type": val, "best_epoch": 1.0}
        r.update({f"test/{k}": val - 10 - i for i, k in enumerate(SCORES)})
        rows.append(r)
    return rows


def test_seeds_group_into_configurations_with_mean_and_std():
    rows = _seeded_rows()
    groups = R.rank_groups(R.group_rows(rows), "val/seg_Type", "max")
    assert [g.config for g in groups] == [{"lr": 0.001}, {"lr": 0.002}]  # mean 42 beats mean 40
    m, sd = groups[0].stat("val/seg_Type")
    assert m == 42.0 and sd == pytest.approx(math.sqrt(2.0))
    means, stds = groups[1].scores(AVVP.score_keys)
    assert means["seg_A"] == 30.0 and stds["seg_A"] == pytest.approx(math.sqrt(32.0))
    text = tables.ranked_table(rows, task=AVVP, metric="val/seg_Type", mode="max").text()
    lines = text.splitlines()
    assert lines[0].split()[:2] == ["Seg", "Event"] and "seeds" in lines[1]
    assert lines[3].split()[:6] == ["1", "lr=0.001", "2/2", "42.00±1.41", "2.0", "32.0"]
    assert lines[4].split()[1] == "lr=0.002"
    md = tables.paper_table([("best", groups[0])], AVVP, methods=["han"], data_note="tiny").markdown()
    assert "| best | 32.0 ± 1.4 | 31.0 ± 1.4 |" in md and "Mean ± standard deviation over 2 seeds" in md


def test_ranked_table_lists_unfinished_trials_below():
    rows = [_row("a", 0.5, 1.6, 40.0), _row("b", 0.6, 1.8, 55.0), {"trial_id": "c", "status": "ERROR",
                                                                   "config/x": 0.7, "config/y": 2.0}]
    lines = tables.ranked_table(rows, task=AVVP, metric="val/seg_Type", mode="max").text().splitlines()
    body = [ln for ln in lines if ln[:3].strip().isdigit()]
    assert [ln.split()[1:3] for ln in body] == [["x=0.6", "y=1.8"], ["x=0.5", "y=1.6"]]
    assert body[0].split()[3] == "55.00" and lines[-1].split() == ["error:", "x=0.7", "y=2", "(c)"]


def test_parent_describes_the_sweep_and_carries_the_best_settings(uri):
    db, exp = uri
    p = _plan(uri, "han_baseline", "--max-epochs", "2", "--seeds", "2", "--name", "desc-run")
    p.tuned = ["lr"]
    cmd = p.command
    tr = RunTracker(p)
    rows = _seeded_rows()
    for r in rows:
        tr.child_run_id(r["trial_id"], {"lr": r["config/lr"], "__trial_index__": r["seed"]})
    logged = tr.finish_run(rows)
    c = MlflowClient(db)
    e = c.get_experiment_by_name(exp)
    assert e.tags["mlflow.experimentKind"] == "custom_model_development"
    par = c.get_run(tr.parent_run_id())
    t = par.data.tags
    assert t["avtune.sweep"] == exp and t["avtune.name"] == "desc-run" and t["avtune.seeds"] == "2"
    assert par.data.params["config/lr"] == "0.001" and par.data.params["config/seed"] == "0,1"
    assert par.data.params["config/lr_step"] == "6"  # every field of the best configuration
    assert logged["objective"] == 42.0 and logged["objective_std"] == pytest.approx(math.sqrt(2.0))
    assert par.data.metrics["seg_A"] == 32.0 and par.data.metrics["best/test_std/seg_A"] == pytest.approx(math.sqrt(2.0))
    note = t["mlflow.note.content"]
    assert f"Best configuration of **{exp}** `desc-run`: **lr=0.001**, val/seg_Type 42.00 ± 1.41 over 2 seeds" in note
    assert "| best: lr=0.001 | 32.0 ± 1.4 |" in note and "HAN (Tian et al., 2020)" in note
    assert "| 1 | lr=0.001 | 2 | 42.00 ± 1.41 |" in note and cmd in note
    names = sorted(r.info.run_name for r in c.search_runs([e.experiment_id]) if r.info.run_id != par.info.run_id)
    assert names == ["lr=0.001 seed=0", "lr=0.001 seed=1", "lr=0.002 seed=0", "lr=0.002 seed=1"]


def test_compare_tables_with_per_class_bars(tmp_path):
    rows = []
    for m, base in (("han", 50.0), ("jomold", 56.0)):
        for seed in (0, 1, 2):
            r = {"trial_id": f"{m}{seed}", "status": "TERMINATED", "config/method": m, "seed": seed,
                 "val/seg_Type": base + seed}
            r.update({f"test/{k}": base + seed for k in SCORES})
            r.update({"test/class_A/Speech": base + 10 + seed, "test/class_V/Speech": base - 10,
                      "test/class_A/Frying_food": 20.0})
            rows.append(r)
    rows.append({"trial_id": "x", "status": "ERROR", "config/method": "jomold", "seed": 3})
    info = _info(kind="compare", axis=("method",), methods=["han", "jomold"], arms=["han", "jomold"], seeds=3,
                 data_note="llp-sim-tiny")
    paths = report.write_tables(info, rows, tmp_path)
    assert sorted(p.name for p in paths) == ["class_f.md", "class_f.png", "paper_table.html",
                                             "paper_table.md", "summary.txt", "trials.parquet"]
    md = (tmp_path / "paper_table.md").read_text()
    assert "| han | 51.0 ± 1.0 |" in md and "| jomold | 57.0 ± 1.0 |" in md and "JoMoLD w/o CL" in md
    text = (tmp_path / "summary.txt").read_text()
    jo = next(ln for ln in text.splitlines() if ln.strip().startswith("jomold"))
    assert jo.split()[:4] == ["jomold", "3/4", "57.00±1.00", "57.0±1.0"] and "per-class segment F" in text
    assert any(ln.strip().startswith("JoMoLD w/o CL (Cheng et al., 2022) *") for ln in text.splitlines())
    speech = next(ln for ln in text.splitlines() if ln.strip().startswith("Speech"))
    assert speech.split() == ["Speech", "61.0", "67.0", "40.0", "46.0"]  # audio han, jomold; visual
    assert "| Frying_food | 20.0 ± 0.0 | 20.0 ± 0.0 | - | - |" in (tmp_path / "class_f.md").read_text()
    assert (tmp_path / "class_f.png").read_bytes()[:4] == b"\x89PNG"
    # The action-recognition task has its own metrics and no per-class panel.
    av = [{"trial_id": "a", "status": "TERMINATED", "config/method": "avar", "seed": 0,
           "val/clip_top1": 80.0, "test/clip_top1": 81.0, "test/clip_top5": 97.0, "test/video_top1": 88.0}]
    p2 = report.write_tables(_info(kind="compare", axis=("method",), task="avar", metric="val/clip_top1",
                                   methods=["avar"], arms=["avar"]), av, tmp_path / "ar")
    assert "class_f.png" not in [p.name for p in p2]
    assert "| avar | 81.0 | 97.0 | 88.0 |" in (tmp_path / "ar" / "paper_table.md").read_text()


def test_show_reads_the_ranked_table_back_from_mlflow(uri):
    from orchestrator import results

    db, exp = uri
    p = _plan(uri, "han_baseline", "--max-epochs", "2", "--name", "show-run")
    p.tuned = ["lr"]
    tr = RunTracker(p)
    rows = []
    for tid, lr, sel, last in (("t1", 0.001, 17.89, 13.35), ("t2", 0.002, 15.0, 15.5)):
        cfg = {"lr": lr}
        tr.log_result(tid, cfg, {"epoch": 0, "val/seg_Type": sel, "seed": 0})
        tr.log_result(tid, cfg, {"epoch": 1, "val/seg_Type": last, "seed": 0})
        final = {"epoch": 0, "val/seg_Type": sel, "best_epoch": 0, "last_epoch": 1, "final": 1, "seed": 0}
        final.update({f"test/{k}": sel + 1 for k in SCORES})
        tr.log_result(tid, cfg, final)
        tr.finish_trial(tid, cfg, "FINISHED")
        rows.append({"trial_id": tid, "status": "TERMINATED", "config/lr": lr, **final})
    tr.finish_run(rows)
    back = results.trial_rows(results.client(db), results.find_parent(results.client(db), "show-run"))
    # The selected epoch's value (17.89), not the last epoch's (13.35), ranks the trials.
    assert [(r["config/lr"], r["val/seg_Type"]) for r in back] == [(0.001, 17.89), (0.002, 15.0)]
    text = results.show_text(db, "show-run")
    ranked = [ln.split() for ln in text.splitlines() if ln.strip()[:2] in ("1 ", "2 ")]
    assert ranked[0][:5] == ["1", "lr=0.001", "17.89", "1", "18.9"] and ranked[1][:3] == ["2", "lr=0.002", "15.00"]
    assert "best trial t1: lr=0.001  val/seg_Type=17.89" in text
    assert "reproduce: python -m orchestrator.sweep han_baseline --data llp-sim-tiny --max-epochs 2" in text
    assert results.show_text(db, exp).splitlines()[0] == text.splitlines()[0]  # by experiment name too
    with pytest.raises(results.NotFound, match="no avtune run or sweep named 'nope'"):
        results.show_text(db, "nope")
