"""VAPLAN PLE losses (richness-aware loss, the objective) against plain references."""

from __future__ import annotations

import math

import pytest
import torch

from trainables.methods.vaplan import losses


def _bce(p, y):
    """Scalar BCE with the log floored at -100, as torch's binary_cross_entropy."""
    lp = max(math.log(p), -100.0) if p > 0 else -100.0
    lq = max(math.log(1 - p), -100.0) if p < 1 else -100.0
    return -(y * lp + (1 - y) * lq)


def _reference_richness_loss(P, Y, y, mask="label", terms=("cr", "sr")):
    """The text's richness loss of one modality with python loops (module docstring's reading)."""
    n, t, c = P.shape
    cr_terms, sr_terms = [], []
    for i in range(n):
        ny = sum(y[i]) or 1  # a video without labels: denominator 1
        for j in range(t):
            cr = sum(Y[i, j, k] for k in range(c)) / ny
            if mask == "label":
                pcr = sum(y[i, k] * P[i, j, k] for k in range(c)) / ny
            else:
                pcr = min(sum(P[i, j, k] for k in range(c)) / ny, 1.0)
            cr_terms.append(_bce(pcr, cr))
        for k in range(c):
            sr = sum(Y[i, j, k] for j in range(t)) / t
            psr = sum(P[i, j, k] for j in range(t)) / t
            sr_terms.append(_bce(psr, sr))
    out = 0.0
    if "cr" in terms:
        out += sum(cr_terms) / len(cr_terms)
    if "sr" in terms:
        out += sum(sr_terms) / len(sr_terms)
    return out


def _inputs(seed, n=6, t=10, c=25, empty_video=False):
    g = torch.Generator().manual_seed(seed)
    y = (torch.rand(n, c, generator=g) < 0.15).float()
    y[0, 3] = 1.0  # at least one label somewhere
    if empty_video:
        y[1] = 0.0
    Y = (torch.rand(n, t, c, generator=g) < 0.5) & (y[:, None, :] > 0)
    P = torch.rand(n, t, c, generator=g, dtype=torch.float64).float()
    return P, Y, y


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("mask", losses.MASKS)
@pytest.mark.parametrize("terms", [("cr", "sr"), ("cr",), ("sr",)])
def test_richness_loss_matches_reference(seed, mask, terms):
    P, Y, y = _inputs(seed, empty_video=seed == 2)
    got = losses.richness_loss(P, Y, y, mask=mask, terms=terms)
    ref = _reference_richness_loss(P.double().numpy(), Y.numpy().astype(float), y.numpy(), mask, terms)
    assert got.ndim == 0
    assert float(got) == pytest.approx(ref, rel=1e-5, abs=1e-6)


def test_pcr_in_unit_interval_with_label_mask_and_can_exceed_one_without():
    P = torch.full((2, 10, 25), 0.9)
    y = torch.zeros(2, 25)
    y[:, :2] = 1
    pcr_l, _ = losses.richness_ratios(P, y, mask="label")
    pcr_n, _ = losses.richness_ratios(P, y, mask="none")
    assert float(pcr_l.max()) <= 1.0 + 1e-6
    assert float(pcr_n.min()) > 1.0  # the literal reading: 25 * 0.9 / 2
    Y = torch.zeros(2, 10, 25, dtype=torch.bool)
    Y[:, :, :2] = True
    for mask in losses.MASKS:  # clamped: finite either way
        assert torch.isfinite(losses.richness_loss(P, Y, y, mask=mask))


def test_empty_label_videos_no_nan_and_zero_cr_term():
    P = torch.rand(3, 10, 25, requires_grad=True)
    y = torch.zeros(3, 25)
    Y = torch.zeros(3, 10, 25, dtype=torch.bool)
    loss = losses.richness_loss(P, Y, y, mask="label", terms=("cr",))
    assert float(loss.detach()) == 0.0  # pcr = cr = 0 exactly
    for mask in losses.MASKS:
        P.grad = None
        loss = losses.richness_loss(P, Y, y, mask=mask)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(P.grad).all()


def test_labels_as_probabilities_are_a_stationary_point_and_gradients_flow():
    # BCE(p, t) is smallest at p = t (its value there is the entropy of t, not 0), so P = Y is a
    # stationary point of both terms; elsewhere the gradient is non-zero.
    P, Y, y = _inputs(4)
    Pf = Y.float().requires_grad_(True)
    losses.richness_loss(Pf, Y, y).backward()
    assert float(Pf.grad.abs().max()) < 1e-6
    P.requires_grad_(True)
    losses.richness_loss(P, Y, y).backward()
    assert P.grad.abs().sum() > 0 and torch.isfinite(P.grad).all()


