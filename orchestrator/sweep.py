"""Named sweeps: ``python -m orchestrator.sweep NAME [options]`` and ``--list``.

Runs a named search space (``search_spaces/NAME.py``) with Ray Tune (Optuna TPE or the sweep's
grid), checkpointing every epoch, tracking each sweep in MLflow (a parent run with nested trial
runs and paper-style tables). Without a GPU the sweep shrinks to its CPU preset and says so.

Four small steps: :func:`parse_args`, :func:`build_plan`, :func:`orchestrator.launch.fit` and
:func:`report`; :mod:`orchestrator.preflight` checks the settings before anything starts.
See docs/sweeps.md for every option.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.launch import _local_resources, fit, start_ray
from orchestrator.specs import SweepError, describe_space, list_sweeps, load_spec
from search_spaces.base import SweepSpec




# ----------------------------------------------------------------------------- parse

def _positive_int(name: str):
    def conv(s: str) -> int:
        try:
            v = int(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, got {s!r}") from None
        if v < 1:
            raise argparse.ArgumentTypeError(f"{name} must be >= 1, got {v}")
        return v
    return conv


def _nonneg_float(name: str, strictly_positive: bool = False):
    def conv(s: str) -> float:
        try:
            v = float(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {s!r}") from None
        if not math.isfinite(v) or v < 0 or (strictly_positive and v == 0):
            raise argparse.ArgumentTypeError(f"{name} must be {'> 0' if strictly_positive else '>= 0'}, got {s}")
        return v
    return conv


def _seed(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seed must be an integer, got {s!r}") from None
    if not 0 <= v < 2**32:
        raise argparse.ArgumentTypeError(f"--seed must be in [0, 2**32), got {v}")
    return v


def _keyval(s: str) -> tuple[str, str]:
    key, sep, val = s.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"--set expects KEY=VALUE, got {s!r}")
    return key.strip(), val


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m orchestrator.sweep",
        description="Run a named hyper-parameter sweep with Ray Tune + Optuna, tracked in MLflow.",
        epilog="Without a GPU the sweep uses its CPU preset (smaller data, fewer epochs and trials) "
               "and says so; any flag you pass overrides the preset. See docs/sweeps.md.")
    p.add_argument("name", nargs="?", help="sweep name (see --list) or package.module[:SPEC]")
    p.add_argument("--list", action="store_true", help="list the named sweeps and exit")
    p.add_argument("--num-samples", type=_positive_int("--num-samples"),
                   help="trials (grid: repetitions of the grid); default from the sweep")
    p.add_argument("--max-epochs", type=_positive_int("--max-epochs"), help="epochs per trial")
    p.add_argument("--data", help="llp-sim | llp-sim-small | llp-sim-tiny | llp=PATH | avar-sim[-small|-tiny] | avar=PATH")
    p.add_argument("--gpus-per-trial", type=_nonneg_float("--gpus-per-trial"),
                   help="GPUs per trial (per worker with --workers-per-trial); fractions share a GPU")
    p.add_argument("--cpus-per-trial", type=_nonneg_float("--cpus-per-trial", strictly_positive=True),
                   help="CPUs per trial (per worker with --workers-per-trial); default 1")
    p.add_argument("--workers-per-trial", type=_positive_int("--workers-per-trial"), default=1,
                   help="Ray Train DDP workers per trial (default 1: in-process)")
    p.add_argument("--max-concurrent", type=_positive_int("--max-concurrent"),
                   help="cap on trials running at once (default: as many as the resources fit)")
    p.add_argument("--max-failures", type=int, default=2, help="retries of a failed trial from its checkpoint")
    p.add_argument("--address", help="join a running Ray cluster ('auto' on a cluster node, "
                                     "HOST:PORT, ray://HOST:PORT; default: $RAY_ADDRESS if set, "
                                     "else 'local': a private Ray on 127.0.0.1)")
    p.add_argument("--mlflow-uri", help="MLflow tracking URI (default sqlite:///<cwd>/mlflow.db)")
    p.add_argument("--storage", default="./ray_results",
                   help="Tune results/checkpoints; local path or s3://bucket/prefix (shared on multi-node)")
    p.add_argument("--name", dest="run_name", help="experiment name (default NAME-<timestamp>)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted sweep (--name, or the newest one of NAME in --storage)")
    p.add_argument("--seed", type=_seed, default=0, help="seed of the trials and of the TPE sampler")
    p.add_argument("--scheduler", choices=("fifo", "asha"), default="fifo")
    p.add_argument("--grid", action="store_true", help="run the sweep's grid instead of Optuna")
    p.add_argument("--dry-run", action="store_true", help="print space, resources and data; run nothing")
    p.add_argument("--set", dest="sets", type=_keyval, action="append", default=[], metavar="KEY=VALUE",
                   help="override a field of the trainable's config for every trial (repeatable)")
    return p


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parses and range-checks the command line (argparse exits with status 2 on bad values)."""
    p = make_parser()
    args = p.parse_args(argv)
    if not args.list and not args.name:
        p.error("a sweep NAME is required (or --list)")
    if args.gpus_per_trial is not None and args.gpus_per_trial > 1 and args.gpus_per_trial != int(args.gpus_per_trial):
        p.error(f"--gpus-per-trial above 1 must be a whole number, got {args.gpus_per_trial}")
    if args.max_failures < 0:
        p.error(f"--max-failures must be >= 0, got {args.max_failures}")
    if args.run_name is not None and not re.fullmatch(r"[A-Za-z0-9_.\-]+", args.run_name):
        p.error(f"--name may hold letters, digits, '_', '.', '-' only, got {args.run_name!r}")
    return args


