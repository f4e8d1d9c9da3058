"""Fake sweep: ``python -m orchestrator.sweep avtune_fake_sweep:SPEC`` (tests only)."""

from search_spaces.base import SweepSpec


def space(trial):
    trial.suggest_float("x", 0.0, 1.0)
    trial.suggest_float("y", 1.0, 2.4)


# A module trainable (not a discovered method): its metric and mode are given explicitly.
SPEC = SweepSpec(name="fake_quadratic", trainable="avtune_fake_trainable", space=space,
                 description="quadratic stand-in with its optimum at x=0.6, y=1.8",
                 metric="val/seg_Type", mode="max", points_to_evaluate=({"x": 0.6, "y": 1.8},),
                 cpu_data="llp-sim-tiny", cpu_epochs=2, cpu_num_samples=2,
                 grid={"x": [0.5, 0.6], "y": [1.8, 2.0]})
