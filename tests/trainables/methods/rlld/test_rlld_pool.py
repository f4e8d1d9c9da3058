"""The Ray validation pool behind RLLD's terminal rewards, on a private local Ray with CPU actors:
rewards arrive and match in-process scoring, a killed actor is restarted and its pending
evaluation resubmitted, and each reward is applied once inside a real (asynchronous) fit."""

import time

import numpy as np
import pytest
import ray
import torch
from ray.exceptions import ActorUnavailableError

import trainables.methods.rlld.config as RC
import trainables.methods.rlld.evaluator as RE
from trainables.methods.rlld.training import fit
from trainables.methods.rlld.pool import RayValidationPool, evaluator_kwargs, extra_bundles
from trainables.data.format import write_dataset


def _tiny(path, seed=0):
    rng = np.random.default_rng(seed)
    n, c, t = {"train": 96, "val": 24, "test": 24}, 25, 10
    ids, split = [], []
    for s, k in n.items():
        ids += [f"{s}{i:05d}xxxxxx_0_10" for i in range(k)]
        split += [s] * k
    total = len(ids)
    labels = np.zeros((total, c), np.uint8)
    labels[np.arange(total), rng.integers(0, c, total)] = 1
    gt_a = (rng.random((total, t, c)) < 0.5).astype(np.uint8) * labels[:, None, :]
    gt_v = (rng.random((total, t, c)) < 0.5).astype(np.uint8) * labels[:, None, :]
    arrays = {
        "audio": (gt_a @ rng.normal(size=(c, 8)) + 0.3 * rng.normal(size=(total, t, 8))).astype(np.float32),
        "visual": (gt_v @ rng.normal(size=(c, 12))).astype(np.float32),
        "motion": rng.normal(size=(total, t, 6)).astype(np.float32),
        "labels": labels, "gt_audio": gt_a, "gt_visual": gt_v,
    }
    return write_dataset(path, video_ids=ids, split=split, arrays=arrays, kind="llp-sim",
                         params={"seed": seed, "test": "rlld_pool"},
                         truth_splits=("train", "val", "test"))


def _cfg(**kw):
    base = dict(epochs=1, batch_size=16, d_model=16, agent_d_model=16, eval_actors=2,
                eval_actor_cpus=0.5, eval_max_restarts=2, eval_batch_size=64, seed=0)
    base.update(kw)
    return RC.Config(**base)


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory):
    torch.set_num_threads(1)
    path = _tiny(tmp_path_factory.mktemp("rlld_pool") / "tiny")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield path
    ray.shutdown()


def test_extra_bundles_one_per_actor():
    assert extra_bundles(RC.Config(eval_actors=3, eval_actor_gpus=0.25, eval_actor_cpus=2)) == [
        {"CPU": 2.0, "GPU": 0.25}] * 3
    assert extra_bundles({"eval_actors": 2, "eval_actor_gpus": 0}) == [{"CPU": 1.0}] * 2
    assert extra_bundles(RC.Config(eval_actors=1, eval_actor_gpus=1, eval_actor_cpus=0)) == [
        {"GPU": 1.0}]
    with pytest.raises(ValueError, match="eval_actors"):
        extra_bundles(RC.Config(eval_actors=0))
    with pytest.raises(ValueError, match="both 0"):
        extra_bundles(RC.Config(eval_actor_gpus=0, eval_actor_cpus=0))


def _weights(seed):
    torch.manual_seed(seed)
    return RE.build_task_model(_cfg(), (8, 12, 6)).state_dict()


def test_pool_rewards_arrive_and_match_local_scoring(local_ray):
    cfg = _cfg()
    pool = evaluator_kwargs(cfg, local_ray)["evaluator"]
    local = RE.LocalEvaluator.from_path(cfg, local_ray, "cpu")
    try:
        ws = {s: _weights(s) for s in range(4)}
        for s, w in ws.items():
            pool.submit(s, w)
        with pytest.raises(ValueError, match="already submitted"):
            pool.submit(0, ws[0])
        assert pool.pending() == 4
        for s in ws:
            pool.wait(s)
        got = dict(pool.poll())
        assert sorted(got) == [0, 1, 2, 3] and pool.pending() == 0 and pool.poll() == []
        for s, w in ws.items():
            ref = local.evaluate(w)
            for k in ("val/seg_A", "val/event_V", "val/seg_Type"):
                assert got[s][k] == pytest.approx(ref[k], abs=1e-6)
        assert got[0]["val/seg_A"] != got[1]["val/seg_A"] or got[0]["val/event_V"] != got[1]["val/event_V"]
    finally:
        pool.close()