# ----------------------------------------------------------------------------- build

@dataclass
class Plan:
    """Everything a sweep needs, resolved. ``trial`` is the JSON-able dict the trials receive."""

    spec: SweepSpec
    trial: dict[str, Any]
    num_samples: int
    scheduler: str
    address: str | None
    mlflow_uri: str
    experiment: str
    resume: bool
    has_gpu: bool
    notes: list[str] = field(default_factory=list)
    total: dict[str, float] = field(default_factory=dict)
    extra_bundles: list[dict] = field(default_factory=list)
    max_concurrent: int = 1
    tuned: list[str] = field(default_factory=list)
    n_trials: int = 0


def _storage(s: str) -> str:
    return s if "://" in s else str(Path(s).expanduser().resolve())


def _find_latest(storage: str, sweep_ref: str) -> str:
    """Name of the newest experiment under ``storage`` whose saved plan ran ``sweep_ref``."""
    import json

    from orchestrator.tune_runner import PLAN_FILE, has_tune_state

    if "://" in storage:
        raise SweepError("--resume on remote storage needs --name (the experiment to continue)")
    root = Path(storage)
    cands = []
    for f in root.glob(f"*/{PLAN_FILE}") if root.is_dir() else []:
        try:
            if json.loads(f.read_text()).get("sweep") == sweep_ref:
                cands.append(f)
        except (OSError, ValueError):
            continue
    if not cands:
        raise SweepError(f"--resume: no interrupted sweep of {sweep_ref!r} under {storage}; pass --name")
    # An experiment whose sweep stopped before any trial state was saved is no "newest sweep".
    started = [f for f in cands if has_tune_state({"storage": storage, "name": f.parent.name})]
    if not started:
        names = ", ".join(sorted(f.parent.name for f in cands))
        raise SweepError(f"--resume: no sweep of {sweep_ref!r} under {storage} saved any trial "
                         f"state ({names}); --resume --name NAME restarts one as planned")
    return max(started, key=lambda f: f.stat().st_mtime).parent.name


