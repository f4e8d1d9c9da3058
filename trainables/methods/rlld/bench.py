"""Benchmark: RLLD with asynchronous vs synchronous validation rewards, and RLLD vs JoMoLD time.

``python -m orchestrator.bench rlld [--data llp-sim-small] [--device cpu|cuda] [--epochs N]
[--actors 2] [--staleness 2] [--actor-gpus G] [--no-jomold] [--json PATH]``

Runs ``trainables.methods.rlld.training.fit`` twice on the same data and seed with a pool of Ray validation actors
(``trainables.methods.rlld.pool``) on a private local Ray: once with ``sync=True`` (every policy step
waits for its reward: the paper's schedule) and once asynchronously with staleness bound S
(counted in episodes; ``--set preset=paper`` or ``--set episode_steps=K`` times the episode
schedule, where episode t's validation overlaps episode t+1's steps).
Reports policy steps per second over the training loops (actor start-up excluded: the actors are
warmed up first), the selected epoch's validation and test Type@AV / Event@AV scores, and whole
training wall time; then times JoMoLD's whole pipeline (estimator + denoising, same epochs) on the
same data and device and prints RLLD/JoMoLD time ratios.

Quality (test scores and denoising figures of RLLD's readings beside HAN and JoMoLD, over seeds)
is the named comparison ``python -m orchestrator.compare rlld_quality --seeds 3``.

Targets: async >= 1.5x sync throughput with 2 actors, final val Type@AV within 1 point
of sync, RLLD's whole training <= 3x JoMoLD's (the paper: about 8 h vs 3 h, 2.7x).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m orchestrator.bench rlld",
                                description=__doc__.split("\n\n")[1])
    p.add_argument("--data", default=None,
                   help="data spec (default llp-sim on CUDA, llp-sim-small on CPU)")
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda if available)")
    p.add_argument("--epochs", type=int, default=None,
                   help="epochs of RLLD and of both JoMoLD stages (default 25 on CUDA, 2 on CPU)")
    p.add_argument("--actors", type=int, default=2, help="validation actors (default 2)")
    p.add_argument("--staleness", type=int, default=2, help="async staleness bound S (default 2)")
    p.add_argument("--actor-gpus", type=float, default=None,
                   help="GPUs per actor (default: 0.25 on CUDA, 0 on CPU)")
    p.add_argument("--actor-cpus", type=float, default=1.0, help="CPUs per actor (default 1)")
    p.add_argument("--eval-slowdown", type=float, default=0.0, metavar="S",
                   help="extra seconds per validation pass in the actors, to emulate a slower "
                        "validation (e.g. the official code's ~5 s per LLP pass); default 0")
    p.add_argument("--threads", type=int, default=1, help="torch threads of the learner (default 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--modes", default="sync,async", help="comma-separated subset of sync,async")
    p.add_argument("--no-jomold", action="store_true", help="skip the JoMoLD timing")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="further trainables.methods.rlld.config.Config overrides (preset=NAME picks a preset)")
    p.add_argument("--json", help="also write the figures as JSON here")
    return p


def _cfg(args, preset: str | None = None, **kw):
    """The RLLD config of ``--set`` overrides plus ``kw``; ``preset`` (or ``--set preset=NAME``)
    through ``Config.from_preset``."""
    from trainables.core.config import PRESET_KEY, build_config, coerce_value
    from trainables.methods.rlld.config import Config

    over = {}
    for item in args.sets:
        k, sep, v = item.partition("=")
        if not sep:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE")
        over[k] = coerce_value(Config, k, v)
    if preset is not None:
        over[PRESET_KEY] = preset
    return build_config(Config, {**over, **kw})


def _run_rlld(args, path, dev, sync: bool) -> dict:
    import ray

    from trainables.methods.rlld.pool import RayValidationPool
    from trainables.methods.rlld.training import fit

    cfg = _cfg(args, epochs=args.epochs, seed=args.seed, sync=sync, staleness=args.staleness,
               eval_actors=args.actors, eval_actor_gpus=args.actor_gpus,
               eval_actor_cpus=args.actor_cpus)
    pool = RayValidationPool(cfg, path, placement_group=None, slowdown_s=args.eval_slowdown)
    ray.get([a.pid.remote() for a in pool.actors])  # start-up is not part of the throughput
    epochs = []
    t0 = time.perf_counter()
    res = fit(cfg, path, device=dev, evaluator=pool,
              reporter=lambda e, m, sf: epochs.append(m))
    wall = time.perf_counter() - t0
    last = epochs[-1] if epochs else {}
    return {
        "mode": "sync" if sync else f"async S={args.staleness}",
        "steps_per_s": res.get("time/run_steps_per_s", float("nan")),
        "wall_s": wall,
        "val_seg_Type": res.get("val/seg_Type", float("nan")),
        "val_event_Type": res.get("val/event_Type", float("nan")),
        "test_seg_Type": res.get("test/seg_Type", float("nan")),
        "test_event_Type": res.get("test/event_Type", float("nan")),
        "last_val_seg_Type": last.get("val/seg_Type", float("nan")),
        "actor_util": sum(m["time/actor_util"] for m in epochs) / max(1, len(epochs)),
        "staleness": sum(m["rlld/staleness"] for m in epochs) / max(1, len(epochs)),
        "wait_s": sum(m["time/wait_s"] for m in epochs),
        "policy_steps": sum(m["rlld/policy_steps"] for m in epochs),
        "denoise_f1_a": res.get("denoise/f1_a", float("nan")),
        "denoise_f1_v": res.get("denoise/f1_v", float("nan")),
        "resubmits": pool.resubmits,
    }


def _run_jomold(args, path, dev) -> dict:
    from trainables.core.method import method_spec

    jomold = method_spec("jomold")  # discovered, as the orchestrator reaches it: no cross-method import
    cfg = jomold.config_class()(epochs=args.epochs, estimator_epochs=args.epochs, seed=args.seed)
    with tempfile.TemporaryDirectory(prefix="avtune-bench-rlld-est-") as cache:
        t0 = time.perf_counter()
        res = jomold.fit_fn()(cfg, path, device=dev, estimator_cache_dir=cache)
        wall = time.perf_counter() - t0
    return {"wall_s": wall, "val_seg_Type": res.get("val/seg_Type", float("nan")),
            "test_seg_Type": res.get("test/seg_Type", float("nan"))}


def _write_json(path: str, obj) -> None:
    from trainables.data.format import atomic_write_bytes

    atomic_write_bytes(path, json.dumps(obj, indent=2).encode())


def _check_args(args) -> str | None:
    """The first bad option as an error line, or None."""
    if args.epochs < 1 or args.actors < 1 or args.staleness < 0:
        return "--epochs and --actors must be >= 1, --staleness >= 0"
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    bad = sorted(set(modes) - {"sync", "async"})
    if bad or not modes:
        return f"--modes: unknown {bad or modes}; expected sync,async"
    return None


def _timing(args, path, dev) -> dict:
    """RLLD sync and/or async on a private local Ray, then JoMoLD's whole pipeline; prints and
    returns the summary."""
    import ray
    import torch

    gpu = dev.type == "cuda"
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    ncpu = os.cpu_count() or 2
    ray.init(address="local", num_cpus=max(ncpu, int(args.actors * args.actor_cpus + 1)),
             num_gpus=torch.cuda.device_count() if gpu else 0, include_dashboard=False,
             log_to_driver=False)
    rows = []
    try:
        for m in modes:
            rows.append(_run_rlld(args, path, dev, sync=(m == "sync")))
    finally:
        ray.shutdown()
    jm = None if args.no_jomold else _run_jomold(args, path, dev)

    print(f"\n{'mode':<12}{'steps/s':>9}{'wall s':>9}{'val Type':>10}{'val EvT':>9}"
          f"{'test Type':>10}{'util':>7}{'stale':>7}{'wait s':>8}{'f1 a/v':>12}")
    for r in rows:
        print(f"{r['mode']:<12}{r['steps_per_s']:>9.2f}{r['wall_s']:>9.1f}{r['val_seg_Type']:>10.2f}"
              f"{r['val_event_Type']:>9.2f}{r['test_seg_Type']:>10.2f}{r['actor_util']:>7.2f}"
              f"{r['staleness']:>7.2f}{r['wait_s']:>8.1f}"
              f"{r['denoise_f1_a']:>6.3f}/{r['denoise_f1_v']:.3f}")
    by = {r["mode"].split()[0]: r for r in rows}
    summary: dict = {"data": args.data, "device": str(dev), "epochs": args.epochs,
                     "actors": args.actors, "eval_slowdown_s": args.eval_slowdown, "runs": rows}
    if "sync" in by and "async" in by:
        speed = by["async"]["steps_per_s"] / by["sync"]["steps_per_s"]
        delta = by["async"]["val_seg_Type"] - by["sync"]["val_seg_Type"]
        summary.update(async_speedup=speed, val_type_delta=delta)
        print(f"\nasync/sync throughput {speed:.2f}x (target >= 1.5x); "
              f"val Type@AV async - sync {delta:+.2f} (target within 1 point)")
    if jm is not None:
        summary["jomold"] = jm
        print(f"JoMoLD whole pipeline {jm['wall_s']:.1f} s (val Type {jm['val_seg_Type']:.2f}, "
              f"test Type {jm['test_seg_Type']:.2f})")
        for r in rows:
            ratio = r["wall_s"] / jm["wall_s"]
            summary[f"ratio_{r['mode'].split()[0]}"] = ratio
            print(f"RLLD {r['mode']} / JoMoLD time {ratio:.2f}x (target <= 3x; paper ~2.7x)")
    return summary


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    import torch

    from trainables.data.registry import describe_data, resolve_data

    dev = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    gpu = dev.type == "cuda"
    args.data = args.data or ("llp-sim" if gpu else "llp-sim-small")
    if args.epochs is None:
        args.epochs = 25 if gpu else 2
    if args.actor_gpus is None:
        args.actor_gpus = 0.25 if gpu else 0.0
    err = _check_args(args)
    if err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    torch.set_num_threads(max(1, args.threads))
    try:
        path = resolve_data(args.data)
    except ValueError as e:
        print(f"error: --data {args.data}: {e}", file=sys.stderr)
        return 2
    print(f"data    {describe_data(args.data)}")
    pool_txt = f"{args.actors} actors x {args.actor_cpus} CPU, {args.actor_gpus} GPU"
    print(f"device  {dev}{' (' + torch.cuda.get_device_name(dev) + ')' if gpu else ''}; "
          f"{pool_txt}; epochs {args.epochs}; learner threads {args.threads}"
          + (f"; validation slowed by {args.eval_slowdown} s (emulation)" if args.eval_slowdown else ""))
    summary = _timing(args, path, dev)
    if args.json:
        _write_json(args.json, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
