"""Named sweeps: ``python -m orchestrator.sweep NAME [options]`` and ``--list``.

Runs a named search space (``search_spaces/NAME.py``) with Ray Tune (Optuna TPE or the sweep's
grid), checkpointing every epoch, tracking each sweep in MLflow (a parent run with nested trial
runs and paper-style tables). Without a GPU the sweep shrinks to its CPU preset and says so.

Four small steps: :func:`parse_args`, :func:`build_plan`, :func:`orchestrator.launch.fit` and
:func:`report`; :mod:`orchestrator.preflight` checks the settings before anything starts.
``--seeds N`` repeats every configuration under N seeds; ``--show [NAME]`` prints a finished
run's ranked table again from MLflow. See docs/sweeps.md for every option.

Module-level imports are the standard library and light modules only, so argument errors and
unknown sweeps are reported before Ray, torch or MLflow load.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator import cli
from orchestrator.launch import _local_resources, fit, start_ray
from orchestrator.specs import SweepError, describe_space, list_sweeps, load_spec, sweep_names
from search_spaces.base import SweepSpec


# ----------------------------------------------------------------------------- parse

# Kept for callers that used the sweep module's converters.
_positive_int, _nonneg_float, _seed, _keyval = cli.positive_int, cli.nonneg_float, cli.seed, cli.keyval


def make_parser() -> argparse.ArgumentParser:
    names = ", ".join(sweep_names())
    p = argparse.ArgumentParser(
        prog="python -m orchestrator.sweep",
        formatter_class=cli.HelpFormatter,
        description="Run a named hyper-parameter sweep with Ray Tune + Optuna, tracked in MLflow.",
        epilog=f"named sweeps: {names}\n(--list shows each one's metric and description)\n\n"
               "Without a GPU the sweep uses its CPU preset (smaller data, fewer epochs and trials) "
               "and says so;\nany of --data, --max-epochs, --num-samples overrides the preset. "
               "Exit status: 0 every trial\nfinished, 1 some failed, 2 bad input (nothing written), "
               "130 interrupted. See docs/sweeps.md.\n\n"
               "examples:\n  python -m orchestrator.sweep NAME\n"
               "  python -m orchestrator.sweep NAME --grid --seeds 3\n"
               "  python -m orchestrator.sweep NAME --data SPEC --max-epochs 2 --num-samples 4\n"
               "  python -m orchestrator.sweep --show\n")
    p.add_argument("name", nargs="?", help=f"sweep name ({names}) or package.module[:SPEC]")
    p.add_argument("--list", action="store_true", help="list the named sweeps and exit")
    p.add_argument("--show", nargs="?", const="", metavar="NAME",
                   help="print the ranked table of a finished run again, from MLflow: NAME is a run "
                        "(--name) or a sweep (its newest run); without NAME the newest run")
    s = p.add_argument_group("search")
    s.add_argument("--num-samples", metavar="N", type=cli.positive_int("--num-samples"),
                   help="configurations to try (with --grid: repetitions of the grid); "
                        "default: the sweep's (CPU-only: its cpu_num_samples)")
    s.add_argument("--grid", action="store_true", help="run the sweep's grid instead of Optuna")
    s.add_argument("--scheduler", choices=("fifo", "asha"), default="fifo",
                   help="asha stops weak trials early")
    s.add_argument("--resume", action="store_true",
                   help="continue an interrupted sweep (--name, or the newest one of NAME in --storage)")
    s.add_argument("--set", dest="sets", type=cli.keyval, action="append", default=[], metavar="KEY=VALUE",
                   help="override a field of the trainable's config for every trial (repeatable); "
                        "--set preset=NAME builds a named preset")
    cli.add_run_options(p)
    return p


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parses and range-checks the command line (argparse exits with status 2 on bad values)."""
    p = make_parser()
    args = p.parse_args(argv)
    if not args.list and args.show is None and not args.name:
        p.error("a sweep NAME is required (or --list, --show)")
    cli.check_run_args(p, args)
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
    seeds: int = 1


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

    if args.resume:
        total = dict(total if total is not None else _local_resources())
        name = args.run_name or _find_latest(storage, args.name)
        try:
            trial = load_plan(f"{storage.rstrip('/')}/{name}")
        except FileNotFoundError as e:
            raise SweepError(f"--resume: {e}") from None
        if trial.get("sweep") != args.name:
            raise SweepError(f"--resume: experiment {name!r} ran sweep {trial.get('sweep')!r}, not {args.name!r}")
        trial["storage"] = storage
        trial["verbose"] = bool(args.verbose)
        spec_obj = spec
        tuned = list(spec_obj.grid) if trial["grid"] else [ln.split(":")[0] for ln in describe_space(spec)]
        plan = Plan(spec=spec, trial=trial, num_samples=int(trial["num_samples"]), scheduler=trial["scheduler"],
                    address=args.address, mlflow_uri=trial["mlflow_uri"], experiment=name, resume=True,
                    has_gpu=float(trial["gpus"]) > 0, total=total, tuned=tuned,
                    seeds=int(trial.get("seeds", 1)),
                    notes=[f"resuming {storage}/{name}: finished trials are kept, the others continue "
                           "from their last checkpoint"])
        _finish_resources(plan, args)
        return plan

    if args.grid and not spec.grid:
        raise SweepError(f"sweep {spec.name!r} defines no grid; drop --grid")
    if args.data:
        try:
            from trainables.data.registry import describe_data

            describe_data(args.data)  # validated before anything heavy loads
        except ValueError as e:
            raise SweepError(f"--data: {e}") from None
    try:
        entry = treg.get_method(spec.trainable)
        mod = treg.load(spec.trainable)
    except (KeyError, ImportError, TypeError) as e:
        raise SweepError(f"sweep {spec.name!r}: trainable {spec.trainable!r} is not available ({e})") from None
    total = dict(total if total is not None else _local_resources())

    notes: list[str] = []
    has_gpu = (args.gpus_per_trial or 0) > 0 or (args.gpus_per_trial is None and total.get("GPU", 0) > 0)
    if has_gpu:
        data, epochs = spec.default_data, spec.default_epochs
        samples = spec.num_samples
    else:
        data, epochs, samples = spec.cpu_data, spec.cpu_epochs, spec.cpu_num_samples
        # Name only what the preset decides: the values given on the command line are the user's.
        taken = []
        if not args.data:
            taken.append(f"data {spec.cpu_data}")
        if not args.max_epochs:
            taken.append(f"{spec.cpu_epochs} epochs")
        if not (args.num_samples or args.grid):
            taken.append(f"{spec.cpu_num_samples} trials")
        if taken:
            override = [f for f, given in (("--data", args.data), ("--max-epochs", args.max_epochs),
                                           ("--num-samples", args.num_samples or args.grid)) if not given]
            notes.append(f"no GPU found: using the CPU preset of {spec.name} for {', '.join(taken)}; "
                         f"{'/'.join(override)} override{'s' if len(override) == 1 else ''} it")
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
    try:
        capped = treg.apply_sets(mod.Config, base, args.sets, epochs)
    except ValueError as e:
        raise SweepError(str(e)) from None
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
        # Only validated here; trials build their own.
        treg.checked_config(entry, mod.Config, {**base, "epochs": epochs, "seed": args.seed}, data)
    except (TypeError, ValueError) as e:
        raise SweepError(f"config of {spec.trainable}: {e}") from None

    name = args.run_name or f"{spec.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    if "://" not in storage and (Path(storage) / name).exists():
        raise SweepError(f"--name {name}: {Path(storage) / name} already exists; "
                         "continue it with --resume or pick another --name")
    trial = {
        "sweep": args.name, "trainable": spec.trainable, "data": data, "base": base,
        "epochs": int(epochs), "seed": int(args.seed), "seeds": int(args.seeds),
        "workers": int(args.workers_per_trial),
        "cpus": float(cpus), "gpus": float(gpus), "storage": storage, "name": name,
        "grid": bool(args.grid), "max_failures": int(args.max_failures), "sweep_id": uuid.uuid4().hex,
        "num_samples": int(num_samples), "scheduler": args.scheduler, "mlflow_uri": mlflow_uri,
        "prepare": entry.prepare, "verbose": bool(args.verbose),
    }
    trial["command"] = reproduce_command(args.name, trial, args.sets)
    trial["resume_command"] = f"python -m orchestrator.sweep {args.name} --resume --name {name}"
    plan = Plan(spec=spec, trial=trial, num_samples=int(num_samples), scheduler=args.scheduler,
                address=args.address, mlflow_uri=mlflow_uri, experiment=name, resume=False,
                has_gpu=has_gpu, notes=notes, total=total, tuned=tuned, seeds=int(args.seeds))
    _finish_resources(plan, args)
    return plan


