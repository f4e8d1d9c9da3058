"""RLLD's learner: delayed rewards applied once, staleness bound, sync mode, exact REINFORCE
gradients, and fit() end to end (metrics, denoising scores, resume) on a tiny synthetic set."""

import math
import random

import numpy as np
import pytest
import torch

from trainables.data.format import write_dataset
from trainables.methods.rlld.agent import action_log_prob
from trainables.methods.rlld.batches import overlapping_batches
from trainables.methods.rlld.config import Config
from trainables.methods.rlld.learner import Learner
from trainables.methods.rlld.rewards import terminal_reward
from trainables.methods.rlld.training import fit
from trainables.tasks.avvp.eval import load_resident


def assert_same_grads(grads, want) -> None:
    """Per-parameter gradients agree (both None for parameters the loss does not reach)."""
    for g, w in zip(grads, want):
        if g is None or w is None:
            assert g is None and w is None
            continue
        assert torch.allclose(g, w, atol=1e-6, rtol=1e-4)


def make_tiny_avvp(path, n=(160, 40, 40), dims=(8, 12, 6), seed=0):
    """A tiny LLP-sim-like set: class prototypes in the segments where an event is present."""
    rng = np.random.default_rng(seed)
    c, t = 25, 10
    protos = [rng.normal(size=(c, d)) for d in dims]
    ids, split = [], []
    cols = {k: [] for k in ("audio", "visual", "motion", "labels", "gt_audio", "gt_visual")}
    for s, cnt in zip(("train", "val", "test"), n):
        for i in range(cnt):
            cls = rng.choice(c, rng.integers(1, 4), replace=False)
            lab = np.zeros(c, np.uint8)
            lab[cls] = 1
            ga, gv = np.zeros((t, c), np.uint8), np.zeros((t, c), np.uint8)
            for k in cls:
                in_a = rng.random() < 0.75
                in_v = rng.random() < 0.7 or not in_a
                for g, on in ((ga, in_a), (gv, in_v)):
                    if on:
                        a = rng.integers(0, t)
                        g[a:rng.integers(a + 1, t + 1), k] = 1
            cols["audio"].append(ga @ protos[0] + 0.3 * rng.normal(size=(t, dims[0])))
            cols["visual"].append(gv @ protos[1] + 0.3 * rng.normal(size=(t, dims[1])))
            cols["motion"].append(gv @ protos[2] + 0.3 * rng.normal(size=(t, dims[2])))
            cols["labels"].append(lab)
            cols["gt_audio"].append(ga)
            cols["gt_visual"].append(gv)
            ids.append(f"{s}{i:05d}xxxxxx_0_10")
            split.append(s)
    arrays = {k: np.stack(v).astype(np.float32 if k in ("audio", "visual", "motion") else np.uint8)
              for k, v in cols.items()}
    return write_dataset(path, video_ids=ids, split=split, arrays=arrays, kind="llp-sim",
                         params={"seed": seed, "test": "rlld"}, truth_splits=("train", "val", "test"))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    torch.set_num_threads(1)
    return make_tiny_avvp(tmp_path_factory.mktemp("rlld") / "tiny")


def small_cfg(preset=None, **kw):
    """A small config (``preset``: through ``Config.from_preset``), validated."""
    base = dict(epochs=1, batch_size=16, d_model=16, agent_d_model=16, seed=0, eval_batch_size=64)
    base.update(kw)
    cfg = Config.from_preset(preset, **base) if preset else Config(**base)
    cfg.validate()
    return cfg


