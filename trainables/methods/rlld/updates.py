"""RLLD's agent update for one episode: credited rewards, the REINFORCE gradient, baseline updates.

:func:`episode_update` returns the gradient of the episode's surrogate loss

    L = (1/N) sum_k [ -mean_i (R_ik - b) log pi(a_ik | s_ik) ]    (summed over both branches)

taken at the parameters that acted (the learner rebuilds each step's acting forward), one step at
a time so that only one step's graph is alive. Two reward layouts:

* per video (the paper's credit, :func:`_scalar_update`): ``R_ik`` a number per video (or the
  episode's one ``R(S)``), scalar baselines;
* per (video, class) (our credit options, :func:`_elementwise_update`): per-class terminal rewards,
  per-(class, modality) baselines, advantage normalisation, entropy bonus.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import torch

from trainables.methods.rlld.batches import EpisodeRecord
from trainables.methods.rlld.config import Config
from trainables.methods.rlld.evaluator import counterfactual_metrics
from trainables.methods.rlld.rewards import (class_terminal_reward, reinforce_loss,
                                             terminal_reward, video_rewards)


class UpdateState(Protocol):
    """What an agent update reads and moves (the learner provides it): the config, device and
    train labels; whether credit is per (video, class); the reward baselines; the terminal
    rewards credited to an episode; the agent at the parameters that acted and its log-probs."""

    cfg: Config
    device: torch.device
    labels: torch.Tensor
    elementwise: bool
    base_a: Any
    base_v: Any
    vbase_a: Any
    vbase_v: Any

    def credited_terminal(self, episode: int, t_a: Any, t_v: Any) -> tuple[Any, Any]: ...

    def acting_agent(self, rec: EpisodeRecord) -> torch.nn.Module: ...

    def policy_log_probs(self, rec: EpisodeRecord, k: int, *, reduce: bool = True,
                         agent: torch.nn.Module | None = None) -> tuple: ...


def episode_update(learner: UpdateState, rec: EpisodeRecord, metrics: Mapping[str, float]
                   ) -> tuple[list[torch.Tensor | None], float, tuple[float, float]]:
    """The agent gradient of episode ``rec`` from its validation result.

    Returns:
        ``(grads, objective, (R_terminal_a, R_terminal_v))``: per-parameter gradients of the
        agent (None where the loss does not reach), the mean advantage (a diagnostic) and the
        uncredited terminal rewards (for the epoch's ``reward/terminal_*``).
    """
    if learner.elementwise:
        return _elementwise_update(learner, rec, metrics)
    return _scalar_update(learner, rec, metrics)


def _known(learner: UpdateState, rec: EpisodeRecord, mod: str
           ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per step ``(known, undone)`` of modality ``mod`` as the credit sees them: with
    ``inter_aggregate="episode"`` every video carries the episode's mean known reward and nothing
    is singled out as undone (its -1 is inside that mean)."""
    steps = [(getattr(s, f"r_known_{mod}"), getattr(s, f"undone_{mod}")) for s in rec.steps]
    if learner.cfg.inter_aggregate == "video":
        return steps
    mean = torch.cat([k for k, _ in steps]).mean()
    return [(mean.expand_as(k), torch.zeros_like(u)) for k, u in steps]


def _add(total, grads):
    if total is None:
        return list(grads)
    return [t if g is None else (g if t is None else t + g) for t, g in zip(total, grads)]


def _credited_levels(learner: UpdateState, rec: EpisodeRecord, metrics: Mapping[str, float], levels):
    """The terminal rewards credited to ``rec``: ``levels(metrics)`` minus the counterfactual's,
    or (``terminal_delta``) the change since the previous evaluation, or the level itself."""
    t_a, t_v = levels(metrics)
    if learner.cfg.counterfactual:
        c_a, c_v = levels(counterfactual_metrics(metrics))
        return t_a - c_a, t_v - c_v
    return learner.credited_terminal(rec.episode, t_a, t_v)


def _scalar_update(learner: UpdateState, rec: EpisodeRecord, metrics: Mapping[str, float]):
    cfg = learner.cfg
    rt = terminal_reward(metrics, cfg)
    ct_a, ct_v = _credited_levels(learner, rec, metrics, lambda m: terminal_reward(m, cfg))
    known_a, known_v = _known(learner, rec, "a"), _known(learner, rec, "v")
    agent = learner.acting_agent(rec)
    params = list(agent.parameters())
    n = len(rec.steps)
    grads, all_a, all_v = None, [], []
    for k in range(n):
        r_a = video_rewards(*known_a[k], ct_a)
        r_v = video_rewards(*known_v[k], ct_v)
        lp_a, lp_v, _, _ = learner.policy_log_probs(rec, k, agent=agent)
        loss = (reinforce_loss(lp_a, r_a, rec.base_a) + reinforce_loss(lp_v, r_v, rec.base_v)) \
            * (1.0 / n)
        grads = _add(grads, torch.autograd.grad(loss, params, allow_unused=True))
        all_a.append(r_a)
        all_v.append(r_v)
    r_a, r_v = torch.cat(all_a), torch.cat(all_v)
    learner.base_a.update(float(r_a.mean()))
    learner.base_v.update(float(r_v.mean()))
    obj = float(((r_a - rec.base_a).mean() + (r_v - rec.base_v).mean()) / 2)
    return grads, obj, rt


def _elementwise_update(learner: UpdateState, rec: EpisodeRecord, metrics: Mapping[str, float]):
    """Per-(video, class) rewards (our credit options).

    ``R_ic = R_inter,i + T_c`` (``T_c`` the class's terminal reward with
    ``terminal_credit="class"``, else the branch's), advantage ``A_ic = R_ic - b_c`` with ``b`` per
    (class, modality) or per modality, divided by the running std with ``adv_norm``; loss
    ``-mean_i sum_c A_ic log pi(a_ic)`` over present labels, minus the entropy bonus.
    """
    cfg, dev = learner.cfg, learner.device
    rt = terminal_reward(metrics, cfg)
    c = learner.labels.shape[-1]

    def levels(mt):
        if cfg.terminal_credit == "class":
            return class_terminal_reward(mt, cfg, c)
        r = terminal_reward(mt, cfg)
        return torch.tensor([r[0]]), torch.tensor([r[1]])

    t_a, t_v = _credited_levels(learner, rec, metrics, levels)
    mods = [("a", t_a, rec.base_a, learner.vbase_a), ("v", t_v, rec.base_v, learner.vbase_v)]
    known = {m: _known(learner, rec, m) for m, *_ in mods}
    stds = {m: vb.std().to(dev).unsqueeze(0) for m, _, _, vb in mods}
    agent = learner.acting_agent(rec)
    params = list(agent.parameters())
    n = len(rec.steps)
    grads = None
    seen: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {"a": [], "v": []}
    for k, step in enumerate(rec.steps):
        y = learner.labels[step.idx]
        mask = (y > 0.5).float()
        lp_a, lp_v, p_a, p_v = learner.policy_log_probs(rec, k, reduce=False, agent=agent)
        loss = torch.zeros((), device=dev)
        for (m, t, b, _), lp, p in zip(mods, (lp_a, lp_v), (p_a, p_v)):
            r_known, undone = known[m][k]
            okf = (~undone).float().unsqueeze(-1)
            r = (r_known.unsqueeze(-1) + t.to(dev).unsqueeze(0) * okf).expand_as(mask)
            adv = r - b.unsqueeze(0)
            if cfg.adv_norm:
                adv = adv / stds[m]
            loss = loss - (adv.detach() * lp * mask).sum(-1).mean()
            if cfg.entropy_weight > 0:
                pc = p.clamp(1e-6, 1 - 1e-6)
                ent = -(pc * torch.log(pc) + (1 - pc) * torch.log1p(-pc))
                loss = loss - cfg.entropy_weight * (ent * mask).sum() / mask.sum().clamp_min(1.0)
            seen[m].append((r, mask))
        grads = _add(grads, torch.autograd.grad(loss * (1.0 / n), params, allow_unused=True))
    obj = 0.0
    for m, _, b, vb in mods:
        r = torch.cat([x for x, _ in seen[m]])
        mask = torch.cat([x for _, x in seen[m]])
        adv = r - b.unsqueeze(0)
        if cfg.adv_norm:
            adv = adv / stds[m]
        obj += float((adv * mask).sum() / mask.sum().clamp_min(1.0)) / 2
        _update_vector_baseline(vb, r, mask, b)
    return grads, obj, rt


def _update_vector_baseline(vb: Any, r: torch.Tensor, mask: torch.Tensor, b: torch.Tensor) -> None:
    """Baseline statistics over present labels, per class or pooled."""
    sq = (r - b.unsqueeze(0)) ** 2
    if vb.value.numel() > 1:
        cnt = mask.sum(0)
        vb.update((r * mask).sum(0) / cnt.clamp_min(1.0),
                  (sq * mask).sum(0) / cnt.clamp_min(1.0), cnt > 0)
    else:
        cnt = mask.sum()
        vb.update(((r * mask).sum() / cnt.clamp_min(1.0)).reshape(1),
                  ((sq * mask).sum() / cnt.clamp_min(1.0)).reshape(1), (cnt > 0).reshape(1))
