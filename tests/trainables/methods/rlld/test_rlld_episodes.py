"""RLLD's paper path: Monte Carlo episodes (one validation and one agent update per K steps), the
episode-aggregated inter-reward, the all-removed rule per modality, the percent terminal scale, the
KL epsilon, the agent of Eq. 2-4, and the asynchronous schedule counted in episodes."""

import math

import pytest
import torch

from trainables.methods.rlld.agent import PaperAgent, RLLDAgent, build_agent
from trainables.methods.rlld.batches import episodes, overlapping_batches
from trainables.methods.rlld.config import Config
from trainables.methods.rlld.rewards import inter_reward, terminal_reward

from test_rlld_learner import DelayedEvaluator, _learner, make_tiny_avvp, small_cfg


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    torch.set_num_threads(1)
    return make_tiny_avvp(tmp_path_factory.mktemp("rlld_episodes") / "tiny")


def _states(learner, n):
    return overlapping_batches(len(learner.train), 16, 0.25, torch.Generator().manual_seed(0))[:n]


def _grab_grads(learner):
    """Records the agent's gradients at every optimiser step (and the parameters before it)."""
    got = []
    real = learner.agent_opt.step

    def step():
        got.append(({n: p.detach().clone() for n, p in learner.agent.named_parameters()},
                    {n: None if p.grad is None else p.grad.clone()
                     for n, p in learner.agent.named_parameters()}))
        real()

    learner.agent_opt.step = step
    return got


@pytest.mark.parametrize("aggregate", ["episode", "video"])
def test_episode_gradient_equals_the_hand_computation(tiny, aggregate):
    """One episode of K = 3 steps, no baseline, the paper's agent (one FC layer shared by both
    modalities): the gradient of the shared head's bias is, by hand (d log pi / dz = a - p),

        g_c = -(1/3) sum_k (1/B) sum_i sum_m (R_m,ik) * y_ic * (a_m,ic - p_m,ic)

    with R the episode's one R(S)_m = R_terminal,m + mean over its 48 videos of R_inter,m
    (``episode``), or R_terminal,m + R_inter,m,ik per video (``video``)."""
    cfg = small_cfg(agent_arch="paper", agent_dropout=0.0, keep_init=0.6, episode_steps=3,
                    baseline=False, sync=True, inter_aggregate=aggregate, terminal_scale=10.0)
    ev = DelayedEvaluator(delay=1)
    learner = _learner(tiny, cfg, ev)
    grads = _grab_grads(learner)
    recs = []
    orig = learner._apply_one
    learner._apply_one = lambda rec, m: (recs.append((rec, m)), orig(rec, m))[1]
    learner.run_episode(_states(learner, 3))
    assert learner.step == 3 and learner.episode == 1 and ev.submitted == [0]
    ((rec, metrics),), ((_, g),) = recs, grads
    assert len(rec.steps) == 3
    # Percent reading: score/100 x 10 = F x 0.1 (seg_A 40 -> 4.0, event_V 30 -> 3.0 at step 0).
    t_a, t_v = terminal_reward(metrics, cfg)
    assert (t_a, t_v) == pytest.approx((4.0, 3.0))
    want = torch.zeros(25, dtype=torch.float64)
    for s in rec.steps:
        y = learner.train.labels[s.idx].double()
        for mod, t in (("a", t_a), ("v", t_v)):
            known, undone = getattr(s, f"r_known_{mod}"), getattr(s, f"undone_{mod}")
            act, p = getattr(s, f"act_{mod}").double(), getattr(s, f"p_{mod}").double()
            if aggregate == "episode":
                inter = torch.cat([getattr(x, f"r_known_{mod}") for x in rec.steps]).double()
                r = torch.full((len(s.idx),), t + float(inter.mean()), dtype=torch.float64)
            else:
                r = known.double() + t * (~undone).double()
            want -= (r.unsqueeze(-1) * y * (act - p)).sum(0) / len(s.idx) / 3
    assert g["head.bias"].double().tolist() == pytest.approx(want.tolist(), rel=1e-4, abs=1e-7)
    assert want.abs().max() > 1e-3  # a gradient that is really there


def test_episodes_set_how_often_validation_runs_and_the_agent_learns(tiny):
    """160 videos, batch 16, stride 12: 14 states per epoch; K = 4 gives episodes of 4, 4, 4, 2
    steps (the last one ends with the epoch): 4 validations and 4 agent updates per epoch."""
    assert [len(e) for e in episodes(list(range(14)), 4)] == [4, 4, 4, 2]
    ev = DelayedEvaluator(delay=1)
    learner = _learner(tiny, small_cfg(episode_steps=4, sync=True), ev)
    sizes = []
    orig = learner._apply_one
    learner._apply_one = lambda rec, m: (sizes.append(len(rec.steps)), orig(rec, m))[1]
    m = learner.run_epoch()
    assert sizes == [4, 4, 4, 2] and ev.submitted == [0, 1, 2, 3]
    assert m["rlld/task_steps"] == 14 and m["rlld/episodes"] == 4
    assert m["rlld/policy_steps"] == m["reward/applied"] == 4
    one = _learner(tiny, small_cfg(sync=True), DelayedEvaluator(delay=1)).run_epoch()
    assert one["rlld/policy_steps"] == one["rlld/episodes"] == 14


