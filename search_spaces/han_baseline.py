"""HAN baseline: ``python -m orchestrator.sweep han_baseline``.

Tunes the HAN weak-label baseline's learning rate, the label smoothing of each modality's target
(s*y + (1-s)*0.5 for the audio and visual levels) and dropout, starting from the paper's settings
(Adam lr 5e-4, no smoothing, dropout 0.1).
"""

from __future__ import annotations

from search_spaces.base import SweepSpec


def space(trial):
    """lr log-uniform in [1e-4, 2e-3]; smoothing s in [0.7, 1.0] per modality; dropout in [0, 0.4]."""
    trial.suggest_float("lr", 1e-4, 2e-3, log=True)
    trial.suggest_float("smooth_a", 0.7, 1.0)
    trial.suggest_float("smooth_v", 0.7, 1.0)
    trial.suggest_float("dropout", 0.0, 0.4)


SPEC = SweepSpec(
    name="han_baseline",
    description="HAN baseline: learning rate, per-modality label smoothing, dropout",
    trainable="han",
    space=space,
    points_to_evaluate=(
        {"lr": 5e-4, "smooth_a": 1.0, "smooth_v": 1.0, "dropout": 0.1},  # paper defaults
        {"lr": 5e-4, "smooth_a": 1.0, "smooth_v": 0.9, "dropout": 0.1},
    ),
    # Data, epochs and trial counts: the SweepSpec defaults (llp-sim, 25 epochs, 20 trials; on CPU
    # llp-sim-small, 3 epochs, 4 trials).
)
