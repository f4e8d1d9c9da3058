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

``--quality`` instead trains HAN, JoMoLD and RLLD (synchronous rewards from an in-process
evaluator: no Ray) on the same data, epochs and seeds and prints the ten test F-scores of each
(model selected by val/seg_Type) and, for JoMoLD and RLLD, denoising precision/recall of the
removed labels against LLP-sim's hidden truth. ``--methods`` picks the rows (default
``han,jomold,rlld:paper,rlld:stable``): ``han``, ``jomold``, ``jomold_cl`` (JoMoLD with MA's
contrastive term, ``cl_weight=1``), ``rlld:<preset>`` (``Config.from_preset``, see
``trainables.methods.rlld.config.PRESETS``) optionally followed by ``+no_inter`` or ``+no_label``
(the paper's ablations: ``use_inter_reward=False``, ``use_label_input=False``); ``--set``
overrides apply to every RLLD row. ``--seeds 0,1,2`` repeats everything per seed and prints mean
+- std over seeds. With ``--json`` every finished run is written at once (with each RLLD run's
per-epoch diagnostics under ``epochs``), so an interrupted benchmark keeps what it measured.

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
    p.add_argument("--quality", action="store_true",
                   help="compare HAN, JoMoLD and RLLD scores instead of timing async vs sync")
    p.add_argument("--methods", default="han,jomold,rlld:paper,rlld:stable",
                   help="--quality rows: han, jomold, jomold_cl, rlld:<preset>[+no_inter|+no_label] "
                        "(default han,jomold,rlld:paper,rlld:stable)")
    p.add_argument("--seeds", default=None,
                   help="--quality: comma-separated seeds (default: --seed); mean +- std over them")
    p.add_argument("--json", help="also write the figures as JSON here")
    return p


# The paper's ablations, as suffixes of an rlld:<preset> row.
ABLATIONS = {"no_inter": {"use_inter_reward": False}, "no_label": {"use_label_input": False}}


def _cfg(args, preset: str | None = None, **kw):
    """The RLLD config of ``--set`` overrides plus ``kw``; ``preset`` (or ``--set preset=NAME``)
    through ``Config.from_preset``."""
    from orchestrator.methods import PRESET_KEY, build_config, coerce_value
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


def parse_rlld_method(method: str) -> tuple[str, dict]:
    """``rlld:<preset>[+ablation...]`` -> ``(preset, overrides)``; ValueError if unknown."""
    from trainables.methods.rlld.config import PRESETS

    spec = method.partition(":")[2] or "paper_avtune"
    preset, *abl = spec.split("+")
    if preset not in PRESETS or any(a not in ABLATIONS for a in abl):
        raise ValueError(method)
    over: dict = {}
    for a in abl:
        over.update(ABLATIONS[a])
    return preset, over


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
    from trainables.methods.jomold import train as jomold

    cfg = jomold.Config(epochs=args.epochs, estimator_epochs=args.epochs, seed=args.seed)
    with tempfile.TemporaryDirectory(prefix="avtune-bench-rlld-est-") as cache:
        t0 = time.perf_counter()
        res = jomold.fit(cfg, path, device=dev, estimator_cache_dir=cache)
        wall = time.perf_counter() - t0
    return {"wall_s": wall, "val_seg_Type": res.get("val/seg_Type", float("nan")),
            "test_seg_Type": res.get("test/seg_Type", float("nan"))}


SCORE_KEYS = ("seg_A", "seg_V", "seg_AV", "seg_Type", "seg_Event",
              "event_A", "event_V", "event_AV", "event_Type", "event_Event")
DENOISE_KEYS = ("denoise/precision_a", "denoise/recall_a", "denoise/precision_v",
                "denoise/recall_v", "noise_ratio/mae_a", "noise_ratio/mae_v",
                "rlld/sampled_precision_a", "rlld/sampled_recall_a",
                "rlld/sampled_precision_v", "rlld/sampled_recall_v", "rlld/noise_auc_a",
                "rlld/noise_auc_v")


def _quality_run(args, method: str, seed: int, path, dev) -> dict:
    from trainables.methods.han import train as han
    from trainables.methods.jomold import train as jomold
    from trainables.methods.rlld.training import fit as rlld_fit

    t0 = time.perf_counter()
    epochs: list[dict] = []
    if method == "han":
        res = han.fit(han.Config(epochs=args.epochs, seed=seed), path, device=dev)
    elif method in ("jomold", "jomold_cl"):
        cfg = jomold.Config(epochs=args.epochs, estimator_epochs=args.epochs, seed=seed,
                            cl_weight=1.0 if method == "jomold_cl" else 0.0)
        with tempfile.TemporaryDirectory(prefix="avtune-bench-rlld-est-") as cache:
            res = jomold.fit(cfg, path, device=dev, estimator_cache_dir=cache)
    else:
        preset, over = parse_rlld_method(method)

        def report(e, m, sf):
            epochs.append({k: float(v) for k, v in m.items() if k.startswith(EPOCH_PREFIXES)})
            print(f"  {method} seed {seed} {epoch_line(e, m)}", flush=True)

        res = rlld_fit(_cfg(args, preset, **{"sync": True, **over, "epochs": args.epochs,
                                             "seed": seed}),
                       path, device=dev, reporter=report)
    res = {k: float(v) for k, v in res.items()}
    res["wall_s"] = time.perf_counter() - t0
    if epochs:
        res["epochs"] = epochs
    return res


# Per-epoch figures an RLLD run keeps in the JSON (the deciding experiment's curves).
EPOCH_PREFIXES = ("epoch", "train/kept", "rlld/", "denoise/", "val/seg", "reward/", "time/epoch")


def epoch_line(epoch: int, m: dict) -> str:
    """One line of RLLD diagnostics per epoch: what the agent's keep probabilities do for truly
    noisy vs clean labels (LLP-sim truth), and the validation scores."""
    def g(k: str) -> float:
        return float(m.get(k, float("nan")))

    return (f"epoch {epoch}: kept a/v {g('train/kept_a'):.3f}/{g('train/kept_v'):.3f}, keep p "
            f"noisy/clean v {g('rlld/keep_p_noisy_v'):.3f}/{g('rlld/keep_p_clean_v'):.3f} "
            f"a {g('rlld/keep_p_noisy_a'):.3f}/{g('rlld/keep_p_clean_a'):.3f}, noise AUC a/v "
            f"{g('rlld/noise_auc_a'):.3f}/{g('rlld/noise_auc_v'):.3f} (within class "
            f"{g('rlld/noise_auc_within_a'):.3f}/{g('rlld/noise_auc_within_v'):.3f}), greedy P/R "
            f"a {g('denoise/precision_a'):.2f}/{g('denoise/recall_a'):.2f} v "
            f"{g('denoise/precision_v'):.2f}/{g('denoise/recall_v'):.2f}, sampled P/R a "
            f"{g('rlld/sampled_precision_a'):.2f}/{g('rlld/sampled_recall_a'):.2f} v "
            f"{g('rlld/sampled_precision_v'):.2f}/{g('rlld/sampled_recall_v'):.2f}, val seg V/Type "
            f"{g('val/seg_V'):.1f}/{g('val/seg_Type'):.1f}, {g('time/epoch_s'):.0f} s")


def _mean_std(xs: list[float]) -> tuple[float, float]:
    n = len(xs)
    if n == 0:
        return float("nan"), float("nan")
    m = sum(xs) / n
    sd = (sum((x - m) ** 2 for x in xs) / (n - 1)) ** 0.5 if n > 1 else 0.0
    return m, sd


def quality_table(runs: dict[str, list[dict]]) -> str:
    """Test F-scores and denoising figures per method as text, mean +- std over seeds."""
    def cell(vals: list[float], fmt: str) -> str:
        vals = [v for v in vals if v == v]  # a figure a method does not report is NaN
        m, sd = _mean_std(vals)
        return (fmt.format(m) + ("+-" + fmt.format(sd) if len(vals) > 1 else "")) if vals else "-"

    lines = ["test F-scores (model selected by val/seg_Type)"]
    lines.append(f"{'method':<22s}" + "".join(f"{k:>13s}" for k in SCORE_KEYS) + f"{'wall s':>9s}")
    for name, rs in runs.items():
        lines.append(f"{name:<22s}" + "".join(
            f"{cell([r.get('test/' + k, float('nan')) for r in rs], '{:.1f}'):>13s}"
            for k in SCORE_KEYS) + f"{cell([r['wall_s'] for r in rs], '{:.0f}'):>9s}")
    lines.append("")
    lines.append("label denoising on the train split (selected epoch)")
    lines.append(f"{'method':<22s}" + "".join(f"{k.split('/')[1]:>20s}" for k in DENOISE_KEYS))
    for name, rs in runs.items():
        if name == "han":
            continue
        lines.append(f"{name:<22s}" + "".join(
            f"{cell([r.get(k, float('nan')) for r in rs], '{:.3f}'):>20s}" for k in DENOISE_KEYS))
    return "\n".join(lines)


EPOCH_KEYS = ("rlld/keep_p_noisy_v", "rlld/keep_p_clean_v", "rlld/keep_p_noisy_a",
              "rlld/keep_p_clean_a", "rlld/noise_auc_v", "rlld/noise_auc_a", "rlld/policy_steps")


def epoch_table(runs: dict[str, list[dict]]) -> str:
    """Per RLLD row and epoch, the mean over seeds of the agent's keep probabilities of truly noisy
    and clean labels, its noise AUC and the agent updates of the epoch."""
    lines = ["agent per epoch (mean over seeds): keep p noisy/clean v, a; noise AUC v, a; updates"]
    for name, rs in runs.items():
        n = min((len(r.get("epochs", [])) for r in rs), default=0)
        for e in range(n):
            vals = [sum(r["epochs"][e].get(k, float("nan")) for r in rs) / len(rs)
                    for k in EPOCH_KEYS]
            lines.append(f"{name:<22s} epoch {e}: {vals[0]:.3f}/{vals[1]:.3f}  {vals[2]:.3f}/"
                         f"{vals[3]:.3f}  {vals[4]:.3f}  {vals[5]:.3f}  {vals[6]:.0f}")
    return "\n".join(lines)


def _quality(args, path, dev) -> dict:
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    seeds = [int(x) for x in args.seeds.split(",")] if args.seeds else [args.seed]
    runs: dict[str, list[dict]] = {m: [] for m in methods}
    for seed in seeds:
        for m in methods:
            res = _quality_run(args, m, seed, path, dev)
            runs[m].append(res)
            print(f"{m} seed {seed}: test seg_V {res.get('test/seg_V', float('nan')):.1f}, "
                  f"seg_Type {res.get('test/seg_Type', float('nan')):.1f}, "
                  f"denoise P/R v {res.get('denoise/precision_v', float('nan')):.3f}/"
                  f"{res.get('denoise/recall_v', float('nan')):.3f}, {res['wall_s']:.0f} s",
                  flush=True)
            if args.json:
                _write_json(args.json, {"data": args.data, "epochs": args.epochs, "seeds": seeds,
                                        "runs": runs})
    print()
    print(quality_table(runs))
    print()
    print(epoch_table(runs))
    return runs


def _write_json(path: str, obj) -> None:
    from trainables.data.format import atomic_write_bytes

    atomic_write_bytes(path, json.dumps(obj, indent=2).encode())


def _known_method(m: str) -> bool:
    if m in ("han", "jomold", "jomold_cl", "rlld"):
        return True
    if not m.startswith("rlld:"):
        return False
    try:
        parse_rlld_method(m)
    except ValueError:
        return False
    return True


def _check_args(args) -> str | None:
    """The first bad option as an error line, or None."""
    if args.epochs < 1 or args.actors < 1 or args.staleness < 0:
        return "--epochs and --actors must be >= 1, --staleness >= 0"
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    bad = sorted(set(modes) - {"sync", "async"})
    if bad or not modes:
        return f"--modes: unknown {bad or modes}; expected sync,async"
    bad = [m for m in (x.strip() for x in args.methods.split(",")) if m and not _known_method(m)]
    if bad:
        from trainables.methods.rlld.config import PRESETS

        return (f"--methods: unknown {bad}; expected han, jomold, jomold_cl, "
                f"rlld:<preset>[+no_inter|+no_label] with preset in {sorted(PRESETS)}")
    try:
        seeds = [int(x) for x in args.seeds.split(",")] if args.seeds else None
    except ValueError:
        return f"--seeds {args.seeds!r}: expected comma-separated integers"
    if seeds is not None and not seeds:
        return "--seeds: no seed given"
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
    pool_txt = ("no actors (in-process rewards)" if args.quality else
                f"{args.actors} actors x {args.actor_cpus} CPU, {args.actor_gpus} GPU")
    print(f"device  {dev}{' (' + torch.cuda.get_device_name(dev) + ')' if gpu else ''}; "
          f"{pool_txt}; epochs {args.epochs}; learner threads {args.threads}"
          + (f"; validation slowed by {args.eval_slowdown} s (emulation)" if args.eval_slowdown else ""))
    if args.quality:
        _quality(args, path, dev)
        return 0
    summary = _timing(args, path, dev)
    if args.json:
        _write_json(args.json, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