def test_async_episodes_overlap_validation_with_the_next_episode(tiny):
    """Asynchronous, K = 3, S = 1: episode t's validation is still pending while episode t+1's
    steps run, its update lands at most one episode late, every episode once; sync: none
    overlaps."""
    for sync, stale in ((False, 1), (True, 0)):
        ev = DelayedEvaluator(delay=2)
        learner = _learner(tiny, small_cfg(episode_steps=3, staleness=1, sync=sync), ev)
        submitted_at, applied_at = {}, {}
        real_submit = ev.submit

        def submit(key, sd):
            submitted_at[key] = learner.step
            real_submit(key, sd)

        ev.submit = submit
        orig = learner._apply_one

        def apply(rec, metrics):
            applied_at[rec.episode] = (learner.step, learner.episode - 1 - rec.episode)
            orig(rec, metrics)

        learner._apply_one = apply
        learner.run_epoch()
        eps = learner.episode
        assert eps == math.ceil(14 / 3) and sorted(learner.applied) == list(range(eps))
        lags = [applied_at[e][1] for e in range(eps)]
        assert max(lags) == stale
        # Task steps taken between an episode's validation request and its update.
        overlap = [applied_at[e][0] - submitted_at[e] for e in range(eps)]
        assert (max(overlap) >= 3) is (not sync)
        assert learner.max_pending <= stale


def test_all_removed_rule_per_modality_in_the_learner(tiny):
    """With an agent that removes almost everything, ``modality`` undoes each empty modality on
    its own (reward -1 there only); ``video`` undoes a video only when both are empty."""
    for mode in ("modality", "video"):
        learner = _learner(tiny, small_cfg(keep_init=0.02, all_removed=mode, sync=True),
                           DelayedEvaluator(delay=1))
        rec = learner._act_and_train(_states(learner, 1)[0])
        if mode == "video":
            assert torch.equal(rec.undone_a, rec.undone_v)
        else:
            assert rec.undone_a.sum() > 10 and not torch.equal(rec.undone_a, rec.undone_v)
        for known, undone in ((rec.r_known_a, rec.undone_a), (rec.r_known_v, rec.undone_v)):
            assert torch.all(known[undone] == -1.0) and torch.all(known[~undone] > -1.0)


def test_kl_epsilon_sets_the_cost_of_one_removal():
    """Removing one of two labels (C = 25): 0.60 at the default 1e-6, 0.18 at 0.1."""
    y = torch.zeros(1, 25)
    y[0, :2] = 1.0
    drop = y.clone()
    drop[0, 0] = 0.0
    cost = {eps: float(inter_reward(y, y.clone(), eps=eps) - inter_reward(y, drop, eps=eps))
            for eps in (1e-6, 1e-1)}
    assert cost[1e-6] == pytest.approx(0.598, abs=2e-3)
    assert cost[1e-1] == pytest.approx(0.177, abs=2e-3)


def test_paper_agent_is_residual_attention_and_one_shared_layer():
    torch.manual_seed(0)
    agent = PaperAgent(8, 12, 6, num_classes=5, d_model=16, dropout=0.0, keep_init=0.8).eval()
    assert agent.head.bias.tolist() == pytest.approx([math.log(4.0)] * 5)
    assert not any(isinstance(m, torch.nn.LayerNorm) for m in agent.modules())
    g = torch.Generator().manual_seed(1)
    a, v, m = (torch.randn(2, 10, d, generator=g) for d in (8, 12, 6))
    y = torch.tensor([[1.0, 0, 1, 0, 0], [0, 1, 0, 0, 1]])
    # Attention outputs zeroed: h = x, so p = sigmoid(W (mean_t x) + b) by hand, with the same
    # W, b for both modalities.
    for att in (agent.self_attn, agent.cross_attn):
        torch.nn.init.zeros_(att.out_proj.weight)
        torch.nn.init.zeros_(att.out_proj.bias)
    out = agent(a, v, m, y)
    lab = y.unsqueeze(1).expand(-1, 10, -1)
    xa = agent.fc_a(torch.cat([a, lab], -1)).mean(1)
    xv = agent.fc_v(torch.cat([v, m, lab], -1)).mean(1)
    assert torch.allclose(out.p_a, torch.sigmoid(agent.head(xa)), atol=1e-6)
    assert torch.allclose(out.p_v, torch.sigmoid(agent.head(xv)), atol=1e-6)
    # keep_init=0: the layer's default initialisation (not a constant bias), p near 0.5.
    torch.manual_seed(0)
    plain = build_agent("paper", (8, 12, 6), 5, d_model=16, dropout=0.0, use_labels=True,
                        keep_init=0.0).eval()
    assert plain.head.bias.std() > 0
    p = plain(a, v, m, y)
    assert ((p.p_a - 0.5).abs() < 0.25).all()
    assert isinstance(build_agent("avtune", (8, 12, 6), 5, d_model=16, dropout=0.0,
                                  use_labels=True, keep_init=0.9), RLLDAgent)
    with pytest.raises(ValueError, match="agent_arch"):
        build_agent("lstm", (8, 12, 6), 5, d_model=16, dropout=0.0, use_labels=True,
                    keep_init=0.9)


def test_paper_preset_trains_end_to_end(tiny):
    """The ``paper`` preset (episodes of 32 steps: one per epoch here) through fit."""
    from trainables.methods.rlld.training import fit

    seen = []
    res = fit(small_cfg("paper", epochs=2), tiny, device="cpu",
              reporter=lambda e, m, sf: seen.append(m))
    assert [m["rlld/episodes"] for m in seen] == [1, 1]
    assert [m["rlld/policy_steps"] for m in seen] == [1, 1]
    # Percent scale (F x 0.1): above 0.1, which the fraction scale never exceeds.
    assert seen[0]["reward/terminal_v"] > 0.1
    assert math.isfinite(res["test/seg_Type"]) and res["last_epoch"] == 1
    assert Config.from_preset("paper").agent_arch == "paper"