class DelayedEvaluator:
    """Returns each step's result only after ``delay`` polls, out of order and sometimes twice."""

    def __init__(self, delay=3, duplicate_every=0, seed=0):
        self.delay = delay
        self.duplicate_every = duplicate_every
        self.rng = random.Random(seed)
        self.due = {}
        self.polls = 0
        self.delivered = []
        self.submitted = []
        self.max_pending_seen = 0

    def metrics(self, step):
        return {"val/seg_A": 40.0 + (step % 7), "val/event_V": 30.0 + (step % 5), "eval_s": 0.0}

    def submit(self, step, state_dict):
        assert step not in self.submitted, "a step was submitted twice"
        assert all(isinstance(v, torch.Tensor) for v in state_dict.values())
        self.submitted.append(step)
        self.due[step] = self.polls + self.delay + self.rng.randint(0, 2)
        self.max_pending_seen = max(self.max_pending_seen, len(self.due))

    def poll(self):
        self.polls += 1
        ready = [s for s, d in self.due.items() if d <= self.polls]
        self.rng.shuffle(ready)
        for s in ready:
            del self.due[s]
        out = [(s, self.metrics(s)) for s in ready]
        if self.duplicate_every and self.delivered and self.polls % self.duplicate_every == 0:
            s = self.rng.choice(self.delivered)
            out.append((s, self.metrics(s)))
        self.delivered.extend(ready)
        return out

    def wait(self, step):
        if step in self.due:
            self.due[step] = self.polls

    def pending(self):
        return len(self.due)

    def close(self):
        pass


def _learner(tiny, cfg, ev):
    data = load_resident(tiny, torch.device("cpu"), splits=("train",))
    train = data["train"]
    dims = (train.audio.shape[-1], train.visual.shape[-1], train.motion.shape[-1])
    return Learner(cfg, train, ev, torch.device("cpu"), dims=dims)


def _spy_lags(learner):
    lags = []
    orig = learner._apply_one

    def spy(rec, metrics):
        lags.append((rec.episode, learner.episode - 1 - rec.episode))
        return orig(rec, metrics)

    learner._apply_one = spy
    return lags


@pytest.mark.parametrize("staleness", [1, 2, 4])
def test_async_rewards_applied_once_within_staleness(tiny, staleness):
    ev = DelayedEvaluator(delay=3, duplicate_every=2)
    learner = _learner(tiny, small_cfg(staleness=staleness), ev)
    lags = _spy_lags(learner)
    for _ in range(2):
        m = learner.run_epoch()
        assert not learner.pending
    steps = learner.step
    assert steps == 2 * math.ceil(160 / 12)
    assert sorted(learner.applied) == list(range(steps))  # each step exactly once
    assert len(learner.applied) == len(set(learner.applied))
    assert max(lag for _, lag in lags) <= staleness
    assert max(lag for _, lag in lags) == staleness  # the delay is long enough to hit the bound
    assert learner.max_pending <= staleness
    assert ev.max_pending_seen <= staleness + 1  # S pending plus the one just submitted
    assert m["reward/duplicates"] > 0  # duplicates were offered and ignored
    assert m["reward/applied"] == steps / 2
    assert 0 < m["rlld/staleness"] <= staleness


def test_sync_mode_applies_every_reward_before_the_next_step(tiny):
    ev = DelayedEvaluator(delay=5)
    learner = _learner(tiny, small_cfg(sync=True, staleness=3), ev)
    lags = _spy_lags(learner)
    m = learner.run_epoch()
    assert [s for s, _ in lags] == list(range(learner.step))
    assert all(lag == 0 for _, lag in lags)
    assert m["rlld/staleness"] == 0 and m["reward/pending"] == 0
    assert ev.max_pending_seen == 1


