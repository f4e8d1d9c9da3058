"""CMPAE's decoding and its per-class validation threshold search on toy cases with known answers."""

from __future__ import annotations

import types

import pytest
import torch

from trainables.methods.cmpae import evaluate as ce
from trainables.methods.cmpae.train import Config
from trainables.tasks.avvp.report import SCORE_KEYS

N, T, C = 8, 10, 3


def toy():
    """Class 0: visible in videos 0-3 (segments 0-4) and predicted in every video's segments 0-4,
    so only its video-level probability (0.62 in videos 0-3, 0.52 elsewhere) tells them apart: the
    thresholds 0.55 and 0.60 are perfect. Class 1: never present nor predicted (every candidate
    ties). Class 2: visible everywhere in videos 4-7, video-level probability 0.33 there and 0.2 in
    videos 0-3: the thresholds 0.25 and 0.30 are perfect."""
    gt_v = torch.zeros(N, T, C, dtype=torch.bool)
    gt_v[:4, :5, 0] = True
    gt_v[4:, :, 2] = True
    frame = torch.zeros(N, T, 2, C)
    frame[:, :5, 1, 0] = 0.9
    frame[:, :, 1, 2] = 0.9
    v = torch.zeros(N, C)
    v[:4, 0], v[4:, 0] = 0.62, 0.52
    v[:4, 2], v[4:, 2] = 0.2, 0.33
    probs = {"frame_prob": frame, "a_prob": torch.zeros(N, C), "v_prob": v,
             "global_prob": torch.zeros(N, C)}
    split = types.SimpleNamespace(gt_audio=torch.zeros(N, T, C, dtype=torch.bool), gt_visual=gt_v,
                                  has_truth=True)
    return probs, split


def test_decode_cmpae_equals_a_plain_reference():
    g = torch.Generator().manual_seed(0)
    probs = {"frame_prob": torch.rand(5, T, 2, C, generator=g), "a_prob": torch.rand(5, C, generator=g),
             "v_prob": torch.rand(5, C, generator=g)}
    thr = torch.tensor([0.3, 0.5, 0.7], dtype=torch.float64)
    pa, pv = ce.decode_cmpae(probs, 0.25, 0.45, thr)
    for i in range(5):
        for t in range(T):
            for c in range(C):
                assert bool(pa[i, t, c]) == (float(probs["frame_prob"][i, t, 0, c]) >= 0.25
                                             and float(probs["a_prob"][i, c]) >= 0.45)
                assert bool(pv[i, t, c]) == (float(probs["frame_prob"][i, t, 1, c]) >= 0.25
                                             and float(probs["v_prob"][i, c]) >= float(thr[c]))


def test_visual_threshold_compares_in_float64():
    # 0.45 rounds below itself in float32: a probability at that float32 value is under 0.45.
    p32 = torch.tensor([[0.45]], dtype=torch.float32)
    probs = {"frame_prob": torch.ones(1, T, 2, 1), "a_prob": p32, "v_prob": p32}
    pa, pv = ce.decode_cmpae(probs, 0.25, 0.45, torch.tensor([0.45], dtype=torch.float64))
    assert bool(pa.all()) and not bool(pv.any())


def test_search_picks_the_best_threshold_per_class_and_the_largest_of_ties():
    probs, split = toy()
    cfg = Config.from_preset("official")
    thr = ce.search_visual_thresholds(cfg, probs, split)
    assert thr.tolist() == [0.6, 0.7, 0.3]
    # With the chosen thresholds the visual predictions are the truth.
    pred_v = ce.decode_cmpae(probs, cfg.seg_threshold, cfg.audio_threshold, thr)[1]
    assert torch.equal(pred_v, split.gt_visual)
    # At the fixed 0.45 they are not (class 0's false positives, class 2 missed).
    fixed = ce.decode_cmpae(probs, cfg.seg_threshold, cfg.audio_threshold, ce.visual_vector(cfg, C))[1]
    assert not torch.equal(fixed, split.gt_visual)
    # A narrower candidate list that excludes the perfect values settles on the best remaining.
    assert ce.search_visual_thresholds(cfg, probs, split, (0.4, 0.5, 0.65))[0] == 0.5


def test_scores_carry_the_mean_of_the_ten():
    probs, split = toy()
    cfg = Config.from_preset("official")
    s = ce.score_preds(*ce.decode_probs(cfg, probs), split, "val")
    assert s["val/mean_ten"] == pytest.approx(sum(s[f"val/{k}"] for k in SCORE_KEYS) / 10)
    # The shared decode ignores the per-class visual thresholds (it masks by the global branch).
    shared = Config()
    a = ce.decode_probs(shared, probs, torch.zeros(C, dtype=torch.float64))
    b = ce.decode_probs(shared, probs, torch.ones(C, dtype=torch.float64))
    assert all(torch.equal(x, y) for x, y in zip(a, b)) and not a[1].any()
