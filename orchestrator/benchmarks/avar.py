"""``python -m orchestrator.bench avar``: the action-recognition variants on AR-sim.

Trains late-fusion CE and the noise-tolerant method's ablations (None, L_ins, L_cat, Full) at the
requested noise settings and prints clip/video top-1, corrected-label accuracy and omega AUC per
variant. Options are those of ``trainables.avar.experiments`` (``--help``).
"""

from __future__ import annotations


def main(argv: list[str]) -> int:
    from trainables.avar import experiments

    return int(experiments.main(argv) or 0)