def test_applied_gradient_is_the_reinforce_gradient_of_the_acting_policy(tiny):
    """The delayed update equals grad of -mean((R - b) log pi) at the parameters that acted."""
    ev = DelayedEvaluator(delay=2)
    cfg = small_cfg(staleness=2, agent_dropout=0.0, keep_init=0.6)
    learner = _learner(tiny, cfg, ev)
    # Warm the baseline so that b != 0 is part of the check.
    learner.base_a.update(0.3)
    learner.base_v.update(0.2)
    snapshots = {}
    captured = []
    orig_act = learner.run_episode

    def act(states):
        snapshots[learner.episode] = {k: v.clone() for k, v in learner.agent.state_dict().items()}
        return orig_act(states)

    orig_apply = learner._apply_one

    stale = []

    def apply(rec, metrics):
        # Did the agent change between acting for this step and applying its reward?
        now = learner.agent.state_dict()
        stale.append(any(not torch.equal(now[k], v) for k, v in snapshots[rec.episode].items()))
        captured.append((rec, metrics, rec.base_a, rec.base_v))
        real_step = learner.agent_opt.step

        def grab():
            captured[-1] = captured[-1] + ([None if p.grad is None else p.grad.clone()
                                            for p in learner.agent.parameters()],)
            real_step()

        learner.agent_opt.step = grab
        try:
            return orig_apply(rec, metrics)
        finally:
            learner.agent_opt.step = real_step

    learner.run_episode = act
    learner._apply_one = apply
    learner.run_epoch()
    assert len(captured) == learner.step
    ref_agent = type(learner.agent)(8, 12, 6, num_classes=25, d_model=16, dropout=0.0,
                                    keep_init=0.6)
    train = learner.train
    checked = 0
    for rec, metrics, b_a, b_v, grads in captured[:4]:
        ref_agent.load_state_dict(snapshots[rec.episode])
        ref_agent.train()
        (st,) = rec.steps
        idx = st.idx
        y = train.labels[idx]
        out = ref_agent(train.audio[idx], train.visual[idx], train.motion[idx], y)
        rt_a, rt_v = terminal_reward(metrics, cfg)
        r_a = st.r_known_a + rt_a * (~st.undone_a).float()
        r_v = st.r_known_v + rt_v * (~st.undone_v).float()
        lp_a = action_log_prob(out.p_a, st.act_a, y)
        lp_v = action_log_prob(out.p_v, st.act_v, y)
        loss = -(((r_a - b_a) * lp_a + (r_v - b_v) * lp_v)).mean()
        ref = torch.autograd.grad(loss, list(ref_agent.parameters()), allow_unused=True)
        assert_same_grads(grads, ref)
        checked += 1
    assert checked == 4
    # Some of the checked updates were applied after the agent had already moved on, so the
    # check distinguishes "gradient of the acting policy" from "gradient of the current one".
    assert any(stale[:4])


def test_fit_end_to_end_with_local_evaluator(tiny):
    seen = []
    cfg = small_cfg(epochs=2)
    res = fit(cfg, tiny, device="cpu", reporter=lambda e, m, sf: seen.append((e, m, sf)))
    assert [e for e, _, _ in seen] == [0, 1]
    m = seen[-1][1]
    for k in ("train/loss", "reward/terminal_a", "reward/terminal_v", "reward/inter",
              "reward/pending", "rlld/staleness", "time/actor_util", "val/seg_Type",
              "denoise/precision_a", "denoise/recall_v", "noise_ratio/mae_a"):
        assert k in m and math.isfinite(m[k]), k
    assert 0 < m["reward/inter"] <= 1.0
    assert 0.0 <= m["rlld/noise_auc_v"] <= 1.0 and 0.0 < m["rlld/keep_p_v"] < 1.0
    for k in ("test/seg_A", "test/event_Type", "best_epoch", "seed"):
        assert k in res
    assert 0.0 <= res["test/seg_Type"] <= 100.0
    state = seen[0][2]()
    buf = __import__("io").BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=True)
    assert loaded["epoch"] == 0 and {"model", "optimizer", "extra", "config"} <= set(loaded)
    assert {"agent", "agent_opt", "act_gen", "episode"} <= set(loaded["extra"])


def _untimed(result):
    return {k: v for k, v in result.items() if not k.startswith(("time/", "last/time/"))}


def test_resume_reproduces_the_uninterrupted_run(tiny):
    """Resuming from the state of epoch 0 gives exactly the uninterrupted run (every key but
    timings), also when the run was first meant to be shorter (epochs may change on resume)."""
    cfg = small_cfg(epochs=3, seed=3)
    full = fit(cfg, tiny, device="cpu")
    assert full["best_epoch"] > 0  # the selected epoch is one the resumed run recomputes
    states = []
    fit(small_cfg(epochs=1, seed=3), tiny, device="cpu",
        reporter=lambda e, m, sf: states.append(sf()))
    resumed = fit(cfg, tiny, device="cpu", resume_state=states[0])
    assert _untimed(resumed) == _untimed(full)
    assert resumed["time/run_steps_per_s"] > 0


