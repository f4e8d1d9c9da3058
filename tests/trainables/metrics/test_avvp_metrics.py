"""The vectorized LLP scores against hand-computed cases and a plain per-video reference."""

import itertools

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trainables.tasks.avvp.metrics import SCORE_KEYS, avvp_scores, decode
from trainables.tasks.avvp.metrics_reference import (
    avvp_scores_reference,
    event_counts,
    extract_events,
    iou_at_least_half,
)

T, C = 10, 25


def _seq(*on, t=T):
    """A 0/1 sequence of length t with ones at the given segment indices."""
    s = np.zeros(t, dtype=np.uint8)
    s[list(on)] = 1
    return s


def _video(**cls_seqs):
    """(1, T, C) array; keyword c<k>=sequence sets class k."""
    x = np.zeros((1, T, C), dtype=np.uint8)
    for key, s in cls_seqs.items():
        x[0, :, int(key[1:])] = s
    return x


def _assert_agree(pa, pv, ga, gv):
    fast = avvp_scores(pa, pv, ga, gv)
    ref = avvp_scores_reference(pa, pv, ga, gv)
    assert list(fast) == list(SCORE_KEYS)
    for k in SCORE_KEYS:
        assert fast[k] == pytest.approx(ref[k], abs=1e-9), k
    return fast


# ---------------------------------------------------------------- hand-computed cases


def test_hand_single_audio_event():
    # Audio class 0: pred segments 0-2, truth 0-3. Segment: TP=3, FP=0, FN=1 -> F = 6/7.
    # Event: [0,3) vs [0,4): IoU 3/4 >= 0.5 -> TP=1 -> F = 1.
    # Visual and AV: nothing predicted, nothing true -> 1.0 (the "no classes" rule).
    pa, ga = _video(c0=_seq(0, 1, 2)), _video(c0=_seq(0, 1, 2, 3))
    z = np.zeros_like(pa)
    s = _assert_agree(pa, z, ga, z)
    assert s["seg_A"] == pytest.approx(600 / 7)
    assert s["seg_V"] == 100.0 and s["seg_AV"] == 100.0
    assert s["seg_Type"] == pytest.approx((600 / 7 + 200) / 3)
    assert s["seg_Event"] == pytest.approx(600 / 7)  # pooled: same counts, visual adds none
    assert s["event_A"] == 100.0 and s["event_Type"] == 100.0 and s["event_Event"] == 100.0


def test_hand_iou_exactly_half_is_a_match_and_one_third_is_not():
    # Class 0: pred [0,2) vs truth [0,4): inter 2, union 4 -> IoU 0.5 -> TP (F=1).
    # Class 1: pred [0,1) vs truth [0,3): IoU 1/3 -> FP=1 and FN=1 -> F = 0.
    # Video event_A = mean(1, 0) = 0.5. Segment: class 0 TP2 FN2 -> 4/6; class 1 TP1 FN2 -> 2/4.
    pa = _video(c0=_seq(0, 1), c1=_seq(0))
    ga = _video(c0=_seq(0, 1, 2, 3), c1=_seq(0, 1, 2))
    z = np.zeros_like(pa)
    s = _assert_agree(pa, z, ga, z)
    assert s["event_A"] == pytest.approx(50.0)
    assert s["seg_A"] == pytest.approx(100 * (4 / 6 + 2 / 4) / 2)