def build_plan(args: argparse.Namespace, total: dict[str, float] | None = None) -> Plan:
    """Resolves the sweep, its defaults (GPU or CPU preset), resources and config overrides.

    Args:
        args: Parsed command line.
        total: Resources of the cluster to run on (default: this machine's CPUs and GPUs).

    Raises:
        SweepError: Unknown sweep, unknown ``--set`` key or value, ``--grid`` without a grid, ...
    """
    from orchestrator import methods as treg
    from orchestrator.tune_runner import load_plan

    spec = load_spec(args.name)
    storage = _storage(args.storage)
    mlflow_uri = args.mlflow_uri or f"sqlite:///{Path.cwd() / 'mlflow.db'}"
    total = dict(total if total is not None else _local_resources())

    if args.resume:
        name = args.run_name or _find_latest(storage, args.name)
        try:
            trial = load_plan(f"{storage.rstrip('/')}/{name}")
        except FileNotFoundError as e:
            raise SweepError(f"--resume: {e}") from None
        if trial.get("sweep") != args.name:
            raise SweepError(f"--resume: experiment {name!r} ran sweep {trial.get('sweep')!r}, not {args.name!r}")
        trial["storage"] = storage
        spec_obj = spec
        tuned = list(spec_obj.grid) if trial["grid"] else [ln.split(":")[0] for ln in describe_space(spec)]
        plan = Plan(spec=spec, trial=trial, num_samples=int(trial["num_samples"]), scheduler=trial["scheduler"],
                    address=args.address, mlflow_uri=trial["mlflow_uri"], experiment=name, resume=True,
                    has_gpu=float(trial["gpus"]) > 0, total=total, tuned=tuned,
                    notes=[f"resuming {storage}/{name}: finished trials are kept, the others continue "
                           "from their last checkpoint"])
        _finish_resources(plan, args)
        return plan

    if args.grid and not spec.grid:
        raise SweepError(f"sweep {spec.name!r} defines no grid; drop --grid")
    try:
        entry = treg.get_method(spec.trainable)
        mod = treg.load(spec.trainable)
    except (KeyError, ImportError, TypeError) as e:
        raise SweepError(f"sweep {spec.name!r}: trainable {spec.trainable!r} is not available ({e})") from None

    notes: list[str] = []
    has_gpu = (args.gpus_per_trial or 0) > 0 or (args.gpus_per_trial is None and total.get("GPU", 0) > 0)
    if has_gpu:
        data, epochs = spec.default_data, spec.default_epochs
        samples = spec.num_samples
    else:
        data, epochs, samples = spec.cpu_data, spec.cpu_epochs, spec.cpu_num_samples
        if not (args.data and args.max_epochs and (args.num_samples or args.grid)):
            trials = "the grid" if args.grid else f"{spec.cpu_num_samples} trials"
            notes.append(f"no GPU found: using the CPU preset of {spec.name} (data {spec.cpu_data}, "
                         f"{spec.cpu_epochs} epochs, {trials}); "
                         "--data/--max-epochs/--num-samples override it")
    data = args.data or data
    try:
        from trainables.data.registry import describe_data

        plan_data_desc = describe_data(data)
    except ValueError as e:
        raise SweepError(f"--data: {e}") from None
    del plan_data_desc  # validated; describe_plan prints it
    epochs = args.max_epochs or epochs
    num_samples = args.num_samples or (1 if args.grid else samples)
    gpus = args.gpus_per_trial if args.gpus_per_trial is not None else (0.125 if has_gpu else 0.0)
    if gpus > 0 and total.get("GPU", 0) == 0 and args.address is None:
        raise SweepError(f"--gpus-per-trial {gpus}: this machine has no GPU")
    cpus = args.cpus_per_trial or 1.0

    fields = treg.config_fields(mod.Config)
    for required in ("epochs", "seed"):
        if required not in fields:
            raise SweepError(f"trainable {spec.trainable}: Config has no field {required!r}")
    base: dict[str, Any] = {}
    for k, v in spec.base.items():
        base[k] = v
    for key, raw in args.sets:
        if key in ("epochs", "seed"):
            raise SweepError(f"--set {key}=...: use --{'max-epochs' if key == 'epochs' else 'seed'} instead")
        try:
            base[key] = treg.coerce_value(mod.Config, key, raw)
        except KeyError as e:
            raise SweepError(f"--set {key}={raw}: {e.args[0]}") from None
        except ValueError as e:
            raise SweepError(str(e)) from None
    # Stage lengths (a method's ``*_epochs``, e.g. a denoising estimator's) follow a shortened
    # run, or a 3-epoch CPU preset would still pay for a 25-epoch first stage.
    capped = []
    for fname, f in fields.items():
        d = treg._default_of(f)
        if (fname.endswith("_epochs") and fname not in base and type(d) is int and d > epochs):
            base[fname] = int(epochs)
            capped.append(fname)
    if capped:
        notes.append(f"{', '.join(capped)} capped at {epochs} like epochs (--set {capped[0]}=N to change)")
    unknown = sorted(set(base) - set(fields) - {treg.PRESET_KEY})
    if unknown:
        raise SweepError(f"sweep {spec.name}: base keys {unknown} are not fields of {mod.__name__}.Config")
    space_lines = describe_space(spec, args.seed)
    tuned = list(spec.grid) if args.grid else [ln.split(":")[0] for ln in space_lines]
    bad = sorted(k for k in tuned if k not in fields)
    if bad:
        raise SweepError(f"sweep {spec.name}: tuned keys {bad} are not fields of {mod.__name__}.Config")
    clash = sorted(k for k, _ in args.sets if k in tuned)
    if clash:
        notes.append(f"--set {', '.join(clash)}: tuned by this sweep, so each trial's value wins")
    try:
        build = treg.build_config(mod.Config, {**base, "epochs": epochs, "seed": args.seed})
        check = treg.load_hook(entry.check)
        if check is not None:
            check(build, data)  # the method's checks that need the data (e.g. its class count)
    except (TypeError, ValueError) as e:
        raise SweepError(f"config of {spec.trainable}: {e}") from None
    del build  # only validated here; trials build their own

    name = args.run_name or f"{spec.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    if "://" not in storage and (Path(storage) / name).exists():
        raise SweepError(f"--name {name}: {Path(storage) / name} already exists; "
                         "continue it with --resume or pick another --name")
    trial = {
        "sweep": args.name, "trainable": spec.trainable, "data": data, "base": base,
        "epochs": int(epochs), "seed": int(args.seed), "workers": int(args.workers_per_trial),
        "cpus": float(cpus), "gpus": float(gpus), "storage": storage, "name": name,
        "grid": bool(args.grid), "max_failures": int(args.max_failures), "sweep_id": uuid.uuid4().hex,
        "num_samples": int(num_samples), "scheduler": args.scheduler, "mlflow_uri": mlflow_uri,
        "prepare": entry.prepare,
    }
    plan = Plan(spec=spec, trial=trial, num_samples=int(num_samples), scheduler=args.scheduler,
                address=args.address, mlflow_uri=mlflow_uri, experiment=name, resume=False,
                has_gpu=has_gpu, notes=notes, total=total, tuned=tuned)
    _finish_resources(plan, args)
    return plan


