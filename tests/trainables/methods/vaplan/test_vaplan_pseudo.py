"""VAPLAN PLG (segment pseudo labels from teacher embeddings) against plain references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from trainables.methods.vaplan import pseudo
from trainables.tasks.avvp.classes import LLP_CLASSES


def _reference_labels(seg_emb, text_emb, video_labels, tau):
    """The PLG rule written from the text, one video, segment and class at a time."""
    n, t, _ = seg_emb.shape
    c = text_emb.shape[0]
    out = np.zeros((n, t, c), bool)
    for i in range(n):
        for j in range(t):
            e = seg_emb[i, j]
            cos = [float(e @ w) / (np.linalg.norm(e) * np.linalg.norm(w)) for w in text_emb]
            z = sum(math.exp(x) for x in cos)
            for k in range(c):
                s = math.exp(cos[k]) / z  # softmax over classes, no temperature
                out[i, j, k] = s >= tau and video_labels[i, k] == 1
    return out


def _inputs(seed, n=7, t=10, c=25, d=16):
    rng = np.random.default_rng(seed)
    text = rng.standard_normal((c, d))
    # Segments near a few class embeddings, so scores spread around 1/C on both sides of tau.
    seg = rng.standard_normal((n, t, d)) * 0.5 + text[rng.integers(0, c, (n, t))]
    labels = (rng.random((n, c)) < 0.3).astype(np.uint8)
    return seg, text, labels


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("tau", [pseudo.TAU_VISUAL, pseudo.TAU_AUDIO, 0.0, 0.05])
def test_segment_pseudo_labels_match_reference(seed, tau):
    seg, text, labels = _inputs(seed)
    got = pseudo.segment_pseudo_labels(seg, text, labels, tau)
    assert got.dtype == torch.bool and tuple(got.shape) == (7, 10, 25)
    ref = _reference_labels(seg, text, labels, tau)
    # Scores are float32 in the implementation: allow disagreement only within 1e-6 of tau.
    s = pseudo.class_scores(seg, text).numpy()
    close = np.abs(s - tau) < 1e-6
    assert (got.numpy() == ref)[~close].all()


def test_class_scores_are_softmax_of_cosines():
    seg, text, _ = _inputs(5)
    s = pseudo.class_scores(torch.tensor(seg), torch.tensor(text))
    torch.testing.assert_close(s.sum(-1), torch.ones(7, 10))
    # Scaling embeddings does not change cosines, hence not the scores.
    s2 = pseudo.class_scores(torch.tensor(seg) * 3.0, torch.tensor(text) * 0.1)
    torch.testing.assert_close(s, s2)
    # Cosines lie in [-1, 1], so with 25 classes no score can leave [e^-2 / 25, e^2 / 25].
    assert s.min() >= math.exp(-2) / 25 - 1e-7 and s.max() <= math.exp(2) / 25 + 1e-7


def test_tau_is_inclusive_and_labels_mask():
    # Identical text embeddings: every score is exactly 1/C.
    text = np.ones((4, 3))
    seg = np.ones((2, 5, 3))
    labels = np.array([[1, 0, 1, 0], [0, 0, 0, 0]])
    y = pseudo.segment_pseudo_labels(seg, text, labels, 0.25)
    assert y[0, :, [0, 2]].all() and not y[0, :, [1, 3]].any()
    assert not y[1].any()  # no label, no pseudo label
    assert not pseudo.segment_pseudo_labels(seg, text, labels, 0.2501).any()


def test_video_pseudo_labels_any_over_segments():
    rng = np.random.default_rng(0)
    seg_labels = rng.random((6, 10, 25)) < 0.05
    ref = np.array([[seg_labels[i, :, c].any() for c in range(25)] for i in range(6)])
    got = pseudo.video_pseudo_labels(torch.tensor(seg_labels.astype(np.uint8)))
    assert got.dtype == torch.bool and (got.numpy() == ref).all()


def test_shape_errors():
    seg, text, labels = _inputs(0)
    with pytest.raises(ValueError, match="embedding sizes"):
        pseudo.class_scores(seg, text[:, :3])
    with pytest.raises(ValueError, match="video_labels"):
        pseudo.segment_pseudo_labels(seg, text, labels[:3], 0.04)
    with pytest.raises(ValueError, match="dimensions"):
        pseudo.class_scores(seg[0], text)


def test_prompts_templates():
    assert pseudo.PROMPTS["VP1"] == "This photo contains the [CLS]"
    assert pseudo.PROMPTS["AP2"] == "This sound contains the [CLS]"
    assert pseudo.DEFAULT_VISUAL_PROMPT == "VP1" and pseudo.DEFAULT_AUDIO_PROMPT == "AP2"
    v = pseudo.prompts("VP1", LLP_CLASSES)
    assert len(v) == 25 and v[0] == "This photo contains the speech"
    assert pseudo.prompts("AP1", ["Violin_fiddle", "Frying_(food)"]) == [
        "This is a sound of violin fiddle", "This is a sound of frying food"]
    assert pseudo.prompts("a [CLS] here", ["Dog"], clean=False) == ["a Dog here"]
    with pytest.raises(ValueError, match="CLS"):
        pseudo.prompts("VP9", LLP_CLASSES)


def test_paper_thresholds():
    assert pseudo.TAU_VISUAL == 0.041 and pseudo.TAU_AUDIO == 0.038
