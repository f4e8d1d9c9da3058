"""RLLD's settings: HAN's task, optimiser and run fields (inherited) plus the agent's and rewards'.

Defaults are avtune's reading of the RLLD paper (the ``paper_avtune`` preset; the fields marked
*ours* or *avtune's reading* below). :data:`PRESETS` names three bundles, built with
:meth:`Config.from_preset` (``--set preset=NAME`` on the command line):

* ``paper``: the closest reading of the paper's text (Eq. 1-15, Algorithm 1, Sec. 4.1): Monte
  Carlo episodes of 32 task steps, one validation and one agent update per episode with
  ``R(S) x sum of log-probabilities / N`` (no discount, no baseline), one ``R(S)`` per episode and
  branch (terminal reward plus the episode's mean inter-reward), the terminal reward on the
  percent scale (``F x 0.1``, about 2-6), the agent of Eq. 2-4, its keep probability from the
  layer's default initialisation, synchronous validation, the all-removed rule per modality;
* ``paper_avtune``: what avtune ran as "the paper" before (= the defaults): one-step episodes, the
  inter-reward credited to each video's own actions, the fraction scale (0-0.1), a moving-average
  baseline, keep probability 0.9 at the start, the HAN-layer agent with separate heads;
* ``stable`` (ours): avtune's reading plus the credit options that denoise on LLP-sim
  (counterfactual per-class credit, per-class baselines, advantage normalisation).

The paper's ablations are fields on top of a preset: ``use_inter_reward=False`` ("w/o
inter-reward") and ``use_label_input=False`` ("w/o label input").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trainables.tasks.avvp.backbone import BackboneConfig
from trainables.tasks.avvp.report import SCORE_KEYS

SCORE_NAMES = tuple(SCORE_KEYS)

# Named bundles of settings (Config.from_preset); each a dict of field overrides of the defaults.
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {
        "episode_steps": 32,
        "inter_aggregate": "episode",
        "terminal_scale": 10.0,  # score/100 x 10 = F (percent) x 0.1
        "baseline": False,
        "keep_init": 0.0,  # the FC layer's default initialisation (keep probability ~0.5)
        "agent_arch": "paper",
        "sync": True,
        "all_removed": "modality",
    },
    "paper_avtune": {},
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


@dataclass
class Config(BackboneConfig):
    """RLLD configuration: the HAN backbone's fields (the task network's, defaults as HAN/JoMoLD)
    plus these.

    HAN's loss weights (``w_video``/``w_audio``/``w_visual``), label smoothing
    (``smooth_a``/``smooth_v``, applied to the revised labels) and ``with_ca`` apply to the task
    network, which always starts from the weak labels (the agent revises them).

    Attributes:
        overlap: Share of a state's videos shared with the next state (1/4 -> stride 96).
        agent_lr: Agent Adam learning rate.
        agent_d_model: Agent hidden size.
        agent_dropout: Agent attention dropout.
        agent_arch: ``avtune`` (a HAN hybrid attention layer with feed-forward block and
            LayerNorms, separate audio/visual heads) or ``paper`` (Eq. 2-4: residual self- and
            cross-attention on the projected states, one FC layer shared by both modalities,
            sigmoid); :mod:`trainables.methods.rlld.agent`.
        use_label_input: Label vector in the state (Eq. 1); False is the "w/o label" ablation.
        keep_init: Initial keep probability of the agent (ours: the FC bias starts at its logit);
            0 keeps the layer's default initialisation (keep probability about 0.5; the paper).
        episode_steps: Task steps per episode (K). The agent acts on K consecutive states with
            fixed parameters while the task network takes K steps; then one validation gives the
            episode's terminal reward and one agent update applies ``R x sum_k log pi(a_k|s_k) / N``
            (N = the episode's steps; the last episode of an epoch may be shorter). 1 is avtune's
            reading (one state per episode); the paper: 32.
        use_inter_reward: Soft inter-reward on; False is the "w/o inter-reward" ablation.
        alpha1: Weight of the KL-based term R1.
        alpha2: Weight of the cosine term R2.
        inter_smoothing: Label smoothing ``s`` of ``l_soft`` (ours: the paper gives no value).
        inter_eps: The KL epsilon: added before normalising the label vectors and inside the logs
            (the paper gives none). It sets what one removal costs: removing one of a video's 2
            (3) labels costs 0.60 (0.54) of ``R1 + R2`` at 1e-6, 0.44 (0.31) at 1e-2 and 0.18
            (0.12) at 0.1; the cosine term's share is 0.12 (0.07) at any epsilon.
        inter_aggregate: ``video`` (avtune's reading: video i's actions are credited with
            ``R_terminal + R_inter,i``) or ``episode`` (the paper's one ``R(S) = R_terminal +
            R_inter`` per episode and branch, ``R_inter`` averaged over the episode's videos).
        inter_weight: Factor on the soft inter-reward (ours; 1.0 = the paper's sum).
        terminal_metric_a: Validation score driving the audio branch's terminal reward.
        terminal_metric_v: Validation score driving the visual branch's terminal reward.
        terminal_scale: Terminal reward = score/100 x this. The paper's "mean F-score (x0.1)" has
            two readings: F as a fraction (``0.1``, avtune's: 0-0.1) or F in percent as the paper
            reports F everywhere (``10``: F x 0.1, about 2-6 on LLP).
        terminal_delta: Credit each update with the *change* of its terminal reward since the
            previous evaluation instead of its level (ours; off = the paper's level reward). The
            first gets 0.
        all_removed_reward: Reward of an action that removed every label.
        all_removed: Where the all-removed rule applies (labels kept, ``all_removed_reward``):
            ``video`` (avtune's reading: when both modalities end up empty) or ``modality`` (each
            modality on its own: an empty revised audio or visual label vector).
        baseline: Moving-average reward baseline (ours; the paper has none).
        baseline_momentum: Its momentum.
        terminal_credit: ``branch`` (paper: every action of a branch gets that branch's
            validation score) or ``class`` (ours: an action on class c of modality m gets class
            c's validation score of modality m).
        class_score: Per-class score of ``terminal_credit="class"``: ``ll`` (log-likelihood of
            the video-level modality truth), ``soft`` or ``hard`` (segment-level F1).
        class_baseline: One moving-average baseline per (class, modality) (ours; needs
            ``baseline``).
        adv_norm: Divide advantages by a running standard deviation (ours).
        entropy_weight: Entropy bonus on the keep decisions of present labels (ours; 0 = off).
        counterfactual: Terminal reward = validation score after the update on the revised labels
            minus the score after the same update on the original labels (ours; replaces
            ``terminal_delta``; needs ``episode_steps=1``).
        staleness: Most validation requests (episodes) pending before the learner blocks (S).
        sync: Wait for every reward before the next episode (the paper's schedule).
        eval_batch_size: Videos per forward in validation passes.
        eval_actors: Validation actors in the Ray pool (:mod:`trainables.methods.rlld.pool`).
        eval_actor_gpus: GPUs per actor (1, a fraction, or 0 for CPU actors).
        eval_actor_cpus: CPUs per actor.
        eval_max_restarts: Restarts of a dead actor before the pool gives up on it.
        denoise_metrics: Score the agent's decisions against train truth when present.
    """

    overlap: float = 0.25
    agent_lr: float = 1e-4
    agent_d_model: int = 512
    agent_dropout: float = 0.1
    agent_arch: str = "avtune"
    use_label_input: bool = True
    keep_init: float = 0.9
    episode_steps: int = 1
    use_inter_reward: bool = True
    alpha1: float = 0.6
    alpha2: float = 0.4
    inter_smoothing: float = 0.1
    inter_eps: float = 1e-6
    inter_aggregate: str = "video"
    inter_weight: float = 1.0
    terminal_metric_a: str = "seg_A"
    terminal_metric_v: str = "event_V"
    terminal_scale: float = 0.1
    terminal_delta: bool = False
    all_removed_reward: float = -1.0
    all_removed: str = "video"
    baseline: bool = True
    baseline_momentum: float = 0.9
    terminal_credit: str = "branch"
    class_score: str = "ll"
    class_baseline: bool = False
    adv_norm: bool = False
    entropy_weight: float = 0.0
    counterfactual: bool = False
    staleness: int = 2
    sync: bool = False
    eval_batch_size: int = 2048
    eval_actors: int = 2
    eval_actor_gpus: float = 0.0
    eval_actor_cpus: float = 1.0
    eval_max_restarts: int = 3
    denoise_metrics: bool = True

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> "Config":
        """The :data:`PRESETS` bundle ``name`` with ``overrides`` on top."""
        if name not in PRESETS:
            raise ValueError(f"unknown RLLD preset {name!r}; expected one of {sorted(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})

    def validate(self) -> None:
        """HAN's checks plus RLLD's; raises ValueError naming the bad key."""
        super().validate()
        choices = {"agent_arch": ("avtune", "paper"), "inter_aggregate": ("video", "episode"),
                   "all_removed": ("video", "modality"), "terminal_credit": ("branch", "class"),
                   "class_score": ("ll", "soft", "hard"), "terminal_metric_a": SCORE_NAMES,
                   "terminal_metric_v": SCORE_NAMES}
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise ValueError(f"{key} must be one of {', '.join(allowed)}; "
                                 f"got {getattr(self, key)!r}")
        for key in ("entropy_weight", "inter_weight", "staleness", "inter_eps"):
            if getattr(self, key) < 0:
                raise ValueError(f"{key} must be >= 0, got {getattr(self, key)}")
        for key in ("episode_steps", "eval_batch_size", "agent_d_model"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be >= 1, got {getattr(self, key)}")
        if not 0.0 <= self.overlap < 1.0:
            raise ValueError(f"overlap must be in [0, 1), got {self.overlap}")
        if not 0.0 <= self.keep_init < 1.0:
            raise ValueError(f"keep_init must be in (0, 1), or 0 for the layer's default "
                             f"initialisation; got {self.keep_init}")
        if not 0.0 <= self.agent_dropout < 1.0:
            raise ValueError(f"agent_dropout must be in [0, 1), got {self.agent_dropout}")
        if self.counterfactual and self.episode_steps != 1:
            raise ValueError("counterfactual needs episode_steps=1 (its reference update is one "
                             f"task step); got episode_steps={self.episode_steps}")