def _finish_resources(plan: Plan, args: argparse.Namespace) -> None:
    from orchestrator import methods as treg
    from orchestrator.tune_runner import max_concurrent, per_trial_demand

    entry = treg.get_method(plan.spec.trainable)
    hook = treg.load_hook(entry.extra_bundles)
    if hook is not None:
        mod = treg.load(plan.spec.trainable)
        cfg = treg.build_config(mod.Config, {**plan.trial["base"], "epochs": plan.trial["epochs"],
                                             "seed": plan.trial["seed"]})
        plan.extra_bundles = [dict(b) for b in hook(cfg) or []]
    plan.n_trials = plan.num_samples * (math.prod(len(v) for v in plan.spec.grid.values())
                                        if plan.trial["grid"] else 1)
    plan.max_concurrent = max_concurrent(plan.total, per_trial_demand(plan.trial, plan.extra_bundles),
                                         args.max_concurrent, plan.n_trials)


def describe_plan(plan: Plan) -> str:
    """Human-readable summary (what ``--dry-run`` prints)."""
    t = plan.trial
    try:
        from trainables.data.registry import describe_data

        data_desc = describe_data(t["data"])
    except Exception as e:  # the registry may not describe every spec; the spec itself is valid
        data_desc = f"({type(e).__name__}: {e})"
    n_grid = math.prod(len(v) for v in plan.spec.grid.values()) if t["grid"] and plan.spec.grid else None
    lines = [
        f"sweep       {plan.spec.name}: {plan.spec.description}",
        f"trainable   {plan.spec.trainable}   metric {plan.spec.metric} ({plan.spec.mode})",
        "search      " + (f"grid of {n_grid} cells x {plan.num_samples}" if n_grid
                           else f"Optuna TPE (seed {t['seed']}), {plan.num_samples} trials"),
        f"scheduler   {plan.scheduler}",
        "space",
    ]
    if t["grid"]:
        lines += [f"  {k}: {list(v)}" for k, v in plan.spec.grid.items()]
    else:
        lines += [f"  {ln}" for ln in describe_space(plan.spec, t["seed"])]
        if plan.spec.points_to_evaluate:
            lines.append("points to evaluate first")
            lines += [f"  {dict(p)}" for p in plan.spec.points_to_evaluate]
    lines += [
        f"base config {t['base'] or '{}'} (epochs {t['epochs']}, seed {t['seed']})",
        f"data        {t['data']}: {data_desc}",
        f"resources   per trial: {t['workers']} worker(s) x {t['cpus']:g} CPU, {t['gpus']:g} GPU"
        + (f" + extra bundles {plan.extra_bundles}" if plan.extra_bundles else ""),
        f"            cluster {', '.join(f'{k} {v:g}' for k, v in sorted(plan.total.items()))}; "
        f"{plan.max_concurrent} trial(s) at once",
        f"ray         {plan.address or 'private local Ray (address=local, no dashboard)'}",
        f"storage     {t['storage']}/{plan.experiment}",
        f"mlflow      {plan.mlflow_uri} (experiment {plan.spec.name})",
    ]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- fit

# ----------------------------------------------------------------------------- report

