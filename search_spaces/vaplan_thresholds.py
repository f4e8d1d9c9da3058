"""VAPLAN pseudo-label settings: ``python -m orchestrator.sweep vaplan_thresholds [--grid]``.

Tunes what decides VAPLAN's pseudo labels: the PLG thresholds tau_v and tau_a on the teachers'
softmax scores (which sit near 1/25 = 0.04, so the useful range is narrow: the paper's visual
labels collapse between 0.041 and 0.042), the prompt templates, PLD's K and alpha per modality and
the richness-loss weight lambda. ``--grid`` runs the threshold grid around the paper's values.

Every trial logs the quality of its pseudo labels against the truth where the data has it
(``pseudo/seg_F_v``, ``pseudo/event_F_v``, audio likewise, ``pseudo/video_precision_*``, and after
PLD ``pseudo/pld_*``). Teacher scores are cached per data set, teacher and prompt, so a threshold
trial costs no extraction; the first-stage model that PLD re-labels with is cached by what
determines it, so trials that differ only in K/alpha share one.
"""

from __future__ import annotations

from search_spaces.base import SweepSpec


def space(trial):
    """tau_v, tau_a around 1/25; prompts; PLD's K and alpha per modality; lambda."""
    trial.suggest_float("tau_v", 0.038, 0.044)
    trial.suggest_float("tau_a", 0.035, 0.042)
    trial.suggest_categorical("prompt_v", ["VP1", "VP2", "VP3", "VP4"])
    trial.suggest_categorical("prompt_a", ["AP1", "AP2"])
    trial.suggest_int("pld_k_v", 2, 10)
    trial.suggest_float("pld_alpha_v", 5.0, 200.0, log=True)
    trial.suggest_int("pld_k_a", 2, 10)
    trial.suggest_float("pld_alpha_a", 20.0, 2000.0, log=True)
    trial.suggest_float("lam", 0.1, 2.0, log=True)


PAPER = {"tau_v": 0.041, "tau_a": 0.038, "prompt_v": "VP1", "prompt_a": "AP2", "pld_k_v": 5,
         "pld_alpha_v": 30.0, "pld_k_a": 6, "pld_alpha_a": 400.0, "lam": 0.5}

SPEC = SweepSpec(
    name="vaplan_thresholds",
    description="VAPLAN PLG thresholds, prompts, PLD K/alpha per modality and lambda",
    trainable="vaplan",
    space=space,
    points_to_evaluate=(PAPER, {**PAPER, "tau_v": 0.042}),
    default_epochs=30,
    grid={"tau_v": [0.040, 0.041, 0.042], "tau_a": [0.037, 0.038, 0.039]},
)
