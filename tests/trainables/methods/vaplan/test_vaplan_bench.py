"""``python -m orchestrator.bench vaplan``: one row per variant, quality columns, the oracle teacher."""

from __future__ import annotations

import json

import pytest

from trainables.methods.vaplan import bench


def test_bench_rows_json_and_oracle(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert bench.main(["--data", "llp-sim-tiny", "--epochs", "1", "--seeds", "0", "--variants", "video",
                       "--teacher", "truth", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "teacher truth" in text and "| video |" in text
    r = json.loads(out.read_text())["video"][0]
    # The oracle's labels are the truth: perfect quality, and a real test score.
    assert r["pseudo/seg_F_v"] == pytest.approx(100.0) and 0.0 < r["test/seg_Type"] <= 100.0
    assert "| video | 100.0 | 100.0 | 100.0 | 100.0 | - | - | - | - |" in text


def test_bench_rejects_unknown_variant(capsys):
    assert bench.main(["--variants", "bogus"]) == 2
    assert "unknown variant(s) ['bogus']" in capsys.readouterr().err
