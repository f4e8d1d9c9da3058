"""JoMoLD noise-ratio thresholds: ``python -m orchestrator.sweep jomold_thresholds [--grid]``.

Tunes the audio and visual thresholds theta_a and theta_v of JoMoLD's noise-ratio estimate (Eq. 1:
the share of a class's positive labels whose estimator probability, divided by the class mean, is
below theta). ``--grid`` runs the paper's Table 2b grid (theta_a 0.5..0.8 x theta_v 1.6..2.0).

The noise estimator does not depend on the thresholds, so the sweep trains it once before any trial
(the ``prepare`` hook, ``trainables.methods.jomold.train:ensure_estimator``) and every trial reads its cached
train-set predictions (keyed by data fingerprint, estimator config and seed) instead of retraining.
"""

from __future__ import annotations

from search_spaces.base import SweepSpec


def space(trial):
    """theta_a in [0.3, 1.0], theta_v in [1.2, 2.4] (values above 1 are normal: ratios to the mean)."""
    trial.suggest_float("theta_a", 0.3, 1.0)
    trial.suggest_float("theta_v", 1.2, 2.4)


SPEC = SweepSpec(
    name="jomold_thresholds",
    description="JoMoLD noise-ratio thresholds theta_a x theta_v (paper Table 2b)",
    trainable="jomold",
    space=space,
    points_to_evaluate=(
        {"theta_a": 0.6, "theta_v": 1.8},  # paper defaults
        {"theta_a": 0.5, "theta_v": 1.6},
        {"theta_a": 0.8, "theta_v": 2.0},
    ),
    # Data, epochs and trial counts: the SweepSpec defaults (llp-sim, 25 epochs, 20 trials; on CPU
    # llp-sim-small, 3 epochs, 4 trials).
    grid={"theta_a": [0.5, 0.6, 0.7, 0.8], "theta_v": [1.6, 1.7, 1.8, 1.9, 2.0]},
)
