"""RLLD credit-assignment options (ours): per-class validation scores, per-(class, modality)
baselines with advantage normalisation, the element-wise REINFORCE update, the reward presets,
and fit() end to end with the "stable" preset."""

import copy
import dataclasses
import math
import pickle
from types import SimpleNamespace

import pytest
import torch

import trainables.methods.rlld.updates as U
from trainables.methods.rlld.agent import action_log_prob
from trainables.methods.rlld.baselines import VectorBaseline
from trainables.methods.rlld.batches import overlapping_batches
from trainables.methods.rlld.config import PRESETS, Config
from trainables.methods.rlld.diagnostics import denoise_scores
from trainables.methods.rlld.evaluator import (CF_PREFIX, CF_RESULT, LocalEvaluator,
                                               build_task_model, class_scores,
                                               counterfactual_metrics)
from trainables.methods.rlld.rewards import class_terminal_reward
from trainables.methods.rlld.training import fit

from test_rlld_learner import (DelayedEvaluator, _learner, assert_same_grads, make_tiny_avvp,
                               small_cfg)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    torch.set_num_threads(1)
    return make_tiny_avvp(tmp_path_factory.mktemp("rlld_credit") / "tiny")


def test_vector_baseline_per_class_hand_example():
    b = VectorBaseline(3, momentum=0.5)
    assert torch.equal(b(), torch.zeros(3)) and torch.equal(b.std(), torch.ones(3))
    b.update(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([4.0, 0.0, 0.0]),
             torch.tensor([True, False, True]))
    # First update of an entry sets it; an absent entry is left alone; a zero first variance
    # (terminal_delta's first step) does not start the variance.
    assert b().tolist() == [1.0, 0.0, 3.0]
    assert b.var.tolist() == [4.0, 1.0, 1.0]
    b.update(torch.tensor([3.0, 5.0, 1.0]), torch.tensor([2.0, 9.0, 3.0]),
             torch.tensor([True, True, True]))
    # Entry 0: EMA 0.5*1 + 0.5*3 (variance 0.5*4 + 0.5*2); entries 1 and 2: first variance.
    assert b().tolist() == [2.0, 5.0, 2.0]
    assert b.var.tolist() == [3.0, 9.0, 3.0]
    assert b.std().tolist() == pytest.approx([math.sqrt(3.0), 3.0, math.sqrt(3.0)])
    c = VectorBaseline(3, momentum=0.5)
    c.load_state_dict(b.state_dict())
    assert torch.equal(c(), b()) and torch.equal(c.var, b.var)
    assert torch.equal(c.var_seen, b.var_seen)
    off = VectorBaseline(2, enabled=False)
    off.update(torch.tensor([1.0, 1.0]), torch.tensor([1.0, 1.0]), torch.tensor([True, True]))
    assert torch.equal(off(), torch.zeros(2))


def _probs_and_split():
    # One video, two segments, two classes. Audio: class 0 in both segments; visual: class 1 in
    # the first segment only.
    gt_a = torch.tensor([[[1, 0], [1, 0]]], dtype=torch.uint8)
    gt_v = torch.tensor([[[0, 1], [0, 0]]], dtype=torch.uint8)
    fp = torch.zeros(1, 2, 2, 2)
    fp[0, :, 0] = torch.tensor([[0.5, 0.2], [1.0, 0.0]])  # audio
    fp[0, :, 1] = torch.tensor([[0.0, 1.0], [0.0, 0.5]])  # visual
    probs = {"frame_prob": fp, "global_prob": torch.full((1, 2), 0.9),
             "a_prob": torch.full((1, 2), 0.9), "v_prob": torch.full((1, 2), 0.9)}
    return probs, SimpleNamespace(gt_audio=gt_a, gt_visual=gt_v)


def test_class_scores_soft_by_hand():
    probs, split = _probs_and_split()
    f_a, f_v = class_scores(probs, split, kind="soft")
    # Audio class 0: TP 1.5, FP 0, FN 0.5 -> 3 / 3.5; class 1: no truth, TP 0 -> 0.
    assert f_a.tolist() == pytest.approx([100 * 3 / 3.5, 0.0], abs=1e-3)
    # Visual class 1: TP 1, FP 0.5, FN 0 -> 2 / 2.5.
    assert f_v.tolist() == pytest.approx([0.0, 80.0], abs=1e-3)


