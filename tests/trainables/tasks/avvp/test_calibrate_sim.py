"""LLP-sim v2's calibration commands: the HAN fit's Broyden iteration finds the knobs of a known
response, and the teacher curves are the quality of the stored teachers' pseudo labels."""

from __future__ import annotations

import numpy as np
import pytest

from trainables.tasks.avvp import calibrate_sim as cs
from trainables.tasks.avvp import teachers_v2 as tv2


def test_fit_han_reaches_the_target_of_a_known_response(monkeypatch):
    """A response linear in the log-knobs with a cross term (stronger audio also lifts visual
    scores): Broyden's method from the default knobs must land within ``tol`` of the HAN row, with
    one run per evaluation (the finite-difference start included), and return the knobs it found."""
    names = list(cs.HAN_KNOBS)
    truth = {"audio_strength": 1.3, "visual_strength": 0.7, "segment_var_audio": 0.6, "segment_var_visual": 0.8}
    mix = np.array([[12.0, 0, 0, 0], [3.0, 15.0, 0, 0], [0, 0, -9.0, 0], [0, 2.0, 0, -8.0]])
    target = np.array([cs.HAN_REAL[cs.HAN_KNOBS[k]] for k in names])
    calls = []

    def fake_scores(knobs, seeds, epochs, preset=cs.DEFAULT_PRESET):
        calls.append(dict(knobs))
        x = np.log([knobs[k] for k in names]) - np.log([truth[k] for k in names])
        s = dict(zip([cs.HAN_KNOBS[k] for k in names], (target + mix @ x).tolist(), strict=True))
        return {"runs": [{**cs.HAN_REAL, **s}]}

    monkeypatch.setattr(cs, "han_scores", fake_scores)
    out = cs.fit_han(steps=6, tol=0.05)
    for k in names:
        assert out["knobs"][k] == pytest.approx(truth[k], rel=0.01), k
    assert len(out["history"]) == len(calls) <= len(names) + 1 + 6
    # A rerun given the history reuses every evaluation: no new run.
    calls.clear()
    again = cs.fit_han(steps=6, tol=0.05, history=out["history"])
    assert calls == [] and again["knobs"] == out["knobs"]


def test_teacher_curves_cover_the_published_thresholds():
    sample = cs.teacher_sample(n=300, seed=1)
    curves = cs.teacher_curves(sample, tv2.DEFAULT_TEACHERS)
    assert set(curves) == set(tv2.MODALITIES)
    for m, cur in curves.items():
        published = {t for vals in tv2.PAPER_CURVES[m]["points"].values() for t in vals}
        assert published <= set(cur), m
        for q in cur.values():
            assert all(0.0 <= v <= 100.0 for v in q.values())
    rows = cs.curve_table(curves)
    assert {r["modality"] for r in rows} == set(tv2.MODALITIES)
    assert any("paper_seg" in r for r in rows)


def test_teacher_curves_over_worlds_report_each_world_and_the_spread(capsys):
    """``teachers --seeds``: every world's curve and their mean/std; one world's curve is the
    ``--seed`` run's exactly, and the worlds differ (each seed draws its own prototypes and text)."""
    import json

    assert cs.main(["teachers", "--n", "200", "--seeds", "0", "1"]) == 0
    many = json.loads(capsys.readouterr().out)
    assert cs.main(["teachers", "--n", "200", "--seed", "1"]) == 0
    one = json.loads(capsys.readouterr().out)
    assert many["curves_by_seed"]["1"] == one["curves"]
    w0, w1 = many["curves_by_seed"]["0"], many["curves_by_seed"]["1"]
    assert w0 != w1
    for row, a, b in zip(many["curves"], w0, w1):
        assert (row["modality"], row["tau"]) == (a["modality"], a["tau"]) == (b["modality"], b["tau"])
        for k in ("seg", "event", "video_precision"):
            assert abs(row[k] - (a[k] + b[k]) / 2) <= 0.051
            assert abs(row[f"{k}_std"] - abs(a[k] - b[k]) / 2) <= 0.051


def test_teacher_fit_over_one_world_is_the_single_seed_fit():
    """A list of one seed is that seed's fit (the multi-world loss is the mean over worlds)."""
    kw = dict(n=100, iters=2, restarts=1, scene_knobs=False)
    assert cs.fit_teachers(seed=[1], **kw) == cs.fit_teachers(seed=1, **kw)
