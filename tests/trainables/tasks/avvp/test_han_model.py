"""HAN model: structure, shapes, the with_ca switch, frame averaging, MMIL pooling, loss."""

from __future__ import annotations

import math

import pytest
import torch

from trainables.tasks.avvp.han import HAN, HANOutput, han_loss


def inputs(b=3, t=10, dims=(128, 2048, 512), frames=0, seed=0):
    g = torch.Generator().manual_seed(seed)
    da, dv, dm = dims
    v_shape = (b, t, frames, dv) if frames else (b, t, dv)
    return (torch.randn(b, t, da, generator=g), torch.randn(*v_shape, generator=g),
            torch.randn(b, t, dm, generator=g))


def model(**kw) -> HAN:
    torch.manual_seed(0)
    return HAN(**kw).eval()


def test_parameter_count_is_han_structure():
    d, c = 512, 25
    lin = lambda i, o: i * o + o  # noqa: E731
    expected = (lin(128, d) + lin(2048, d) + lin(512, d) + lin(2 * d, d)
                + 2 * 4 * lin(d, d)  # self- and cross-attention: q, k, v, out projections
                + 2 * lin(d, d)      # feed-forward 512 -> 512 -> 512
                + 2 * 2 * d          # two LayerNorms
                + 3 * lin(d, c))     # fc_prob, fc_frame_att, fc_av_att
    assert sum(p.numel() for p in HAN().parameters()) == expected


def test_output_shapes_and_ranges():
    out = model()(*inputs())
    assert isinstance(out, HANOutput)
    assert out.global_prob.shape == out.a_prob.shape == out.v_prob.shape == (3, 25)
    assert out.frame_prob.shape == (3, 10, 2, 25)
    assert out.a_feat.shape == out.v_feat.shape == (3, 10, 512)
    for p in (out.global_prob, out.a_prob, out.v_prob, out.frame_prob):
        assert torch.all((p >= 0) & (p <= 1))


def test_mmil_pooling_is_attention_weighted_mean_of_segment_probs():
    out = model()(*inputs())
    fp = out.frame_prob
    # A softmax-weighted mean over segments lies within the segment min/max per class.
    for m, p in ((0, out.a_prob), (1, out.v_prob)):
        assert torch.all(p <= fp[:, :, m].amax(1) + 1e-6)
        assert torch.all(p >= fp[:, :, m].amin(1) - 1e-6)
    # The video-level probability mixes both modalities' segment probabilities.
    assert torch.all(out.global_prob >= fp.amin(dim=(1, 2)) - 1e-6)
    assert torch.all(out.global_prob <= fp.amax(dim=(1, 2)) + 1e-6)


def test_with_ca_switch_same_weights_different_output():
    net = model()
    x = inputs()
    names = {n for n, _ in net.named_parameters()}
    on, off = net(*x, with_ca=True), net(*x, with_ca=False)
    assert {n for n, _ in net.named_parameters()} == names
    assert not torch.allclose(on.global_prob, off.global_prob)
    # Without cross-attention the audio stream never sees the visual/motion inputs ...
    a, v, m = x
    off2 = net(a, v + 3.0, m - 2.0, with_ca=False)
    assert torch.allclose(off.a_prob, off2.a_prob, atol=1e-6)
    assert torch.allclose(off.a_feat, off2.a_feat, atol=1e-6)
    # ... and the cross-attention weights play no part; with it on they do.
    with torch.no_grad():
        net.hat.cm_attn.in_proj_weight.mul_(-2.0)
    assert torch.allclose(net(*x, with_ca=False).global_prob, off.global_prob, atol=1e-6)
    assert not torch.allclose(net(*x, with_ca=True).global_prob, on.global_prob, atol=1e-4)


def test_frame_averaging_equivalence():
    net = model()
    a, v, m = inputs(frames=8)
    per_frame = net(a, v, m)
    averaged = net(a, v.mean(dim=2), m)
    for x, y in zip(per_frame, averaged):
        torch.testing.assert_close(x, y, atol=2e-5, rtol=1e-4)


def test_configurable_input_dims_and_dim_errors():
    net = model(audio_dim=512, visual_dim=768, motion_dim=64, d_model=64, num_classes=7)
    out = net(*inputs(b=2, t=5, dims=(512, 768, 64)))
    assert out.frame_prob.shape == (2, 5, 2, 7)
    with pytest.raises(ValueError, match="visual 768"):
        net(*inputs(b=2, t=5, dims=(512, 2048, 64)))


def test_han_loss_is_sum_of_three_bces():
    torch.manual_seed(1)
    out = model()(*inputs())
    y = (torch.rand(3, 25) < 0.2).float()
    y_a, y_v = 0.9 * y + 0.05, y * (torch.rand(3, 25) < 0.5)

    def bce(p, t):
        return -(t * p.log() + (1 - t) * (1 - p).log()).mean()

    ref = bce(out.global_prob, y) + bce(out.a_prob, y_a) + bce(out.v_prob, y_v)
    torch.testing.assert_close(han_loss(out, y, y_a, y_v), ref, rtol=1e-5, atol=1e-6)
    w = han_loss(out, y, y_a, y_v, weights=(1.0, 2.0, 0.5))
    ref_w = bce(out.global_prob, y) + 2 * bce(out.a_prob, y_a) + 0.5 * bce(out.v_prob, y_v)
    torch.testing.assert_close(w, ref_w, rtol=1e-5, atol=1e-6)
    assert math.isclose(han_loss(out, y, y_a, y_v, reduction="sum").item(),
                        ref.item() * 75, rel_tol=1e-5)


def test_dropout_active_only_in_train_mode():
    net = model()
    x = inputs()
    net.train()
    torch.manual_seed(0)
    a = net(*x).global_prob
    torch.manual_seed(1)
    b = net(*x).global_prob
    assert not torch.allclose(a, b)
    net.eval()
    torch.testing.assert_close(net(*x).global_prob, net(*x).global_prob)