def test_class_scores_hard_by_hand():
    probs, split = _probs_and_split()
    f_a, f_v = class_scores(probs, split, kind="hard", protocol="han", threshold=0.5)
    # Decoded audio class 0: segments (0.5, 1.0) >= 0.5 -> both predicted: F1 100.
    # Audio class 1: (0.2, 0.0) -> none; no truth -> 0. Visual class 1: (1.0, 0.5) -> both
    # predicted, one true: TP 1, FP 1 -> 2/3.
    assert f_a.tolist() == pytest.approx([100.0, 0.0], abs=1e-3)
    assert f_v.tolist() == pytest.approx([0.0, 100 * 2 / 3], abs=1e-3)


def test_class_scores_log_likelihood_by_hand():
    probs, split = _probs_and_split()
    probs["a_prob"] = torch.tensor([[0.8, 0.25]])
    probs["v_prob"] = torch.tensor([[0.5, 0.9]])
    f_a, f_v = class_scores(probs, split, kind="ll")
    # Video-level truth: audio (1, 0), visual (0, 1).
    assert f_a.tolist() == pytest.approx([100 * math.log(0.8), 100 * math.log(0.75)], abs=1e-3)
    assert f_v.tolist() == pytest.approx([100 * math.log(0.5), 100 * math.log(0.9)], abs=1e-3)


def test_presets_are_explicit_and_wired():
    """``Config.from_preset(name, **overrides)``: the preset's fields, overrides on top; the plain
    constructor is the defaults (avtune's reading, ``paper_avtune``) whatever is passed."""
    plain = Config()
    assert plain == Config.from_preset("paper_avtune")
    assert plain.terminal_credit == "branch" and not (plain.class_baseline or plain.adv_norm)
    assert plain.inter_weight == 1.0 and plain.use_inter_reward and not plain.terminal_delta
    st = Config.from_preset("stable")
    for k, v in PRESETS["stable"].items():
        assert getattr(st, k) == v, k
    assert st.terminal_credit == "class" and st.class_baseline and st.adv_norm
    # An override wins over the preset, even at the default's value; the rest still applies.
    mixed = Config.from_preset("stable", agent_lr=1e-4, use_inter_reward=True)
    assert mixed.agent_lr == 1e-4 and mixed.use_inter_reward is True and mixed.counterfactual
    # A resolved config is a plain dataclass: copies and round trips keep it.
    assert dataclasses.replace(st, seed=3).agent_lr == 1e-3
    assert pickle.loads(pickle.dumps(mixed)) == mixed and copy.deepcopy(st) == st
    assert Config(**dataclasses.asdict(mixed)) == mixed
    paper = Config.from_preset("paper")
    assert (paper.episode_steps, paper.inter_aggregate, paper.terminal_scale, paper.baseline,
            paper.keep_init, paper.agent_arch, paper.sync, paper.all_removed) == (
        32, "episode", 10.0, False, 0.0, "paper", True, "modality")
    with pytest.raises(ValueError, match="unknown RLLD preset 'nope'"):
        Config.from_preset("nope")
    for bad, key in (({"terminal_credit": "video"}, "terminal_credit"),
                     ({"class_score": "medium"}, "class_score"),
                     ({"inter_aggregate": "batch"}, "inter_aggregate"),
                     ({"all_removed": "class"}, "all_removed"),
                     ({"agent_arch": "lstm"}, "agent_arch"),
                     ({"episode_steps": 0}, "episode_steps"),
                     ({"keep_init": 1.0}, "keep_init"),
                     ({"counterfactual": True, "episode_steps": 4}, "counterfactual")):
        with pytest.raises(ValueError, match=key):
            Config(**bad).validate()


