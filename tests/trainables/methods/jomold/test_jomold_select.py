"""JoMoLD's selection rule and noise ratios vs plain per-class references written from the text."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from trainables.tasks.avvp.label_denoising import (estimate_noise_ratios,
                                                   estimate_noise_ratios_official, select_noisy,
                                                   warmup_factor)


def ref_select(la, lv, labels, ra, rv):
    """JoMoLD Algorithm 1, one class at a time with Python lists."""
    b, c = la.shape
    rem_a = np.zeros((b, c), bool)
    rem_v = np.zeros((b, c), bool)
    for k in range(c):
        pos = [i for i in range(b) if labels[i, k] > 0]
        for r, hi_loss, lo_loss, out in ((ra[k], la, lv, rem_a), (rv[k], lv, la, rem_v)):
            m = int(float(r) * len(pos))
            highest = sorted(pos, key=lambda i: (-float(hi_loss[i, k]), i))[:m]
            lowest = set(sorted(pos, key=lambda i: (float(lo_loss[i, k]), i))[:m])
            for i in highest:
                if i in lowest:
                    out[i, k] = True
    return rem_a, rem_v


def ref_ratios(p, labels, theta):
    n, c = p.shape
    out = []
    for k in range(c):
        mean = math.fsum(float(x) for x in p[:, k]) / n
        pos = [i for i in range(n) if labels[i, k] > 0]
        noisy = sum(1 for i in pos if float(p[i, k]) / mean < theta)
        out.append(noisy / len(pos) if pos else 0.0)
    return np.array(out)


@pytest.mark.parametrize("seed", range(40))
def test_select_noisy_matches_reference(seed):
    g = torch.Generator().manual_seed(seed)
    b, c = int(torch.randint(1, 70, (1,), generator=g)), int(torch.randint(1, 26, (1,), generator=g))
    labels = (torch.rand(b, c, generator=g) < torch.rand(1, generator=g)).float()
    la = torch.rand(b, c, generator=g) * 5
    lv = torch.rand(b, c, generator=g) * 5
    if seed % 4 == 0:  # ties: quantised losses
        la, lv = (la * 3).round(), (lv * 3).round()
    ra = torch.rand(c, generator=g)
    rv = torch.rand(c, generator=g)
    if seed % 5 == 0:
        ra[0], rv[-1] = 1.0, 0.0
    rem_a, rem_v = select_noisy(la, lv, labels, ra, rv)
    ea, ev = ref_select(la.numpy(), lv.numpy(), labels.numpy(), ra.numpy(), rv.numpy())
    assert rem_a.dtype == torch.bool and rem_a.shape == (b, c)
    np.testing.assert_array_equal(rem_a.numpy(), ea)
    np.testing.assert_array_equal(rem_v.numpy(), ev)
    # Only positive labels are ever removed.
    assert not (rem_a & (labels == 0)).any() and not (rem_v & (labels == 0)).any()


def test_select_noisy_hand_example():
    # One class, four positives; M = int(0.5 * 4) = 2 for audio.
    la = torch.tensor([[0.9], [0.1], [0.8], [0.2], [5.0]])
    lv = torch.tensor([[0.1], [0.2], [0.9], [0.3], [0.0]])
    y = torch.tensor([[1.0], [1.0], [1.0], [1.0], [0.0]])
    rem_a, rem_v = select_noisy(la, lv, y, torch.tensor([0.5]), torch.tensor([0.5]))
    # audio: top-2 audio losses {0, 2}, bottom-2 visual losses {0, 1} -> {0}
    assert rem_a[:, 0].tolist() == [True, False, False, False, False]
    # visual: top-2 visual losses {2, 3}, bottom-2 audio losses {1, 3} -> {3}
    assert rem_v[:, 0].tolist() == [False, False, False, True, False]


def test_select_noisy_ratio_zero_removes_nothing_and_checks_shapes():
    la, lv = torch.rand(8, 25), torch.rand(8, 25)
    y = torch.ones(8, 25)
    ra, rv = select_noisy(la, lv, y, torch.zeros(25), torch.zeros(25))
    assert not ra.any() and not rv.any()
    with pytest.raises(ValueError, match="shape"):
        select_noisy(la, lv[:4], y, torch.zeros(25), torch.zeros(25))


@pytest.mark.parametrize("seed", range(30))
def test_estimate_noise_ratios_matches_reference(seed):
    g = torch.Generator().manual_seed(100 + seed)
    n, c = int(torch.randint(1, 300, (1,), generator=g)), int(torch.randint(1, 26, (1,), generator=g))
    labels = (torch.rand(n, c, generator=g) < 0.3).float()
    p_a = torch.rand(n, c, generator=g) ** 2
    p_v = torch.rand(n, c, generator=g)
    ta, tv = float(torch.rand(1, generator=g)) * 2, float(torch.rand(1, generator=g)) * 3
    ra, rv = estimate_noise_ratios(p_a, p_v, labels, ta, tv)
    np.testing.assert_array_equal(ra.numpy(), ref_ratios(p_a.numpy(), labels.numpy(), ta))
    np.testing.assert_array_equal(rv.numpy(), ref_ratios(p_v.numpy(), labels.numpy(), tv))


def test_estimate_noise_ratios_hand_example():
    # class mean of p = (0.1 + 0.3 + 0.8 + 0.8) / 4 = 0.5; normalised 0.2, 0.6, 1.6, 1.6
    p = torch.tensor([[0.1], [0.3], [0.8], [0.8]])
    y = torch.tensor([[1.0], [1.0], [1.0], [0.0]])
    ra, rv = estimate_noise_ratios(p, p, y, 0.6, 1.8)
    assert ra.tolist() == [1 / 3]  # only 0.2 < 0.6 (0.6 is not below 0.6)
    assert rv.tolist() == [1.0]


def test_official_ratio_variant_reference():
    g = torch.Generator().manual_seed(7)
    n, c, bs, s = 70, 6, 16, 0.9
    labels = (torch.rand(n, c, generator=g) < 0.4).float()
    p = torch.rand(n, c, generator=g)
    ra, _ = estimate_noise_ratios_official(p, p, labels, 0.7, 1.0, smooth_a=s, batch_size=bs)
    q = p.double().numpy() * (s * labels.double().numpy() + (1 - s) * 0.5)
    # The denominator averages the batch means of the raw probability, not of q.
    means = [p.double().numpy()[i:i + bs].mean(axis=0) for i in range(0, n, bs)]
    m = np.mean(means, axis=0)
    pos = labels.numpy() > 0
    ref = ((q / m < 0.7) & pos).sum(0) / pos.sum(0)
    np.testing.assert_allclose(ra.numpy(), ref, rtol=0, atol=1e-12)


def test_warmup_factor():
    assert warmup_factor(0.0, 0.9) == 0.0
    assert warmup_factor(0.45, 0.9) == pytest.approx(0.5)
    assert warmup_factor(0.9, 0.9) == 1.0 and warmup_factor(3.2, 0.9) == 1.0
    assert warmup_factor(0.0, 0.0) == 1.0
    assert warmup_factor(0.99, 0.9, "official") == 0.0
    assert warmup_factor(1.0, 0.9, "official") == 1.0
