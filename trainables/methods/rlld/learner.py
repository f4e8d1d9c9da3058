"""RLLD: reinforcement-learning label denoising for audio-visual video parsing, in plain PyTorch.

Two networks train jointly (from the RLLD paper):

* the label-denoising **agent** (:class:`trainables.methods.rlld.agent.RLLDAgent`): per video and
  modality it sees the segment features and the original weak labels and keeps or removes each
  label with a Bernoulli action (Eq. 1-5);
* the **task network**, HAN on the features only, trained on the revised labels: video-level
  target ``y = rev_a OR rev_v`` (Eq. 6), audio/visual targets ``rev_a``/``rev_v`` (Eq. 7-8), with
  JoMoLD's task settings (Adam 5e-4, x0.25 every 6 epochs, 25 epochs).

A *step* is one state: a batch of 128 training videos; consecutive batches overlap by a quarter of
their videos (stride 96, :func:`overlapping_batches`). Per step the agent acts, the task network
takes one optimiser step on the revised labels, the learner publishes the task weights and
requests a validation pass; the validation result is the *terminal reward* (audio branch:
``seg_A/100 x 0.1``, visual branch: ``event_V/100 x 0.1``; metric per branch and scale
configurable). The *soft inter-reward* per video and modality (:func:`inter_reward`) is
``alpha1 * exp(-(KL(l_soft||l) + KL(l||l_soft))/2) + alpha2 * cos(l_soft, l)``. An action that
removes every label of a video (both modalities) is undone and rewarded ``-1``
(:func:`guard_all_removed`).

Policy gradient (REINFORCE, Monte Carlo over the episode): each step's actions over its videos form
an episode; ``grad J ~ mean_i (R_i - b) grad log pi(a_i | s_i)`` per modality, with ``R_i =
R_terminal + R_inter,i`` (or ``-1`` for an undone video) and ``b`` the baseline at acting time.
The update for step t is applied when step t's reward arrives. Until then the learner keeps what
defines step t's log-probabilities: the state (row indices), the actions, the RNG state of the
acting forward (dropout) and, when updates may land in between (asynchronous mode), a copy of the
acting parameters. When the reward arrives it recomputes ``log pi(a_t | s_t)`` with exactly those
parameters and dropout draws and applies that gradient with Adam: the exact on-policy gradient of
step t, applied after at most ``staleness`` other agent updates. (Keeping the autograd graph
itself is not an option: the in-place optimiser updates of later steps invalidate it; splitting
the gradient into three parts at acting time is exact too but costs three backward passes.)

Our additions (not in the paper), each switchable:

* ``baseline=True``: a moving-average reward baseline per modality (variance reduction);
* ``keep_init=0.9``: the agent starts by keeping most labels (see the agent module);
* ``terminal_delta=False`` (off by default): when on, step t's terminal reward is
  ``score(t) - score(t')`` with t' the latest earlier step whose evaluation has arrived (t - 1 in
  sync mode), i.e. the validation *improvement* the step's task update brought, rather than the
  validation level, most of which is the task network's slow trend and not the step's actions;
* per-(class, modality) credit (off by default; the paper credits every action of a branch with
  that branch's score): ``terminal_credit="class"`` credits an action on class c of modality m with
  class c's validation score of modality m (``class_score``: ``ll``, the log-likelihood of the
  video-level modality truth under the task network's ``a_prob``/``v_prob``, or per-class F1),
  ``class_baseline`` keeps one moving-average baseline per (class, modality), ``adv_norm`` divides
  advantages by a running std, ``entropy_weight`` adds an entropy bonus and ``inter_weight`` scales
  the soft inter-reward. Why: on LLP-sim the paper's rewards teach the agent to keep every label
  (the inter-reward costs ~0.5 per removal, the batch-level terminal reward moves ~0.002 per step
  and is shared by ~500 actions on 25 classes). ``reward_preset="stable"`` names the combination
  that denoises there (:data:`REWARD_PRESETS`; figures in docs/sweeps.md);
* asynchronous rewards: evaluations run on an :class:`Evaluator` (in process here, a pool of Ray
  actors in ``orchestrator/rlld_pool.py``); the learner blocks only when the oldest pending
  evaluation is more than ``staleness`` (S) steps old, so at most S evaluations are pending after
  a step and every reward is applied at most S steps late, even when actors finish out of order;
  ``sync=True`` waits for every reward (the paper's schedule).

Not supported: ``torch.distributed`` (one learner process; the parallelism is in the actors).

Inter-reward definition details (our reading, the paper gives only the formula): ``l_soft`` is
the original label vector smoothed as ``(1 - s) * y + s / C`` (``s = inter_smoothing``) and both
``l_soft`` and ``l`` are normalised to distributions over classes (``+ eps`` before normalising
and inside the logs) for the KL terms; the cosine uses the unnormalised vectors.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, Protocol

import torch
from torch import nn

from trainables.tasks.avvp.data import AVVPSplit
from trainables.methods.rlld.agent import (
    RLLDAgent,
    action_log_prob,
    revise_labels,
    sample_actions,
)
from trainables.core.seed import set_seed

Reporter = Callable[[int, dict[str, float], Callable[[], dict]], None]
SCORE_NAMES = ("seg_A", "seg_V", "seg_AV", "seg_Type", "seg_Event",
               "event_A", "event_V", "event_AV", "event_Type", "event_Event")


_DTYPES = {"auto": None, "float32": torch.float32, "float16": torch.float16,
           "bfloat16": torch.bfloat16}


@dataclass
class Config:
    """RLLD settings; defaults are the paper's (task settings as JoMoLD's) unless marked ours.

    Attributes:
        epochs: Training epochs.
        batch_size: Videos per state (step).
        overlap: Share of a state's videos shared with the next state (1/4 -> stride 96).
        lr: Task network Adam learning rate.
        lr_step: Task network StepLR period in epochs.
        lr_gamma: Task network StepLR factor.
        d_model: HAN hidden size.
        dropout: HAN dropout.
        cls_dropout: HAN dropout on visual segment features before the classifier (JoMoLD's
            official code: 0.5).
        cl_weight: Weight of the task network's audio-visual contrastive term (0 = off; the
            "RLLD+CL" row: 1, JoMoLD's "w/ CL" term, :func:`trainables.tasks.avvp.han.contrastive_loss`).
        cl_temperature: Its similarity temperature.
        cl_smoothing: Its target smoothing.
        protocol: Decoding protocol for validation/test scores (``han`` or ``jomold``).
        threshold: Decoding threshold.
        agent_lr: Agent Adam learning rate.
        agent_d_model: Agent hidden size.
        agent_dropout: Agent attention dropout.
        use_label_input: Label vector in the state (Eq. 1); False is the "w/o label" ablation.
        keep_init: Initial keep probability of the agent (ours).
        use_inter_reward: Soft inter-reward on; False is the "w/o inter-reward" ablation.
        alpha1: Weight of the KL-based term R1.
        alpha2: Weight of the cosine term R2.
        inter_smoothing: Label smoothing ``s`` of ``l_soft`` (ours: the paper gives no value).
        inter_eps: Epsilon inside the logs of the KL terms.
        terminal_metric_a: Validation score driving the audio branch's terminal reward.
        terminal_metric_v: Validation score driving the visual branch's terminal reward.
        terminal_scale: Terminal reward = score/100 x this.
        terminal_delta: Credit each step with the *change* of its terminal reward since the
            previous evaluation instead of its level (ours; a REINFORCE variance reduction, off by
            default = the paper's level reward). The first step gets 0.
        all_removed_reward: Reward of an action that removed every label of a video.
        baseline: Moving-average reward baseline (ours).
        baseline_momentum: Its momentum.
        inter_weight: Factor on the soft inter-reward (ours; 1.0 = the paper's ``R_terminal +
            R_inter``).
        terminal_credit: Which terminal reward an action is credited with. ``branch`` (paper):
            every action of a branch gets that branch's validation score. ``class`` (ours): an
            action on class c of modality m gets class c's validation score of modality m
            (:func:`class_scores`), so a class's removals are judged by what they did to that
            class rather than drowned in the other 24 classes' fluctuations.
        class_score: Per-class validation score used by ``terminal_credit="class"`` (ours;
            :func:`class_scores`): ``ll`` (log-likelihood of the video-level modality truth under
            the task network's audio/visual probabilities), ``soft`` (soft segment-level F1 from
            the frame probabilities) or ``hard`` (segment-level F1 of the decoded predictions).
        class_baseline: One moving-average baseline per (class, modality) instead of per modality
            (ours; needs ``baseline``).
        adv_norm: Divide advantages by a running standard deviation, per (class, modality) with
            ``class_baseline`` else per modality (ours; makes the update size independent of
            ``terminal_scale``).
        entropy_weight: Bonus ``weight x`` mean entropy of the keep decisions on present labels
            (ours; 0 = off).
        counterfactual: Terminal reward = validation score after the step's task update minus the
            score after the same update (same weights, optimiser state and dropout draws) on the
            *original* labels (ours, off by default): a self-critical baseline whose reference
            policy is "keep every label", so what is credited is exactly the effect of the
            agent's label changes, without the task network's learning trend or the batch
            composition. Costs one more task step on a copy and one more validation pass per
            step (both in the same evaluation request). Replaces ``terminal_delta``.
        reward_preset: ``paper`` (default) or ``stable`` (ours, :data:`REWARD_PRESETS`): a named
            set of the options above. A preset sets each of its fields that was not passed to the
            constructor, so any field you pass (even at its paper-default value) wins.
        staleness: Most evaluations pending before the learner blocks (S).
        sync: Wait for every reward before the next step (the paper's schedule).
        eval_batch_size: Videos per forward in validation passes.
        eval_actors: Validation actors in the Ray pool (``trainables.methods.rlld.pool``).
        eval_actor_gpus: GPUs per actor (1, a fraction, or 0 for CPU actors).
        eval_actor_cpus: CPUs per actor.
        eval_max_restarts: Restarts of a dead actor before the pool gives up on it.
        denoise_metrics: Score the agent's greedy decisions against train truth when present.
        seed: Seed for :func:`trainables.core.seed.set_seed`.
        select_metric: Validation metric selecting the reported epoch.
        feature_dtype: Resident feature storage: ``auto`` (bf16 on CUDA, fp32 on CPU),
            ``float32``, ``float16`` or ``bfloat16``.
    """

    epochs: int = 25
    batch_size: int = 128
    overlap: float = 0.25
    lr: float = 5e-4
    lr_step: int = 6
    lr_gamma: float = 0.25
    d_model: int = 512
    dropout: float = 0.1
    cls_dropout: float = 0.0
    cl_weight: float = 0.0
    cl_temperature: float = 0.2
    cl_smoothing: float = 0.1
    protocol: str = "han"
    threshold: float = 0.5
    agent_lr: float = 1e-4
    agent_d_model: int = 512
    agent_dropout: float = 0.1
    use_label_input: bool = True
    keep_init: float = 0.9
    use_inter_reward: bool = True
    alpha1: float = 0.6
    alpha2: float = 0.4
    inter_smoothing: float = 0.1
    inter_eps: float = 1e-6
    terminal_metric_a: str = "seg_A"
    terminal_metric_v: str = "event_V"
    terminal_scale: float = 0.1
    terminal_delta: bool = False
    all_removed_reward: float = -1.0
    baseline: bool = True
    baseline_momentum: float = 0.9
    inter_weight: float = 1.0
    terminal_credit: str = "branch"
    class_score: str = "ll"
    class_baseline: bool = False
    adv_norm: bool = False
    entropy_weight: float = 0.0
    counterfactual: bool = False
    reward_preset: str = "paper"
    staleness: int = 2
    sync: bool = False
    eval_batch_size: int = 2048
    eval_actors: int = 2
    eval_actor_gpus: float = 0.0
    eval_actor_cpus: float = 1.0
    eval_max_restarts: int = 3
    denoise_metrics: bool = True
    seed: int = 0
    select_metric: str = "val/seg_Type"
    feature_dtype: str = "auto"

    def __new__(cls, *args: Any, **kwargs: Any) -> Config:
        # Remember which fields the caller passed, so a reward preset fills in only the others
        # (a sweep that samples ``use_inter_reward=True`` next to ``reward_preset="stable"`` keeps
        # its value). Not a field: asdict/eq/replace ignore it, and replace(), asdict() round trips
        # and unpickled copies pass or hold already-resolved values.
        self = super().__new__(cls)
        names = [f.name for f in fields(cls)]
        object.__setattr__(self, "_explicit", frozenset(names[:len(args)]) | frozenset(kwargs))
        return self

    def __post_init__(self) -> None:
        if self.reward_preset not in REWARD_PRESETS:
            raise ValueError(f"Config.reward_preset must be one of {sorted(REWARD_PRESETS)}, "
                             f"got {self.reward_preset!r}")
        explicit = getattr(self, "_explicit", frozenset())
        for name, value in REWARD_PRESETS[self.reward_preset].items():
            if name not in explicit:
                setattr(self, name, value)
        if self.terminal_credit not in ("branch", "class"):
            raise ValueError(f"Config.terminal_credit must be 'branch' or 'class', "
                             f"got {self.terminal_credit!r}")
        if self.class_score not in ("ll", "soft", "hard"):
            raise ValueError(f"Config.class_score must be 'll', 'soft' or 'hard', "
                             f"got {self.class_score!r}")
        if self.entropy_weight < 0 or self.inter_weight < 0:
            raise ValueError("Config.entropy_weight and Config.inter_weight must be >= 0")
        if self.feature_dtype not in _DTYPES:
            raise ValueError(f"Config.feature_dtype must be one of {sorted(_DTYPES)}, "
                             f"got {self.feature_dtype!r}")
        if self.protocol not in ("han", "jomold"):
            raise ValueError(f"Config.protocol must be 'han' or 'jomold', got {self.protocol!r}")
        if self.cl_weight < 0 or self.cl_temperature <= 0 or not 0 <= self.cl_smoothing <= 1:
            raise ValueError("Config.cl_weight must be >= 0, cl_temperature > 0 and cl_smoothing "
                             f"in [0, 1]; got {self.cl_weight}, {self.cl_temperature}, "
                             f"{self.cl_smoothing}")
        if not 0 <= self.cls_dropout < 1:
            raise ValueError(f"Config.cls_dropout must be in [0, 1), got {self.cls_dropout}")
        for name in ("terminal_metric_a", "terminal_metric_v"):
            if getattr(self, name) not in SCORE_NAMES:
                raise ValueError(f"Config.{name}={getattr(self, name)!r}: expected one of "
                                 f"{', '.join(SCORE_NAMES)}")
        if not 0.0 <= self.overlap < 1.0:
            raise ValueError(f"Config.overlap must be in [0, 1), got {self.overlap}")
        if self.staleness < 0:
            raise ValueError(f"Config.staleness must be >= 0, got {self.staleness}")
        if self.batch_size < 1 or self.epochs < 0:
            raise ValueError("Config.batch_size must be >= 1 and Config.epochs >= 0")


# Named reward designs (ours, except "paper"). "stable": see the module docstring and docs/sweeps.md
# for why each option is there; measured on llp-sim-small: docs/sweeps.md.
REWARD_PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    "stable": {
        "use_inter_reward": False,
        "counterfactual": True,
        "terminal_credit": "class",
        "class_score": "ll",
        "class_baseline": True,
        "adv_norm": True,
        "agent_lr": 1e-3,
    },
}


# --------------------------------------------------------------------------------------------
# Rewards
# --------------------------------------------------------------------------------------------

def soft_labels(y: torch.Tensor, smoothing: float) -> torch.Tensor:
    """``l_soft = (1 - s) * y + s / C`` for (B, C) 0/1 labels."""
    return (1.0 - smoothing) * y.float() + smoothing / y.shape[-1]


def _as_dist(x: torch.Tensor, eps: float) -> torch.Tensor:
    x = x.float() + eps
    return x / x.sum(dim=-1, keepdim=True)


def inter_reward(y: torch.Tensor, revised: torch.Tensor, *, alpha1: float = 0.6,
                 alpha2: float = 0.4, smoothing: float = 0.1, eps: float = 1e-6) -> torch.Tensor:
    """Soft inter-reward per video: ``alpha1 * R1 + alpha2 * R2`` (see the module docstring).

    Args:
        y: (B, C) original labels.
        revised: (B, C) revised labels of one modality.
        alpha1: Weight of ``R1 = exp(-(KL(l_soft||l) + KL(l||l_soft)) / 2)``.
        alpha2: Weight of ``R2 = cos(l_soft, l)``.
        smoothing: Smoothing of ``l_soft``.
        eps: Epsilon in the logs and the normalisation.

    Returns:
        (B,) float32 rewards.
    """
    ls = soft_labels(y, smoothing)
    p, q = _as_dist(ls, eps), _as_dist(revised, eps)
    lp, lq = torch.log(p + eps), torch.log(q + eps)
    kl_pq = (p * (lp - lq)).sum(-1)
    kl_qp = (q * (lq - lp)).sum(-1)
    r1 = torch.exp(-(kl_pq + kl_qp) / 2.0)
    r2 = torch.nn.functional.cosine_similarity(ls, revised.float(), dim=-1, eps=eps)
    return alpha1 * r1 + alpha2 * r2


def guard_all_removed(y: torch.Tensor, rev_a: torch.Tensor, rev_v: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Undoes actions that removed every label of a video.

    Args:
        y: (B, C) original labels.
        rev_a: (B, C) revised audio labels.
        rev_v: (B, C) revised visual labels.

    Returns:
        ``(rev_a, rev_v, undone)``: labels with undone videos reset to ``y`` in both modalities,
        and the (B,) bool mask of undone videos (they get ``all_removed_reward``).
    """
    had = y.sum(-1) > 0
    undone = had & (rev_a.sum(-1) == 0) & (rev_v.sum(-1) == 0)
    m = undone.unsqueeze(-1)
    yf = y.float()
    return torch.where(m, yf, rev_a), torch.where(m, yf, rev_v), undone


def terminal_reward(metrics: Mapping[str, float], cfg: Config) -> tuple[float, float]:
    """``(R_terminal_a, R_terminal_v)`` from a validation result (keys ``val/<score>``, 0..100)."""
    def get(name: str) -> float:
        for k in (f"val/{name}", name):
            if k in metrics:
                return float(metrics[k])
        raise KeyError(f"validation result has no {name!r}; keys: {sorted(metrics)}")
    s = cfg.terminal_scale / 100.0
    return get(cfg.terminal_metric_a) * s, get(cfg.terminal_metric_v) * s


def class_terminal_reward(metrics: Mapping[str, float], cfg: Config, num_classes: int
                          ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-class terminal rewards ``(T_a, T_v)``, each (C,): ``val_cls_<m>/<c> / 100 x scale``."""
    s = cfg.terminal_scale / 100.0
    try:
        return tuple(torch.tensor([float(metrics[f"val_cls_{m}/{c}"]) * s
                                   for c in range(num_classes)]) for m in ("a", "v"))
    except KeyError as e:
        raise KeyError(f"terminal_credit='class' needs per-class validation scores; missing {e} "
                       f"(is the evaluator's config the learner's?)") from None


def noise_auc(keep_p: torch.Tensor, noisy: torch.Tensor) -> float:
    """ROC AUC of ``1 - keep_p`` for telling noisy labels (True) from clean ones (ties count 1/2).

    0.5 is chance, 1.0 means every noisy label has a lower keep probability than every clean one;
    NaN when either group is empty.
    """
    keep_p, noisy = keep_p.float().flatten().cpu(), noisy.bool().flatten().cpu()
    n_pos, n_neg = int(noisy.sum()), int((~noisy).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    score = -keep_p
    order = torch.argsort(score)
    s_sorted = score[order]
    ranks = torch.empty_like(score)
    ranks[order] = torch.arange(1, len(score) + 1, dtype=score.dtype)
    # Average ranks over ties.
    uniq, inv, counts = torch.unique(s_sorted, return_inverse=True, return_counts=True)
    first = torch.cumsum(counts, 0) - counts + 1
    avg = first.to(score.dtype) + (counts.to(score.dtype) - 1) / 2
    ranks[order] = avg[inv]
    u = float(ranks[noisy].sum()) - n_pos * (n_pos + 1) / 2
    return u / (n_pos * n_neg)


def reinforce_loss(log_prob: torch.Tensor, reward: torch.Tensor, baseline: float = 0.0
                   ) -> torch.Tensor:
    """REINFORCE surrogate ``-mean((R - b) * log pi)``; minimising it ascends expected reward."""
    return -((reward.detach() - baseline) * log_prob).mean()


class MovingAverageBaseline:
    """Exponential moving average of rewards (ours); the first update sets it directly."""

    def __init__(self, momentum: float = 0.9, enabled: bool = True):
        self.momentum = momentum
        self.enabled = enabled
        self.value = 0.0
        self.initialised = False

    def __call__(self) -> float:
        return self.value if (self.enabled and self.initialised) else 0.0

    def update(self, mean_reward: float) -> None:
        if not self.initialised:
            self.value, self.initialised = float(mean_reward), True
        else:
            self.value = self.momentum * self.value + (1.0 - self.momentum) * float(mean_reward)

    def state_dict(self) -> dict[str, Any]:
        return {"value": self.value, "initialised": self.initialised}

    def load_state_dict(self, s: Mapping[str, Any]) -> None:
        self.value, self.initialised = float(s["value"]), bool(s["initialised"])


class VectorBaseline:
    """Moving-average reward baseline and running advantage variance per entry (ours).

    One entry per modality (size 1) or per (class, modality) (size C). An entry is set directly by
    its first update and only updated when present in a batch, so rare classes keep their own
    statistics instead of drifting toward the frequent classes'.

    Args:
        size: Number of entries.
        momentum: EMA momentum of both the mean and the variance.
        enabled: When False the baseline is 0 (variances are still tracked for ``adv_norm``).
    """

    def __init__(self, size: int, momentum: float = 0.9, enabled: bool = True):
        self.momentum = momentum
        self.enabled = enabled
        self.value = torch.zeros(size)
        self.var = torch.ones(size)
        self.seen = torch.zeros(size, dtype=torch.bool)
        # The variance starts at its first *non-zero* observation: with terminal_delta the first
        # step's credit is exactly 0, and a variance of 0 would blow up every later advantage.
        self.var_seen = torch.zeros(size, dtype=torch.bool)

    def __call__(self) -> torch.Tensor:
        """The baseline per entry, (size,) (0 where disabled or never updated)."""
        if not self.enabled:
            return torch.zeros_like(self.value)
        return torch.where(self.seen, self.value, torch.zeros_like(self.value))

    def std(self) -> torch.Tensor:
        """Running standard deviation of the advantage per entry (1 before the first non-zero
        observation)."""
        return self.var.clamp_min(1e-12).sqrt()

    def update(self, mean_reward: torch.Tensor, mean_sq_adv: torch.Tensor,
               present: torch.Tensor) -> None:
        """EMA step of the entries in ``present`` (bool); ``mean_sq_adv``: mean of ``(R - b)^2``."""
        m = self.momentum
        mean_reward, mean_sq_adv = mean_reward.float().cpu(), mean_sq_adv.float().cpu()
        present = present.cpu()
        first = present & ~self.seen
        ema_v = m * self.value + (1.0 - m) * mean_reward
        self.value = torch.where(first, mean_reward, torch.where(present, ema_v, self.value))
        self.seen = self.seen | present
        has_var = present & (mean_sq_adv > 0)
        first_var = has_var & ~self.var_seen
        ema_s = m * self.var + (1.0 - m) * mean_sq_adv
        self.var = torch.where(first_var, mean_sq_adv,
                               torch.where(present & self.var_seen, ema_s, self.var))
        self.var_seen = self.var_seen | has_var

    def state_dict(self) -> dict[str, Any]:
        return {"value": self.value.clone(), "var": self.var.clone(), "seen": self.seen.clone(),
                "var_seen": self.var_seen.clone()}

    def load_state_dict(self, s: Mapping[str, Any]) -> None:
        self.value, self.var = s["value"].float().cpu(), s["var"].float().cpu()
        self.seen, self.var_seen = s["seen"].bool().cpu(), s["var_seen"].bool().cpu()


# --------------------------------------------------------------------------------------------
# Batches
# --------------------------------------------------------------------------------------------

def stride_of(batch_size: int, overlap: float) -> int:
    """Distance between the starts of consecutive states (128, 1/4 -> 96)."""
    return max(1, batch_size - int(round(batch_size * overlap)))


def overlapping_batches(n: int, batch_size: int, overlap: float,
                        generator: torch.Generator | None = None) -> list[torch.Tensor]:
    """One epoch of states: a shuffled order cut into windows of ``batch_size`` every stride.

    Window k covers positions ``[k * stride, k * stride + batch_size)`` of the permutation, wrapping
    around at the end, so consecutive windows share ``batch_size - stride`` videos and every video
    is in at least one window. ``ceil(n / stride)`` windows; with ``n <= batch_size`` one window.
    """
    perm = torch.randperm(n, generator=generator)
    if n <= batch_size:
        return [perm]
    stride = stride_of(batch_size, overlap)
    steps = math.ceil(n / stride)
    ar = torch.arange(batch_size)
    return [perm[(k * stride + ar) % n] for k in range(steps)]


# --------------------------------------------------------------------------------------------
# Evaluators
# --------------------------------------------------------------------------------------------

class Evaluator(Protocol):
    """Where terminal rewards come from.

    ``submit(step, state_dict)`` requests a validation pass of the task weights of ``step``;
    ``poll()`` returns (and forgets) the results that have arrived as ``[(step, metrics)]`` with
    ``val/<score>`` keys (0..100) and ``eval_s`` (seconds the pass took); ``wait(step)`` blocks
    until ``step``'s result is available to ``poll``; ``pending()`` counts submitted steps whose
    results ``poll`` has not yet returned; ``close()`` releases resources. An evaluator may return
    a step more than once (after a retry): the learner applies each step once.
    Optional attribute ``num_workers`` (default 1) is used for the utilisation metric.
    """

    def submit(self, step: int, state_dict: Mapping[str, torch.Tensor]) -> None: ...

    def poll(self) -> list[tuple[int, dict[str, float]]]: ...

    def wait(self, step: int) -> None: ...

    def pending(self) -> int: ...

    def close(self) -> None: ...


def build_task_model(cfg: Config, dims: tuple[int, int, int], num_classes: int = 25) -> nn.Module:
    """HAN sized for the data (``dims`` = audio, visual, motion feature sizes)."""
    from trainables.tasks.avvp.han import HAN

    a, v, m = dims
    return HAN(audio_dim=a, visual_dim=v, motion_dim=m, d_model=cfg.d_model,
               num_classes=num_classes, dropout=cfg.dropout, cls_dropout=cfg.cls_dropout)


def class_scores(probs: Mapping[str, torch.Tensor], split: AVVPSplit, *, kind: str = "soft",
                 protocol: str = "han", threshold: float = 0.5, eps: float = 1e-6
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-class validation score of the audio and the visual branch (ours).

    ``ll``: 100 x the mean log-likelihood of the video-level modality truth (``gt.any(time)``)
    under the task network's video-level audio / visual probabilities (``a_prob``, ``v_prob``):
    exactly what a revised modality label trains, scored by a proper scoring rule, so it improves
    when the training targets of that class and modality get closer to the truth (<= 0).

    ``soft`` / ``hard``: segment-level ``F1_c = 2 TP_c / (2 TP_c + FP_c + FN_c)`` (0..100) over all
    segments; ``soft`` counts with the frame probabilities (``TP = sum p g``,
    ``FP = sum p (1 - g)``, ``FN = sum (1 - p) g``), ``hard`` the decoded 0/1 predictions; a class with neither truth nor
    predictions scores 0. Caveat measured on LLP-sim: for a class whose segments are often positive,
    F1 grows with the level of the predictions, so removing labels, even noisy ones, tends to lower
    it; ``ll`` has no such bias.

    Returns:
        ``(s_a, s_v)``, each (C,) float32.
    """
    if kind == "ll":
        out = []
        for p, g in ((probs["a_prob"], split.gt_audio), (probs["v_prob"], split.gt_visual)):
            t = g.bool().any(dim=1).float()
            p = p.float().to(t.device).clamp(eps, 1.0 - eps)
            out.append(100.0 * (t * torch.log(p) + (1.0 - t) * torch.log1p(-p)).mean(dim=0))
        return out[0], out[1]
    if kind == "hard":
        from trainables.tasks.avvp.metrics import decode

        pa, pv = decode(probs["frame_prob"], probs["a_prob"], probs["v_prob"],
                        probs["global_prob"], protocol=protocol, threshold=threshold)
        pa, pv = torch.as_tensor(pa), torch.as_tensor(pv)
    else:
        fp = probs["frame_prob"].float()
        pa, pv = fp[:, :, 0], fp[:, :, 1]
    out = []
    for p, g in ((pa, split.gt_audio), (pv, split.gt_visual)):
        p = p.float().to(g.device)
        g = g.float()
        tp = (p * g).sum(dim=(0, 1))
        fp_ = (p * (1.0 - g)).sum(dim=(0, 1))
        fn = ((1.0 - p) * g).sum(dim=(0, 1))
        out.append(100.0 * 2.0 * tp / (2.0 * tp + fp_ + fn + eps))
    return out[0], out[1]


def validation_scores(model: nn.Module, split: AVVPSplit, cfg: Config) -> dict[str, float]:
    """``val/<score>`` of ``model`` on ``split`` plus ``eval_s`` (the pass's wall time); with
    ``terminal_credit="class"`` also ``val_cls_a/<c>`` and ``val_cls_v/<c>``
    (:func:`class_scores`)."""
    from trainables.tasks.avvp.eval import predict, score

    t0 = time.perf_counter()
    probs = predict(model, split, batch_size=cfg.eval_batch_size)
    out = score(probs, split, prefix="val", protocol=cfg.protocol, threshold=cfg.threshold)
    if cfg.terminal_credit == "class":
        f_a, f_v = class_scores(probs, split, kind=cfg.class_score, protocol=cfg.protocol,
                                threshold=cfg.threshold)
        out.update({f"val_cls_a/{c}": float(x) for c, x in enumerate(f_a.tolist())})
        out.update({f"val_cls_v/{c}": float(x) for c, x in enumerate(f_v.tolist())})
    out["eval_s"] = time.perf_counter() - t0
    return out


CF_PREFIX = "cf/"  # weight keys of the counterfactual update in an evaluation request
CF_RESULT = "cf:"  # score keys of the counterfactual update in an evaluation result


def counterfactual_metrics(metrics: Mapping[str, float]) -> dict[str, float]:
    """The counterfactual update's scores of an evaluation result, with their plain keys."""
    return {k[len(CF_RESULT):]: v for k, v in metrics.items() if k.startswith(CF_RESULT)}


class LocalEvaluator:
    """Synchronous in-process evaluator: ``submit`` runs the validation pass at once.

    Args:
        cfg: RLLD config (model size, protocol, threshold).
        split: The validation split, already on ``device``.
        device: Where the evaluation model lives.
    """

    num_workers = 1

    def __init__(self, cfg: Config, split: AVVPSplit, device: torch.device | str = "cpu"):
        from trainables.tasks.avvp.eval import feature_dims

        self.cfg = cfg
        self.split = split
        self.device = torch.device(device)
        self.model = build_task_model(cfg, feature_dims(split), split.labels.shape[-1]).to(self.device)
        self._ready: dict[int, dict[str, float]] = {}

    @classmethod
    def from_path(cls, cfg: Config, data_path, device: torch.device | str = "cpu") -> "LocalEvaluator":
        """Loads the validation split of ``data_path`` onto ``device``."""
        from trainables.tasks.avvp.eval import load_resident

        dev = torch.device(device)
        split = load_resident(data_path, dev, splits=("val",),
                              feature_dtype=_DTYPES[cfg.feature_dtype])["val"]
        return cls(cfg, split, dev)

    def evaluate(self, state_dict: Mapping[str, torch.Tensor]) -> dict[str, float]:
        """Scores task weights on the validation split.

        Keys prefixed ``cf/`` are a second set of weights (the ``counterfactual`` update); their
        scores come back prefixed ``cf:`` and ``eval_s`` covers both passes.
        """
        main = {k: v for k, v in state_dict.items() if not k.startswith(CF_PREFIX)}
        cf = {k[len(CF_PREFIX):]: v for k, v in state_dict.items() if k.startswith(CF_PREFIX)}
        self.model.load_state_dict(main)
        out = validation_scores(self.model, self.split, self.cfg)
        if cf:
            self.model.load_state_dict(cf)
            other = validation_scores(self.model, self.split, self.cfg)
            out.update({CF_RESULT + k: v for k, v in other.items() if k != "eval_s"})
            out["eval_s"] += other["eval_s"]
        return out

    def submit(self, step: int, state_dict: Mapping[str, torch.Tensor]) -> None:
        self._ready[int(step)] = self.evaluate(state_dict)

    def poll(self) -> list[tuple[int, dict[str, float]]]:
        out = sorted(self._ready.items())
        self._ready.clear()
        return out

    def wait(self, step: int) -> None:
        return None

    def pending(self) -> int:
        return len(self._ready)

    def close(self) -> None:
        self._ready.clear()


# --------------------------------------------------------------------------------------------
# The learner
# --------------------------------------------------------------------------------------------

@dataclass
class _PendingStep:
    """What step t keeps until its reward arrives: everything that defines log pi(a_t | s_t)."""

    step: int
    idx: torch.Tensor  # (B,) rows of the train split (the state)
    act_a: torch.Tensor  # (B, C) actions
    act_v: torch.Tensor
    undone: torch.Tensor  # (B,) bool: all labels removed, action undone
    r_known_a: torch.Tensor  # (B,) inter-rewards, or all_removed_reward for undone videos
    r_known_v: torch.Tensor
    base_a: Any  # baselines at acting time: float, or (C,)/(1,) tensors for element-wise credit
    base_v: Any
    version: int  # agent updates applied before acting
    params: dict[str, torch.Tensor] | None  # acting parameters (None: reuse the live agent)
    rng: tuple[torch.Tensor, torch.Tensor | None]  # CPU / CUDA RNG before the acting forward
    p_a: torch.Tensor  # (B, C) acting keep probabilities (for checks)
    p_v: torch.Tensor
    submitted_at: float


@dataclass
class _EpochStats:
    # Per-step sums stay 0-d device tensors until the epoch ends (see act_and_train).
    loss: Any = 0.0
    agent_obj: float = 0.0
    steps: int = 0
    applied: int = 0
    term_a: float = 0.0
    term_v: float = 0.0
    inter_sum: float = 0.0
    inter_n: int = 0
    pending_sum: float = 0.0
    staleness_sum: float = 0.0
    max_pending: int = 0
    max_staleness: int = 0
    eval_s: float = 0.0
    duplicates: int = 0
    kept_a: float = 0.0
    kept_v: float = 0.0
    positives: float = 0.0
    undone: int = 0
    videos: int = 0
    wait_s: float = 0.0


class Learner:
    """Runs RLLD steps against an :class:`Evaluator`; :func:`fit` wraps it in the epoch loop.

    Public for tests and benchmarks: ``applied_steps`` lists the steps whose rewards were applied,
    in order; ``max_pending`` the most evaluations ever pending after a step.
    """

    def __init__(self, cfg: Config, train: AVVPSplit, evaluator: Evaluator,
                 device: torch.device, *, dims: tuple[int, int, int]):
        from trainables.core.loop import make_optimizer

        self.cfg = cfg
        self.train = train
        self.evaluator = evaluator
        self.device = device
        c = train.labels.shape[-1]
        self.agent = RLLDAgent(*dims, num_classes=c, d_model=cfg.agent_d_model,
                               dropout=cfg.agent_dropout, use_labels=cfg.use_label_input,
                               keep_init=cfg.keep_init).to(device)
        self.task = build_task_model(cfg, dims, c).to(device)
        self.task_opt, self.task_sched = make_optimizer(self.task, cfg.lr, cfg.lr_step, cfg.lr_gamma)
        if cfg.counterfactual:
            # Reloaded from the real task network and optimiser before every step.
            self.cf_task = build_task_model(cfg, dims, c).to(device)
            self.cf_opt, _ = make_optimizer(self.cf_task, cfg.lr, cfg.lr_step, cfg.lr_gamma)
        self.agent_opt = torch.optim.Adam(self.agent.parameters(), lr=cfg.agent_lr)
        self.shadow: nn.Module | None = None  # holds acting parameters of stale steps
        self.version = 0  # agent updates applied so far
        self.base_a = MovingAverageBaseline(cfg.baseline_momentum, cfg.baseline)
        self.base_v = MovingAverageBaseline(cfg.baseline_momentum, cfg.baseline)
        # Our per-(class, modality) credit options use element-wise rewards (B, C); the paper's
        # path (per-video rewards, scalar baselines) stays exactly as it was.
        self.elementwise = (cfg.terminal_credit == "class" or cfg.class_baseline or cfg.adv_norm
                            or cfg.entropy_weight > 0)
        nb = c if cfg.class_baseline else 1
        self.vbase_a = VectorBaseline(nb, cfg.baseline_momentum, cfg.baseline)
        self.vbase_v = VectorBaseline(nb, cfg.baseline_momentum, cfg.baseline)
        self.batch_gen = torch.Generator().manual_seed(int(cfg.seed))
        self.act_gen = torch.Generator(device=device).manual_seed(int(cfg.seed) + 1)
        self.step = 0
        self.pending: dict[int, _PendingStep] = {}
        self.applied_steps: list[int] = []
        self._applied_set: set[int] = set()
        self.max_pending = 0
        self.stats = _EpochStats()
        # terminal_delta: recent terminal rewards by step (to difference against).
        self._term_hist: dict[int, tuple[float, float]] = {}

    # -- one step ----------------------------------------------------------------------------

    def _inputs(self, idx: torch.Tensor):
        from trainables.tasks.avvp.eval import batch_inputs

        return batch_inputs(self.train, idx, self.device)

    def _rng_state(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        cuda = torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None
        return torch.get_rng_state(), cuda

    def _policy(self, agent: nn.Module, a, v, m, y) -> tuple[torch.Tensor, torch.Tensor]:
        from trainables.core.dist import autocast

        agent.train()
        with autocast(self.device):
            out = agent(a, v, m, y)
        return out.p_a.float(), out.p_v.float()

    def policy_log_probs(self, rec: _PendingStep, reduce: bool = True
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Rebuilds step ``rec``'s acting forward (same parameters, same dropout draws).

        Returns:
            ``(lp_a, lp_v, p_a, p_v)`` with gradients flowing to the parameters of the agent that
            computes them (the live agent or the shadow copy holding the acting parameters);
            ``lp`` per video (B,), or per (video, class) (B, C) with ``reduce=False``.
        """
        agent = self.agent
        if rec.version != self.version:
            if rec.params is None:
                raise RuntimeError(f"step {rec.step}: agent changed since acting but its "
                                   f"parameters were not kept")
            agent = self._shadow()
            agent.load_state_dict(rec.params)
        a, v, m = self._inputs(rec.idx)
        y = self.train.labels[rec.idx]
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.set_rng_state(rec.rng[0])
            if rec.rng[1] is not None:
                torch.cuda.set_rng_state(rec.rng[1], self.device)
            p_a, p_v = self._policy(agent, a, v, m, y)
        return (action_log_prob(p_a, rec.act_a, y, reduce=reduce),
                action_log_prob(p_v, rec.act_v, y, reduce=reduce), p_a, p_v)

    def _shadow(self) -> nn.Module:
        if self.shadow is None:
            self.shadow = copy.deepcopy(self.agent)
        return self.shadow

    def act_and_train(self, idx: torch.Tensor) -> None:
        """Agent acts on the state ``idx``, task network steps on the revised labels, weights are
        submitted for evaluation (blocking per the staleness bound), arrived rewards applied."""
        cfg, st = self.cfg, self.stats
        idx = idx.to(self.device)
        a, v, m = self._inputs(idx)
        y = self.train.labels[idx]
        rng = self._rng_state()
        with torch.no_grad():
            p_a, p_v = self._policy(self.agent, a, v, m, y)
        act_a = sample_actions(p_a, self.act_gen)
        act_v = sample_actions(p_v, self.act_gen)
        rev_a, rev_v, undone = guard_all_removed(y, revise_labels(act_a, y), revise_labels(act_v, y))
        if cfg.use_inter_reward:
            kw = dict(alpha1=cfg.alpha1, alpha2=cfg.alpha2, smoothing=cfg.inter_smoothing,
                      eps=cfg.inter_eps)
            ri_a, ri_v = inter_reward(y, rev_a, **kw), inter_reward(y, rev_v, **kw)
            if cfg.inter_weight != 1.0:
                ri_a, ri_v = ri_a * cfg.inter_weight, ri_v * cfg.inter_weight
        else:
            ri_a = torch.zeros(len(idx), device=self.device)
            ri_v = torch.zeros_like(ri_a)
        r_known_a = torch.where(undone, torch.full_like(ri_a, cfg.all_removed_reward), ri_a)
        r_known_v = torch.where(undone, torch.full_like(ri_v, cfg.all_removed_reward), ri_v)
        # The acting parameters are needed only if another update lands before this step's
        # reward; in sync mode none can.
        params = None if cfg.sync else {k: t.detach().clone()
                                        for k, t in self.agent.state_dict().items()}
        if self.elementwise:
            b_a, b_v = self.vbase_a().to(self.device), self.vbase_v().to(self.device)
        else:
            b_a, b_v = self.base_a(), self.base_v()
        rec = _PendingStep(self.step, idx, act_a, act_v, undone, r_known_a, r_known_v,
                           b_a, b_v, self.version, params, rng, p_a, p_v, time.perf_counter())

        # Task network on the revised labels (Eq. 6-8).
        if cfg.counterfactual:
            self.cf_task.load_state_dict(self.task.state_dict())
            self.cf_opt.load_state_dict(copy.deepcopy(self.task_opt.state_dict()))
            task_rng = self._rng_state()
        loss = self._task_step(self.task, self.task_opt, (a, v, m), rev_a, rev_v)
        if cfg.counterfactual:
            # The same step on the original labels, with the same dropout draws.
            devices = [self.device] if self.device.type == "cuda" else []
            with torch.random.fork_rng(devices=devices):
                torch.set_rng_state(task_rng[0])
                if task_rng[1] is not None:
                    torch.cuda.set_rng_state(task_rng[1], self.device)
                yf = y.float()
                self._task_step(self.cf_task, self.cf_opt, (a, v, m), yf, yf)

        # Device tensors: no host sync per step (converted once per epoch).
        st.loss += loss.detach()
        st.steps += 1
        st.kept_a += (rev_a * y).sum()
        st.kept_v += (rev_v * y).sum()
        st.positives += y.sum()
        st.undone += undone.sum()
        st.videos += len(idx)
        st.inter_sum += ri_a.sum() + ri_v.sum()
        st.inter_n += 2 * len(idx)

        self.pending[self.step] = rec
        self.evaluator.submit(self.step, self.publish())
        self.step += 1
        self.collect(block=cfg.sync)

    def _task_step(self, model: nn.Module, opt: torch.optim.Optimizer, inputs: tuple,
                   y_a: torch.Tensor, y_v: torch.Tensor) -> torch.Tensor:
        """One HAN step (Eq. 6-8): video target = union of ``y_a`` and ``y_v``; returns the loss
        (plus the contrastive term with ``cl_weight``)."""
        from trainables.methods.han.train import contrastive_term
        from trainables.tasks.avvp.han import han_loss
        from trainables.core.dist import autocast

        model.train()
        with autocast(self.device):
            out = model(*inputs)
        loss = han_loss(out, torch.maximum(y_a, y_v), y_a, y_v) + contrastive_term(self.cfg, out)
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
        """Applies arrived rewards, then blocks while the oldest pending step is more than
        ``staleness`` steps old (so at most ``staleness`` evaluations stay pending), or until none
        is pending when ``block``."""
        st = self.stats
        self._apply(self.evaluator.poll())
        # Bounding the age of the oldest pending step (not just the count) also bounds each
        # reward's delay when actors finish out of order: at most S later steps are taken before
        # step t's update is applied, and at most S evaluations are pending after a step.
        limit = 0 if block else self.cfg.staleness
        while self.pending and min(self.pending) < self.step - limit:
            oldest = min(self.pending)
            t0 = time.perf_counter()
            self.evaluator.wait(oldest)
            st.wait_s += time.perf_counter() - t0
            got = self.evaluator.poll()
            if not got and oldest in self.pending and self.evaluator.pending() == 0:
                raise RuntimeError(f"evaluator lost step {oldest}: nothing pending, no result")
            self._apply(got)
        n_pending = len(self.pending)
        st.pending_sum += n_pending
        st.max_pending = max(st.max_pending, n_pending)
        self.max_pending = max(self.max_pending, n_pending)

    def drain(self) -> None:
        """Waits for and applies every pending reward."""
        self.collect(block=True)

    def _apply(self, results: list[tuple[int, dict[str, float]]]) -> None:
        for step, metrics in sorted(results, key=lambda r: r[0]):
            step = int(step)
            if step in self._applied_set or step not in self.pending:
                self.stats.duplicates += 1
                continue
            self._apply_one(self.pending.pop(step), metrics)

    def _apply_one(self, rec: _PendingStep, metrics: Mapping[str, float]) -> None:
        if self.elementwise:
            return self._apply_one_elementwise(rec, metrics)
        cfg = self.cfg
        rt_a, rt_v = terminal_reward(metrics, cfg)
        if cfg.counterfactual:
            cf_a, cf_v = terminal_reward(counterfactual_metrics(metrics), cfg)
            ct_a, ct_v = rt_a - cf_a, rt_v - cf_v
        else:
            ct_a, ct_v = self._credited_terminal(rec.step, rt_a, rt_v)
        okf = (~rec.undone).float()
        r_a = rec.r_known_a + ct_a * okf
        r_v = rec.r_known_v + ct_v * okf
        lp_a, lp_v, _, _ = self.policy_log_probs(rec)
        loss = reinforce_loss(lp_a, r_a, rec.base_a) + reinforce_loss(lp_v, r_v, rec.base_v)
        self.base_a.update(float(r_a.mean()))
        self.base_v.update(float(r_v.mean()))
        obj = float(((r_a - rec.base_a).mean() + (r_v - rec.base_v).mean()) / 2)
        self._step_agent(rec, loss, metrics, rt_a, rt_v, obj)

    def _step_agent(self, rec: _PendingStep, loss: torch.Tensor, metrics: Mapping[str, float],
                    rt_a: float, rt_v: float, obj: float) -> None:
        """Applies ``loss``'s gradient, taken through the policy that acted at ``rec``'s step
        (the shadow copy when the agent has moved on since), and books the applied reward."""
        st = self.stats
        agent = self.agent if rec.version == self.version else self.shadow
        grads = torch.autograd.grad(loss, list(agent.parameters()), allow_unused=True)
        for prm, g in zip(self.agent.parameters(), grads):
            prm.grad = g
        self.agent_opt.step()
        self.agent_opt.zero_grad(set_to_none=True)
        self.version += 1
        st.agent_obj += obj
        st.term_a += rt_a
        st.term_v += rt_v
        st.eval_s += float(metrics.get("eval_s", 0.0))
        lag = (self.step - 1) - rec.step
        st.staleness_sum += lag
        st.max_staleness = max(st.max_staleness, lag)
        st.applied += 1
        self.applied_steps.append(rec.step)
        self._applied_set.add(rec.step)

    def _apply_one_elementwise(self, rec: _PendingStep, metrics: Mapping[str, float]) -> None:
        """Step ``rec``'s update with per-(video, class) rewards (our credit options).

        ``R_ic = R_inter,i + T_c`` (``T_c`` the class's terminal reward with
        ``terminal_credit="class"``, else the branch's), advantage ``A_ic = R_ic - b_c`` with
        ``b`` per (class, modality) or per modality, divided by the running std with ``adv_norm``;
        loss ``-mean_i sum_c A_ic log pi(a_ic)`` over present labels, minus the entropy bonus.
        """
        cfg = self.cfg
        rt_a, rt_v = terminal_reward(metrics, cfg)
        y = self.train.labels[rec.idx]
        def levels(mt):
            if cfg.terminal_credit == "class":
                return class_terminal_reward(mt, cfg, y.shape[-1])
            r = terminal_reward(mt, cfg)
            return torch.tensor([r[0]]), torch.tensor([r[1]])

        ta, tv = levels(metrics)
        if cfg.counterfactual:
            ca, cv = levels(counterfactual_metrics(metrics))
            ta, tv = ta - ca, tv - cv
        else:
            ta, tv = self._credited_terminal(rec.step, ta, tv)
        mask = (y > 0.5).float()
        okf = (~rec.undone).float().unsqueeze(-1)
        lp_a, lp_v, p_a, p_v = self.policy_log_probs(rec, reduce=False)
        loss = torch.zeros((), device=self.device)
        obj = 0.0
        for r_known, t, b, vb, lp, p in ((rec.r_known_a, ta, rec.base_a, self.vbase_a, lp_a, p_a),
                                         (rec.r_known_v, tv, rec.base_v, self.vbase_v, lp_v, p_v)):
            r = (r_known.unsqueeze(-1) + t.to(self.device).unsqueeze(0) * okf).expand_as(mask)
            adv = r - b.unsqueeze(0)
            if cfg.adv_norm:
                adv = adv / vb.std().to(self.device).unsqueeze(0)
            loss = loss - (adv.detach() * lp * mask).sum(-1).mean()
            if cfg.entropy_weight > 0:
                pc = p.clamp(1e-6, 1 - 1e-6)
                ent = -(pc * torch.log(pc) + (1 - pc) * torch.log1p(-pc))
                loss = loss - cfg.entropy_weight * (ent * mask).sum() / mask.sum().clamp_min(1.0)
            obj += float((adv * mask).sum() / mask.sum().clamp_min(1.0)) / 2
            # Baseline statistics over present labels, per class or pooled.
            sq = (r - b.unsqueeze(0)) ** 2
            if vb.value.numel() > 1:
                cnt = mask.sum(0)
                vb.update((r * mask).sum(0) / cnt.clamp_min(1.0),
                          (sq * mask).sum(0) / cnt.clamp_min(1.0), cnt > 0)
            else:
                cnt = mask.sum()
                vb.update(((r * mask).sum() / cnt.clamp_min(1.0)).reshape(1),
                          ((sq * mask).sum() / cnt.clamp_min(1.0)).reshape(1), (cnt > 0).reshape(1))
        self._step_agent(rec, loss, metrics, rt_a, rt_v, obj)

    def _credited_terminal(self, step: int, rt_a, rt_v):
        """The terminal reward credited to ``step``: the level, or with ``terminal_delta`` the
        change since the latest earlier evaluation that has arrived (0 for the first). Floats,
        or per-class tensors with ``terminal_credit="class"``."""
        if not self.cfg.terminal_delta:
            return rt_a, rt_v
        earlier = [s for s in self._term_hist if s < step]
        prev = self._term_hist[max(earlier)] if earlier else (rt_a, rt_v)
        self._term_hist[step] = (rt_a, rt_v)
        keep = sorted(self._term_hist)[-(self.cfg.staleness + 2):]
        self._term_hist = {s: self._term_hist[s] for s in keep}
        return rt_a - prev[0], rt_v - prev[1]

    # -- epochs ------------------------------------------------------------------------------

    def _pool_counters(self) -> tuple[int, int]:
        """``(resubmits, duplicates)`` the evaluator has counted so far (0 for one without)."""
        return (int(getattr(self.evaluator, "resubmits", 0)),
                int(getattr(self.evaluator, "duplicates", 0)))

    def run_epoch(self) -> dict[str, float]:
        """One pass over the overlapping states, then drains pending rewards; returns metrics."""
        self.stats = _EpochStats()
        # The evaluator's own retry counters are cumulative: report this epoch's share.
        pool0 = self._pool_counters()
        t0 = time.perf_counter()
        for idx in overlapping_batches(len(self.train), self.cfg.batch_size, self.cfg.overlap,
                                       self.batch_gen):
            self.act_and_train(idx)
        self.drain()
        self.task_sched.step()
        wall = time.perf_counter() - t0
        st = self.stats
        workers = max(1, int(getattr(self.evaluator, "num_workers", 1)))
        steps = max(1, st.steps)
        applied = max(1, st.applied)
        positives = max(1.0, float(st.positives))
        resubmits, pool_dups = (n - n0 for n, n0 in zip(self._pool_counters(), pool0))
        return {
            "train/loss": float(st.loss) / steps,
            "train/agent_advantage": st.agent_obj / applied,
            "train/kept_a": float(st.kept_a) / positives,
            "train/kept_v": float(st.kept_v) / positives,
            "train/undone": float(st.undone) / max(1, st.videos),
            "reward/terminal_a": st.term_a / applied,
            "reward/terminal_v": st.term_v / applied,
            "reward/inter": float(st.inter_sum) / max(1, st.inter_n),
            "reward/pending": st.pending_sum / steps,
            "reward/applied": float(st.applied),
            "reward/duplicates": float(st.duplicates),
            "reward/resubmits": float(resubmits),
            "reward/pool_duplicates": float(pool_dups),
            "rlld/policy_steps": float(st.applied),
            "rlld/task_steps": float(st.steps),
            "rlld/staleness": st.staleness_sum / applied,
            "rlld/max_staleness": float(st.max_staleness),
            "rlld/max_pending": float(st.max_pending),
            "rlld/actor_util": min(1.0, st.eval_s / (wall * workers)) if wall > 0 else 0.0,
            "rlld/wait_s": st.wait_s,
            "rlld/steps_per_s": st.steps / wall if wall > 0 else 0.0,
            "time/epoch_s": wall,
        }

    @torch.no_grad()
    def greedy_removals(self, split: AVVPSplit, chunk: int = 1024
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The agent's deterministic decisions (keep iff p >= 0.5) over a split.

        Returns:
            ``(removed_a, removed_v, p_a, p_v)``: bool (N, C) removals (after the all-removed
            guard) and the keep probabilities.
        """
        from trainables.core.dist import autocast
        from trainables.tasks.avvp.eval import batch_inputs

        self.agent.eval()
        ra, rv, pa, pv = [], [], [], []
        for s in range(0, len(split), chunk):
            idx = torch.arange(s, min(s + chunk, len(split)), device=self.device)
            a, v, m = batch_inputs(split, idx, self.device)
            y = split.labels[idx]
            with autocast(self.device):
                out = self.agent(a, v, m, y)
            keep_a = (out.p_a >= 0.5).float()
            keep_v = (out.p_v >= 0.5).float()
            rev_a, rev_v, _ = guard_all_removed(y, revise_labels(keep_a, y), revise_labels(keep_v, y))
            ra.append((y > 0.5) & (rev_a < 0.5))
            rv.append((y > 0.5) & (rev_v < 0.5))
            pa.append(out.p_a.float())
            pv.append(out.p_v.float())
        self.agent.train()
        return torch.cat(ra), torch.cat(rv), torch.cat(pa), torch.cat(pv)

    def denoise_scores(self) -> dict[str, float]:
        """``denoise/...`` and ``noise_ratio/...`` of the greedy policy against train truth."""
        from trainables.tasks.avvp.denoise import denoise_quality, noise_ratio_mae

        tr = self.train
        ra, rv, pa, pv = self.greedy_removals(tr)
        labels = tr.labels > 0.5
        true_a = tr.gt_audio.bool().any(dim=1)
        true_v = tr.gt_visual.bool().any(dim=1)
        pos = labels.float().sum(0).clamp_min(1.0)
        est_a = (ra.float().sum(0) / pos)
        est_v = (rv.float().sum(0) / pos)
        args = [t.cpu().numpy() for t in (ra, rv, labels, true_a, true_v)]
        out = {k: float(x) for k, x in denoise_quality(*args).items()}
        out.update({k: float(x) for k, x in noise_ratio_mae(
            est_a.cpu().numpy(), est_v.cpu().numpy(), *[t.cpu().numpy() for t in
                                                       (labels, true_a, true_v)]).items()})
        # Threshold-free view: does the agent rank noisy labels below clean ones at all, even
        # while no keep probability has crossed 0.5 yet?
        for mod, p, truth in (("a", pa, true_a), ("v", pv, true_v)):
            out[f"rlld/noise_auc_{mod}"] = noise_auc(p[labels], ~truth[labels])
            out[f"rlld/keep_p_{mod}"] = float(p[labels].mean()) if labels.any() else float("nan")
            # Diagnostics: mean keep probability of truly noisy vs clean labels, and the AUC
            # within each class (averaged, weighted by the class's labels): above 0.5 only if the
            # agent tells noisy from clean labels *of the same class*, not just noisy classes.
            noisy = labels & ~truth
            clean = labels & truth
            nan = float("nan")
            out[f"rlld/keep_p_noisy_{mod}"] = float(p[noisy].mean()) if noisy.any() else nan
            out[f"rlld/keep_p_clean_{mod}"] = float(p[clean].mean()) if clean.any() else nan
            num = den = 0.0
            for c in range(labels.shape[1]):
                lc = labels[:, c]
                auc = noise_auc(p[lc, c], ~truth[lc, c])
                if not math.isnan(auc):
                    w = float(lc.sum())
                    num, den = num + w * auc, den + w
            out[f"rlld/noise_auc_within_{mod}"] = num / den if den else float("nan")
            # Precision/recall of the removals the *sampling* policy makes in expectation (what
            # the task network trains on), next to the greedy (p < 0.5) ones in denoise/...
            rem = (1.0 - p) * labels.float()
            tp = float(rem[noisy].sum())
            out[f"rlld/sampled_precision_{mod}"] = tp / float(rem.sum()) if rem.sum() > 0 \
                else float("nan")
            out[f"rlld/sampled_recall_{mod}"] = tp / float(noisy.sum()) if noisy.any() \
                else float("nan")
        return out

    # -- checkpoints -------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        if self.pending:
            raise RuntimeError("drain() before checkpointing: rewards are pending")
        return {
            "agent": self.agent.state_dict(),
            "task": self.task.state_dict(),
            "agent_opt": self.agent_opt.state_dict(),
            "task_opt": self.task_opt.state_dict(),
            "task_sched": self.task_sched.state_dict(),
            "base_a": self.base_a.state_dict(),
            "base_v": self.base_v.state_dict(),
            "vbase_a": self.vbase_a.state_dict(),
            "vbase_v": self.vbase_v.state_dict(),
            "batch_gen": self.batch_gen.get_state(),
            "act_gen": self.act_gen.get_state(),
            "step": self.step,
            "term_hist": [[float(k), a, v] for k, (a, v) in sorted(self._term_hist.items())],
        }

    def load_state_dict(self, s: Mapping[str, Any]) -> None:
        self.agent.load_state_dict(s["agent"])
        self.task.load_state_dict(s["task"])
        self.agent_opt.load_state_dict(s["agent_opt"])
        self.task_opt.load_state_dict(s["task_opt"])
        self.task_sched.load_state_dict(s["task_sched"])
        self.base_a.load_state_dict(s["base_a"])
        self.base_v.load_state_dict(s["base_v"])
        if "vbase_a" in s:
            self.vbase_a.load_state_dict(s["vbase_a"])
            self.vbase_v.load_state_dict(s["vbase_v"])
        self.batch_gen.set_state(s["batch_gen"].cpu())
        self.act_gen.set_state(s["act_gen"].cpu())
        self.step = int(s["step"])
        def val(x):
            return x.float().cpu() if isinstance(x, torch.Tensor) else float(x)
        self._term_hist = {int(k): (val(a), val(v)) for k, a, v in s.get("term_hist", [])}


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------

def fit(cfg: Config, data_path, *, reporter: Reporter | None = None,
        resume_state: Mapping[str, Any] | None = None, device=None,
        evaluator: Evaluator | None = None) -> dict[str, float]:
    """Trains RLLD (agent + HAN) and returns the selected epoch's metrics plus ``test/...``.

    Args:
        cfg: Settings.
        data_path: An AVVP data set (LLP or LLP-sim) in avtune's format.
        reporter: ``reporter(epoch, metrics, state_fn)`` after every epoch.
        resume_state: A ``state_fn()`` dict to continue from.
        device: Torch device (default: CUDA when available).
        evaluator: Source of terminal rewards (default: an in-process :class:`LocalEvaluator`).
            ``fit`` closes it when done.

    Returns:
        Selected-epoch metrics (``epoch``, ``train/loss``, ``reward/...``, ``rlld/...``,
        ``val/...``, ``denoise/...`` when train truth exists), ``test/...`` of the selected task
        weights, ``best_epoch``, ``seed``, ``time/total_s`` and ``rlld/steps_per_s`` (whole run).
    """
    from trainables.core.loop import BestTracker, select_mode
    from trainables.core.checkpoint import config_dict, rng_state, set_rng_state
    from trainables.tasks.avvp.eval import evaluate, feature_dims, load_resident
    from trainables.core.dist import resolve_device

    if torch.distributed.is_available() and torch.distributed.is_initialized() \
            and torch.distributed.get_world_size() > 1:
        raise RuntimeError("trainables.methods.rlld.learner.fit runs in one process; start it without "
                           "torch.distributed (its parallelism is the validation actor pool)")
    seed = set_seed(cfg.seed)
    dev = resolve_device(device)
    data = load_resident(data_path, dev, feature_dtype=_DTYPES[cfg.feature_dtype])
    dims = feature_dims(data["train"])
    own = evaluator is None
    if own:
        evaluator = LocalEvaluator(cfg, data["val"], dev)
    t_start = time.perf_counter()
    try:
        learner = Learner(cfg, data["train"], evaluator, dev, dims=dims)
        best = BestTracker(cfg.select_metric, select_mode(cfg.select_metric))
        history: list[dict[str, float]] = []
        start = 0
        steps_total, time_total = 0, 0.0
        if resume_state is not None:
            learner.load_state_dict(resume_state["learner"])
            best.load_state_dict(resume_state["best"])
            history = [dict(h) for h in resume_state.get("history", [])]
            set_rng_state(resume_state["rng"])
            start = int(resume_state["epoch"]) + 1
        for epoch in range(start, cfg.epochs):
            metrics: dict[str, float] = {"epoch": float(epoch)}
            metrics.update(learner.run_epoch())
            steps_total += learner.stats.steps
            time_total += metrics["time/epoch_s"]
            if cfg.denoise_metrics and data["train"].has_truth:
                metrics.update(learner.denoise_scores())
            metrics.update(evaluate(learner.task, data["val"], prefix="val",
                                    protocol=cfg.protocol, threshold=cfg.threshold))
            best.update(epoch, metrics, learner.task)
            history.append(dict(metrics))

            def state_fn(epoch=epoch) -> dict:
                return {"epoch": epoch, "learner": learner.state_dict(),
                        "best": best.state_dict(), "history": history, "rng": rng_state(),
                        "config": config_dict(cfg)}

            if reporter is not None:
                reporter(epoch, dict(metrics), state_fn)
        result = dict(best.metrics)
        result["best_epoch"] = float(best.epoch)
        result["seed"] = float(seed)
        if best.weights is not None and "test" in data and data["test"].has_truth:
            current = {k: t.detach().clone() for k, t in learner.task.state_dict().items()}
            learner.task.load_state_dict(best.weights)
            result.update(evaluate(learner.task, data["test"], prefix="test",
                                   protocol=cfg.protocol, threshold=cfg.threshold))
            learner.task.load_state_dict(current)
        result["time/total_s"] = time.perf_counter() - t_start
        if steps_total:
            result["rlld/run_steps_per_s"] = steps_total / max(time_total, 1e-9)
        return result
    finally:
        evaluator.close()