def test_preset_reaches_the_config_through_build_config():
    """``--set preset=NAME`` builds ``Config.from_preset(NAME, **rest)`` and validates it."""
    from trainables.core.config import build_config, coerce_value

    cfg = build_config(Config, {"preset": coerce_value(Config, "preset", "paper"),
                                "episode_steps": 4})
    assert cfg.episode_steps == 4 and cfg.inter_aggregate == "episode" and cfg.sync
    with pytest.raises(ValueError, match="staleness"):
        build_config(Config, {"preset": "stable", "staleness": -1})


def test_validation_scores_carry_per_class_scores_only_for_class_credit(tiny):
    ev = LocalEvaluator.from_path(small_cfg(terminal_credit="class"), tiny)
    sd = build_task_model(small_cfg(), (8, 12, 6)).state_dict()
    out = ev.evaluate(sd)
    assert {f"val_cls_a/{c}" for c in range(25)} <= set(out)
    assert {f"val_cls_v/{c}" for c in range(25)} <= set(out)
    t_a, t_v = class_terminal_reward(out, small_cfg(terminal_scale=2.0), 25)
    assert t_a[3] == pytest.approx(out["val_cls_a/3"] / 100 * 2.0)
    plain = LocalEvaluator.from_path(small_cfg(), tiny).evaluate(sd)
    assert not any(k.startswith("val_cls_") for k in plain)
    with pytest.raises(KeyError, match="per-class"):
        class_terminal_reward(plain, small_cfg(), 25)


class ClassEvaluator(DelayedEvaluator):
    """Per-class scores that differ by class and step, so per-class credit is visible."""

    def metrics(self, step):
        m = super().metrics(step)
        for c in range(25):
            m[f"val_cls_a/{c}"] = float((step * 3 + c) % 11)
            m[f"val_cls_v/{c}"] = float((step * 5 + 2 * c) % 13)
        return m


def test_elementwise_update_is_the_per_class_reinforce_gradient(tiny):
    """Class credit + per-class baseline + advantage normalisation: the applied gradient is that
    of -mean_i sum_c ((R_ic - b_c) / sigma_c) log pi(a_ic) with R_ic = T_c(t) - T_c(t-1)."""
    cfg = small_cfg(sync=True, agent_dropout=0.0, keep_init=0.6, terminal_credit="class",
                    class_baseline=True, adv_norm=True, terminal_delta=True,
                    use_inter_reward=False, terminal_scale=10.0, agent_lr=1e-3)
    ev = ClassEvaluator(delay=1)
    learner = _learner(tiny, cfg, ev)
    assert learner.elementwise
    captured = []
    orig = learner._apply_one

    def apply(rec, metrics):
        snap = {k: v.clone() for k, v in learner.agent.state_dict().items()}
        hist = dict(learner._term_hist)
        std = (learner.vbase_a.std().clone(), learner.vbase_v.std().clone())
        real_step = learner.agent_opt.step
        grads = []

        def grab():
            grads.append([None if p.grad is None else p.grad.clone()
                          for p in learner.agent.parameters()])
            real_step()

        learner.agent_opt.step = grab
        try:
            orig(rec, metrics)
        finally:
            learner.agent_opt.step = real_step
        captured.append((rec, metrics, snap, hist, std, grads[0]))

    learner._apply_one = apply
    learner.run_epoch()
    ref = type(learner.agent)(8, 12, 6, num_classes=25, d_model=16, dropout=0.0, keep_init=0.6)
    train = learner.train
    nonzero = 0
    for rec, metrics, snap, hist, (sd_a, sd_v), grads in captured[1:5]:
        ref.load_state_dict(snap)
        ref.train()
        (st,) = rec.steps
        y = train.labels[st.idx]
        out = ref(train.audio[st.idx], train.visual[st.idx], train.motion[st.idx], y)
        prev = hist[max(hist)]
        loss = 0.0
        for m, p, act, b, sd, prv in (("a", out.p_a, st.act_a, rec.base_a, sd_a, prev[0]),
                                      ("v", out.p_v, st.act_v, rec.base_v, sd_v, prev[1])):
            t = torch.tensor([metrics[f"val_cls_{m}/{c}"] for c in range(25)]) / 100 * 10.0
            r = (t - prv).unsqueeze(0).expand(len(st.idx), 25)
            r = torch.where(getattr(st, f"undone_{m}").unsqueeze(-1), torch.full_like(r, -1.0), r)
            adv = (r - b) / sd
            lp = action_log_prob(p, act, y, reduce=False)
            loss = loss - (adv * lp * (y > 0.5).float()).sum(-1).mean()
        want = torch.autograd.grad(loss, list(ref.parameters()), allow_unused=True)
        assert_same_grads(grads, want)
        nonzero += any(g is not None and g.abs().sum() > 0 for g in grads)
    assert nonzero == 4
    # Per-class baselines moved apart (different classes, different credited rewards) and the
    # running std is no longer the initial 1 everywhere.
    seen = learner.vbase_v.seen
    assert seen.sum() > 5 and learner.vbase_v.value[seen].std() > 0
    assert not torch.allclose(learner.vbase_v.std()[seen], torch.ones(int(seen.sum())))


