"""``python -m orchestrator.bench vaplan``: VAPLAN's Table 5/6 variants on LLP-sim, over seeds.

Trains each requested variant (``han`` = row 1, ``video`` = 2, ``segment_bce`` = 3,
``richness`` = 4, ``full`` = 5, ``sr_only``/``cr_only`` = Table 6) for every seed and prints the
test scores as mean ± std, the pseudo-label quality on val (PLG, and after PLD for ``full``;
``--preset pld_both`` refines the audio labels too, the paper's ablation), and
optionally the reference methods ``--with han jomold`` (HAN and JoMoLD w/ CL at their defaults,
same epochs). One thread by default so the figures do not depend on free cores. Measured tables:
docs/benchmarks.md, "VAPLAN".
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time

import torch

from trainables.tasks.avvp.report import SCORE_KEYS

QUALITY = ("pseudo/seg_F_v", "pseudo/event_F_v", "pseudo/seg_F_a", "pseudo/event_F_a",
           "pseudo/pld_seg_F_v", "pseudo/pld_event_F_v", "pseudo/pld_seg_F_a", "pseudo/pld_event_F_a")


def _cell(xs: list[float]) -> str:
    if not xs:
        return "-"
    sd = f"±{statistics.stdev(xs):.1f}" if len(xs) > 1 else ""
    return f"{statistics.mean(xs):.1f}{sd}"


def run_one(name: str, path, epochs: int, seed: int, cache: str, teacher: str = "auto",
            device: str = "cpu", preset: str = "paper") -> dict[str, float]:
    """One run: a VAPLAN variant (labels from ``teacher``, settings of ``preset``), or ``han`` /
    ``jomold`` (the methods, at their defaults)."""
    if name == "method:han":
        from trainables.methods.han import train as han

        return han.fit(han.Config(epochs=epochs, seed=seed), path, device=device)
    if name == "method:jomold":
        from trainables.methods.jomold import train as jomold

        cfg = jomold.Config(epochs=epochs, estimator_epochs=epochs, seed=seed, cl_weight=1.0)
        return jomold.fit(cfg, path, device=device, estimator_cache_dir=cache)
    from trainables.methods.vaplan.train import Config, fit

    cfg = Config.from_preset(preset, variant=name, epochs=epochs, stage1_epochs=epochs, seed=seed,
                             teacher=teacher)
    return fit(cfg, path, device=device)


def table(results: dict[str, list[dict]]) -> str:
    """Markdown: test scores (mean ± std over seeds) and the val pseudo-label quality."""
    lines = ["| run | " + " | ".join(SCORE_KEYS) + " | s/run |", "|---|" + "---:|" * (len(SCORE_KEYS) + 1)]
    for name, rs in results.items():
        lines.append(f"| {name} | " + " | ".join(_cell([r[f"test/{k}"] for r in rs]) for k in SCORE_KEYS)
                     + f" | {statistics.mean(r['wall_s'] for r in rs):.0f} |")
    q = [(n, rs) for n, rs in results.items() if any(k in rs[0] for k in QUALITY)]
    if q:
        lines += ["", "| run (val pseudo labels) | " + " | ".join(k.removeprefix("pseudo/") for k in QUALITY) + " |",
                  "|---|" + "---:|" * len(QUALITY)]
        for name, rs in q:
            lines.append(f"| {name} | " + " | ".join(_cell([r[k] for r in rs if k in r]) for k in QUALITY) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from trainables.methods.vaplan.train import PRESETS, TEACHERS, VARIANTS

    p = argparse.ArgumentParser(prog="python -m orchestrator.bench vaplan", description=__doc__.splitlines()[0])
    p.add_argument("--data", default="llp-sim-small")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--variants", nargs="+", default=list(VARIANTS))
    p.add_argument("--with", dest="refs", nargs="*", default=[], choices=["han", "jomold"],
                   help="also run these methods at their defaults")
    p.add_argument("--teacher", default="auto", choices=TEACHERS,
                   help="where VAPLAN's segment labels come from; 'truth' is the oracle upper bound")
    p.add_argument("--preset", default="paper", choices=sorted(PRESETS),
                   help="VAPLAN's settings: paper (PLD on the visual labels) or pld_both (the ablation)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", help="write every run's result here")
    args = p.parse_args(argv)
    from trainables.data.registry import describe_data, resolve_data

    bad = sorted(set(args.variants) - set(VARIANTS))
    if bad:
        print(f"error: unknown variant(s) {bad}; expected {list(VARIANTS)}", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    path = resolve_data(args.data)
    print(f"# {describe_data(args.data)}; {args.epochs} epochs; seeds {args.seeds}; teacher {args.teacher}; "
          f"preset {args.preset}; {args.device}", flush=True)
    results: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="avtune-bench-vaplan-") as cache:
        for name in [*args.variants, *(f"method:{m}" for m in args.refs)]:
            for seed in args.seeds:
                t0 = time.perf_counter()
                r = dict(run_one(name, path, args.epochs, seed, cache, args.teacher, args.device, args.preset))
                r["wall_s"] = time.perf_counter() - t0
                results.setdefault(name, []).append(r)
                print(f"{name} seed {seed}: test seg_Type {r['test/seg_Type']:.2f} "
                      f"({r['wall_s']:.0f} s)", flush=True)
                if args.json:  # after every run: a long bench that dies keeps what it measured
                    from trainables.data.format import atomic_write_bytes

                    atomic_write_bytes(args.json, json.dumps(results, indent=1).encode())
    print(table(results))
    return 0
