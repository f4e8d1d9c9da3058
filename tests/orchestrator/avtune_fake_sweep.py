"""Fake sweep: ``python -m orchestrator.sweep avtune_fake_sweep:SPEC`` (tests only)."""

from search_spaces.base import SweepSpec


def space(trial):
    trial.suggest_float("x", 0.0, 1.0)
    trial.suggest_float("y", 1.0, 2.4)


SPEC = SweepSpec(
    name="fake_quadratic",
    description="quadratic stand-in with its optimum at x=0.6, y=1.8",
    trainable="avtune_fake_trainable",
    metric="val/seg_Type",
    mode="max",
    space=space,
    points_to_evaluate=({"x": 0.6, "y": 1.8},),
    cpu_data="llp-sim-tiny",
    cpu_epochs=2,
    cpu_num_samples=2,
    grid={"x": [0.5, 0.6], "y": [1.8, 2.0]},
)