def test_inter_weight_scales_the_inter_reward(tiny):
    m1 = _learner(tiny, small_cfg(sync=True), DelayedEvaluator(1)).run_epoch()
    m2 = _learner(tiny, small_cfg(sync=True, inter_weight=0.25), DelayedEvaluator(1)).run_epoch()
    # Same seed, same first actions; the agent's updates then differ, so compare loosely.
    assert m2["reward/inter"] == pytest.approx(0.25 * m1["reward/inter"], rel=0.05)


def test_fit_with_stable_preset_end_to_end_and_resume(tiny):
    cfg = small_cfg("stable", epochs=2, seed=1, entropy_weight=0.01)
    seen = []
    # The state is taken when the epoch is reported (state_fn builds it when called).
    full = fit(cfg, tiny, device="cpu", reporter=lambda e, m, sf: seen.append((m, sf())))
    m = seen[-1][0]
    for k in ("rlld/keep_p_noisy_v", "rlld/keep_p_clean_v", "rlld/noise_auc_within_v",
              "rlld/noise_auc_within_a", "reward/terminal_v", "val/seg_Type"):
        assert k in m and math.isfinite(m[k]), k
    assert 0.0 <= m["rlld/noise_auc_within_v"] <= 1.0
    for k in ("rlld/sampled_precision_v", "rlld/sampled_recall_v"):
        assert 0.0 <= m[k] <= 1.0, k
    resumed = fit(cfg, tiny, device="cpu", resume_state=seen[0][1])
    untimed = {k: v for k, v in full.items() if not k.startswith(("time/", "last/time/"))}
    assert {k: resumed[k] for k in untimed} == untimed


class CapturingEvaluator(DelayedEvaluator):
    def __init__(self):
        super().__init__(delay=1)
        self.sent = {}

    def submit(self, step, state_dict):
        self.sent[step] = {k: v.clone() for k, v in state_dict.items()}
        super().submit(step, state_dict)

    def metrics(self, step):
        m = super().metrics(step)
        m.update({CF_RESULT + k: v - 1.0 for k, v in m.items() if k.startswith("val/")})
        return m


@pytest.mark.parametrize("keep_init, same", [(1 - 1e-6, True), (0.3, False)])
def test_counterfactual_update_is_the_same_step_on_the_original_labels(tiny, keep_init, same):
    """When the agent keeps every label the counterfactual weights equal the real ones bit for bit
    (same optimiser state, same dropout draws); when it removes labels they differ."""
    ev = CapturingEvaluator()
    cfg = small_cfg(sync=True, counterfactual=True, keep_init=keep_init, dropout=0.3)
    learner = _learner(tiny, cfg, ev)
    batches = overlapping_batches(len(learner.train), 16, 0.25, torch.Generator().manual_seed(0))
    for idx in batches[:3]:  # by step 2 Adam's moments are non-trivial
        learner.run_episode([idx])
    sd = ev.sent[2]
    main = {k: v for k, v in sd.items() if not k.startswith(CF_PREFIX)}
    cf = {k[len(CF_PREFIX):]: v for k, v in sd.items() if k.startswith(CF_PREFIX)}
    assert set(main) == set(cf) == set(learner.task.state_dict())
    equal = all(torch.equal(main[k], cf[k]) for k in main)
    assert equal is same
    # The real task network is not disturbed by the counterfactual step: its weights are the
    # ones published.
    assert all(torch.equal(learner.task.state_dict()[k], main[k]) for k in main)


