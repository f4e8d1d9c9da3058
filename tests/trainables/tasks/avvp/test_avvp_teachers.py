"""LLP-sim teachers: construction, determinism, and calibration to the paper's PLG quality."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trainables.methods.vaplan.pseudo import segment_pseudo_labels
from trainables.tasks.avvp import teachers as T

QUIET = dict(strength_spread=0.0, miss_rate=0.0, confusion_rate=0.0, background_rate=0.0,
             distractor_rate=0.0, noise=0.0)


def _truth(seed=0, n=40, t=10, c=25):
    rng = np.random.default_rng(seed)
    labels = (rng.random((n, c)) < 0.1).astype(np.uint8)
    labels[:, 0] = 1
    gt = (rng.random((n, t, c)) < 0.5) & (labels[:, None, :] > 0)
    return gt.astype(np.uint8), labels


@pytest.mark.parametrize("modality", T.MODALITIES)
def test_shapes_norms_and_determinism(modality):
    gt, labels = _truth()
    a = T.simulate_teacher(gt, labels, modality, seed=3)
    b = T.simulate_teacher(torch.tensor(gt), torch.tensor(labels), modality, seed=3)
    assert a.seg_emb.shape == (40, 10, 64) and a.text_emb.shape == (25, 64)
    assert a.seg_emb.dtype == np.float32 and a.text_emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(a.seg_emb, axis=-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(a.text_emb, axis=-1), 1.0, atol=1e-5)
    assert np.array_equal(a.seg_emb, b.seg_emb) and np.array_equal(a.text_emb, b.text_emb)
    assert a.meta["modality"] == modality and a.meta["params"] == b.meta["params"]
    c = T.simulate_teacher(gt, labels, modality, seed=4)
    assert not np.array_equal(a.seg_emb, c.seg_emb)
    # The text embeddings do not depend on the videos: one set for every split.
    gt2, labels2 = _truth(seed=1, n=7)
    assert np.array_equal(T.simulate_teacher(gt2, labels2, modality, seed=3).text_emb, a.text_emb)


def test_cosines_are_exactly_base_plus_evidence():
    gt, labels = _truth()
    p = T.with_params("visual", **QUIET)
    emb = T.simulate_teacher(gt, labels, "visual", p, seed=0)
    cos = emb.seg_emb @ emb.text_emb.T
    expect = np.where(gt > 0, p.base_cos + p.strength, p.base_cos)
    np.testing.assert_allclose(cos, expect, atol=1e-5)
    text_cos = emb.text_emb @ emb.text_emb.T
    np.testing.assert_allclose(text_cos[~np.eye(25, dtype=bool)], p.text_similarity, atol=1e-5)


def test_plg_labels_equal_the_method_rule():
    gt, labels = _truth(2)
    for modality in T.MODALITIES:
        emb = T.simulate_teacher(gt, labels, modality, seed=1)
        tau = T.PAPER_TAU[modality]
        mine = T.plg_labels(emb.seg_emb, emb.text_emb, labels, tau)
        theirs = segment_pseudo_labels(emb.seg_emb, emb.text_emb, labels, tau).numpy()
        assert (mine == theirs).mean() > 0.999  # float32 vs float64 scores at the threshold
        assert mine.any() and not mine.all()


def test_scores_sit_near_one_over_c():
    gt, labels = _truth(3)
    for modality in T.MODALITIES:
        emb = T.simulate_teacher(gt, labels, modality, seed=0)
        cos = emb.seg_emb @ emb.text_emb.T
        s = np.exp(cos) / np.exp(cos).sum(-1, keepdims=True)
        assert 0.025 < np.percentile(s, 1) and np.percentile(s, 99) < 0.07


def test_markov_chain_rate_and_correlation():
    rng = np.random.default_rng(0)
    x = T._markov(rng, (4000, 10, 5), 0.2, 0.6).astype(float)
    assert x.mean() == pytest.approx(0.2, abs=0.01)
    a, b = x[:, :-1].ravel(), x[:, 1:].ravel()
    assert np.corrcoef(a, b)[0, 1] == pytest.approx(0.6, abs=0.03)
    z = T._ar1(rng, (4000, 10, 5), 0.5, 0.3)
    assert z.std() == pytest.approx(0.5, rel=0.03)
    assert np.corrcoef(z[:, :-1].ravel(), z[:, 1:].ravel())[0, 1] == pytest.approx(0.3, abs=0.03)


def test_knobs_move_quality_the_documented_way():
    gt, labels = _truth(4, n=200)
    q = {}
    for name, kw in {"clean": QUIET, "misses": dict(QUIET, miss_rate=0.5),
                     "background": dict(QUIET, background_rate=0.5)}.items():
        q[name] = T.teacher_quality(gt, labels, "visual", T.with_params("visual", **kw))["seg"]
    assert q["clean"] == pytest.approx(100.0)
    assert q["misses"] < q["clean"] - 10 and q["background"] < q["clean"] - 10


def test_confusions_move_evidence_to_group_mates():
    groups = T.class_groups(25)
    gt = np.zeros((500, 10, 25), np.uint8)
    gt[:, :, 9] = 1  # Cello, group "music"
    labels = gt.any(1).astype(np.uint8)
    p = T.with_params("visual", **dict(QUIET, confusion_rate=1.0))
    x = T.evidence(gt, labels, p, np.random.default_rng(0))
    assert not x[:, :, 9].any()
    share_in_group = x[:, 0, groups == groups[9]].sum() / x[:, 0].sum()
    assert share_in_group == pytest.approx(T.CONFUSION_IN_GROUP + 0.25 * 5 / 24, abs=0.06)


def test_bad_params():
    with pytest.raises(ValueError, match="miss_rate"):
        T.TeacherParams(miss_rate=1.5)
    with pytest.raises(ValueError, match="text_similarity"):
        T.TeacherParams(text_similarity=1.0)
    gt, labels = _truth()
    with pytest.raises(ValueError, match="dim"):
        T.simulate_teacher(gt, labels, "visual", T.with_params("visual", dim=10))
    with pytest.raises(ValueError, match="modality"):
        T.simulate_teacher(gt, labels, "motion")


def _check_calibration(rep, tol):
    for modality, row in rep.items():
        assert abs(row["seg"] - T.PAPER_QUALITY[modality]["seg"]) < tol, (modality, row)
        assert abs(row["event"] - T.PAPER_QUALITY[modality]["event"]) < tol, (modality, row)


def test_calibration_on_llp_sim_tiny_val_reproducible():
    seeds = tuple(range(5))
    rep = T.measure("llp-sim-tiny", "val", seeds=seeds)
    assert T.measure("llp-sim-tiny", "val", seeds=seeds) == rep  # deterministic given the seeds
    # 64 videos (one teacher seed varies the visual seg F by about 5 points here): within 5 points
    # of the paper's real-teacher figures (llp-sim-small within 2, the slow test), and the visual
    # labels collapse at tau_v = 0.042 as in the paper (71.1 -> 51.5).
    _check_calibration(rep, 5.0)
    assert rep["visual"]["seg_tau042"] < rep["visual"]["seg"] - 8


@pytest.mark.slow
def test_calibration_on_llp_sim_small_val():
    rep = T.measure("llp-sim-small", "val", seeds=tuple(range(5)))
    _check_calibration(rep, 2.0)
    assert abs(rep["visual"]["seg_tau042"] - 51.5) < 3.0
