"""CMPAE's network: the evidence and Beta opinions against plain references from the equations,
the structure that decides its outputs (frame averaging after ELU, the cross-attention mix, where
the dropouts act)."""

from __future__ import annotations

import math

import pytest
import torch

from trainables.methods.cmpae.model import CMPAENet, beta_opinion, evidence


def ref_opinion(l_pos: float, l_neg: float, tau: float = 0.8, k: float = 10.0) -> tuple[float, float]:
    a_pos = math.exp(min(max(l_pos, -k), k) / tau) + 1.0
    a_neg = math.exp(min(max(l_neg, -k), k) / tau) + 1.0
    return a_pos / (a_pos + a_neg), 2.0 / (a_pos + a_neg)


def test_beta_opinion_equals_the_plain_reference():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 7, 2, generator=g, dtype=torch.float64) * 6  # some beyond the clamp
    p, u = beta_opinion(logits)
    for i in range(4):
        for j in range(7):
            want_p, want_u = ref_opinion(float(logits[i, j, 0]), float(logits[i, j, 1]))
            assert math.isclose(float(p[i, j]), want_p, rel_tol=1e-12)
            assert math.isclose(float(u[i, j]), want_u, rel_tol=1e-12)
    # Equal evidence for presence and absence: p = 1/2; vanishing evidence: u -> 1.
    p, u = beta_opinion(torch.tensor([[3.0, 3.0], [-50.0, -50.0]], dtype=torch.float64))
    assert p.tolist() == [0.5, 0.5] and math.isclose(float(u[1]), 2 / (2 + 2 * math.exp(-12.5)))
    assert float(evidence(torch.tensor(40.0, dtype=torch.float64))) == pytest.approx(math.exp(12.5))


def _model(**kw) -> CMPAENet:
    torch.manual_seed(0)
    return CMPAENet(6, 8, 5, d_model=16, num_classes=4, **kw)


def _inputs(b=3, frames=0):
    g = torch.Generator().manual_seed(1)
    v = torch.randn(b, 10, frames, 8, generator=g) if frames else torch.randn(b, 10, 8, generator=g)
    return torch.randn(b, 10, 6, generator=g), v, torch.randn(b, 10, 5, generator=g)


def test_outputs_follow_from_the_evidence_heads():
    m = _model().eval()
    a, v, s = _inputs()
    out = m(a, v, s)
    assert out.frame_prob.shape == (3, 10, 2, 4) and out.a_prob.shape == out.v_uct.shape == (3, 4)
    # Global branch: mean over segments of the sigmoid; its uncertainty C / sum(alpha).
    with torch.no_grad():
        x_a = m.fc_a(a)
        x_v = m.fc_fusion(torch.cat([m.fc_v(v), m.fc_st(s)], dim=-1))
        g_logit = m.global_cls(m.global_embed(x_a) + m.global_embed(x_v))
    torch.testing.assert_close(out.global_prob, torch.sigmoid(g_logit).mean(dim=1))
    alpha = torch.exp(g_logit.mean(dim=1).clamp(-10, 10) / 0.8) + 1
    torch.testing.assert_close(out.global_uct, 4 / alpha.sum(dim=-1))
    # The video-level opinions pool logits over time, so they are not a mean of frame_prob.
    assert not torch.allclose(out.a_prob, out.frame_prob[:, :, 0].mean(dim=1))
    assert ((out.a_uct > 0) & (out.a_uct <= 1)).all()


def test_visual_frames_pass_elu_before_the_segment_mean():
    m = _model().eval()
    a, v, s = _inputs(frames=4)
    out = m(a, v, s)
    # Four equal frames per segment are the same as the pre-averaged segment ...
    same = m(a, v[:, :, :1].expand(-1, -1, 4, -1), s)
    torch.testing.assert_close(same.frame_prob, m(a, v[:, :, 0], s).frame_prob)
    # ... but distinct frames are not their average (ELU is applied per frame).
    assert not torch.allclose(out.frame_prob, m(a, v.mean(dim=2), s).frame_prob)


def test_cross_attention_pass_is_mixed_with_the_plain_one():
    a, v, s = _inputs()
    m = _model().eval()
    mixed = m(a, v, s, with_ca=True)
    m.ca_mix = 1.0
    full = m(a, v, s, with_ca=True)
    plain = m(a, v, s, with_ca=False)
    torch.testing.assert_close(mixed.a_feat, 0.8 * full.a_feat + 0.2 * plain.a_feat)
    torch.testing.assert_close(mixed.v_feat, 0.8 * full.v_feat + 0.2 * plain.v_feat)
    assert not torch.allclose(full.a_feat, plain.a_feat)
    # The global branch is computed before the attention layer: the mix does not reach it.
    torch.testing.assert_close(full.global_prob, plain.global_prob)


def test_classifier_dropout_acts_on_the_visual_stream_after_the_features():
    a, v, s = _inputs()
    m = _model(cls_dropout=0.5, cross_dropout=0.0)
    ref = m.eval()(a, v, s)
    m.train()
    m.hat.eval()  # only the classifier dropout stays active
    torch.manual_seed(3)
    out = m(a, v, s)
    torch.testing.assert_close(out.a_feat, ref.a_feat)
    torch.testing.assert_close(out.v_feat, ref.v_feat)
    assert not torch.allclose(out.v_prob, ref.v_prob)
    # The absence logit of audio reads the (dropped) visual stream, so audio moves too.
    assert not torch.allclose(out.a_prob, ref.a_prob)
