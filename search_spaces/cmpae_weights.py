"""CMPAE loss weights: ``python -m orchestrator.sweep cmpae_weights [--grid]``.

Tunes the weights of CMPAE's objective, ``w_audio BCE(a) + w_visual BCE(v) + w_video BCE(global) +
contrastive + w_mutual * mutual``, and the evaluation's two-pass mix ``fuse_ratio``: the settings the
official code (MengyuanChen21/CVPR2023-CMPAE) exposes as options and changes from JoMoLD's
(audio 2.0, visual 0.6, video 0.6, mutual 1.0, fuse 0.7). The paper's own ablation grid could not
be read (only its abstract), so the space is the official code's knobs around its values.

Trials run the default (shared) protocol: decoded at the task's thresholds and ranked by
``val/seg_Type``, so the best trial's row compares with other methods'. JoMoLD's noise estimator
does not depend on these weights: the ``prepare`` hook trains it once before the trials.
``--grid`` crosses the mutual-term weight with the visual weight.
"""

from __future__ import annotations

from search_spaces.base import SweepSpec


def space(trial):
    """w_mutual in [0, 5] (0: without mutual learning), w_visual and w_video in [0.2, 2], w_audio in [0.5, 4], fuse_ratio
    in [0.5, 1]."""
    trial.suggest_float("w_mutual", 0.0, 5.0)
    trial.suggest_float("w_visual", 0.2, 2.0)
    trial.suggest_float("w_video", 0.2, 2.0)
    trial.suggest_float("w_audio", 0.5, 4.0)
    trial.suggest_float("fuse_ratio", 0.5, 1.0)


OFFICIAL = {"w_mutual": 1.0, "w_visual": 0.6, "w_video": 0.6, "w_audio": 2.0, "fuse_ratio": 0.7}

SPEC = SweepSpec(
    name="cmpae_weights",
    description="CMPAE loss weights (audio/visual/video/mutual) and the eval two-pass mix",
    trainable="cmpae",
    space=space,
    points_to_evaluate=(
        OFFICIAL,  # the official code's values
        {**OFFICIAL, "w_mutual": 0.0},  # without joint-modal mutual learning
        {**OFFICIAL, "w_visual": 1.0, "w_video": 1.0},  # JoMoLD's visual and video weights
    ),
    grid={"w_mutual": [0.0, 0.3, 1.0, 3.0], "w_visual": [0.3, 0.6, 1.0]},
)