def reproduce_command(sweep_ref: str, trial: dict[str, Any], sets: list[tuple[str, str]]) -> str:
    """The command that runs the same sweep again: every resolved setting that changes results,
    explicit (so it does not depend on the machine's presets)."""
    opts: list[tuple[str, object]] = [("--data", trial["data"]), ("--max-epochs", trial["epochs"])]
    if trial["grid"]:
        opts += [("--grid", True), ("--num-samples", trial["num_samples"] if trial["num_samples"] > 1 else None)]
    else:
        opts.append(("--num-samples", trial["num_samples"]))
    opts += [("--seed", trial["seed"]), ("--seeds", trial["seeds"] if trial["seeds"] > 1 else None),
             ("--scheduler", trial["scheduler"] if trial["scheduler"] != "fifo" else None),
             ("--workers-per-trial", trial["workers"] if trial["workers"] > 1 else None)]
    opts += [("--set", f"{k}={v}") for k, v in sets]
    return cli.command("orchestrator.sweep", [sweep_ref], opts)


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
                                        if plan.trial["grid"] else 1) * plan.seeds
    plan.max_concurrent = max_concurrent(plan.total, per_trial_demand(plan.trial, plan.extra_bundles),
                                         args.max_concurrent, plan.n_trials)


def describe_plan(plan: Plan) -> str:
    """Human-readable summary (what ``--dry-run`` prints)."""
    t = plan.trial
    n_grid = math.prod(len(v) for v in plan.spec.grid.values()) if t["grid"] and plan.spec.grid else None
    lines = [
        f"sweep       {plan.spec.name}: {plan.spec.description}",
        f"trainable   {plan.spec.trainable}   metric {plan.spec.metric} ({plan.spec.mode})",
        "search      " + (f"grid of {n_grid} cells x {plan.num_samples}" if n_grid
                           else f"Optuna TPE (seed {t['seed']}), {plan.num_samples} trials")
        + (f", each under {plan.seeds} seeds ({t['seed']}..{t['seed'] + plan.seeds - 1}; "
           f"Optuna sees the mean): {plan.n_trials} runs" if plan.seeds > 1 else ""),
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
        *plan_resource_lines(plan, "trial", plan.spec.name),
    ]
    return "\n".join(lines)


