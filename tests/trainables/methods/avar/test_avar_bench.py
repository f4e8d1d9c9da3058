"""The AR-sim variant-table benchmark: paired per-seed order checks and its result file."""

import json
import math

import pytest

from trainables.methods.avar import bench as experiments


def test_paired_steps_against_hand_computed_differences():
    res = {
        "none": [{"m": 80.0}, {"m": 82.0}, {"m": 81.0}],
        "cat": [{"m": 83.0}, {"m": 81.5}, {"m": 84.0}],
        "ins": [{"m": 83.5}, {"m": 82.0}, {"m": 84.0}],
    }
    cat_none, ins_cat = experiments.paired_steps(res, ["none", "cat", "ins"], "m")
    assert (cat_none["lower"], cat_none["higher"]) == ("none", "cat")
    assert cat_none["diffs"] == [3.0, -0.5, 3.0]
    assert cat_none["mean"] == pytest.approx(5.5 / 3)
    # sample std of (3, -0.5, 3): mean 11/6, squared deviations sum to 49/6, over n - 1 = 2
    assert cat_none["sd"] == pytest.approx(math.sqrt(49 / 12))
    assert cat_none["wins"] == 2
    # A tie is not a win.
    assert ins_cat["diffs"] == [0.5, 0.5, 0.0] and ins_cat["wins"] == 2


def test_paired_steps_one_seed_and_mismatched_runs():
    (step,) = experiments.paired_steps({"a": [{"m": 1.0}], "b": [{"m": 0.5}]}, ["a", "b"], "m")
    assert step["mean"] == -0.5 and step["sd"] == 0.0 and step["wins"] == 0
    with pytest.raises(ValueError, match="'a' has 2 results, 'b' has 1"):
        experiments.paired_steps({"a": [{"m": 1.0}] * 2, "b": [{"m": 0.5}]}, ["a", "b"], "m")


def test_cli_paired_table_matches_its_result_file(tmp_path, capsys):
    out = tmp_path / "res" / "r.json"
    rc = experiments.main(["--preset", "avar-sim-tiny", "--variants", "none", "ins", "--epochs", "3",
                           "--seeds", "0", "1", "--paired", "--cache", str(tmp_path / "cache"),
                           "--json", str(out)])
    assert rc == 0
    rows = json.loads(out.read_text())
    assert [r["variant"] for r in rows] == ["none", "ins"]
    assert [r["seed"] for r in rows[1]["results"]] == [0.0, 1.0]
    assert not [p for p in out.parent.iterdir() if p.name != "r.json"]  # no temp file left
    res = {r["variant"]: r["results"] for r in rows}
    (last,) = experiments.paired_steps(res, ["none", "ins"], "last/val/clip_top1")
    (best,) = experiments.paired_steps(res, ["none", "ins"], "val/clip_top1")
    line = next(ln for ln in capsys.readouterr().out.splitlines() if "| none < ins |" in ln)
    assert f"{last['mean']:+.2f} ± {last['sd']:.2f} ({last['wins']}/2)" in line
    assert f"{best['mean']:+.2f} ± {best['sd']:.2f} ({best['wins']}/2)" in line


def test_cli_rejects_unknown_config_field(tmp_path, capsys):
    out = tmp_path / "r.json"
    rc = experiments.main(["--preset", "avar-sim-tiny", "--set", "nosuch=1", "--json", str(out)])
    assert rc == 2
    assert "Config has no field 'nosuch'" in capsys.readouterr().err
    assert not out.exists()
