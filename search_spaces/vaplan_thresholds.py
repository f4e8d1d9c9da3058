"""VAPLAN pseudo-label settings: ``python -m orchestrator.sweep vaplan_thresholds [--grid]``.

Tunes what decides VAPLAN's pseudo labels, by the paper's criterion: the quality of the pseudo
labels on val (its Tables 1-4), here ``pseudo/final_seg_F``, the mean of the visual and audio
val segment-level F of the labels the final model trains on (after PLD). tau_v and the visual
prompt move the visual half, tau_a and the audio prompt the audio half, PLD's K and alpha the
refined visual labels. The space:

* the PLG thresholds tau_v and tau_a on the teachers' softmax scores (which sit near 1/25 = 0.04,
  so the useful range is narrow: the paper's visual labels collapse between 0.041 and 0.042);
* the prompt templates (``prompt_v`` VP1-VP4, ``prompt_a`` AP1-AP2; they apply to teachers from
  the data's embedding columns, not to LLP-sim's simulated teachers);
* PLD's K and alpha for the visual labels, the only ones the paper's final setup refines.

lambda stays at the paper's 0.5 (the paper sets it; ``:SPEC_LAMBDA`` tunes it too). The audio
K/alpha are tuned with PLD on both modalities, the paper's ablation (``:SPEC_PLD_BOTH``). To
rank trials by the parsing score instead: ``--metric val/seg_Type``.

``--grid`` runs the paper's PLG choices: tau_v 0.040/0.041/0.042 x tau_a 0.037-0.040 x the four
visual x two audio prompts (96 cells; on LLP-sim the prompt cells repeat the threshold cells'
labels, and share their cached teacher scores and first stage).

Every trial also logs the per-modality figures (``pseudo/seg_F_v``, ``pseudo/event_F_v``, audio
likewise, ``pseudo/video_precision_*``, after PLD ``pseudo/pld_*``). Teacher scores are cached per
data set, teacher and prompt; PLD's first stage is cached by its training settings and a digest of
its labels, so trials that differ only in K/alpha share one.
"""

from __future__ import annotations

from search_spaces.base import SweepSpec
from trainables.methods.vaplan import QUALITY_KEY


def _plg(trial) -> None:
    trial.suggest_float("tau_v", 0.038, 0.044)
    trial.suggest_float("tau_a", 0.035, 0.042)
    trial.suggest_categorical("prompt_v", ["VP1", "VP2", "VP3", "VP4"])
    trial.suggest_categorical("prompt_a", ["AP1", "AP2"])


def _pld_visual(trial) -> None:
    trial.suggest_int("pld_k_v", 2, 10)
    trial.suggest_float("pld_alpha_v", 5.0, 200.0, log=True)


def space(trial) -> None:
    """tau_v, tau_a around 1/25; prompts; PLD's visual K and alpha."""
    _plg(trial)
    _pld_visual(trial)


def space_lambda(trial) -> None:
    """:func:`space` and lambda."""
    space(trial)
    trial.suggest_float("lam", 0.1, 2.0, log=True)


def space_pld_both(trial) -> None:
    """:func:`space` and PLD's audio K and alpha (PLD on both modalities)."""
    space(trial)
    trial.suggest_int("pld_k_a", 2, 10)
    trial.suggest_float("pld_alpha_a", 20.0, 2000.0, log=True)


PAPER = {"tau_v": 0.041, "tau_a": 0.038, "prompt_v": "VP1", "prompt_a": "AP2", "pld_k_v": 5,
         "pld_alpha_v": 30.0}

_KW = dict(trainable="vaplan", metric=QUALITY_KEY, mode="max", default_epochs=30)

SPEC = SweepSpec(
    name="vaplan_thresholds",
    description="VAPLAN PLG thresholds, prompts and visual PLD K/alpha, by val pseudo-label F",
    space=space,
    points_to_evaluate=(PAPER, {**PAPER, "tau_v": 0.042}),
    grid={"tau_v": [0.040, 0.041, 0.042], "tau_a": [0.037, 0.038, 0.039, 0.040],
          "prompt_v": ["VP1", "VP2", "VP3", "VP4"], "prompt_a": ["AP1", "AP2"]},
    **_KW,
)

SPEC_LAMBDA = SweepSpec(
    name="vaplan_thresholds_lambda",
    description="vaplan_thresholds with the richness weight lambda tuned too",
    space=space_lambda,
    points_to_evaluate=({**PAPER, "lam": 0.5},),
    **_KW,
)

SPEC_PLD_BOTH = SweepSpec(
    name="vaplan_thresholds_pld_both",
    description="vaplan_thresholds with PLD on both modalities (the paper's ablation) and the audio K/alpha",
    space=space_pld_both,
    base={"pld_modalities": ("visual", "audio")},
    points_to_evaluate=({**PAPER, "pld_k_a": 6, "pld_alpha_a": 400.0},),
    **_KW,
)