def plan_resource_lines(plan: Plan, what: str, experiment: str) -> list[str]:
    """The lines of a plan's description that sweeps and comparisons share: data, resources per
    ``what`` (trial/run), cluster, Ray, storage and the MLflow experiment."""
    t = plan.trial
    try:
        from trainables.data.registry import describe_data

        data_desc = describe_data(t["data"])
    except Exception as e:  # the registry may not describe every spec; the spec itself is valid
        data_desc = f"({type(e).__name__}: {e})"
    return [
        f"data        {t['data']}: {data_desc}",
        f"resources   per {what}: {t['workers']} worker(s) x {t['cpus']:g} CPU, {t['gpus']:g} GPU"
        + (f" + extra bundles {plan.extra_bundles}" if plan.extra_bundles else ""),
        f"            cluster {', '.join(f'{k} {v:g}' for k, v in sorted(plan.total.items()))}; "
        f"{plan.max_concurrent} {what}(s) at once",
        f"ray         {plan.address or 'private local Ray (address=local, no dashboard)'}",
        f"storage     {t['storage']}/{plan.experiment}",
        f"mlflow      {plan.mlflow_uri} (experiment {experiment})",
    ]


# ----------------------------------------------------------------------------- report

def report(plan: Plan, rows: list[dict[str, Any]]) -> str:
    """The closing text: every trial ranked, the best configuration and the command that opens
    MLflow on it."""
    from orchestrator.results import closing_lines

    lines = closing_lines(rows, metric=plan.spec.metric, mode=plan.spec.mode, method=plan.spec.trainable,
                          planned=plan.n_trials)
    finished = [r for r in rows if r["status"] == "TERMINATED"]
    lines.append(f"[avtune] results: {plan.trial['storage']}/{plan.experiment}")
    if len(finished) + sum(r["status"] == "ERROR" for r in rows) >= plan.n_trials:
        lines.append(f"[avtune] tables: MLflow experiment {plan.spec.name!r}, parent run "
                     f"{plan.experiment!r} (its description and artifacts tables/); again with: "
                     f"python -m orchestrator.sweep --show {plan.experiment}")
    from orchestrator.results import open_lines_for

    lines.append(f"mlflow ui --backend-store-uri {plan.mlflow_uri} --host 127.0.0.1")
    lines += open_lines_for(plan.mlflow_uri, plan.spec.name, plan.trial["sweep_id"])
    return "\n".join(lines)


