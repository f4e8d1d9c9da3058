"""JoMoLD's official-code pieces against plain references written from their definitions:
the contrastive term of "w/ CL", the official noise ratios, the official objectives and preset."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from trainables.tasks.avvp import backbone as bb
from trainables.methods.jomold import train as jomold
from trainables.tasks.avvp.han import HAN, contrastive_loss


def reference_contrastive(h_a, h_v, temperature=0.2, smoothing=0.1) -> float:
    """Per video, per audio segment t: -log sum_s q[t, s] softmax_s(a_t . v_s / tau)."""
    b, t, _ = h_a.shape
    total = 0.0
    for i in range(b):
        for j in range(t):
            a = h_a[i, j].double() / h_a[i, j].double().norm()
            sims = [float(a @ (h_v[i, s].double() / h_v[i, s].double().norm())) / temperature
                    for s in range(t)]
            z = sum(math.exp(x) for x in sims)
            expected = sum((1 - smoothing if s == j else smoothing / (t - 1)) * math.exp(sims[s]) / z
                           for s in range(t))
            total -= math.log(expected)
    return total / (b * t)


def test_contrastive_loss_equals_per_video_reference():
    g = torch.Generator().manual_seed(0)
    for shape, tau, s in (((3, 10, 16), 0.2, 0.1), ((2, 5, 7), 0.5, 0.3), ((1, 10, 4), 0.07, 0.0)):
        h_a, h_v = torch.randn(*shape, generator=g), torch.randn(*shape, generator=g)
        got = contrastive_loss(h_a, h_v, temperature=tau, smoothing=s)
        assert got.dim() == 0
        assert float(got) == pytest.approx(reference_contrastive(h_a, h_v, tau, s), abs=1e-6)


def test_contrastive_loss_is_within_video_and_not_smoothed_cross_entropy():
    g = torch.Generator().manual_seed(1)
    h_a = torch.randn(4, 10, 8, generator=g)
    h_v = h_a + 0.05 * torch.randn(4, 10, 8, generator=g)
    aligned = float(contrastive_loss(h_a, h_v))
    # Other videos are no negatives: permuting the videos of the batch changes nothing.
    perm = torch.tensor([2, 0, 3, 1])
    assert float(contrastive_loss(h_a[perm], h_v[perm])) == pytest.approx(aligned, abs=1e-6)
    # Shuffling the segments inside each video breaks the alignment.
    assert float(contrastive_loss(h_a, h_v[:, torch.randperm(10, generator=g)])) > aligned + 1
    # The log of the expected probability is at least -log 0.9 and below label-smoothed CE.
    logp = torch.log_softmax(torch.nn.functional.normalize(h_a, dim=-1)
                             @ torch.nn.functional.normalize(h_v, dim=-1).transpose(1, 2) / 0.2, -1)
    q = torch.full((10, 10), 0.1 / 9) + torch.eye(10) * (0.9 - 0.1 / 9)
    smoothed_ce = float(-(q * logp).sum(-1).mean())
    assert -math.log(0.9) - 1e-6 <= aligned < smoothed_ce
    with pytest.raises(ValueError, match="shape"):
        contrastive_loss(h_a, h_v[:, :5])


def reference_official_ratios(p, y, theta, smooth, batch_size):
    """Per class: the mean over consecutive batches of each batch's mean of raw p, then the share
    of positives with p * (s*y + (1-s)/2) / mean < theta."""
    n, c = p.shape
    batches = [range(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]
    out = []
    for k in range(c):
        m = sum(sum(float(p[i, k]) for i in b) / len(b) for b in batches) / len(batches)
        pos = [i for i in range(n) if y[i, k] > 0]
        low = sum(1 for i in pos if float(p[i, k]) * (smooth * 1.0 + (1 - smooth) * 0.5) / m < theta)
        out.append(low / len(pos) if pos else 0.0)
    return out


def test_official_ratios_equal_plain_reference():
    g = torch.Generator().manual_seed(2)
    n, c = 300, 25  # 300 = 2 full batches of 128 and one of 44
    p_a, p_v = torch.rand(n, c, generator=g), torch.rand(n, c, generator=g) ** 3
    y = (torch.rand(n, c, generator=g) < 0.15).float()
    y[:, 7] = 0  # a class without positives gets ratio 0
    ra, rv = jomold.estimate_noise_ratios_official(p_a, p_v, y, 0.6, 1.8)
    assert ra.dtype == rv.dtype == torch.float64
    want_a = reference_official_ratios(p_a, y, 0.6, 1.0, 128)
    want_v = reference_official_ratios(p_v, y, 1.8, 0.9, 128)
    assert ra.tolist() == pytest.approx(want_a, abs=1e-6)
    assert rv.tolist() == pytest.approx(want_v, abs=1e-6)
    assert rv[7] == 0 and 0.05 < float(rv.mean()) < 0.95
    # The denominator is the mean of the raw p, not of p * y_s: that would give other ratios.
    rs = jomold.estimate_noise_ratios_official(p_a, p_v, y, 0.6, 1.8, batch_size=50)[1]
    assert rs.tolist() == pytest.approx(reference_official_ratios(p_v, y, 1.8, 0.9, 50), abs=1e-6)


def test_noise_ratios_pass_the_configured_smoothing_and_batch():
    g = torch.Generator().manual_seed(3)
    p = torch.rand(200, 25, generator=g)
    y = (torch.rand(200, 25, generator=g) < 0.2).float()
    est = jomold.EstimatorPreds(path=None, key="k", p_a=p, p_v=p.flip(0), video_ids=[], metrics={})
    cfg = jomold.Config.from_preset("official", ratio_batch_size=64)
    ra, rv = jomold.noise_ratios(cfg, est, y)
    assert rv.tolist() == pytest.approx(reference_official_ratios(p.flip(0), y, 1.8, 0.9, 64),
                                        abs=1e-6)
    assert ra.tolist() == pytest.approx(reference_official_ratios(p, y, 0.6, 1.0, 64), abs=1e-6)


def test_official_preset_and_objectives():
    cfg = jomold.Config.from_preset("official", theta_v=2.0)
    assert (cfg.loss_preset, cfg.ratio_mode, cfg.warmup_mode, cfg.smooth_v, cfg.cls_dropout,
            cfg.cl_weight, cfg.probe_train_mode, cfg.select_metric, cfg.theta_v) == \
        ("official", "official", "official", 0.9, 0.5, 1.0, True, "val/event_A", 2.0)
    assert cfg.loss_weights == (1.0, 2.0, 1.0)  # denoising: video 1, audio 2, visual 1
    est = jomold.estimator_config(cfg)
    # The official estimator: equal weights, the contrastive term and the classifier dropout.
    assert est.loss_weights == (1.0, 1.0, 1.0)
    assert (est.cl_weight, est.cls_dropout, est.smooth_v, est.with_ca) == (1.0, 0.5, 0.9, False)
    assert jomold.Config.from_preset("paper") == jomold.Config()
    with pytest.raises(ValueError, match="unknown JoMoLD preset 'x'"):
        jomold.Config.from_preset("x")
    with pytest.raises(ValueError, match="cls_dropout"):
        jomold.Config(cls_dropout=1.0).validate()
    # The contrastive term changes the estimator, so it keys the estimator cache.
    assert jomold.estimator_config(jomold.Config(cl_weight=1.0)).cl_weight == 1.0
    # Ours: "w/o CL" trains its estimator without the term; the official estimator step always
    # has it at weight 1, smoothing 0.1, whatever the denoising stage is given.
    assert jomold.estimator_config(jomold.Config()).cl_weight == 0.0
    off_wo = jomold.Config.from_preset("official", cl_weight=0.0, cl_smoothing=0.3)
    assert (off_wo.cl_weight, off_wo.cl_smoothing) == (0.0, 0.3)
    assert (jomold.estimator_config(off_wo).cl_weight, jomold.estimator_config(off_wo).cl_smoothing) \
        == (1.0, 0.1)
    # At the official defaults the two readings are one estimator (one cache entry).
    assert jomold.estimator_config(cfg) == jomold.estimator_config(
        dataclasses.replace(cfg, estimator_cl="inherit"))
    with pytest.raises(ValueError, match="estimator_cl"):
        jomold.Config(estimator_cl="x").validate()


def test_cls_dropout_drops_visual_features_before_the_classifier_only():
    torch.manual_seed(0)
    m = HAN(8, 12, 6, d_model=16, cls_dropout=0.5)
    x = (torch.randn(3, 10, 8), torch.randn(3, 10, 12), torch.randn(3, 10, 6))
    m.eval()
    ref = m(*x)
    m.train()
    m.hat.eval()  # isolate the classifier dropout from the attention layer's own
    torch.manual_seed(1)
    out = m(*x)
    # The embeddings the contrastive term reads are taken before the dropout.
    torch.testing.assert_close(out.a_feat, ref.a_feat)
    torch.testing.assert_close(out.v_feat, ref.v_feat)
    # Audio predictions are untouched; visual ones are not.
    torch.testing.assert_close(out.frame_prob[:, :, 0], ref.frame_prob[:, :, 0])
    assert not torch.allclose(out.frame_prob[:, :, 1], ref.frame_prob[:, :, 1])


def test_han_contrastive_term_adds_the_weighted_loss():
    torch.manual_seed(0)
    m = HAN(8, 12, 6, d_model=16).eval()
    out = m(torch.randn(2, 10, 8), torch.randn(2, 10, 12), torch.randn(2, 10, 6))
    assert bb.contrastive_term(bb.BackboneConfig(), out) == 0.0
    got = bb.contrastive_term(bb.BackboneConfig(cl_weight=0.5, cl_temperature=0.3, cl_smoothing=0.2), out)
    want = 0.5 * contrastive_loss(out.a_feat, out.v_feat, 0.3, 0.2)
    torch.testing.assert_close(got, want)


def test_select_batch_probe_mode():
    torch.manual_seed(0)
    m = HAN(8, 12, 6, d_model=16, dropout=0.3, cls_dropout=0.5)
    x = (torch.randn(64, 10, 8), torch.randn(64, 10, 12), torch.randn(64, 10, 6))
    y = (torch.rand(64, 25) < 0.3).float()
    r = torch.full((25,), 0.5, dtype=torch.float64)
    m.train()
    eval_sel = [jomold.select_batch(m, x, y, y, r, r)[1] for _ in range(2)]
    assert m.training  # the mode is restored
    assert torch.equal(eval_sel[0], eval_sel[1])  # eval mode: deterministic
    train_sel = [jomold.select_batch(m, x, y, y, r, r, train_mode=True)[1] for _ in range(3)]
    assert m.training
    assert any(not torch.equal(s, eval_sel[0]) for s in train_sel)  # dropout moves the ranking