def test_hand_event_pooling_differs_from_mean_of_a_and_v():
    # Class 0 audio: pred = truth = all 10 segments. Class 0 visual: pred segment 0, truth
    # segment 9 (events touching both ends).
    # Segment: A: TP10 -> 1. V: TP0 FP1 FN1 -> 0. AV: pred AV = seg 0, truth AV = seg 9 -> 0.
    #   Event (pooled): TP10 FP1 FN1 -> 20/22. Type = (1 + 0 + 0)/3.
    # Event level: A: [0,10) matches -> 1. V: [0,1) vs [9,10) -> FP1 FN1 -> 0. AV: same -> 0.
    #   Pooled: TP1 FP1 FN1 -> 2/4 = 0.5 (the mean of A and V would also be 0.5 here, but
    #   at segment level pooling gives 90.9, not 50).
    ones = np.ones(T, dtype=np.uint8)
    pa, ga = _video(c0=ones), _video(c0=ones)
    pv, gv = _video(c0=_seq(0)), _video(c0=_seq(9))
    s = _assert_agree(pa, pv, ga, gv)
    assert s["seg_A"] == 100.0 and s["seg_V"] == 0.0 and s["seg_AV"] == 0.0
    assert s["seg_Event"] == pytest.approx(100 * 20 / 22)
    assert s["seg_Type"] == pytest.approx(100 / 3)
    assert s["event_A"] == 100.0 and s["event_V"] == 0.0 and s["event_AV"] == 0.0
    assert s["event_Event"] == pytest.approx(50.0)
    assert s["event_Type"] == pytest.approx(100 / 3)


def test_hand_two_videos_empty_scores_one_and_false_alarm_scores_zero():
    # Video 1: nothing anywhere -> every per-video score 1.0.
    # Video 2: audio class 3 predicted everywhere, no truth -> audio 0, pooled 0; visual and AV
    # have no classes -> 1.0. Means over videos: A 50, V 100, AV 100, Event 50.
    pa = np.zeros((2, T, C), np.uint8)
    pa[1, :, 3] = 1
    z = np.zeros_like(pa)
    s = _assert_agree(pa, z, z, z)
    for lvl in ("seg", "event"):
        assert s[f"{lvl}_A"] == 50.0 and s[f"{lvl}_V"] == 100.0 and s[f"{lvl}_AV"] == 100.0
        assert s[f"{lvl}_Event"] == 50.0
        assert s[f"{lvl}_Type"] == pytest.approx(250 / 3)


def test_hand_long_prediction_over_two_short_events_matches_neither():
    # pred [0,5); truth [0,2) and [3,5): IoU 2/5 each -> event TP0 FP1 FN2 -> 0.
    # Segment: TP4 FP1 FN0 -> 8/9.
    pa, ga = _video(c0=_seq(0, 1, 2, 3, 4)), _video(c0=_seq(0, 1, 3, 4))
    z = np.zeros_like(pa)
    s = _assert_agree(pa, z, ga, z)
    assert s["event_A"] == 0.0
    assert s["seg_A"] == pytest.approx(800 / 9)


def test_hand_two_events_one_match():
    # pred [0,2),[4,7); truth [0,3),[5,9). [0,2)~[0,3): IoU 2/3 TP. [4,7)~[5,9): 2/5 -> FP.
    # Truth [5,9) unmatched -> FN. F = 2/(2+1+1) = 0.5.
    pa = _video(c0=_seq(0, 1, 4, 5, 6))
    ga = _video(c0=_seq(0, 1, 2, 5, 6, 7, 8))
    z = np.zeros_like(pa)
    assert _assert_agree(pa, z, ga, z)["event_A"] == pytest.approx(50.0)


def test_perfect_prediction_on_real_like_truth_scores_100():
    rng = np.random.default_rng(3)
    ga = (rng.random((40, T, C)) < 0.1).astype(np.uint8)
    gv = (rng.random((40, T, C)) < 0.1).astype(np.uint8)
    s = avvp_scores(ga, gv, ga, gv)
    assert all(v == 100.0 for v in s.values())


# ---------------------------------------------------------------- the event-matching facts


def test_reference_event_extraction():
    assert extract_events([0] * 10) == []
    assert extract_events([1] * 10) == [(0, 10)]
    assert extract_events([1, 0, 1, 1, 0, 0, 0, 0, 0, 1]) == [(0, 1), (2, 4), (9, 10)]
    assert iou_at_least_half((0, 2), (0, 4)) and not iou_at_least_half((0, 1), (0, 3))


def test_a_prediction_never_matches_two_disjoint_true_events():
    # The vectorized matcher relies on this (module docstring of trainables.tasks.avvp.metrics).
    intervals = [(s, e) for s in range(T) for e in range(s + 1, T + 1)]
    for p in intervals:
        for g1 in intervals:
            if not iou_at_least_half(p, g1):
                continue
            for g2 in intervals:
                if g2[0] > g1[1]:  # disjoint runs are separated by at least one 0
                    assert not iou_at_least_half(p, g2), (p, g1, g2)


