"""JoMoLD warm-up: ``python -m orchestrator.sweep jomold_warmup [--grid]``.

Tunes how long JoMoLD ramps its noise ratios from 0 to their estimated values (``warmup_epochs``,
fractional allowed, paper default 0.9) and how (``warmup_mode``: the paper's linear ramp, or the
official code's "no denoising in epoch 1, full ratios after it"). The paper's values
0/0.7/0.8/0.9/1.0 are evaluated first and form the ``--grid``.
"""

from __future__ import annotations

from search_spaces.base import SweepSpec

PAPER_WARMUPS = (0.0, 0.7, 0.8, 0.9, 1.0)
WARMUP_MODES = ("paper", "official")


def space(trial):
    """warmup_epochs in [0, 2]; warmup_mode paper (linear ramp) or official (code)."""
    trial.suggest_float("warmup_epochs", 0.0, 2.0)
    trial.suggest_categorical("warmup_mode", list(WARMUP_MODES))


SPEC = SweepSpec(
    name="jomold_warmup",
    description="JoMoLD noise-ratio warm-up length and mode (paper values 0/0.7/0.8/0.9/1.0)",
    trainable="jomold",
    space=space,
    points_to_evaluate=tuple({"warmup_epochs": w, "warmup_mode": "paper"} for w in (0.9, 0.0, 0.7, 0.8, 1.0)),
    # Data, epochs and trial counts: the SweepSpec defaults (llp-sim, 25 epochs, 20 trials; on CPU
    # llp-sim-small, 3 epochs, 4 trials).
    grid={"warmup_epochs": list(PAPER_WARMUPS), "warmup_mode": list(WARMUP_MODES)},
)
