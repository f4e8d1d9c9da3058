"""RLLD's pieces in isolation: rewards, the all-removed rule, REINFORCE, batches, the agent."""

import math

import pytest
import torch

from trainables.methods.rlld.agent import RLLDAgent, action_log_prob, revise_labels, sample_actions
from trainables.methods.rlld.baselines import MovingAverageBaseline
from trainables.methods.rlld.batches import overlapping_batches, stride_of
from trainables.methods.rlld.config import Config
from trainables.methods.rlld.diagnostics import noise_auc
from trainables.methods.rlld.rewards import (guard_all_removed, inter_reward, reinforce_loss,
                                             soft_labels, terminal_reward)


def _hand_inter(y, l, a1, a2, s, eps):
    """The soft inter-reward written out with scalars (module docstring's definition)."""
    c = len(y)
    ls = [(1 - s) * yi + s / c for yi in y]
    zp = sum(x + eps for x in ls)
    zq = sum(x + eps for x in l)
    p = [(x + eps) / zp for x in ls]
    q = [(x + eps) / zq for x in l]
    kl_pq = sum(pi * (math.log(pi + eps) - math.log(qi + eps)) for pi, qi in zip(p, q))
    kl_qp = sum(qi * (math.log(qi + eps) - math.log(pi + eps)) for pi, qi in zip(p, q))
    r1 = math.exp(-(kl_pq + kl_qp) / 2)
    dot = sum(a * b for a, b in zip(ls, l))
    r2 = dot / (math.sqrt(sum(a * a for a in ls)) * math.sqrt(sum(b * b for b in l)))
    return a1 * r1 + a2 * r2


def test_inter_reward_is_one_when_nothing_changes_and_unsmoothed():
    y = torch.tensor([[1.0, 1.0, 0.0, 0.0]])
    r = inter_reward(y, y.clone(), alpha1=0.6, alpha2=0.4, smoothing=0.0, eps=1e-6)
    assert r.item() == pytest.approx(1.0, abs=1e-6)


def test_inter_reward_matches_hand_computation():
    y = [1.0, 1.0, 0.0, 0.0]
    l = [1.0, 0.0, 0.0, 0.0]
    # Unsmoothed, one of two labels removed: the cosine term is exactly 1/sqrt(2).
    got = inter_reward(torch.tensor([y]), torch.tensor([l]), alpha1=0.0, alpha2=1.0,
                       smoothing=0.0, eps=1e-6).item()
    assert got == pytest.approx(1 / math.sqrt(2), abs=1e-6)
    for a1, a2, s, eps in [(0.6, 0.4, 0.1, 1e-6), (0.3, 0.7, 0.2, 1e-3), (1.0, 0.0, 0.0, 1e-4)]:
        got = inter_reward(torch.tensor([y]), torch.tensor([l]), alpha1=a1, alpha2=a2,
                           smoothing=s, eps=eps).item()
        assert got == pytest.approx(_hand_inter(y, l, a1, a2, s, eps), rel=1e-4)
    # Unsmoothed R1 with eps: KL(p||q) ~= 0.5*log(0.5/1) + 0.5*log(0.5/2e-6) etc.; R1 is tiny.
    r1 = inter_reward(torch.tensor([y]), torch.tensor([l]), alpha1=1.0, alpha2=0.0,
                      smoothing=0.0, eps=1e-6).item()
    assert 0 < r1 < 0.05


def test_inter_reward_prefers_fewer_removals():
    y = torch.tensor([[1.0, 1.0, 1.0, 0.0, 0.0]])
    keep_all = inter_reward(y, y.clone())
    drop_one = inter_reward(y, torch.tensor([[1.0, 1.0, 0.0, 0.0, 0.0]]))
    drop_two = inter_reward(y, torch.tensor([[1.0, 0.0, 0.0, 0.0, 0.0]]))
    assert keep_all.item() > drop_one.item() > drop_two.item() > 0


def test_soft_labels():
    y = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    assert soft_labels(y, 0.2)[0].tolist() == pytest.approx([0.85, 0.05, 0.05, 0.05])


