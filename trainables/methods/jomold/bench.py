"""Benchmark: the full default JoMoLD pipeline with per-stage wall times.

``python -m orchestrator.bench jomold [--data llp-sim] [--device cuda|cpu] [--epochs N]``

Quality (test scores and denoising figures of HAN, JoMoLD and their diagnostics over seeds) is
the named comparison ``python -m orchestrator.compare jomold_quality --seeds 3``.

Stages: noise estimator (``--epochs`` epochs, trained fresh into a temporary cache), noise
ratios, denoising training (``--epochs`` epochs, validation after each), test of the selected
epoch. Reference: the official JoMoLD code on an H100 took about 3.9 s per estimator
epoch, 6.6-7.9 s per denoising epoch, 4.2-5.6 s per validation pass, 8.7-9.6 s per test pass,
6.6 s for the ratios and about 530 s in all; the target is 20 s or less on an H100.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m orchestrator.bench jomold",
                                description=__doc__.split("\n\n")[1])
    p.add_argument("--data", default="llp-sim", help="data spec (default llp-sim)")
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda if available)")
    p.add_argument("--epochs", type=int, default=25,
                   help="epochs of the estimator and of the denoising stage (default 25)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.epochs < 1:
        print("error: --epochs must be >= 1", file=sys.stderr)
        return 2
    import torch

    from trainables.core import dist as cd
    from trainables.data.registry import describe_data, resolve_data

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        path = resolve_data(args.data)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"data: {describe_data(args.data)}")
    dev = cd.resolve_device(args.device)
    print(f"device: {dev}" + (f" ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else
                              f" ({torch.get_num_threads()} threads)"), flush=True)
    return pipeline(path, dev, args)


def pipeline(path, dev, args) -> int:
    """Times the default pipeline stage by stage."""
    from trainables.methods.jomold import train as jomold

    cfg = jomold.Config(epochs=args.epochs, estimator_epochs=args.epochs, seed=args.seed)
    est_epochs: list[dict[str, float]] = []
    den_epochs: list[dict[str, float]] = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="avtune-bench-est-") as cache:
        res = jomold.fit(cfg, path, device=dev, estimator_cache_dir=cache,
                         reporter=lambda e, m, sf: den_epochs.append(m),
                         estimator_reporter=lambda e, m, sf: est_epochs.append(m))
    total = time.perf_counter() - t0

    def mean(rows, key):
        return statistics.fmean(r[key] for r in rows)

    val_s = [r["time/val_s"] for r in est_epochs + den_epochs]
    rows = [
        ("estimator per epoch (train)", mean(est_epochs, "time/train_s")),
        ("estimator total (train + val)", sum(r["time/train_s"] + r["time/val_s"]
                                              for r in est_epochs)),
        ("noise ratios", res["time/ratios_s"]),
        ("denoise per epoch (train)", mean(den_epochs, "time/train_s")),
        ("denoise total (train + val)", sum(r["time/train_s"] + r["time/val_s"]
                                            for r in den_epochs)),
        ("val pass (mean)", statistics.fmean(val_s)),
        ("test pass", res["time/test_s"]),
        ("total pipeline (incl. data load)", total),
    ]
    print(f"\nJoMoLD pipeline, {args.epochs}+{args.epochs} epochs, batch {cfg.batch_size}")
    for name, secs in rows:
        print(f"  {name:<34s} {secs:9.3f} s")
    print(f"\nselected epoch {int(res['best_epoch'])}: "
          + ", ".join(f"{k} {res[k]:.1f}" for k in ("test/seg_A", "test/seg_V", "test/seg_Type",
                                                   "test/event_Type") if k in res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