def test_no_inter_reward_ablation_zeroes_inter(tiny):
    learner = _learner(tiny, small_cfg(use_inter_reward=False, sync=True), DelayedEvaluator(1))
    m = learner.run_epoch()
    assert m["reward/inter"] == 0.0
    learner2 = _learner(tiny, small_cfg(sync=True), DelayedEvaluator(1))
    assert learner2.run_epoch()["reward/inter"] > 0.3


def test_pending_step_log_probs_are_rebuilt_exactly_after_later_updates(tiny):
    """With dropout on and the agent updated in between, step t's forward is reproduced."""
    ev = DelayedEvaluator(delay=100)
    learner = _learner(tiny, small_cfg(staleness=3, agent_dropout=0.3), ev)
    batches = overlapping_batches(len(learner.train), 16, 0.25, torch.Generator().manual_seed(0))
    for idx in batches[:3]:
        learner.run_episode([idx])
    assert sorted(learner.pending) == [0, 1, 2] and learner.version == 0
    rec0 = learner.pending[0]
    st0 = rec0.steps[0]
    _, _, p_a, p_v = learner.policy_log_probs(rec0)
    assert torch.equal(p_a, st0.p_a) and torch.equal(p_v, st0.p_v)
    learner._apply([(1, ev.metrics(1))])  # step 1's reward first: the agent moves on
    assert learner.version == 1 and learner.applied == [1]
    lp_a, _, p_a, p_v = learner.policy_log_probs(rec0)
    assert torch.equal(p_a, st0.p_a) and torch.equal(p_v, st0.p_v)
    y = learner.train.labels[st0.idx]
    a, v, m = learner._inputs(st0.idx)
    with torch.random.fork_rng():
        torch.set_rng_state(st0.rng[0])
        live_p_a, _ = learner._policy(learner.agent, a, v, m, y)
    assert not torch.equal(live_p_a, st0.p_a)  # the live agent would give other log-probs
    assert lp_a.requires_grad


def test_terminal_delta_credits_the_change_since_the_previous_evaluation(tiny):
    """terminal_delta (ours): step t is credited score(t) - score(t-1); the first step 0; off by
    default (the paper's level reward)."""
    assert Config().terminal_delta is False
    cfg = small_cfg(sync=True, terminal_delta=True)
    learner = _learner(tiny, cfg, DelayedEvaluator(1))
    credited = []
    orig = learner.credited_terminal

    def spy(step, rt_a, rt_v):
        out = orig(step, rt_a, rt_v)
        credited.append((step, rt_a, rt_v, out))
        return out

    learner.credited_terminal = spy
    learner.run_epoch()
    assert [c[0] for c in credited] == list(range(learner.episode))
    assert credited[0][3] == (0.0, 0.0)
    for (_, pa, pv, _), (_, a, v, (da, dv)) in zip(credited, credited[1:]):
        assert da == pytest.approx(a - pa) and dv == pytest.approx(v - pv)
    # Out of order (async): the latest earlier evaluation that has arrived; history survives
    # a checkpoint.
    lr2 = _learner(tiny, small_cfg(terminal_delta=True, staleness=3), DelayedEvaluator(1))
    assert lr2.credited_terminal(10, 0.5, 0.4) == (0.0, 0.0)
    assert lr2.credited_terminal(12, 0.7, 0.1) == pytest.approx((0.2, -0.3))
    assert lr2.credited_terminal(11, 0.6, 0.4) == pytest.approx((0.1, 0.0))
    state = lr2.state_dict()
    lr3 = _learner(tiny, small_cfg(terminal_delta=True, staleness=3), DelayedEvaluator(1))
    lr3.load_state_dict(state)
    assert lr3.credited_terminal(13, 0.9, 0.5) == pytest.approx((0.2, 0.4))
    # Off: the level itself.
    lr4 = _learner(tiny, small_cfg(), DelayedEvaluator(1))
    assert lr4.credited_terminal(5, 0.5, 0.4) == (0.5, 0.4)
