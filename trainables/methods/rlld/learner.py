"""RLLD's learner: the agent acts, the task network trains on the revised labels, validation rewards
come back (possibly late) and update the agent.

Two networks train jointly (from the RLLD paper): the label-denoising **agent**
(:mod:`trainables.methods.rlld.agent`) keeps or removes each weak label per video and modality
(Eq. 1-5), and the **task network**, HAN, trains on the revised labels: video-level target
``rev_a OR rev_v`` (Eq. 6), audio/visual targets ``rev_a``/``rev_v`` (Eq. 7-8).

A *step* is one state: a batch of 128 training videos (consecutive states share a quarter of their
videos, :func:`trainables.methods.rlld.batches.overlapping_batches`). An *episode* is
``episode_steps`` (K) consecutive steps: the agent acts on each state with the same parameters and
the task network takes one optimiser step per state on the revised labels; after the K-th step the
learner publishes the task weights and requests one validation pass, whose scores are the
episode's *terminal reward* (audio branch ``seg_A/100 x terminal_scale``, visual ``event_V/100 x
terminal_scale``). When it arrives the agent takes one Adam step on the Monte Carlo REINFORCE
gradient of the episode (no discount)::

    grad J ~ (1/N) sum_k mean_i (R_ik - b) grad log pi(a_ik | s_ik)      (per branch)

with N the episode's steps, ``b`` the baseline at acting time (0 without one) and ``R_ik`` either
``R_terminal + R_inter,ik`` of video i (``inter_aggregate="video"``) or the episode's one ``R(S) =
R_terminal + mean R_inter`` (``"episode"``); undone videos (the all-removed rule) count with
``all_removed_reward``. The mean over videos instead of the paper's sum is a constant factor, which
Adam's update does not see.

Late rewards: the learner keeps what defines an episode's log-probabilities until its reward
arrives: per step the rows, the actions and the RNG state of the acting forward (dropout), and,
when updates may land in between (asynchronous mode), a copy of the acting parameters. It then
recomputes ``log pi`` with exactly those parameters and dropout draws: the exact on-policy
gradient, applied after at most ``staleness`` other agent updates. (Keeping the autograd graph is
not an option: the in-place optimiser updates of later episodes invalidate it.) The learner blocks
only when the oldest pending episode is more than ``staleness`` (S) episodes old, so the validation
of episode t overlaps the steps of episodes t+1 .. t+S; ``sync=True`` waits for every reward.

Not supported: ``torch.distributed`` (one learner process; the parallelism is in the actors).
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from trainables.core.dist import autocast
from trainables.core.loop import make_optimizer
from trainables.methods.rlld import updates
from trainables.methods.rlld.agent import action_log_prob, build_agent, revise_labels, sample_actions
from trainables.methods.rlld.baselines import MovingAverageBaseline, VectorBaseline
from trainables.methods.rlld.batches import EpisodeRecord, StepRecord, episodes, overlapping_batches
from trainables.methods.rlld.config import Config
from trainables.methods.rlld.diagnostics import EpochStats, epoch_metrics
from trainables.methods.rlld.evaluator import CF_PREFIX, Evaluator, build_task_model
from trainables.methods.rlld.rewards import guard_all_removed, known_rewards
from trainables.tasks.avvp.data import AVVPSplit
from trainables.tasks.avvp.eval import batch_inputs, smooth


class Learner:
    """Runs RLLD episodes against an :class:`~trainables.methods.rlld.evaluator.Evaluator`;
    :func:`trainables.methods.rlld.training.fit` runs its epochs in the core fit loop.

    Public for tests and benchmarks: ``applied`` lists the episodes whose rewards were applied, in
    order; ``max_pending`` the most evaluations ever pending after an episode; ``step`` and
    ``episode`` count task steps and episodes.
    """

    def __init__(self, cfg: Config, train: AVVPSplit, evaluator: Evaluator,
                 device: torch.device, *, dims: tuple[int, int, int]):
        self.cfg, self.train, self.evaluator, self.device = cfg, train, evaluator, device
        c = train.labels.shape[-1]
        self.agent = build_agent(cfg.agent_arch, dims, c, d_model=cfg.agent_d_model,
                                 dropout=cfg.agent_dropout, use_labels=cfg.use_label_input,
                                 keep_init=cfg.keep_init).to(device)
        self.task = build_task_model(cfg, dims, c).to(device)
        self.task_opt, self.task_sched = make_optimizer(self.task, cfg.lr, cfg.lr_step, cfg.lr_gamma)
        if cfg.counterfactual:
            # Reloaded from the real task network and optimiser before every step.
            self.cf_task = build_task_model(cfg, dims, c).to(device)
            self.cf_opt, _ = make_optimizer(self.cf_task, cfg.lr, cfg.lr_step, cfg.lr_gamma)
        self.agent_opt = torch.optim.Adam(self.agent.parameters(), lr=cfg.agent_lr)
        self.shadow: nn.Module | None = None  # holds acting parameters of stale episodes
        self.version = 0  # agent updates applied so far
        self.base_a = MovingAverageBaseline(cfg.baseline_momentum, cfg.baseline)
        self.base_v = MovingAverageBaseline(cfg.baseline_momentum, cfg.baseline)
        # Our per-(class, modality) credit options use element-wise rewards (B, C); the paper's
        # path (per-video rewards, scalar baselines) keeps scalar arithmetic.
        self.elementwise = (cfg.terminal_credit == "class" or cfg.class_baseline or cfg.adv_norm
                            or cfg.entropy_weight > 0)
        nb = c if cfg.class_baseline else 1
        self.vbase_a = VectorBaseline(nb, cfg.baseline_momentum, cfg.baseline)
        self.vbase_v = VectorBaseline(nb, cfg.baseline_momentum, cfg.baseline)
        self.batch_gen = torch.Generator().manual_seed(int(cfg.seed))
        self.act_gen = torch.Generator(device=device).manual_seed(int(cfg.seed) + 1)
        self.step = 0
        self.episode = 0
        self.pending: dict[int, EpisodeRecord] = {}
        self.applied: list[int] = []
        self._applied_set: set[int] = set()
        self.max_pending = 0
        self.stats = EpochStats()
        # terminal_delta: recent terminal rewards by episode (to difference against).
        self._term_hist: dict[int, tuple[Any, Any]] = {}
        # Whole-run throughput counters (checkpointed, so a resumed run reports the whole run).
        self.run_steps, self.run_time = 0, 0.0

    # -- acting ------------------------------------------------------------------------------

    def _inputs(self, idx: torch.Tensor):
        return batch_inputs(self.train, idx, self.device)

    def _rng_state(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        cuda = torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None
        return torch.get_rng_state(), cuda

    def _policy(self, agent: nn.Module, a, v, m, y) -> tuple[torch.Tensor, torch.Tensor]:
        agent.train()
        with autocast(self.device):
            out = agent(a, v, m, y)
        return out.p_a.float(), out.p_v.float()

    def run_episode(self, states: list[torch.Tensor]) -> None:
        """One episode: the agent acts on each state and the task network steps on the revised
        labels; then one validation request (blocking per the staleness bound) and the rewards
        that have arrived are applied."""
        cfg = self.cfg
        # Acting parameters are needed only if another update lands before this episode's
        # reward; in sync mode none can.
        params = None if cfg.sync else {k: t.detach().clone()
                                        for k, t in self.agent.state_dict().items()}
        if self.elementwise:
            b_a, b_v = self.vbase_a().to(self.device), self.vbase_v().to(self.device)
        else:
            b_a, b_v = self.base_a(), self.base_v()
        steps = [self._act_and_train(idx) for idx in states]
        self.pending[self.episode] = EpisodeRecord(self.episode, steps, b_a, b_v, self.version,
                                                   params, time.perf_counter())
        self.evaluator.submit(self.episode, self.publish())
        self.episode += 1
        self.collect(block=cfg.sync)
        st = self.stats
        st.pending_sum += len(self.pending)
        st.episodes += 1
        st.max_pending = max(st.max_pending, len(self.pending))
        self.max_pending = max(self.max_pending, len(self.pending))

    def _act_and_train(self, idx: torch.Tensor) -> StepRecord:
        cfg, st = self.cfg, self.stats
        idx = idx.to(self.device)
        a, v, m = self._inputs(idx)
        y = self.train.labels[idx]
        rng = self._rng_state()
        with torch.no_grad():
            p_a, p_v = self._policy(self.agent, a, v, m, y)
        act_a = sample_actions(p_a, self.act_gen)
        act_v = sample_actions(p_v, self.act_gen)
        rev_a, rev_v, undone_a, undone_v = guard_all_removed(
            y, revise_labels(act_a, y), revise_labels(act_v, y), cfg.all_removed)
        ri_a, r_known_a = known_rewards(y, rev_a, undone_a, cfg)
        ri_v, r_known_v = known_rewards(y, rev_v, undone_v, cfg)
        rec = StepRecord(idx, act_a, act_v, undone_a, undone_v, r_known_a, r_known_v, rng, p_a, p_v)

        # Task network on the revised labels (Eq. 6-8).
        if cfg.counterfactual:
            self.cf_task.load_state_dict(self.task.state_dict())
            self.cf_opt.load_state_dict(copy.deepcopy(self.task_opt.state_dict()))
            task_rng = self._rng_state()
        loss = self._task_step(self.task, self.task_opt, (a, v, m), rev_a, rev_v)
        if cfg.counterfactual:
            # The same step on the original labels, with the same dropout draws.
            with self._forked_rng(task_rng):
                yf = y.float()
                self._task_step(self.cf_task, self.cf_opt, (a, v, m), yf, yf)

        # Device tensors: no host sync per step (converted once per epoch).
        st.loss += loss.detach()
        st.steps += 1
        st.kept_a += (rev_a * y).sum()
        st.kept_v += (rev_v * y).sum()
        st.positives += y.sum()
        st.undone += (undone_a | undone_v).sum()
        st.videos += len(idx)
        st.inter_sum += ri_a.sum() + ri_v.sum()
        st.inter_n += 2 * len(idx)
        self.step += 1
        return rec

    @contextlib.contextmanager
    def _forked_rng(self, rng):
        """Runs the body with the global RNG set to ``rng`` and restores it afterwards."""
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.set_rng_state(rng[0])
            if rng[1] is not None:
                torch.cuda.set_rng_state(rng[1], self.device)
            yield

    def _task_step(self, model: nn.Module, opt: torch.optim.Optimizer, inputs: tuple,
                   y_a: torch.Tensor, y_v: torch.Tensor) -> torch.Tensor:
        """One HAN step (Eq. 6-8): video target = union of ``y_a`` and ``y_v``, modality targets
        smoothed as HAN's (``smooth_a``/``smooth_v``); returns the loss (plus the contrastive term
        with ``cl_weight``)."""
        from trainables.tasks.avvp.backbone import contrastive_term
        from trainables.tasks.avvp.han import han_loss

        cfg = self.cfg
        model.train()
        with autocast(self.device):
            out = model(*inputs, with_ca=cfg.with_ca)
        loss = han_loss(out, torch.maximum(y_a, y_v), smooth(y_a, cfg.smooth_a),
                        smooth(y_v, cfg.smooth_v), cfg.loss_weights) + contrastive_term(cfg, out)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    def publish(self) -> dict[str, torch.Tensor]:
        """A snapshot of the task weights (detached clones: training goes on meanwhile), plus the
        counterfactual update's under ``cf/`` keys with ``counterfactual``."""
        out = {k: t.detach().clone() for k, t in self.task.state_dict().items()}
        if self.cfg.counterfactual:
            out.update({CF_PREFIX + k: t.detach().clone()
                        for k, t in self.cf_task.state_dict().items()})
        return out

    # -- rewards -----------------------------------------------------------------------------

    def collect(self, block: bool) -> None:
        """Applies arrived rewards, then blocks while the oldest pending episode is more than
        ``staleness`` episodes old (so at most ``staleness`` evaluations stay pending), or until
        none is pending when ``block``."""
        st = self.stats
        self._apply(self.evaluator.poll())
        # Bounding the age of the oldest pending episode (not just the count) also bounds each
        # reward's delay when actors finish out of order.
        limit = 0 if block else self.cfg.staleness
        while self.pending and min(self.pending) < self.episode - limit:
            oldest = min(self.pending)
            t0 = time.perf_counter()
            self.evaluator.wait(oldest)
            st.wait_s += time.perf_counter() - t0
            got = self.evaluator.poll()
            if not got and oldest in self.pending and self.evaluator.pending() == 0:
                raise RuntimeError(f"evaluator lost episode {oldest}: nothing pending, no result")
            self._apply(got)

    def drain(self) -> None:
        """Waits for and applies every pending reward."""
        self.collect(block=True)

    def _apply(self, results: list[tuple[int, dict[str, float]]]) -> None:
        for key, metrics in sorted(results, key=lambda r: r[0]):
            key = int(key)
            if key in self._applied_set or key not in self.pending:
                self.stats.duplicates += 1
                continue
            self._apply_one(self.pending.pop(key), metrics)

    def _apply_one(self, rec: EpisodeRecord, metrics: Mapping[str, float]) -> None:
        """Episode ``rec``'s agent update from its validation result."""
        grads, obj, (rt_a, rt_v) = updates.episode_update(self, rec, metrics)
        self._step_agent(rec, grads, metrics, rt_a, rt_v, obj)

    @property
    def labels(self) -> torch.Tensor:
        """The train split's weak labels (what an agent update reads)."""
        return self.train.labels

    def acting_agent(self, rec: EpisodeRecord) -> nn.Module:
        """The agent with ``rec``'s acting parameters: the live one, or the shadow copy loaded
        with them when the agent has been updated since."""
        if rec.version == self.version:
            return self.agent
        if rec.params is None:
            raise RuntimeError(f"episode {rec.episode}: agent changed since acting but its "
                               f"parameters were not kept")
        if self.shadow is None:
            self.shadow = copy.deepcopy(self.agent)
        self.shadow.load_state_dict(rec.params)
        return self.shadow

    def policy_log_probs(self, rec: EpisodeRecord, k: int = 0, reduce: bool = True,
                         agent: nn.Module | None = None
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Rebuilds the acting forward of step ``k`` of episode ``rec`` (same parameters, same
        dropout draws).

        Returns:
            ``(lp_a, lp_v, p_a, p_v)`` with gradients flowing to the parameters of the agent that
            computes them (``agent``, default :meth:`acting_agent`); ``lp`` per video (B,), or
            per (video, class) (B, C) with ``reduce=False``.
        """
        agent = agent if agent is not None else self.acting_agent(rec)
        s = rec.steps[k]
        a, v, m = self._inputs(s.idx)
        y = self.train.labels[s.idx]
        with self._forked_rng(s.rng):
            p_a, p_v = self._policy(agent, a, v, m, y)
        return (action_log_prob(p_a, s.act_a, y, reduce=reduce),
                action_log_prob(p_v, s.act_v, y, reduce=reduce), p_a, p_v)

    def _step_agent(self, rec: EpisodeRecord, grads, metrics: Mapping[str, float],
                    rt_a: float, rt_v: float, obj: float) -> None:
        """Applies the episode's gradient (taken through the policy that acted) with Adam and
        books the applied reward."""
        st = self.stats
        for prm, g in zip(self.agent.parameters(), grads):
            prm.grad = g
        self.agent_opt.step()
        self.agent_opt.zero_grad(set_to_none=True)
        self.version += 1
        st.agent_obj += obj
        st.term_a += rt_a
        st.term_v += rt_v
        st.eval_s += float(metrics.get("eval_s", 0.0))
        lag = (self.episode - 1) - rec.episode
        st.staleness_sum += lag
        st.max_staleness = max(st.max_staleness, lag)
        st.applied += 1
        self.applied.append(rec.episode)
        self._applied_set.add(rec.episode)

    def credited_terminal(self, episode: int, rt_a, rt_v):
        """The terminal reward credited to ``episode``: the level, or with ``terminal_delta`` the
        change since the latest earlier evaluation that has arrived (0 for the first). Floats,
        or per-class tensors with ``terminal_credit="class"``."""
        if not self.cfg.terminal_delta:
            return rt_a, rt_v
        earlier = [s for s in self._term_hist if s < episode]
        prev = self._term_hist[max(earlier)] if earlier else (rt_a, rt_v)
        self._term_hist[episode] = (rt_a, rt_v)
        keep = sorted(self._term_hist)[-(self.cfg.staleness + 2):]
        self._term_hist = {s: self._term_hist[s] for s in keep}
        return rt_a - prev[0], rt_v - prev[1]

    # -- epochs ------------------------------------------------------------------------------

    def _pool_counters(self) -> tuple[int, int]:
        """``(resubmits, duplicates)`` the evaluator has counted so far (0 for one without)."""
        return (int(getattr(self.evaluator, "resubmits", 0)),
                int(getattr(self.evaluator, "duplicates", 0)))

    def run_epoch(self, generator: torch.Generator | None = None) -> dict[str, float]:
        """One pass over the overlapping states in episodes, then drains pending rewards.

        Args:
            generator: Draws the epoch's order (default: the learner's own, seeded by
                ``cfg.seed``; :func:`~trainables.methods.rlld.training.fit` passes the fit loop's
                checkpointed one).

        Returns:
            The epoch's ``train/...``, ``reward/...``, ``rlld/...`` and ``time/...`` metrics.
        """
        self.stats = EpochStats()
        pool0 = self._pool_counters()  # the evaluator's counters are cumulative
        t0 = time.perf_counter()
        states = overlapping_batches(len(self.train), self.cfg.batch_size, self.cfg.overlap,
                                     generator if generator is not None else self.batch_gen)
        for ep in episodes(states, self.cfg.episode_steps):
            self.run_episode(ep)
        self.drain()
        wall = time.perf_counter() - t0
        self.run_steps += self.stats.steps
        self.run_time += wall
        pool = tuple(n - n0 for n, n0 in zip(self._pool_counters(), pool0))
        workers = max(1, int(getattr(self.evaluator, "num_workers", 1)))
        return epoch_metrics(self.stats, wall, workers, pool)

    # -- checkpoints -------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The agent side (the task network, its optimiser and schedule are the fit loop's)."""
        if self.pending:
            raise RuntimeError("drain() before checkpointing: rewards are pending")
        return {
            "agent": self.agent.state_dict(),
            "agent_opt": self.agent_opt.state_dict(),
            "base_a": self.base_a.state_dict(),
            "base_v": self.base_v.state_dict(),
            "vbase_a": self.vbase_a.state_dict(),
            "vbase_v": self.vbase_v.state_dict(),
            "act_gen": self.act_gen.get_state(),
            "step": self.step,
            "episode": self.episode,
            "run_steps": self.run_steps,
            "run_time": self.run_time,
            "term_hist": [[float(k), a, v] for k, (a, v) in sorted(self._term_hist.items())],
        }

    def load_state_dict(self, s: Mapping[str, Any]) -> None:
        self.agent.load_state_dict(s["agent"])
        self.agent_opt.load_state_dict(s["agent_opt"])
        for name in ("base_a", "base_v", "vbase_a", "vbase_v"):
            getattr(self, name).load_state_dict(s[name])
        self.act_gen.set_state(s["act_gen"].cpu())
        self.step, self.episode = int(s["step"]), int(s["episode"])
        self.run_steps, self.run_time = int(s["run_steps"]), float(s["run_time"])

        def val(x):
            return x.float().cpu() if isinstance(x, torch.Tensor) else float(x)
        self._term_hist = {int(k): (val(a), val(v)) for k, a, v in s["term_hist"]}
