"""How LLP-sim's VALOR thresholds (``harvest.SIM_THETA_V``/``_A``) were fixed, reproducibly.

``python -m trainables.methods.valor.calibrate [--n 4000] [--draws 1:0 2:1 3:2]`` draws LLP-sim
truth (default simulator knobs, no features; one draw per ``TRUTH_SEED:TEACHER_SEED``), simulates
the default teachers on it exactly as a run does, and prints, per modality, the segment- and
event-level F of VALOR's rule (``100 * cos > theta``, AND weak label) over a threshold grid, averaged
over the draws, and the threshold with the best mean segment-level F. The draws are not any
preset's data, so no run's validation or test truth chose the thresholds.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

DRAWS = ((1, 0), (2, 1), (3, 2))


def threshold_curve(n: int = 4000, draws=DRAWS, grid: np.ndarray | None = None
                    ) -> dict[str, dict[str, object]]:
    """``{modality: {"best": theta, "seg": F, "event": F, "curve": [(theta, seg, event), ...]}}``,
    F the mean over ``draws`` (``(truth_seed, teacher_seed)`` pairs)."""
    from trainables.methods.valor.harvest import CLIP_SCALE, MODALITIES, _cosines
    from trainables.tasks.avvp import llp_sim
    from trainables.tasks.avvp.pseudo_labels import harvest
    from trainables.tasks.avvp.teachers import pseudo_label_quality, simulate_teacher

    grid = np.arange(18.0, 32.01, 0.25) if grid is None else np.asarray(grid)
    sums = {m: np.zeros((len(grid), 2)) for m in MODALITIES}
    for truth_seed, teacher_seed in draws:
        truth = llp_sim.simulate_truth(n, np.random.default_rng(truth_seed), llp_sim.SimParams())
        for m in MODALITIES:
            gt = truth.gt_visual if m == "visual" else truth.gt_audio
            sim = simulate_teacher(gt, truth.labels, m, seed=teacher_seed)
            z = CLIP_SCALE * _cosines(sim.seg_emb, sim.text_emb)
            for i, theta in enumerate(grid):
                q = pseudo_label_quality(harvest(z, float(theta), truth.labels, strict=True).numpy(), gt)
                sums[m][i] += (q["seg"], q["event"])
    out: dict[str, dict[str, object]] = {}
    for m in MODALITIES:
        mean = sums[m] / len(draws)
        i = int(np.argmax(mean[:, 0]))
        out[m] = {"best": float(grid[i]), "seg": float(mean[i, 0]), "event": float(mean[i, 1]),
                  "curve": [(float(t), float(a), float(b)) for t, (a, b) in zip(grid, mean)]}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=4000)
    p.add_argument("--draws", nargs="+", default=[f"{a}:{b}" for a, b in DRAWS],
                   metavar="TRUTH_SEED:TEACHER_SEED")
    p.add_argument("--json", action="store_true", help="print everything as JSON")
    a = p.parse_args(argv)
    draws = [tuple(int(x) for x in d.split(":")) for d in a.draws]
    res = threshold_curve(a.n, draws)
    if a.json:
        print(json.dumps(res, indent=1))
        return 0
    for m, r in res.items():
        print(f"{m}: best theta {r['best']:.2f} (100 * cos): mean seg F {r['seg']:.2f}, "
              f"event F {r['event']:.2f} over {len(draws)} draws of {a.n} videos")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