def show(ref: str, mlflow_uri: str) -> int:
    """``--show [NAME]``: a finished run's ranked table, read back from MLflow."""
    from orchestrator import results

    try:
        text = results.show_text(mlflow_uri, ref)
    except (results.NotFound, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(text)
    return 0


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns 0 (every planned trial finished), 1 (some failed), 2 (bad input)
    or 130 (interrupted: the first Ctrl+C stops the trials at their last checkpoint, a second one
    aborts at once)."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.list:
        print(list_sweeps())
        return 0
    if args.show is not None:
        return show(args.show or args.name or "", args.mlflow_uri or f"sqlite:///{Path.cwd() / 'mlflow.db'}")
    return execute(args, build_plan, describe_plan, report,
                   lambda plan: f"python -m orchestrator.sweep {args.name} --resume --name {plan.experiment}")


def execute(args: argparse.Namespace, build, describe, closing, resume_command) -> int:
    """Plans, checks and runs a sweep or comparison; the exit status of :func:`main`.

    Args:
        args: The parsed command line (the options of :func:`cli.add_run_options`).
        build: ``(args, total) -> Plan``; raises :class:`SweepError` on bad input.
        describe: ``Plan -> str``, printed before the run (all of a dry run).
        closing: ``(Plan, rows) -> str``, printed at the end.
        resume_command: ``Plan -> str``, the command that continues the run.
    """
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
            total = start_ray(args.address, verbose=args.verbose) if args.address and not args.dry_run else None
        except (ConnectionError, TimeoutError, RuntimeError) as e:
            # Something answers at the address, but it is no Ray cluster we can join.
            raise SweepError(f"--address {args.address}: cannot join a Ray cluster there "
                             f"({type(e).__name__}: {str(e).splitlines()[0][:200]})") from None
        plan = build(args, total)
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
    print(describe(plan), flush=True)
    if args.dry_run:
        return 0
    if not args.address:
        plan.total = start_ray(None, plan.total, verbose=args.verbose)
    resume = resume_command(plan)
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
    finished = sum(r["status"] == "TERMINATED" for r in rows)
    failed = sum(r["status"] == "ERROR" for r in rows)
    if finished + failed < plan.n_trials:
        # No best trial or tables from partial trials: say what finished and how to go on.
        print(f"[avtune] {finished}/{plan.n_trials} trials finished")
        print(f"[avtune] interrupted: {finished} of {plan.n_trials} trials finished; "
              f"resume with: {resume}", file=sys.stderr)
        return 130
    print(closing(plan, rows))
    return 0 if finished == plan.n_trials else 1


if __name__ == "__main__":
    sys.exit(main())
