"""VALOR's harvesting thresholds and learning rate: ``python -m orchestrator.sweep valor_thresholds``.

What decides VALOR's results is the labels its teachers harvest, set by one threshold per class and
modality on the teachers' logits, and the student's learning rate, the knobs its official training
scripts set (the paper's own tuning could not be read here). On LLP-sim the simulated teachers
have no class-specific biases, so one threshold per modality is tuned (in units of 100 * cos, around
the calibrated 24.5 visual / 23.5 audio), plus lr (official 1e-4). Trials are ranked by VALOR's own
selection metric, val segment-level Type@AV. Thresholds apply to teachers read from scores
(``teacher="sim"`` or ``"data"``); with released labels only lr moves anything.

``--grid``: theta_v 23.5-25.5 x theta_a 21.5-25.5 at the official lr (15 cells).
"""

from __future__ import annotations

from search_spaces.base import SweepSpec


def space(trial) -> None:
    """theta_v in [22, 27], theta_a in [18, 30] (100 * cos), lr log-uniform in [3e-5, 1e-3]."""
    trial.suggest_float("theta_v", 22.0, 27.0)
    trial.suggest_float("theta_a", 18.0, 30.0)
    trial.suggest_float("lr", 3e-5, 1e-3, log=True)


SPEC = SweepSpec(
    name="valor_thresholds",
    description="VALOR harvesting thresholds (per modality, 100*cos) and lr, by val seg Type@AV",
    trainable="valor",
    space=space,
    points_to_evaluate=({"theta_v": 24.5, "theta_a": 23.5, "lr": 1e-4},),
    grid={"theta_v": [23.5, 24.5, 25.5], "theta_a": [21.5, 22.5, 23.5, 24.5, 25.5]},
)