def test_every_pair_of_single_intervals():
    # All 55 x 55 (pred event, true event) pairs on 10 segments, including every IoU == 0.5 case.
    intervals = [(s, e) for s in range(T) for e in range(s + 1, T + 1)]
    pairs = list(itertools.product(intervals, intervals))
    pa = np.zeros((len(pairs), T, 1), np.uint8)
    ga = np.zeros_like(pa)
    for i, ((ps, pe), (gs, ge)) in enumerate(pairs):
        pa[i, ps:pe, 0] = 1
        ga[i, gs:ge, 0] = 1
    assert any(2 * max(0, min(p[1], g[1]) - max(p[0], g[0])) == (p[1] - p[0]) + (g[1] - g[0])
               - max(0, min(p[1], g[1]) - max(p[0], g[0])) for p, g in pairs)
    _assert_agree(pa, ga, ga, pa)


def test_every_pair_of_sequences_of_six_segments():
    # Exhaustive over 2^6 x 2^6 (pred, truth) sequences: every event layout on 6 segments.
    seqs = np.array(list(itertools.product((0, 1), repeat=6)), dtype=np.uint8)
    p = np.repeat(seqs, len(seqs), axis=0)[:, :, None]
    g = np.tile(seqs, (len(seqs), 1))[:, :, None]
    _assert_agree(p, g, g, p)
    # Per-sequence event counts too, not only the averaged scores.
    from trainables.tasks.avvp.metrics import _event_counts, _padded

    pb, _ = _padded(p, np.zeros_like(p, dtype=bool))
    gb, _ = _padded(g, np.zeros_like(g, dtype=bool))
    tp, fp, fn = _event_counts(pb, gb, 3 * len(p), 7)
    for i in range(0, len(p), 97):
        assert (tp[i], fp[i], fn[i]) == event_counts(p[i, :, 0].tolist(), g[i, :, 0].tolist())


# ---------------------------------------------------------------- property tests


@st.composite
def _binary_sets(draw):
    n = draw(st.integers(1, 12))
    t = draw(st.sampled_from([1, 2, 3, 10, 10, 10, 13]))
    c = draw(st.integers(1, 6))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(4):
        kind = draw(st.sampled_from(["dense", "sparse", "runs", "empty", "full", "mixed"]))
        if kind in ("dense", "sparse", "mixed"):
            p = draw(st.floats(0.5, 0.98)) if kind == "dense" else draw(st.floats(0.0, 0.5))
            x = rng.random((n, t, c)) < p
            if kind == "mixed":  # some whole videos empty, some all positive
                x[rng.random(n) < 0.3] = False
                x[rng.random(n) < 0.3] = True
        elif kind == "runs":  # a few long events, often touching either end
            x = np.zeros((n, t, c), bool)
            for i, j in itertools.product(range(n), range(c)):
                for _ in range(rng.integers(0, 3)):
                    s = rng.integers(0, t)
                    x[i, s:s + rng.integers(1, t + 1), j] = True
        else:
            x = np.full((n, t, c), kind == "full")
        out.append(x)
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_binary_sets())
def test_vectorized_equals_reference_on_random_arrays(arrs):
    _assert_agree(*arrs)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.floats(0.02, 0.6))
def test_vectorized_equals_reference_on_llp_shaped_predictions(seed, flip):
    # Truth with LLP-like sparse events; predictions = truth with flips, so many near-misses.
    rng = np.random.default_rng(seed)
    g = np.zeros((2, 30, T, C), bool)
    for m, i, j in zip(rng.integers(0, 2, 120), rng.integers(0, 30, 120), rng.integers(0, C, 120)):
        s = rng.integers(0, T)
        g[m, i, s:s + rng.integers(1, 11), j] = True
    p = g ^ (rng.random(g.shape) < flip * 0.2)
    _assert_agree(p[0], p[1], g[0], g[1])


# ---------------------------------------------------------------- input handling


