"""AVAR hybrid-supervision and noise-estimation knobs: ``python -m orchestrator.sweep avar_alpha [--grid]``.

Tunes the noise-tolerant audio-visual action recognition trainable (``trainables.methods.avar.train``,
variant ``full``) on AR-sim: the hybrid-supervision weight alpha (start value, end value and the
epoch where it switches; paper 0.6 -> 0.8 after 20 epochs), the warm-up length (paper Table VI:
0/2/5/10), the cross-modal neighbour rule for omega (top-n similar samples, paper 16/32, or
similarity thresholds epsilon_v/epsilon_a when ``top_n`` is 0), the kNN size of the label
correction and the prototype temperature tau2 (paper 0.1). ``--grid`` runs Table VI's warm-up grid.

``base`` starts from the method's ``sim`` preset: the deviations from the paper defaults that the
simulated data needs (a larger learning rate and narrower MLPs: the sets are tiny next to
Kinetics), the same as the variant table (``python -m orchestrator.bench avar``). Metric:
video-level top-1 on the (clean) validation split.
"""

from __future__ import annotations

from search_spaces.base import SweepSpec


def space(trial):
    """alpha_start, alpha_end, alpha_switch_epoch, warmup_epochs, top_n (0 = thresholds), epsilons, knn_k, tau2."""
    trial.suggest_float("alpha_start", 0.3, 0.9)
    trial.suggest_float("alpha_end", 0.5, 0.95)
    trial.suggest_int("alpha_switch_epoch", 5, 40)
    trial.suggest_categorical("warmup_epochs", [0, 2, 5, 10])
    top_n = trial.suggest_categorical("top_n", [0, 8, 16, 32, 64])
    if top_n == 0:
        trial.suggest_float("epsilon_v", 0.2, 0.9)
        trial.suggest_float("epsilon_a", 0.2, 0.9)
    trial.suggest_categorical("knn_k", [5, 10, 20, 40])
    trial.suggest_float("tau2", 0.05, 0.3, log=True)


PAPER = {"alpha_start": 0.6, "alpha_end": 0.8, "alpha_switch_epoch": 20, "warmup_epochs": 2,
         "top_n": 32, "knn_k": 10, "tau2": 0.1}

SPEC = SweepSpec(
    name="avar_alpha",
    description="AVAR alpha schedule, warm-up, omega neighbours, kNN size and tau2 (AR-sim)",
    trainable="avar",
    metric="val/video_top1",
    mode="max",
    space=space,
    points_to_evaluate=(
        PAPER,
        {**PAPER, "top_n": 16},
        {**PAPER, "top_n": 0, "epsilon_v": 0.5, "epsilon_a": 0.5},
    ),
    # The simulated-data deviations (lr, MLP widths) of the variant table; tuned keys override them.
    base={"preset": "sim", "variant": "full", "select_metric": "val/video_top1"},
    default_data="avar-sim",
    default_epochs=60,
    num_samples=30,
    cpu_data="avar-sim-small",
    cpu_epochs=12,
    cpu_num_samples=4,
    grid={"warmup_epochs": [0, 2, 5, 10]},
)
