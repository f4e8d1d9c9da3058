"""VAPLAN PLD (pseudo-label denoising) against a plain per-video reference, and its mu = 0 case."""

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
            threshold = alpha * mu if mu > 0 else math.log(2)  # mu = 0: only contradicted labels
            for s in range(t):
                if col[s] > threshold:
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
    # mu = 0: the threshold is ln 2, the loss at P = 0.5. P = 0.5 ties (stays); P = 0.4 on a 0
    # agrees with it (stays, although its loss is positive); P = 0.6 on a 0 contradicts it (flips).
    P[0, 8, 0], P[0, 9, 0], P[0, 0, 0] = 0.5, 0.4, 0.6
    got = denoise.denoise_pseudo_labels(P, Y, 5, 30.0).numpy()
    expect = Y.copy()
    expect[0, 0, 0] = True
    assert (got == expect).all()


def test_mu_zero_does_not_flip_correct_labels():
    """The bf16 case: a confident first stage whose P rounds to exactly 1.0 on its best segments
    (mu = 0). Every label here is correct (it is the truth) and the model agrees with all of them;
    the rule as stated (``M > alpha * 0``) would flip every one with a positive loss."""
    truth = np.zeros((1, 10, 2), bool)
    truth[0, :7, 0] = True            # class 0 present in 7 segments
    truth[0, 3:5, 1] = True           # class 1 present in 2
    p32 = np.where(truth, 0.9995, 0.0004).astype(np.float32)
    p32[0, 5:7, 0] = 0.97             # two present segments fitted less tightly
    pbf = torch.tensor(p32).to(torch.bfloat16).float()  # what a bf16 forward hands over
    assert (pbf[0, :5, 0] == 1.0).all()  # the five best losses are exactly 0: mu_0 = 0
    m = denoise.pseudo_label_losses(pbf, truth)
    assert float(m[0, :, 0].topk(5, largest=False).values.mean()) == 0.0 and float(m[0, 5, 0]) > 0
    assert (denoise.denoise_pseudo_labels(pbf, truth, 5, 30.0).numpy() == truth).all()
    # The stated rule, for contrast: threshold alpha * mu = 0 flips the positive-loss entries.
    stated = torch.tensor(truth) & (m > 30.0 * m.topk(5, dim=1, largest=False).values.mean(1, keepdim=True))
    assert stated[0, 5:7, 0].all()
    # A label the model contradicts still flips at mu = 0 (here a missed segment of class 0).
    wrong = truth.copy()
    wrong[0, 6, 0] = False
    got = denoise.denoise_pseudo_labels(pbf, wrong, 5, 30.0).numpy()
    assert (got == truth).all()


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
    assert denoise.MU_ZERO_LOSS == pytest.approx(math.log(2))