def report(plan: Plan, rows: list[dict[str, Any]]) -> str:
    """The closing text: the best trial's row and the command that opens MLflow on it."""
    from orchestrator import tables

    metric = plan.spec.metric
    finished = [r for r in rows if r["status"] == "TERMINATED"]
    # Only finished trials compete: an interrupted trial's partial epochs are no result.
    best = tables.best_row(finished, metric, plan.spec.mode)
    lines = [f"[avtune] {len(finished)}/{plan.n_trials or len(rows)} trials finished"]
    if best is None:
        lines.append(f"[avtune] no trial reported {metric}")
    else:
        cfg = ", ".join(f"{k.removeprefix('config/')}={v:.4g}" if isinstance(v, float)
                        else f"{k.removeprefix('config/')}={v}" for k, v in best.items() if k.startswith("config/"))
        lines.append(f"[avtune] best trial {best.get('trial_id')}: {cfg}  {metric}={best[metric]:.2f}")
        from orchestrator.methods import task_of

        task = task_of(plan.spec.trainable)
        s = tables.scores_of(best, task, "test/")
        if any(f"test/{k}" in best for k in task.score_keys):
            lines.append("[avtune] test  " + "  ".join(f"{lab} {s[k]:.1f}" for k, lab in
                                                       zip(task.score_keys, task.score_labels)))
    lines.append(f"[avtune] results: {plan.trial['storage']}/{plan.experiment}")
    if len(finished) + sum(r["status"] == "ERROR" for r in rows) >= plan.n_trials:
        lines.append(f"[avtune] tables: MLflow experiment {plan.spec.name!r}, parent run "
                     f"{plan.experiment!r}, artifacts tables/")
    lines.append(f"mlflow ui --backend-store-uri {plan.mlflow_uri} --host 127.0.0.1")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns 0 (every planned trial finished), 1 (some failed), 2 (bad input)
    or 130 (interrupted: the first Ctrl+C stops the trials at their last checkpoint, a second one
    aborts at once)."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.list:
        print(list_sweeps())
        return 0
    from orchestrator import preflight

    if not args.address and os.environ.get("RAY_ADDRESS"):
        # Honoured, and said: a stray RAY_ADDRESS must not silently pick the cluster.
        args.address = os.environ["RAY_ADDRESS"]
        print(f"[avtune] RAY_ADDRESS={args.address} is set: joining that cluster "
              "(--address local starts a private Ray instead)")
    if args.address == "local":
        args.address = None
    try:
        if args.address and not args.dry_run:
            preflight.check_address(args.address)
        try:
            total = start_ray(args.address) if args.address and not args.dry_run else None
        except (ConnectionError, TimeoutError, RuntimeError) as e:
            # Something answers at the address, but it is no Ray cluster we can join.
            raise SweepError(f"--address {args.address}: cannot join a Ray cluster there "
                             f"({type(e).__name__}: {str(e).splitlines()[0][:200]})") from None
        plan = build_plan(args, total)
        if not args.dry_run:
            preflight.check_tracking(plan.mlflow_uri)
            preflight.check_storage(plan.trial["storage"])
    except (SweepError, ValueError, FileNotFoundError) as e:
        # Bad input: nothing has been started or written. Data specs and paths are checked
        # where they are resolved, and their messages name the file.
        if args.address and not args.dry_run:
            import ray

            ray.shutdown()
        print(f"error: {e}", file=sys.stderr)
        return 2
    for n in plan.notes:
        print(f"[avtune] {n}")
    print(describe_plan(plan))
    if args.dry_run:
        return 0
    if not args.address:
        plan.total = start_ray(None, plan.total)
    resume = f"python -m orchestrator.sweep {args.name} --resume --name {plan.experiment}"
    try:
        rows = fit(plan)
    except KeyboardInterrupt:
        # Ctrl+C while preparing (before Tune listens for it) or a second Ctrl+C: abort now.
        from orchestrator import tracking

        tracking.kill_open_sweep(plan.mlflow_uri, plan.spec.name, plan.trial["sweep_id"])
        saved = plan.resume or Path(plan.trial["storage"], plan.experiment).is_dir()
        print("[avtune] aborted: " + (f"resume with: {resume}" if saved else
                                       "no trial had started; run the same command again"),
              file=sys.stderr)
        return 130
    print(report(plan, rows))
    finished = sum(r["status"] == "TERMINATED" for r in rows)
    failed = sum(r["status"] == "ERROR" for r in rows)
    if finished + failed < plan.n_trials:
        print(f"[avtune] interrupted: {finished} of {plan.n_trials} trials finished; "
              f"resume with: {resume}", file=sys.stderr)
        return 130
    return 0 if finished == plan.n_trials else 1


if __name__ == "__main__":
    sys.exit(main())
