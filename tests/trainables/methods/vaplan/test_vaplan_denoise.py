"""VAPLAN PLD (pseudo-label denoising) against a plain per-video reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from trainables.methods.vaplan import denoise


def _bce(p, y):
    lp = max(math.log(p), -100.0) if p > 0 else -100.0
    lq = max(math.log(1 - p), -100.0) if p < 1 else -100.0
    return -(y * lp + (1 - y) * lq)


def _reference(P, Y, k, alpha):
    """PLD written from the text: per video, per class of the video-level pseudo label."""
    n, t, c = P.shape
    out = Y.copy()
    for i in range(n):
        for j in range(c):
            if not Y[i, :, j].any():
                continue  # not in the video-level pseudo label: column left alone
            col = [_bce(float(P[i, s, j]), float(Y[i, s, j])) for s in range(t)]
            kk = min(k, t)
            mu = sum(sorted(col)[:kk]) / kk
            for s in range(t):
                if col[s] > alpha * mu:
                    out[i, s, j] = not Y[i, s, j]
    return out


def _inputs(seed, n=8, t=10, c=25):
    rng = np.random.default_rng(seed)
    y = rng.random((n, c)) < 0.2
    Y = (rng.random((n, t, c)) < 0.6) & y[:, None, :]
    # Probabilities mostly agreeing with Y, some confidently disagreeing, a few exactly 0 or 1.
    P = np.where(Y, rng.beta(8, 2, (n, t, c)), rng.beta(2, 8, (n, t, c)))
    wrong = rng.random((n, t, c)) < 0.1
    P = np.where(wrong, 1 - P, P)
    P[rng.random((n, t, c)) < 0.03] = 1.0
    P[rng.random((n, t, c)) < 0.03] = 0.0
    return P.astype(np.float32), Y


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("k, alpha", [(denoise.K_VISUAL, denoise.ALPHA_VISUAL),
                                      (denoise.K_AUDIO, denoise.ALPHA_AUDIO), (1, 2.0), (3, 5.0)])
def test_denoise_matches_reference(seed, k, alpha):
    P, Y = _inputs(seed)
    got = denoise.denoise_pseudo_labels(torch.tensor(P), torch.tensor(Y), k, alpha)
    assert got.dtype == torch.bool and tuple(got.shape) == Y.shape
    ref = _reference(P, Y, k, alpha)
    # Losses are float32 in the implementation: ignore entries within rounding of the boundary.
    m = denoise.pseudo_label_losses(P, Y).numpy()
    mu = np.sort(m, axis=1)[:, : min(k, 10)].mean(1, keepdims=True)
    near = np.abs(m - alpha * mu) <= 1e-5 * np.maximum(1.0, np.abs(m))
    assert (got.numpy() == ref)[~near].all()
    assert (got.numpy() != Y).any()  # something was flipped, so the comparison means something


def test_k_larger_than_t_is_clipped():
    P, Y = _inputs(3, t=4)
    got = denoise.denoise_pseudo_labels(P, Y, 50, 2.0)
    assert (got.numpy() == _reference(P, Y, 50, 2.0)).all()
    assert (got == denoise.denoise_pseudo_labels(P, Y, 4, 2.0)).all()


def test_tie_at_zero_loss_does_not_flip():
    # A class the model fits exactly everywhere: every loss is 0, mu = 0, nothing flips.
    Y = np.zeros((1, 10, 3), bool)
    Y[0, 2:7, 0] = True
    P = Y.astype(np.float32)
    assert (denoise.denoise_pseudo_labels(P, Y, 5, 30.0).numpy() == Y).all()
    # mu = 0 with one entry of positive loss: only that entry flips (strictly above 30 * 0).
    P[0, 8, 0] = 0.5
    got = denoise.denoise_pseudo_labels(P, Y, 5, 30.0).numpy()
    expect = Y.copy()
    expect[0, 8, 0] = True
    assert (got == expect).all()


def test_only_video_level_pseudo_label_classes_are_considered():
    # Class 1 has no positive segment: its column stays all 0 even where P is 1.
    Y = np.zeros((2, 10, 2), bool)
    Y[:, :3, 0] = True
    P = np.full((2, 10, 2), 0.99, np.float32)
    got = denoise.denoise_pseudo_labels(P, Y, 5, 1.0).numpy()
    assert not got[:, :, 1].any()
    assert got[:, :, 0].all()  # class 0: the seven 0-labels with P = 0.99 flip to 1


def test_empty_labels_and_alpha_zero():
    P, _ = _inputs(0)
    Y = np.zeros(P.shape, bool)
    assert not denoise.denoise_pseudo_labels(P, Y, 5, 30.0).any()
    P, Y = _inputs(1)
    # alpha = 0 flips every entry of a considered column with positive loss (still strict).
    got = denoise.denoise_pseudo_labels(P, Y, 5, 0.0).numpy()
    assert (got == _reference(P, Y, 5, 0.0)).all()


def test_bad_arguments():
    P, Y = _inputs(0)
    with pytest.raises(ValueError, match="k must"):
        denoise.denoise_pseudo_labels(P, Y, 0, 30.0)
    with pytest.raises(ValueError, match="alpha"):
        denoise.denoise_pseudo_labels(P, Y, 5, -1.0)
    with pytest.raises(ValueError, match="differ"):
        denoise.denoise_pseudo_labels(P[:, :5], Y, 5, 30.0)


def test_paper_settings():
    assert (denoise.K_VISUAL, denoise.ALPHA_VISUAL) == (5, 30.0)
    assert (denoise.K_AUDIO, denoise.ALPHA_AUDIO) == (6, 400.0)
