"""VALOR's objective, schedule, optimiser and student options against plain references."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from trainables.methods.valor.losses import ValorWeights, valor_loss
from trainables.methods.valor.optim import lr_at, make_optimizer
from trainables.methods.valor.train import Config, build_model
from trainables.tasks.avvp.data import AVVPSplit
from trainables.tasks.avvp.han import HAN, HANOutput


def _out(b=6, t=10, c=25, seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(b, t, 2, c, generator=g) * 3
    return HANOutput(torch.rand(b, c, generator=g), torch.rand(b, c, generator=g),
                     torch.rand(b, c, generator=g), torch.sigmoid(logits), None, None, logits)


def _targets(b=6, t=10, c=25, seed=1):
    g = torch.Generator().manual_seed(seed)
    y = (torch.rand(b, c, generator=g) < 0.3).float()
    return y, (torch.rand(b, t, c, generator=g) < 0.2).float(), (torch.rand(b, t, c, generator=g) < 0.2).float()


def test_loss_is_the_official_sum_of_means():
    out = _out()
    y, ya, yv = _targets()
    ref = (F.binary_cross_entropy(out.global_prob.clamp(1e-7, 1 - 1e-7), y)
           + F.binary_cross_entropy_with_logits(out.frame_logits[:, :, 0], ya)
           + F.binary_cross_entropy_with_logits(out.frame_logits[:, :, 1], yv))
    total, parts = valor_loss(out, y, ya, yv)
    torch.testing.assert_close(total, ref)
    assert set(parts) == {"video", "seg_a", "seg_v"}


def test_loss_shares_add_up_to_the_global_batch_mean():
    out = _out()
    y, ya, yv = _targets()
    full, _ = valor_loss(out, y, ya, yv)
    halves = [valor_loss(HANOutput(*(None if x is None else x[s] for x in out)), y[s], ya[s], yv[s], num_videos=6)[0]
              for s in (slice(0, 2), slice(2, 6))]
    torch.testing.assert_close(sum(halves), full)


def test_video_level_terms_use_the_union_over_segments():
    out = _out()
    y, ya, yv = _targets()
    base, _ = valor_loss(out, y, ya, yv)
    total, parts = valor_loss(out, y, ya, yv, ValorWeights(audio=0.5, visual=2.0))
    ref_a = F.binary_cross_entropy(out.a_prob, ya.amax(1))
    ref_v = F.binary_cross_entropy(out.v_prob, yv.amax(1))
    torch.testing.assert_close(parts["audio"], ref_a)
    torch.testing.assert_close(total, base + 0.5 * ref_a + 2.0 * ref_v)
    with pytest.raises(ValueError, match="frame_logits"):
        valor_loss(out._replace(frame_logits=None), y, ya, yv)


def _official_lr(e, warmup, max_epoch, lr_min, lr_max):
    """The schedule as the official scripts define it, epoch e = 1..E."""
    if e < warmup:
        return e / warmup * lr_max
    return lr_min + 0.5 * (lr_max - lr_min) * (1 + math.cos((e - warmup) / (max_epoch - warmup) * math.pi))


def test_schedule_is_warmup_then_cosine():
    got = [lr_at(i, epochs=60, warmup_epochs=10, lr=1e-4, lr_min=1e-6) for i in range(60)]
    assert got == pytest.approx([_official_lr(e, 10, 60, 1e-6, 1e-4) for e in range(1, 61)], rel=1e-12)
    assert got[0] == pytest.approx(1e-5) and got[9] == pytest.approx(1e-4) and got[-1] == pytest.approx(1e-6)
    # A run shortened to its warm-up ends at lr (the official formula would divide by zero).
    assert lr_at(2, epochs=3, warmup_epochs=3, lr=1e-4, lr_min=1e-6) == pytest.approx(1e-4)


def test_optimizer_schedule_and_clipping():
    torch.manual_seed(0)
    net = torch.nn.Linear(4, 3)
    cfg = Config(epochs=12, warmup_epochs=4, grad_clip=0.5)
    opt, sched = make_optimizer(cfg, net)
    assert isinstance(opt, torch.optim.AdamW) and opt.defaults["betas"] == (0.5, 0.999)
    assert opt.defaults["weight_decay"] == 1e-3 and opt.defaults["eps"] == 1e-8
    lrs = []
    for i in range(12):
        lrs.append(opt.param_groups[0]["lr"])
        opt.zero_grad()
        (net(torch.randn(8, 4)) * 100).sum().backward()
        before = torch.cat([p.grad.flatten() for p in net.parameters()]).norm()
        opt.step()
        after = torch.cat([p.grad.flatten() for p in net.parameters()]).norm()
        assert before > 0.5 and after == pytest.approx(0.5, rel=1e-5)  # clipped before the update
        sched.step()
    assert lrs == pytest.approx([lr_at(i, epochs=12, warmup_epochs=4, lr=1e-4, lr_min=1e-6) for i in range(12)])
    adam, _ = make_optimizer(Config(optimizer="adam"), net)
    assert type(adam) is torch.optim.Adam


def test_visual_attends_to_the_updated_audio():
    torch.manual_seed(0)
    net = HAN(8, 12, 6, 16, 5, nhead=4, dim_feedforward=32, cross_input="updated").eval()
    a, v, m = torch.randn(2, 10, 8), torch.randn(2, 10, 12), torch.randn(2, 10, 6)
    out = net(a, v, m)
    x_a = net.fc_a(a)
    x_v = net.fc_fusion(torch.cat([net.fc_v(v), net.fc_st(m)], -1))
    a1 = net.hat(x_a, x_v)
    torch.testing.assert_close(out.a_feat, a1)
    torch.testing.assert_close(out.v_feat, net.hat(x_v, a1))  # HAN would attend to x_a
    assert not torch.allclose(out.v_feat, net.hat(x_v, x_a))
    torch.testing.assert_close(out.frame_prob, torch.sigmoid(out.frame_logits))


def test_student_sizes_and_layer_init():
    split = AVVPSplit(["x"], torch.zeros(1, 10, 128), torch.zeros(1, 10, 2048), torch.zeros(1, 10, 512),
                      torch.zeros(1, 25))
    net = build_model(Config(), split, torch.device("cpu"))
    assert net.hat.self_attn.num_heads == 8 and net.hat.linear1.out_features == 1024
    assert len(net.hat_more) == 0 and net.hat.self_attn.embed_dim == 512
    plus = build_model(Config.from_preset("valor_plus"), split, torch.device("cpu"))
    assert len(plus.hat_more) == 3 and plus.hat.self_attn.embed_dim == 256
    for layer in plus.hat_more:  # the official clones start equal
        assert all(torch.equal(p, q) for p, q in zip(layer.parameters(), plus.hat.parameters()))
    indep = build_model(Config.from_preset("valor_plus", layer_init="independent"), split, torch.device("cpu"))
    assert not torch.equal(indep.hat_more[0].linear1.weight, indep.hat.linear1.weight)
    # HAN's parameter names are unchanged by the options (its checkpoints still load).
    assert set(HAN().state_dict()) == {k for k in HAN(nhead=8).state_dict()}