def test_killed_actor_is_restarted_and_its_evaluation_resubmitted(local_ray):
    pool = RayValidationPool(_cfg(), local_ray, slowdown_s=0.3)
    try:
        pids = ray.get([a.pid.remote() for a in pool.actors])
        w = _weights(0)
        for s in range(4):
            pool.submit(s, w)
        assert pool.actor_loads() == [2, 2]
        ray.kill(pool.actors[0], no_restart=False)  # mid-evaluation: restartable death
        for s in range(4):
            pool.wait(s, timeout=120)
        got = pool.poll()
        assert sorted(s for s, _ in got) == [0, 1, 2, 3]  # each step once
        assert pool.resubmits >= 1
        assert pool.poll() == [] and pool.pending() == 0
        new_pid = None
        for _ in range(240):  # the restarted actor serves again (it rejects calls while restarting)
            try:
                new_pid = ray.get(pool.actors[0].pid.remote(), timeout=60)
                break
            except ActorUnavailableError:
                time.sleep(0.5)
        assert new_pid is not None and new_pid != pids[0]
    finally:
        pool.close()


class _KillingPool:
    """Wraps the pool and kills actor 0 right after the ``at``-th submission."""

    def __init__(self, pool, at):
        self.pool, self.at, self.n = pool, at, 0
        self.num_workers = pool.num_workers

    def submit(self, step, sd):
        self.pool.submit(step, sd)
        self.n += 1
        if self.n == self.at:
            ray.kill(self.pool.actors[0], no_restart=False)

    def poll(self):
        return self.pool.poll()

    def wait(self, step):
        self.pool.wait(step, timeout=120)

    def pending(self):
        return self.pool.pending()

    def close(self):
        self.pool.close()

    @property
    def resubmits(self):
        return self.pool.resubmits

    @property
    def duplicates(self):
        return self.pool.duplicates


class _TwicePool(_KillingPool):
    """A faulty pool: delivers every reward a second time on the next poll."""

    def __init__(self, pool):
        super().__init__(pool, at=-1)
        self.again = []
        self.redelivered = 0  # second deliveries actually handed out by a poll

    def poll(self):
        got = self.pool.poll()
        out, self.again = self.again + got, list(got)
        self.redelivered += len(out) - len(got)
        return out


def test_async_fit_with_an_actor_killed_mid_run(local_ray):
    cfg = _cfg(epochs=1, staleness=2)
    pool = RayValidationPool(cfg, local_ray, slowdown_s=0.15)
    # Actors up first: a kill before an actor is alive only delays its queued calls.
    ray.get([a.pid.remote() for a in pool.actors])
    ev = _KillingPool(pool, at=3)
    seen = []
    res = fit(cfg, local_ray, device="cpu", evaluator=ev, reporter=lambda e, m, sf: seen.append(m))
    steps = int(np.ceil(96 / 12))
    m = seen[-1]
    assert m["reward/applied"] == steps  # every step's reward applied once, none lost
    assert m["rlld/policy_steps"] == m["rlld/task_steps"] == steps
    # The pool delivers each reward exactly once, also after the resubmission.
    assert m["reward/duplicates"] == 0
    assert m["reward/resubmits"] == ev.pool.resubmits >= 1
    assert m["rlld/max_staleness"] <= 2 and m["rlld/max_pending"] <= 2
    assert np.isfinite(res["test/seg_Type"])


def test_a_reward_delivered_twice_is_counted_and_applied_once(local_ray):
    cfg = _cfg(epochs=1, staleness=2)
    ev = _TwicePool(RayValidationPool(cfg, local_ray))
    seen = []
    fit(cfg, local_ray, device="cpu", evaluator=ev, reporter=lambda e, m, sf: seen.append(m))
    steps = int(np.ceil(96 / 12))
    m = seen[-1]
    # The check above would catch this pool: every reward it handed out a second time is counted
    # and ignored (the last poll's second deliveries never go out: nothing polls after the final
    # drain, and how many that is depends on the actors' timing).
    assert m["reward/duplicates"] == ev.redelivered >= steps // 2
    assert m["reward/applied"] == m["rlld/policy_steps"] == steps


def test_async_episodes_on_the_pool(local_ray):
    """Episodes of 3 steps on the actors: one validation request per episode (8 steps -> 3
    episodes), each applied once, at most one episode late."""
    cfg = _cfg(epochs=1, staleness=1, episode_steps=3)
    pool = RayValidationPool(cfg, local_ray, slowdown_s=0.1)
    ray.get([a.pid.remote() for a in pool.actors])
    seen = []
    fit(cfg, local_ray, device="cpu", evaluator=pool, reporter=lambda e, m, sf: seen.append(m))
    m = seen[-1]
    assert m["rlld/task_steps"] == int(np.ceil(96 / 12)) == 8
    assert m["rlld/episodes"] == m["reward/applied"] == m["rlld/policy_steps"] == 3
    assert m["rlld/max_staleness"] <= 1 and m["reward/duplicates"] == 0