def test_all_removed_keeps_labels_and_gets_minus_one():
    y = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 1.0], [0.0, 0.0, 0.0]])
    rev_a = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    rev_v = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    ga, gv, undone_a, undone_v = guard_all_removed(y, rev_a, rev_v)
    # Video 0 lost every label in both modalities: undone. Video 1 and 2 keep one label
    # somewhere. Video 3 had no label to remove.
    assert undone_a.tolist() == undone_v.tolist() == [True, False, False, False]
    assert ga[0].tolist() == [1.0, 1.0, 0.0] and gv[0].tolist() == [1.0, 1.0, 0.0]
    assert torch.equal(ga[1:], rev_a[1:]) and torch.equal(gv[1:], rev_v[1:])
    # Per modality: video 1's visual and video 2's audio vectors are empty too.
    ma, mv, m_a, m_v = guard_all_removed(y, rev_a, rev_v, mode="modality")
    assert m_a.tolist() == [True, False, True, False]
    assert m_v.tolist() == [True, True, False, False]
    assert ma[2].tolist() == y[2].tolist() and mv[1].tolist() == y[1].tolist()
    assert ma[1].tolist() == rev_a[1].tolist() and mv[2].tolist() == rev_v[2].tolist()
    with pytest.raises(ValueError, match="all_removed"):
        guard_all_removed(y, rev_a, rev_v, mode="class")


def test_terminal_reward_uses_configured_metrics_and_scale():
    m = {"val/seg_A": 60.0, "val/event_V": 40.0, "val/seg_V": 55.0}
    assert terminal_reward(m, Config()) == pytest.approx((0.06, 0.04))
    cfg = Config(terminal_metric_v="seg_V", terminal_scale=1.0)
    assert terminal_reward(m, cfg) == pytest.approx((0.6, 0.55))
    with pytest.raises(ValueError, match="terminal_metric_a"):
        Config(terminal_metric_a="seg_X").validate()
    with pytest.raises(KeyError, match="event_A"):
        terminal_reward(m, Config(terminal_metric_a="event_A"))


def test_reinforce_sign_and_baseline():
    theta = torch.tensor(0.3, requires_grad=True)
    p = torch.sigmoid(theta)
    action = torch.tensor(1.0)
    lp = action_log_prob(p.view(1, 1), action.view(1, 1), torch.ones(1, 1))
    # Reward above the baseline: a descent step must raise the probability of the taken action.
    (g,) = torch.autograd.grad(reinforce_loss(lp, torch.tensor([1.0]), baseline=0.0), theta,
                               retain_graph=True)
    assert g.item() == pytest.approx(-(1 - p.item()), rel=1e-5)  # d/dtheta log sigmoid = 1 - p
    # Same reward below the baseline: the sign flips, scaled by (R - b).
    (g2,) = torch.autograd.grad(reinforce_loss(lp, torch.tensor([1.0]), baseline=3.0), theta)
    assert g2.item() == pytest.approx(2 * (1 - p.item()), rel=1e-5)


def test_moving_average_baseline():
    b = MovingAverageBaseline(momentum=0.5)
    assert b() == 0.0
    b.update(2.0)
    assert b() == 2.0
    b.update(4.0)
    assert b() == 3.0
    off = MovingAverageBaseline(momentum=0.5, enabled=False)
    off.update(5.0)
    assert off() == 0.0
    c = MovingAverageBaseline(0.5)
    c.load_state_dict(b.state_dict())
    assert c() == 3.0


def test_overlapping_batches_schedule():
    g = torch.Generator().manual_seed(0)
    assert stride_of(128, 0.25) == 96
    batches = overlapping_batches(1000, 128, 0.25, g)
    assert len(batches) == math.ceil(1000 / 96)
    assert all(len(b) == 128 for b in batches)
    for a, b in zip(batches, batches[1:]):
        assert len(set(a.tolist()) & set(b.tolist())) == 32
        assert a[96:].tolist() == b[:32].tolist()
    assert set(torch.cat(batches).tolist()) == set(range(1000))
    assert all(len(set(b.tolist())) == 128 for b in batches)
    small = overlapping_batches(50, 128, 0.25, g)
    assert len(small) == 1 and sorted(small[0].tolist()) == list(range(50))
    plain = overlapping_batches(256, 128, 0.0, g)
    assert len(plain) == 2 and not set(plain[0].tolist()) & set(plain[1].tolist())


def _agent_inputs(b=3, t=10, frames=False):
    g = torch.Generator().manual_seed(1)
    a = torch.randn(b, t, 8, generator=g)
    v = torch.randn(b, t, 4, 12, generator=g) if frames else torch.randn(b, t, 12, generator=g)
    m = torch.randn(b, t, 6, generator=g)
    y = (torch.rand(b, 5, generator=g) < 0.5).float()
    y[:, 0] = 1.0
    return a, v, m, y


