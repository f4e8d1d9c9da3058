"""RLLD reward mix: ``python -m orchestrator.sweep rlld_reward_mix``.

Tunes how RLLD's label-denoising agent is rewarded (``trainables.methods.rlld.config.Config``):

* ``alpha1`` in [0, 1], the weight of the KL-based soft inter-reward R1, with ``alpha2 = 1 - alpha1``
  for the cosine term R2 (paper: 0.6 / 0.4). ``alpha2`` tuned independently in [0, 1] instead:
  ``python -m orchestrator.sweep search_spaces.rlld_reward_mix:SPEC_INDEPENDENT``;
* ``terminal_scale``: the validation F-score (as a fraction) times this is the terminal reward
  (the paper's "x0.1": 0.1 if F is a fraction, avtune's reading; 10 if F is in percent);
* which validation score drives each branch: audio ``seg_A`` (paper) or ``event_A``, visual
  ``event_V`` (paper) or ``seg_V``;
* ``agent_lr`` (paper: 1e-4, Adam);
* ``staleness``: the most validation requests (episodes) pending before the learner blocks (0
  waits for every reward, the paper's schedule);
* ``use_inter_reward`` (paper: on; off is the paper's ablation) and ``terminal_delta`` (ours, off by
  default: credit each step with the change of its terminal reward since the previous evaluation);
* our credit-assignment options (``trainables.methods.rlld.updates``, all off in the paper setting):
  ``terminal_credit`` (``branch``: paper; ``class``: each class's actions get that class's
  validation score), ``class_score`` (``ll`` per-class log-likelihood, ``soft``/``hard``
  per-class F1), ``class_baseline`` (one baseline per class and modality), ``adv_norm``
  (advantages divided by a running std) and ``counterfactual`` (credit = score after the step's
  update minus score after the same update on the original labels).

Points evaluated first: avtune's reading of the paper (the defaults, preset ``paper_avtune``), the
same with synchronous rewards, "config A" (inter-reward off, terminal delta, scale 10, agent lr
1e-3) and the ``stable`` preset (``trainables.methods.rlld.config.PRESETS``). The space is around
avtune's one-step reading; ``--set preset=paper`` sweeps it on top of the paper's episodes instead
(each point's tuned keys still win over the preset's).

Why the ranges are wide: in avtune's one-step reading the soft inter-reward, credited to each
video's own actions, penalises any removal by ~0.5 while the batch-level terminal reward moves by
~0.002 per step, so the agent learns to keep every label. Removal only pays with a far larger
terminal scale (10-1000) and a faster agent (1e-3) with the inter-reward off, or with our credit
options. The paper's own reading (``preset=paper``: episodes of 32 steps, no baseline) gets one
agent update per 32 steps and does not learn on LLP-sim-small at all (what each did:
docs/sweeps.md, "RLLD reward designs").

Each trial reserves its validation actors in its own placement group (``trainables.methods.rlld.pool``:
``eval_actors`` bundles of ``eval_actor_cpus`` CPUs and ``eval_actor_gpus`` GPUs). The base here
uses half-CPU actors so that a trial with one CPU plus two actors fits a 2-core machine; on a GPU
node pass e.g. ``--set eval_actor_gpus=0.25 --set eval_actor_cpus=1``.
"""

from __future__ import annotations

from search_spaces.base import SweepSpec
from trainables.methods.rlld.config import PRESETS

# avtune's reading of the paper (the defaults), spelled out over the tuned keys.
PAPER_AVTUNE = {"alpha1": 0.6, "terminal_scale": 0.1, "terminal_metric_a": "seg_A",
                "terminal_metric_v": "event_V", "agent_lr": 1e-4, "staleness": 2,
                "use_inter_reward": True, "terminal_delta": False, "terminal_credit": "branch",
                "class_score": "ll", "class_baseline": False, "adv_norm": False,
                "counterfactual": False}
# "Config A": removal learned, but unstable across seeds (see the module docstring).
LEARNS = {**PAPER_AVTUNE, "use_inter_reward": False, "terminal_delta": True, "terminal_scale": 10.0,
          "agent_lr": 1e-3}
# The "stable" reward preset, spelled out over the tuned keys.
STABLE = {**PAPER_AVTUNE, **{k: v for k, v in PRESETS["stable"].items() if k in PAPER_AVTUNE}}


def _common(trial) -> None:
    trial.suggest_float("terminal_scale", 0.01, 1000.0, log=True)
    trial.suggest_categorical("terminal_metric_a", ["seg_A", "event_A"])
    trial.suggest_categorical("terminal_metric_v", ["event_V", "seg_V"])
    trial.suggest_float("agent_lr", 1e-5, 1e-2, log=True)
    trial.suggest_int("staleness", 0, 4)
    trial.suggest_categorical("use_inter_reward", [True, False])
    trial.suggest_categorical("terminal_delta", [False, True])
    trial.suggest_categorical("terminal_credit", ["branch", "class"])
    trial.suggest_categorical("class_score", ["ll", "soft", "hard"])
    trial.suggest_categorical("class_baseline", [False, True])
    trial.suggest_categorical("adv_norm", [False, True])
    trial.suggest_categorical("counterfactual", [False, True])


def space(trial) -> dict[str, float]:
    """alpha1 tuned, alpha2 = 1 - alpha1; terminal reward scale/metrics, agent lr, staleness,
    credit assignment."""
    a1 = trial.suggest_float("alpha1", 0.0, 1.0)
    _common(trial)
    return {"alpha2": 1.0 - a1}


def space_independent(trial) -> None:
    """As :func:`space` with alpha2 tuned on its own in [0, 1]."""
    trial.suggest_float("alpha1", 0.0, 1.0)
    trial.suggest_float("alpha2", 0.0, 1.0)
    _common(trial)


_KW = dict(
    trainable="rlld",
    metric="val/seg_Type",
    mode="max",
    base={"eval_actors": 2, "eval_actor_cpus": 0.5},
    default_data="llp-sim",
    default_epochs=25,
    num_samples=16,
    cpu_data="llp-sim-tiny",
    cpu_epochs=2,
    cpu_num_samples=4,
)

SPEC = SweepSpec(
    name="rlld_reward_mix",
    description="RLLD reward mix: alpha1 (alpha2 = 1 - alpha1), terminal scale/metrics, agent lr, staleness",
    space=space,
    points_to_evaluate=(PAPER_AVTUNE, {**PAPER_AVTUNE, "staleness": 0}, LEARNS, STABLE),
    grid={"alpha1": [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]},
    **_KW,
)

SPEC_INDEPENDENT = SweepSpec(
    name="rlld_reward_mix_independent",
    description="RLLD reward mix with alpha1 and alpha2 tuned independently",
    space=space_independent,
    points_to_evaluate=({**PAPER_AVTUNE, "alpha2": 0.4},),
    **_KW,
)
