"""The report layer on a comparison's rows: paired per-seed steps, protocol marks, prediction
tables (ours ± std beside the published row and the error), further figures."""

from __future__ import annotations

import math

import pytest

from orchestrator import report, tables
from orchestrator.rows import Group, RunInfo
from trainables.tasks.avvp import TASK as AVVP


def _g(label, vals, key="m"):
    return label, Group({"method": label}, [{"status": "TERMINATED", "seed": s, key: v} for s, v in vals])


def test_paired_steps_against_hand_computed_differences():
    entries = [_g("none", [(0, 80.0), (1, 82.0), (2, 81.0)]), _g("cat", [(0, 83.0), (1, 81.5), (2, 84.0)]),
               _g("ins", [(0, 83.5), (1, 82.0), (2, 84.0)])]
    cat_none, ins_cat = tables.paired_steps(entries, "m")
    assert (cat_none["lower"], cat_none["higher"]) == ("none", "cat")
    assert cat_none["diffs"] == [3.0, -0.5, 3.0] and cat_none["mean"] == pytest.approx(5.5 / 3)
    # sample std of (3, -0.5, 3): mean 11/6, squared deviations sum to 49/6, over n - 1 = 2
    assert cat_none["sd"] == pytest.approx(math.sqrt(49 / 12)) and cat_none["wins"] == 2
    assert ins_cat["diffs"] == [0.5, 0.5, 0.0] and ins_cat["wins"] == 2  # a tie is not a win
    line = tables.paired_table(entries, ["m"]).text().splitlines()[2]
    assert line.split()[:3] == ["none", "<", "cat"] and "+1.83 ± 2.02 (2/3)" in line


def test_paired_steps_pair_only_the_seeds_both_finished():
    a = _g("a", [(0, 1.0), (1, 2.0)])
    b = ("b", Group({}, [{"status": "TERMINATED", "seed": 0, "m": 0.5}, {"status": "ERROR", "seed": 1}]))
    (step,) = tables.paired_steps([a, b], "m")
    assert step["diffs"] == [-0.5] and step["sd"] == 0.0 and step["wins"] == 0


def _rows():
    out = []
    for arm, base in (("jomold", 58.0), ("jomold_cl", 60.0)):
        for seed in (0, 1):
            r = {"trial_id": f"{arm}{seed}", "status": "TERMINATED", "config/method": arm, "seed": seed,
                 "val/seg_Type": base + seed, "denoise/precision_v": 0.5 + 0.1 * seed}
            r.update({f"test/{k}": base + seed for k in AVVP.score_keys})
            out.append(r)
    return out


def test_a_comparison_reads_its_entries_against_the_published_rows_and_marks_protocols():
    info = RunInfo(kind="compare", ref="pred", name="p1", task="avvp", metric="val/seg_Type", mode="max",
                   methods=["jomold"], axis=["method"], arms=["jomold", "jomold_cl"], seeds=2,
                   data_note="llp-sim-tiny", marks={"jomold_cl": "†"}, mark_notes={"†": "a variant protocol"},
                   references={"jomold": "JoMoLD w/o CL (Cheng et al., 2022) [real LLP, reference]"},
                   columns=["denoise/precision_v"])
    text = "\n".join(report.closing_lines(info, _rows()))
    pred = text.split("read against the papers:")[1].splitlines()
    row = next(ln for ln in pred if ln.split()[:2] == ["jomold", "ours"])
    assert row.split()[2:5] == ["58.5", "±", "0.7"]
    err = next(ln for ln in pred if ln.split()[:1] == ["error"])
    # ours 58.5 against the published 60.6 seg A: -2.1; 59.6 seg Type: -1.1
    assert err.split()[1] == "-2.1" and err.split()[4] == "-1.1"
    assert "jomold_cl †" in text and "† a variant protocol" in text
    assert "0.55 ± 0.07" in text  # the further figure, mean ± std over the 2 seeds
    md = report.description(info, _rows())
    assert "### Read against the papers" in md and "| jomold_cl † |" in md
    assert "| jomold | 2/2 |" not in md  # the Markdown paper table has no seeds column


def test_a_long_description_leaves_out_whole_tables_within_mlflows_limit():
    """MLflow cuts a description past 8,000 characters mid-table; ours drops trailing tables whole,
    names them, and keeps the closing lines (the artifacts pointer and the reproduce block)."""
    info = RunInfo(kind="compare", ref="pred", name="p1", task="avvp", metric="val/seg_Type", mode="max",
                   methods=["jomold"], axis=["method"], arms=["jomold", "jomold_cl"], seeds=2,
                   data_note="llp-sim-tiny",
                   references={"jomold": "JoMoLD w/o CL (Cheng et al., 2022) [real LLP, reference]"},
                   columns=["denoise/precision_v"], command="python -m orchestrator.compare x --seeds 2")
    full = report.description(info, _rows())
    assert "Left out here" not in full and "### Runs, ranked by" in full
    limit = full.index("\n### Runs, ranked by") + 600  # room for the head and tables before the ranked runs
    short = report.description(info, _rows(), limit=limit)
    assert len(short) <= limit < len(full)
    assert "### Runs, ranked by" not in short and "### Read against the papers" in short
    assert "(Left out here for length: the ranked runs; all of them are in the artifacts `tables/`.)" in short
    assert short.endswith("```bash\npython -m orchestrator.compare x --seeds 2\n```\n")
    assert len(report.description(info, _rows())) <= report.DESCRIPTION_LIMIT