def test_agent_shapes_and_keep_init():
    torch.manual_seed(0)
    agent = RLLDAgent(8, 12, 6, num_classes=5, d_model=16, keep_init=0.9).eval()
    for frames in (False, True):
        a, v, m, y = _agent_inputs(frames=frames)
        out = agent(a, v, m, y)
        assert out.p_a.shape == (3, 5) and out.p_v.shape == (3, 5)
        assert ((out.p_a > 0) & (out.p_a < 1)).all()
    zero_w = RLLDAgent(8, 12, 6, num_classes=5, d_model=16, keep_init=0.8).eval()
    for head in (zero_w.head_a, zero_w.head_v):
        torch.nn.init.zeros_(head.weight)
    out = zero_w(*_agent_inputs())
    assert torch.allclose(out.p_a, torch.full((3, 5), 0.8)) and torch.allclose(out.p_v, out.p_a)
    with pytest.raises(ValueError, match="keep_init"):
        RLLDAgent(keep_init=1.0)


def test_agent_label_input_ablation():
    torch.manual_seed(0)
    a, v, m, y = _agent_inputs()
    y2 = 1.0 - y
    with_lab = RLLDAgent(8, 12, 6, num_classes=5, d_model=16, use_labels=True).eval()
    assert with_lab.fc_a.in_features == 8 + 5 and with_lab.fc_v.in_features == 12 + 6 + 5
    assert not torch.allclose(with_lab(a, v, m, y).p_a, with_lab(a, v, m, y2).p_a)
    no_lab = RLLDAgent(8, 12, 6, num_classes=5, d_model=16, use_labels=False).eval()
    assert no_lab.fc_a.in_features == 8 and no_lab.fc_v.in_features == 18
    assert torch.equal(no_lab(a, v, m, y).p_a, no_lab(a, v, m, y2).p_a)


def test_actions_revision_and_log_prob():
    g = torch.Generator().manual_seed(0)
    p = torch.full((2000, 4), 0.3)
    acts = sample_actions(p, g)
    assert set(acts.unique().tolist()) <= {0.0, 1.0}
    assert acts.mean().item() == pytest.approx(0.3, abs=0.02)
    labels = torch.tensor([[1.0, 0.0, 1.0, 0.0]])
    actions = torch.tensor([[1.0, 1.0, 0.0, 0.0]])
    # Eq. 5: revised = action AND label.
    assert revise_labels(actions, labels).tolist() == [[1.0, 0.0, 0.0, 0.0]]
    probs = torch.tensor([[0.8, 0.6, 0.25, 0.1]])
    lp = action_log_prob(probs, actions, labels)
    # Only the two positive labels count: keep class 0 (0.8), remove class 2 (1 - 0.25).
    assert lp.item() == pytest.approx(math.log(0.8) + math.log(0.75), rel=1e-6)


def test_task_settings_are_jomolds():
    from trainables.methods.jomold.train import Config as JoMoLDConfig

    mine, theirs = Config(), JoMoLDConfig()
    for k in ("epochs", "batch_size", "lr", "lr_step", "lr_gamma", "d_model", "dropout",
              "protocol", "threshold", "select_metric", "feature_dtype"):
        assert getattr(mine, k) == getattr(theirs, k), k
    assert (mine.agent_lr, mine.alpha1, mine.alpha2, mine.staleness) == (1e-4, 0.6, 0.4, 2)
    assert (mine.terminal_metric_a, mine.terminal_metric_v, mine.terminal_scale) == (
        "seg_A", "event_V", 0.1)
    assert stride_of(mine.batch_size, mine.overlap) == 96


def test_rlld_package_imports_neither_ray_nor_mlflow():
    """Nothing under trainables/ imports ray or mlflow at import time (the pool included)."""
    import subprocess
    import sys

    code = ("import sys, trainables.methods.rlld.training, trainables.methods.rlld.pool, "
            "trainables.methods.rlld.bench, trainables.methods.rlld; "
            "bad = [m for m in ('ray', 'mlflow') if m in sys.modules]; "
            "sys.exit(f'imported {bad}' if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr or r.stdout


def test_noise_auc_hand_cases():
    keep = torch.tensor([0.9, 0.8, 0.3, 0.2])
    assert noise_auc(keep, torch.tensor([False, False, True, True])) == 1.0
    assert noise_auc(keep, torch.tensor([True, True, False, False])) == 0.0
    # One of the 4 (noisy, clean) pairs is ordered wrongly: 0.75.
    assert noise_auc(keep, torch.tensor([False, True, False, True])) == pytest.approx(0.75)
    assert noise_auc(torch.full((4,), 0.9), torch.tensor([True, False, True, False])) == 0.5
    assert math.isnan(noise_auc(keep, torch.zeros(4, dtype=torch.bool)))
