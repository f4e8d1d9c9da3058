"""Benchmark: vectorized LLP scores vs the plain per-video reference, on one CPU core.

``python -m orchestrator.bench metrics [--annotations DIR] [--repeats 20] [--seed 0]``

Scores 1,849 videos (the size of LLP val + test). Truth is the real val+test truth read from
``--annotations`` (default: ``shared/data/llp`` next to the repository) or, if absent, synthetic
sparse events; predictions are that truth perturbed the way a mediocre model errs (shifted,
dropped and spurious events, scattered flips). Target: vectorized well under 0.1 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np

from trainables.tasks.avvp.classes import NUM_CLASSES, NUM_SEGMENTS
from trainables.tasks.avvp.metrics import SCORE_KEYS, avvp_scores
from trainables.tasks.avvp.metrics_reference import avvp_scores_reference
from trainables.core.seed import set_seed

N_VIDEOS = 1849
TARGET_S = 0.1
DEFAULT_LLP = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "llp"


def _truth(annotations: Path, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, str]:
    if (annotations / "AVVP_eval_audio.csv").is_file():
        from trainables.tasks.avvp.llp import read_annotations

        anns = [read_annotations(annotations, s) for s in ("val", "test")]
        ga = np.concatenate([a.gt_audio for a in anns]).astype(bool)
        gv = np.concatenate([a.gt_visual for a in anns]).astype(bool)
        return ga, gv, f"real LLP val+test truth from {annotations}"
    shape = (N_VIDEOS, NUM_SEGMENTS, NUM_CLASSES)
    g = np.zeros((2, *shape), bool)
    k = 4 * N_VIDEOS
    for m, i, c, s, n in zip(rng.integers(0, 2, k), rng.integers(0, N_VIDEOS, k),
                             rng.integers(0, NUM_CLASSES, k), rng.integers(0, NUM_SEGMENTS, k),
                             rng.integers(1, NUM_SEGMENTS + 1, k)):
        g[m, i, s:s + n, c] = True
    return g[0], g[1], f"synthetic truth ({annotations} not found)"


def _perturb(gt: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Model-like errors: per-(video, class) shifts, dropped classes, spurious runs, flips."""
    n, t, c = gt.shape
    shift = rng.choice([-2, -1, 0, 0, 0, 1, 2], size=(n, 1, c))
    idx = np.clip(np.arange(t)[None, :, None] - shift, 0, t - 1)
    pred = np.take_along_axis(gt, idx, axis=1)
    pred &= ~(rng.random((n, 1, c)) < 0.1)
    spurious = rng.random((n, c)) < 0.01
    start = rng.integers(0, t, (n, c))
    length = rng.integers(1, t + 1, (n, c))
    seg = np.arange(t)[None, :, None]
    pred |= spurious[:, None, :] & (seg >= start[:, None, :]) & (seg < (start + length)[:, None, :])
    pred ^= rng.random(pred.shape) < 0.001
    return pred


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m orchestrator.bench metrics", description=__doc__.split("\n")[0]
    )
    p.add_argument("--annotations", type=Path, default=DEFAULT_LLP)
    p.add_argument("--repeats", type=int, default=20, help="timed runs of the vectorized scorer")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    if hasattr(os, "sched_setaffinity"):
        # "One CPU core": pin the process so that any threaded numpy path cannot use more.
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    seed = set_seed(args.seed)
    rng = np.random.default_rng(seed)
    ga, gv, source = _truth(args.annotations, rng)
    pa, pv = _perturb(ga, rng), _perturb(gv, rng)
    print(f"metrics benchmark: {len(ga)} videos, {source}; predictions perturbed (seed {seed}); "
          f"1 CPU core")

    fast = avvp_scores(pa, pv, ga, gv)  # warm-up (imports, allocator)
    times = []
    for _ in range(max(1, args.repeats)):
        t0 = time.perf_counter()
        fast = avvp_scores(pa, pv, ga, gv)
        times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    ref = avvp_scores_reference(pa, pv, ga, gv)
    t_ref = time.perf_counter() - t0

    med = statistics.median(times)
    diff = max(abs(fast[k] - ref[k]) for k in SCORE_KEYS)
    print("scores: " + ", ".join(f"{k} {fast[k]:.2f}" for k in SCORE_KEYS))
    print(f"vectorized avvp_scores : median {med * 1e3:.1f} ms, min {min(times) * 1e3:.1f} ms "
          f"over {len(times)} runs")
    print(f"per-video reference    : {t_ref:.2f} s (1 run)")
    print(f"speed-up (reference / vectorized median): {t_ref / med:.0f}x; "
          f"max |difference| {diff:.1e}")
    print(f"target vectorized < {TARGET_S * 1e3:.0f} ms: {'met' if med < TARGET_S else 'NOT met'}")
    if diff > 1e-9:
        print("error: vectorized and reference scores disagree by more than 1e-9")
        return 1
    return 0