def test_accepts_torch_and_01_floats_and_llp_shapes():
    rng = np.random.default_rng(0)
    arrs = [rng.random((5, T, C)) < 0.2 for _ in range(4)]
    ref = avvp_scores(*arrs)
    assert avvp_scores(*[torch.from_numpy(a) for a in arrs]) == ref
    assert avvp_scores(*[a.astype(np.float32) for a in arrs]) == ref
    assert avvp_scores(*[torch.from_numpy(a.astype(np.uint8)) for a in arrs]) == ref


def test_rejects_bad_input():
    x = np.zeros((2, T, C), np.uint8)
    with pytest.raises(ValueError, match="gt_v: shape"):
        avvp_scores(x, x, x, x[:, :, :24])
    with pytest.raises(ValueError, match="pred_v: values must be 0 or 1"):
        avvp_scores(x, x + 0.5, x, x)
    with pytest.raises(ValueError, match="pred_a: expected"):
        avvp_scores(x[0], x[0], x[0], x[0])
    with pytest.raises(ValueError, match="no videos"):
        avvp_scores(x[:0], x[:0], x[:0], x[:0])


# ---------------------------------------------------------------- decoding


def _probs():
    # One video, 2 segments, 2 classes.
    frame = np.zeros((1, 2, 2, 2))
    frame[0, :, 0, 0] = [0.5, 0.4]  # audio class 0: segment 0 at the threshold exactly
    frame[0, :, 1, 0] = [0.9, 0.9]  # visual class 0
    frame[0, :, 0, 1] = [0.8, 0.8]  # audio class 1
    frame[0, :, 1, 1] = [0.7, 0.1]  # visual class 1
    a_prob = np.array([[0.9, 0.2]])
    v_prob = np.array([[0.3, 0.6]])
    global_prob = np.array([[0.6, 0.55]])
    return frame, a_prob, v_prob, global_prob


def test_decode_han_masks_both_modalities_by_global():
    frame, a, v, g = _probs()
    pa, pv = decode(frame, a, v, g, protocol="han")
    np.testing.assert_array_equal(pa[0], [[1, 1], [0, 1]])
    np.testing.assert_array_equal(pv[0], [[1, 1], [1, 0]])
    # Raising the threshold above global_prob of class 1 drops class 1 in both modalities.
    pa, pv = decode(frame, a, v, g, protocol="han", threshold=0.58)
    np.testing.assert_array_equal(pa[0], [[0, 0], [0, 0]])
    np.testing.assert_array_equal(pv[0], [[1, 0], [1, 0]])


def test_decode_jomold_masks_each_modality_by_its_own_prob():
    frame, a, v, g = _probs()
    pa, pv = decode(frame, a, v, g, protocol="jomold")
    np.testing.assert_array_equal(pa[0], [[1, 0], [0, 0]])  # a_prob keeps class 0 only
    np.testing.assert_array_equal(pv[0], [[0, 1], [0, 0]])  # v_prob keeps class 1 only
    assert decode(frame, a, v, None, protocol="jomold")[0].dtype == np.bool_


def test_decode_torch_stays_torch_and_matches_numpy():
    frame, a, v, g = _probs()
    for proto in ("han", "jomold"):
        tn = decode(*(torch.from_numpy(x) for x in (frame, a, v, g)), protocol=proto)
        nn = decode(frame, a, v, g, protocol=proto)
        for t_, n_ in zip(tn, nn):
            assert isinstance(t_, torch.Tensor) and t_.dtype == torch.bool
            np.testing.assert_array_equal(t_.numpy(), n_)


def test_decode_errors():
    frame, a, v, g = _probs()
    with pytest.raises(ValueError, match="unknown protocol"):
        decode(frame, a, v, g, protocol="official")
    with pytest.raises(ValueError, match="needs global_prob"):
        decode(frame, a, v, None, protocol="han")
    with pytest.raises(ValueError, match="a_prob: expected shape"):
        decode(frame, a[:, :1], v, g, protocol="jomold")
    with pytest.raises(ValueError, match="frame_prob"):
        decode(frame[:, :, 0], a, v, g)