def test_richness_loss_rejects_bad_arguments():
    P, Y, y = _inputs(0)
    with pytest.raises(ValueError, match="mask"):
        losses.richness_loss(P, Y, y, mask="video")
    with pytest.raises(ValueError, match="terms"):
        losses.richness_loss(P, Y, y, terms=())
    with pytest.raises(ValueError, match="differ"):
        losses.richness_loss(P[:, :5], Y, y)


def _ple_reference(vp, ap, vvp, Pa, Pv, Ya, Yv, y, lam, richness, segment_bce, terms):
    def mean_bce(p, t):
        p, t = p.double().flatten().tolist(), t.double().flatten().tolist()
        return sum(_bce(a, b) for a, b in zip(p, t)) / len(p)

    yhat_a = Ya.any(1).float()
    yhat_v = Yv.any(1).float()
    total = mean_bce(vp, y) + mean_bce(ap, yhat_a) + mean_bce(vvp, yhat_v)
    if segment_bce:
        total += mean_bce(Pa, Ya.float()) + mean_bce(Pv, Yv.float())
    if richness:
        for P, Y in ((Pa, Ya), (Pv, Yv)):
            total += lam * _reference_richness_loss(P.double().numpy(), Y.numpy().astype(float), y.numpy(),
                                                    "label", terms)
    return total


@pytest.mark.parametrize("variant", sorted(losses.VARIANTS))
def test_ple_loss_variants_match_reference(variant):
    Pa, Ya, y = _inputs(7, n=4)
    Pv, Yv, _ = _inputs(8, n=4)
    Yv &= y[:, None, :] > 0
    g = torch.Generator().manual_seed(9)
    vp, ap, vvp = (torch.rand(4, 25, generator=g) for _ in range(3))
    flags = losses.VARIANTS[variant]
    out = losses.ple_loss(vp, ap, vvp, Pa, Pv, Ya, Yv, y, **flags)
    ref = _ple_reference(vp, ap, vvp, Pa, Pv, Ya, Yv, y, losses.LAMBDA, flags["richness"],
                         flags["segment_bce"], flags.get("terms", ("cr", "sr")))
    assert float(out.total) == pytest.approx(ref, rel=1e-5)
    parts = out.video + out.audio + out.visual + out.segment_bce + losses.LAMBDA * out.richness
    assert float(out.total) == pytest.approx(float(parts), rel=1e-6)
    if not flags["richness"]:
        assert float(out.richness) == 0.0
    if not flags["segment_bce"]:
        assert float(out.segment_bce) == 0.0


def test_ple_loss_default_is_paper_objective():
    Pa, Ya, y = _inputs(1, n=3)
    Pv, Yv, _ = _inputs(2, n=3)
    vp = ap = vvp = torch.full((3, 25), 0.3)
    out = losses.ple_loss(vp, ap, vvp, Pa, Pv, Ya, Yv, y)
    expect = (out.video + out.audio + out.visual
              + 0.5 * (losses.richness_loss(Pa, Ya, y) + losses.richness_loss(Pv, Yv, y)))
    assert float(out.total) == pytest.approx(float(expect), rel=1e-6)
    assert float(out.segment_bce) == 0.0


def test_num_videos_makes_shards_sum_to_the_global_mean():
    Pa, Ya, y = _inputs(11, n=8)
    Pv, Yv, _ = _inputs(12, n=8)
    Yv &= y[:, None, :] > 0
    vp, ap, vvp = torch.rand(3, 8, 25, generator=torch.Generator().manual_seed(13))
    full = losses.ple_loss(vp, ap, vvp, Pa, Pv, Ya, Yv, y, segment_bce=True)
    halves = [losses.ple_loss(vp[s], ap[s], vvp[s], Pa[s], Pv[s], Ya[s], Yv[s], y[s], segment_bce=True,
                              num_videos=8) for s in (slice(0, 3), slice(3, 8))]
    for field in losses.PLELoss._fields:
        assert float(getattr(full, field)) == pytest.approx(sum(float(getattr(h, field)) for h in halves), rel=1e-5)
    parts = [losses.richness_loss(Pa[s], Ya[s], y[s], num_videos=8) for s in (slice(0, 5), slice(5, 8))]
    assert float(sum(parts)) == pytest.approx(float(losses.richness_loss(Pa, Ya, y)), rel=1e-5)


def test_losses_run_under_autocast():
    P, Y, y = _inputs(14, n=2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = losses.richness_loss(P.bfloat16(), Y, y)
    assert out.dtype == torch.float32 and torch.isfinite(out)
