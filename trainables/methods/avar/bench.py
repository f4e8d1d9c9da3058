"""``python -m orchestrator.bench avar``: the variant table on AR-sim.

Generates (or reuses, under ``--cache``) an AR-sim data set per noise setting, trains every
requested variant with the same seed(s) and prints a Markdown table of the last-epoch and selected
(``select_metric``) figures. Single-threaded by default so the numbers do not depend on how many
cores happen to be free. Measured tables: docs/benchmarks.md, "Action recognition".

The simulated sets are tiny next to Kinetics (2,000 training videos on ``avar-sim-small``), so the
paper's Adam lr 5e-5 would barely move the MLPs within 60 epochs; the runs here use the ``sim``
preset (``Config.from_preset("sim")``: lr 3e-4 and narrower MLPs), everything else at the
paper's values.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from trainables.tasks.avar.data import make_avar_sim
from trainables.methods.avar.train import VARIANTS, Config, fit
from trainables.data.format import atomic_write_bytes, cache_root, params_key



def _data(preset: str, cache: Path, seed: int, noise: dict) -> Path:
    out = cache / f"{preset}-{params_key('avar-sim', {**noise, 'preset': preset, 'seed': seed})}"
    if not (out / "avtune.parquet").is_file():
        make_avar_sim(preset, out, seed=seed, **noise)
    return out


def paired_steps(results: dict[str, list[dict]], order: list[str], key: str) -> list[dict]:
    """Per-seed paired differences between consecutive variants of an expected order.

    Variants trained with the same seed share the data order and initialisation, so the per-seed
    difference is a sharper test of "B beats A" than two independent means.

    Args:
        results: Variant -> per-seed ``fit`` results, in the same seed order for every variant.
        order: Variants from the expected worst to the expected best, e.g. the paper's
            ``["none", "cat", "ins", "full"]``.
        key: The metric compared (higher is better).

    Returns:
        One dict per consecutive pair ``(a, b)``: ``lower``, ``higher``, ``diffs`` (``b - a`` per
        seed), ``mean``, ``sd`` (0 with one seed) and ``wins`` (seeds where ``b > a``).
    """
    steps = []
    for a, b in zip(order, order[1:]):
        if len(results[a]) != len(results[b]):
            raise ValueError(f"paired_steps: {a!r} has {len(results[a])} results, {b!r} has {len(results[b])}")
        diffs = [rb[key] - ra[key] for ra, rb in zip(results[a], results[b])]
        steps.append({"lower": a, "higher": b, "diffs": diffs, "mean": statistics.mean(diffs),
                      "sd": statistics.stdev(diffs) if len(diffs) > 1 else 0.0,
                      "wins": sum(d > 0 for d in diffs)})
    return steps


def _parse_setting(s: str) -> dict:
    """``sym:0.6:0.4`` -> label noise kind, rate, mean noisy-correspondence ratio."""
    kind, r, q = s.split(":")
    return {"label_noise": kind, "noise_rate": float(r), "corr_rate": float(q)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="avar-sim-small")
    ap.add_argument("--settings", nargs="+", default=["sym:0.6:0.4"],
                    help="noise settings KIND:RATE:CORR, e.g. sym:0.6:0.4 asym:0.4:0.2 none:0:0")
    ap.add_argument("--profile", default="skewed", choices=["skewed", "uniform"])
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--data-seed", type=int, default=0)
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                    help="further Config overrides (JSON values)")
    ap.add_argument("--cache", type=Path, default=cache_root() / "avar-experiments")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, help="also write the raw results here")
    ap.add_argument("--paired", action="store_true",
                    help="also print, per setting, the per-seed differences between consecutive "
                         "--variants (list them from the expected worst to the expected best)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    over: dict = {}
    for kv in args.set:
        key, _, val = kv.partition("=")
        if key not in Config.__dataclass_fields__:
            print(f"error: --set {kv!r}: Config has no field {key!r}", file=sys.stderr)
            return 2
        over[key] = json.loads(val)
    rows = []
    print(f"# preset {args.preset}, profile {args.profile}, epochs {args.epochs}, seeds {args.seeds}, "
          f"preset sim, overrides {over}")
    print("| setting | variant | clip top-1 (last) | clip top-5 | video top-1 | clip top-1 (best) | "
          "corrected-label acc | omega AUC | s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for setting in args.settings:
        noise = {**_parse_setting(setting), "corr_profile": args.profile}
        path = _data(args.preset, args.cache, args.data_seed, noise)
        for variant in args.variants:
            res = []
            t0 = time.perf_counter()
            for seed in args.seeds:
                cfg = Config.from_preset("sim", variant=variant, epochs=args.epochs, seed=seed, **over)
                res.append(fit(cfg, path, device="cpu"))
            dt = (time.perf_counter() - t0) / len(args.seeds)

            def m(key: str) -> str:
                xs = [r[key] for r in res]
                sd = f"±{statistics.stdev(xs):.1f}" if len(xs) > 1 else ""
                return f"{statistics.mean(xs):.1f}{sd}"

            print(f"| {setting} | {variant} | {m('last/val/clip_top1')} | {m('val/clip_top5')} | "
                  f"{m('val/video_top1')} | {m('val/clip_top1')} | {m('train/corrected_label_acc')} | "
                  f"{statistics.mean(r['train/omega_auc'] for r in res):.3f} | {dt:.0f} |", flush=True)
            rows.append({"setting": setting, "variant": variant, "results": res})
    if args.paired and len(args.variants) > 1:
        print()
        print("| setting | step | last: mean ± sd of the per-seed difference (wins) | best: ... (wins) |")
        print("|---|---|---|---|")
        for setting in args.settings:
            res = {r["variant"]: r["results"] for r in rows if r["setting"] == setting}
            last = paired_steps(res, args.variants, "last/val/clip_top1")
            best = paired_steps(res, args.variants, "val/clip_top1")
            for sl, sb in zip(last, best):
                print(f"| {setting} | {sl['lower']} < {sl['higher']} | {sl['mean']:+.2f} ± {sl['sd']:.2f} "
                      f"({sl['wins']}/{len(sl['diffs'])}) | {sb['mean']:+.2f} ± {sb['sd']:.2f} "
                      f"({sb['wins']}/{len(sb['diffs'])}) |")
    if args.json:
        atomic_write_bytes(args.json, json.dumps(rows, indent=1).encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
