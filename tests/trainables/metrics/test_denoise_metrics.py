"""Label-denoising quality and noise-ratio error on hand-computed cases."""

import numpy as np
import pytest
import torch

from trainables.tasks.avvp.denoise import denoise_quality, noise_ratio_mae, true_noise_ratio

# Two videos, four classes (class 3 never labelled).
LABELS = np.array([[1, 1, 0, 0], [1, 0, 1, 0]], np.uint8)
# Audio truth: video 0 has class 0 only, video 1 class 2 only.
# Noisy audio labels (weak label absent from audio): (0, 1) and (1, 0) -> 2.
TRUE_A = np.array([[1, 0, 0, 0], [0, 0, 1, 0]], np.uint8)
# Visual truth holds every weak label: no noisy visual label.
TRUE_V = LABELS.copy()


def test_hand_case_precision_recall_f1():
    # Removed audio: (0, 1) correct, (1, 2) wrong, (0, 2) is not a weak label -> ignored.
    # TP 1, removed 2, noisy 2 -> P = R = F1 = 0.5.
    removed_a = np.array([[0, 1, 1, 0], [0, 0, 1, 0]], bool)
    removed_v = np.zeros_like(removed_a)
    q = denoise_quality(removed_a, removed_v, LABELS, TRUE_A, TRUE_V)
    assert q["denoise/precision_a"] == 0.5
    assert q["denoise/recall_a"] == 0.5
    assert q["denoise/f1_a"] == 0.5
    assert (q["denoise/removed_a"], q["denoise/noisy_a"], q["denoise/tp_a"]) == (2.0, 2.0, 1.0)
    # Visual: nothing noisy and nothing removed -> perfect by convention.
    assert q["denoise/precision_v"] == q["denoise/recall_v"] == q["denoise/f1_v"] == 1.0


def test_hand_case_uneven_precision_and_recall():
    # Remove every audio weak label: TP 2 of 4 removed, both noisy found -> P 0.5, R 1, F1 2/3.
    q = denoise_quality(LABELS, np.zeros_like(LABELS), LABELS, TRUE_A, TRUE_V)
    assert q["denoise/precision_a"] == 0.5
    assert q["denoise/recall_a"] == 1.0
    assert q["denoise/f1_a"] == pytest.approx(2 / 3)


def test_zero_division_conventions():
    # Removing visual labels when none is noisy: precision 0/1, recall undefined -> 0.0, F1 0.
    removed_v = np.array([[1, 0, 0, 0], [0, 0, 0, 0]])
    q = denoise_quality(np.zeros_like(LABELS), removed_v, LABELS, TRUE_A, TRUE_V)
    assert q["denoise/precision_v"] == 0.0 and q["denoise/recall_v"] == 0.0
    assert q["denoise/f1_v"] == 0.0
    # Removing nothing from audio while 2 labels are noisy: precision undefined -> 0.0, recall 0.
    assert q["denoise/precision_a"] == 0.0 and q["denoise/recall_a"] == 0.0
    assert q["denoise/f1_a"] == 0.0 and q["denoise/removed_a"] == 0.0


def test_torch_inputs_and_bad_shapes():
    removed = torch.tensor([[0, 1, 0, 0], [1, 0, 0, 0]], dtype=torch.bool)
    q = denoise_quality(removed, removed, torch.from_numpy(LABELS), TRUE_A, TRUE_V)
    assert q["denoise/f1_a"] == 1.0
    with pytest.raises(ValueError, match="true_v: shape"):
        denoise_quality(removed, removed, LABELS, TRUE_A, TRUE_V[:, :3])
    with pytest.raises(ValueError, match="removed_a: values must be 0 or 1"):
        denoise_quality(removed.numpy() * 2, removed, LABELS, TRUE_A, TRUE_V)


def test_true_noise_ratio_by_hand():
    # Audio: class 0 labelled twice, absent from audio once -> 0.5; class 1: 1/1 -> 1.0;
    # class 2: 0/1 -> 0.0; class 3 never labelled -> NaN.
    r = true_noise_ratio(LABELS, TRUE_A)
    np.testing.assert_array_equal(r[:3], [0.5, 1.0, 0.0])
    assert np.isnan(r[3])


def test_noise_ratio_mae_by_hand():
    # |0.25-0.5| + |1-1| + |0.5-0| over 3 labelled classes = 0.75/3 = 0.25 (class 3's 0.9 ignored).
    # Visual true ratios are all 0 -> mean(0.1, 0.2, 0.3) = 0.2.
    est_a = np.array([0.25, 1.0, 0.5, 0.9])
    est_v = torch.tensor([0.1, 0.2, 0.3, 0.9])
    m = noise_ratio_mae(est_a, est_v, LABELS, TRUE_A, TRUE_V)
    assert m["noise_ratio/mae_a"] == pytest.approx(0.25)
    assert m["noise_ratio/mae_v"] == pytest.approx(0.2)


def test_noise_ratio_mae_errors_and_empty():
    with pytest.raises(ValueError, match=r"est_a: expected shape \(4,\)"):
        noise_ratio_mae(np.zeros(3), np.zeros(4), LABELS, TRUE_A, TRUE_V)
    with pytest.raises(ValueError, match="est_v: estimates must be finite"):
        noise_ratio_mae(np.zeros(4), np.full(4, np.nan), LABELS, TRUE_A, TRUE_V)
    m = noise_ratio_mae(np.zeros(4), np.zeros(4), np.zeros_like(LABELS), TRUE_A, TRUE_V)
    assert np.isnan(m["noise_ratio/mae_a"])


def test_perfect_removal_on_random_truth():
    rng = np.random.default_rng(1)
    labels = rng.random((200, 25)) < 0.2
    true_a = labels & (rng.random((200, 25)) < 0.7)
    true_v = labels & (rng.random((200, 25)) < 0.6)
    q = denoise_quality(labels & ~true_a, labels & ~true_v, labels, true_a, true_v)
    assert all(q[f"denoise/{k}_{m}"] == 1.0 for k in ("precision", "recall", "f1") for m in "av")
    est_a, est_v = true_noise_ratio(labels, true_a), true_noise_ratio(labels, true_v)
    m = noise_ratio_mae(np.nan_to_num(est_a), np.nan_to_num(est_v), labels, true_a, true_v)
    assert m == {"noise_ratio/mae_a": 0.0, "noise_ratio/mae_v": 0.0}