def test_counterfactual_scores_and_credit(tiny):
    cfg = small_cfg(counterfactual=True, terminal_credit="class")
    ev = LocalEvaluator.from_path(cfg, tiny)
    w1 = build_task_model(cfg, (8, 12, 6)).state_dict()
    torch.manual_seed(5)
    w2 = build_task_model(cfg, (8, 12, 6)).state_dict()
    out = ev.evaluate({**w1, **{CF_PREFIX + k: v for k, v in w2.items()}})
    cf = counterfactual_metrics(out)
    assert cf == {k: v for k, v in ev.evaluate(w2).items() if k != "eval_s"}
    assert out["val/seg_A"] == ev.evaluate(w1)["val/seg_A"]
    # Paper-path credit: level minus counterfactual level.
    learner = _learner(tiny, small_cfg(staleness=5, counterfactual=True), DelayedEvaluator(1))
    seen = []
    orig = U.reinforce_loss

    def spy(lp, r, b=0.0):
        seen.append(r.clone())
        return orig(lp, r, b)

    metrics = {"val/seg_A": 50.0, "val/event_V": 40.0, "cf:val/seg_A": 45.0,
               "cf:val/event_V": 41.0, "eval_s": 0.0}
    batches = overlapping_batches(len(learner.train), 16, 0.25, torch.Generator().manual_seed(0))
    learner.evaluator = type("E", (), {"submit": lambda *a: None, "poll": lambda s: [],
                                       "wait": lambda *a: None, "pending": lambda s: 0})()
    learner.run_episode([batches[0]])
    rec = learner.pending.pop(0)
    U.reinforce_loss, saved = spy, U.reinforce_loss
    try:
        learner._apply_one(rec, metrics)
    finally:
        U.reinforce_loss = saved
    (st,) = rec.steps
    ok = ~st.undone_a
    # (50 - 45) / 100 * 0.1 and (40 - 41) / 100 * 0.1 on top of the inter-reward.
    assert torch.allclose((seen[0] - st.r_known_a)[ok], torch.tensor(0.005))
    assert torch.allclose((seen[1] - st.r_known_v)[ok], torch.tensor(-0.001))


def test_sampled_denoising_quality_by_hand(tiny):
    """rlld/sampled_precision/recall: expected precision/recall of the sampled removals, sum of
    (1 - p) over noisy labels / over all labels, and / number of noisy labels."""
    learner = _learner(tiny, small_cfg(), DelayedEvaluator(1))
    tr = learner.train
    labels = tr.labels > 0.5
    truth_v = tr.gt_visual.bool().any(dim=1)
    noisy = labels & ~truth_v
    p_v = torch.where(noisy, torch.tensor(0.2), torch.tensor(0.9))
    p_a = torch.full_like(p_v, 0.5)
    out = denoise_scores(learner.agent, learner.train, learner.cfg.all_removed,
                         (torch.zeros_like(labels), p_v < 0.5, p_a, p_v))
    n_noisy, n_clean = float(noisy.sum()), float((labels & truth_v).sum())
    want = 0.8 * n_noisy / (0.8 * n_noisy + 0.1 * n_clean)
    assert out["rlld/sampled_precision_v"] == pytest.approx(want)
    assert out["rlld/sampled_recall_v"] == pytest.approx(0.8)
    assert out["rlld/keep_p_noisy_v"] == pytest.approx(0.2)
    assert out["rlld/keep_p_clean_v"] == pytest.approx(0.9)
    assert out["rlld/noise_auc_within_v"] == pytest.approx(1.0)
    assert out["denoise/precision_v"] == 1.0
