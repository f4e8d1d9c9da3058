"""Methods side by side: ``python -m orchestrator.compare METHOD... [--data SPEC] [--seeds N]``.

Runs each method at its defaults (or, with ``--from-sweep NAME``, at the best configuration a
finished sweep found for it) under N seeds on one data set, as one Ray Tune experiment (one
trial per method and seed, checkpointed and resumable like a sweep's), tracked as one MLflow
parent run (experiment ``compare``) with a child run per method and seed. It prints and writes
the paper-style table: the task's ten scores (AVVP) or its own metrics (action recognition), mean
± std over the seeds per method, beside the published rows of those methods, and for AVVP the
per-class audio and visual F of the test split as bars (``class_f.png``). The files go to
``<storage>/<name>/tables/`` and to the parent run's artifacts ``tables/``.

The options shared with the sweep CLI (``--data``, ``--max-epochs``, ``--seed``, ``--seeds``,
resources, ``--address``, ``--mlflow-uri``, ``--storage``, ``--name``, ``--dry-run``,
``--verbose``) mean the same. ``--set KEY=VALUE`` applies to every method whose config has the
field; ``--set METHOD.KEY=VALUE`` to one method.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from orchestrator import cli
from orchestrator.specs import SweepError

EXPERIMENT = "compare"


def make_parser() -> argparse.ArgumentParser:
    from orchestrator.methods import discover  # the method packages' specs only: no torch

    names = ", ".join(discover())
    p = argparse.ArgumentParser(
        prog="python -m orchestrator.compare", formatter_class=cli.HelpFormatter,
        description="Run methods at their defaults (or a sweep's best) under N seeds on one data set;\n"
                    "print the paper-style table (mean ± std) beside the published rows.",
        epilog="examples:\n  python -m orchestrator.compare METHOD METHOD --seeds 3\n"
               "  python -m orchestrator.compare METHOD METHOD --from-sweep SWEEP --seeds 3\n"
               "  python -m orchestrator.compare METHOD METHOD --data SPEC --max-epochs 2\n\n"
               f"methods: {names} (--list shows their tasks)\n\n"
               "Exit status: 0 every run finished, 1 some failed, 2 bad input (nothing written), "
               "130 interrupted.\n")
    p.add_argument("methods", nargs="*", metavar="METHOD", help=f"methods to compare ({names})")
    p.add_argument("--list", action="store_true", help="list the methods and exit")
    p.add_argument("--from-sweep", action="append", default=[], metavar="NAME",
                   help="run the method that sweep NAME tuned at its best configuration (NAME: a "
                        "sweep run's --name, or a sweep, for its newest run; repeatable)")
    p.add_argument("--set", dest="sets", type=cli.keyval, action="append", default=[], metavar="[METHOD.]KEY=VALUE",
                   help="override a config field of every method that has it, or of METHOD only (repeatable)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted comparison (--name, "
                                                         "or the newest one in --storage)")
    cli.add_run_options(p, what="run")
    return p


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = make_parser()
    args = p.parse_args(argv)
    if not args.list and not args.methods and not args.resume:
        p.error("name at least one METHOD (or --list)")
    if len(set(args.methods)) != len(args.methods):
        p.error(f"a method is named twice: {' '.join(args.methods)}")
    cli.check_run_args(p, args)
    return args


def _defaults(methods: list[str], has_gpu: bool) -> tuple[str | None, int | None, str | None]:
    """Data and epochs of the methods' named sweeps (GPU or CPU preset), and which sweep said so."""
    import search_spaces

    for m in methods:
        for spec in search_spaces.registry().values():
            if spec.trainable == m:
                return ((spec.default_data, spec.default_epochs, spec.name) if has_gpu
                        else (spec.cpu_data, spec.cpu_epochs, spec.name))
    return None, None, None


def _spec(task, methods: list[str]):
    from search_spaces.base import SweepSpec

    return SweepSpec(name=EXPERIMENT, description=f"{' vs '.join(methods)} at fixed settings",
                     trainable=methods[0], metric=task.select_metric, mode=task.mode,
                     space=lambda trial: None)


def build_plan(args: argparse.Namespace, total: dict[str, float] | None = None):
    """Resolves the methods, their configs (defaults, ``--from-sweep``'s best, ``--set``), data,
    epochs and resources into a :class:`orchestrator.sweep.Plan`.

    Raises:
        SweepError: Unknown method, methods of different tasks, a bad ``--set`` or
            ``--from-sweep``, data the methods cannot use.
    """
    from orchestrator import methods as treg
    from orchestrator.launch import _local_resources
    from orchestrator.sweep import Plan, _find_latest, _storage

    storage = _storage(args.storage)
    mlflow_uri = args.mlflow_uri or f"sqlite:///{Path.cwd() / 'mlflow.db'}"
    if args.resume:
        from orchestrator.tune_runner import load_plan

        name = args.run_name or _find_latest(storage, EXPERIMENT)
        try:
            trial = load_plan(f"{storage.rstrip('/')}/{name}")
        except FileNotFoundError as e:
            raise SweepError(f"--resume: {e}") from None
        if trial.get("sweep") != EXPERIMENT:
            raise SweepError(f"--resume: experiment {name!r} is a sweep ({trial.get('sweep')!r}), not a "
                             "comparison; continue it with python -m orchestrator.sweep ... --resume")
        trial["storage"], trial["verbose"] = storage, bool(args.verbose)
        methods = list(trial["methods"])
        task = treg.task_of(methods[0])
        plan = Plan(spec=_spec(task, methods), trial=trial, num_samples=1, scheduler="fifo",
                    address=args.address, mlflow_uri=trial["mlflow_uri"], experiment=name, resume=True,
                    has_gpu=float(trial["gpus"]) > 0,
                    total=dict(total if total is not None else _local_resources()),
                    tuned=["method"], seeds=int(trial.get("seeds", 1)),
                    notes=[f"resuming {storage}/{name}: finished runs are kept, the others continue "
                           "from their last checkpoint"])
        _finish(plan, args)
        return plan

    methods = list(args.methods)
    known = treg.discover()
    for m in methods:
        try:
            treg.get_method(m)
        except KeyError:
            raise SweepError(f"unknown method {m!r}; known methods: {', '.join(known)}") from None
    tasks = {m: treg.get_method(m).task for m in methods}
    if len(set(tasks.values())) > 1:
        raise SweepError("methods of different tasks cannot share one table: "
                         + ", ".join(f"{m} ({t})" for m, t in tasks.items()))
    task = treg.task_of(methods[0])
    if args.data:
        from trainables.data.registry import describe_data

        try:
            describe_data(args.data)
        except ValueError as e:
            raise SweepError(f"--data: {e}") from None

    # --from-sweep: each names a finished sweep whose method is compared at its best.
    from_sweep: dict[str, dict[str, Any]] = {}
    sweep_data: dict[str, Any] = {}
    if args.from_sweep:
        from orchestrator import preflight, results

        try:
            preflight.check_tracking(mlflow_uri)
            client = results._client(mlflow_uri)
            for ref in args.from_sweep:
                parent = results.find_parent(client, ref)
                meta = results.info(parent)
                if meta["kind"] != "sweep" or not meta["methods"]:
                    raise SweepError(f"--from-sweep {ref}: run {meta['name']!r} is no sweep")
                m = meta["methods"][0]
                if m not in methods:
                    raise SweepError(f"--from-sweep {ref}: that sweep tuned {m!r}, which is not among "
                                     f"the methods compared ({' '.join(methods)})")
                if m in from_sweep:
                    raise SweepError(f"--from-sweep: two sweeps given for {m!r}")
                from_sweep[m] = results.best_overrides(client, parent, treg.load(m).Config)
                from_sweep[m]["__from__"] = meta["name"]
                sweep_data.setdefault("data", meta["data"])
                sweep_data.setdefault("epochs", parent.data.params.get("epochs"))
        except results.NotFound as e:
            raise SweepError(f"--from-sweep: {e}") from None

    total = dict(total if total is not None else _local_resources())
    has_gpu = (args.gpus_per_trial or 0) > 0 or (args.gpus_per_trial is None and total.get("GPU", 0) > 0)
    notes: list[str] = []
    d_data, d_epochs, d_from = _defaults(methods, has_gpu)
    data = args.data or sweep_data.get("data") or d_data
    epochs = args.max_epochs or (int(sweep_data["epochs"]) if sweep_data.get("epochs") else d_epochs)
    if data is None or epochs is None:
        raise SweepError(f"no named sweep runs {' or '.join(methods)}: give --data and --max-epochs")
    if not (args.data and args.max_epochs):
        if sweep_data:
            src = f"from sweep run {args.from_sweep[0]!r}"
        elif has_gpu:
            src = f"from the presets of sweep {d_from}"
        else:
            src = f"from the CPU preset of sweep {d_from} (no GPU found)"
        taken = [x for x, given in ((f"data {data}", args.data), (f"{epochs} epochs", args.max_epochs)) if not given]
        notes.append(f"{', '.join(taken)} {src}; --data/--max-epochs override")
    from trainables.data.registry import describe_data

    try:
        describe_data(data)
    except ValueError as e:
        raise SweepError(f"--data: {e}") from None

    sets: dict[str, list[tuple[str, str]]] = {m: [] for m in methods}
    for key, raw in args.sets:
        meth, dot, field = key.partition(".")
        if dot and meth in sets:
            sets[meth].append((field, raw))
            continue
        if dot and meth in known:
            raise SweepError(f"--set {key}={raw}: {meth!r} is not among the methods compared")
        if key in ("epochs", "seed"):
            raise SweepError(f"--set {key}=...: use --{'max-epochs' if key == 'epochs' else 'seed'} instead")
        takers = [m for m in methods if key in treg.config_fields(treg.load(m).Config) or key == treg.PRESET_KEY]
        if not takers:
            raise SweepError(f"--set {key}={raw}: no compared method's config has the field {key!r}")
        for m in takers:
            sets[m].append((key, raw))

    subs: dict[str, dict[str, Any]] = {}
    for m in methods:
        entry, mod = treg.get_method(m), treg.load(m)
        base = {k: v for k, v in from_sweep.get(m, {}).items() if k != "__from__"}
        try:
            capped = treg.apply_sets(mod.Config, base, sets[m], epochs, label=f"{m}.")
        except ValueError as e:
            raise SweepError(str(e)) from None
        if capped:
            notes.append(f"{m}: {', '.join(capped)} capped at {epochs} like epochs")
        try:
            treg.checked_config(entry, mod.Config, {**base, "epochs": epochs, "seed": args.seed}, data)
        except (TypeError, ValueError, KeyError) as e:
            raise SweepError(f"config of {m}: {e}") from None
        if m in from_sweep:
            notes.append(f"{m}: the best configuration of sweep run {from_sweep[m]['__from__']!r}")
        subs[m] = {"trainable": m, "base": base, "prepare": entry.prepare, "epochs": int(epochs)}

    gpus = args.gpus_per_trial if args.gpus_per_trial is not None else (0.125 if has_gpu else 0.0)
    if gpus > 0 and total.get("GPU", 0) == 0 and args.address is None:
        raise SweepError(f"--gpus-per-trial {gpus}: this machine has no GPU")
    name = args.run_name or f"compare-{'-'.join(methods)}-{time.strftime('%Y%m%d-%H%M%S')}"
    if "://" not in storage and (Path(storage) / name).exists():
        raise SweepError(f"--name {name}: {Path(storage) / name} already exists; "
                         "continue it with --resume or pick another --name")
    trial = {
        "sweep": EXPERIMENT, "trainable": methods[0], "methods": subs, "data": data, "base": {},
        "epochs": int(epochs), "seed": int(args.seed), "seeds": int(args.seeds),
        "workers": int(args.workers_per_trial), "cpus": float(args.cpus_per_trial or 1.0),
        "gpus": float(gpus), "storage": storage, "name": name, "grid": True,
        "max_failures": int(args.max_failures), "sweep_id": uuid.uuid4().hex, "num_samples": 1,
        "scheduler": "fifo", "mlflow_uri": mlflow_uri, "prepare": None, "verbose": bool(args.verbose),
    }
    opts: list[tuple[str, object]] = [("--data", data), ("--max-epochs", epochs), ("--seed", args.seed),
                                      ("--seeds", args.seeds if args.seeds > 1 else None),
                                      ("--workers-per-trial", args.workers_per_trial if args.workers_per_trial > 1 else None)]
    opts += [("--from-sweep", from_sweep[m]["__from__"]) for m in methods if m in from_sweep]
    opts += [("--set", f"{k}={v}") for k, v in args.sets]
    trial["command"] = cli.command("orchestrator.compare", methods, opts)
    trial["resume_command"] = f"python -m orchestrator.compare --resume --name {name}"
    plan = Plan(spec=_spec(task, methods), trial=trial, num_samples=1, scheduler="fifo",
                address=args.address, mlflow_uri=mlflow_uri, experiment=name, resume=False,
                has_gpu=has_gpu, notes=notes, total=total, tuned=["method"], seeds=int(args.seeds))
    _finish(plan, args)
    return plan


def _finish(plan, args: argparse.Namespace) -> None:
    """Extra resource bundles per method, the trial count and how many run at once."""
    from orchestrator import methods as treg
    from orchestrator.tune_runner import max_concurrent, per_trial_demand

    t = plan.trial
    bundles: dict[str, list[dict]] = {}
    demand: dict[str, float] = {}
    for m, sub in t["methods"].items():
        hook = treg.load_hook(treg.get_method(m).extra_bundles)
        if hook is not None:
            cfg = treg.build_config(treg.load(m).Config, {**sub["base"], "epochs": sub["epochs"], "seed": t["seed"]})
            bundles[m] = [dict(b) for b in hook(cfg) or []]
        for k, v in per_trial_demand(t, bundles.get(m)).items():
            demand[k] = max(demand.get(k, 0.0), v)
    plan.extra_bundles = bundles
    plan.n_trials = len(t["methods"]) * plan.seeds
    plan.max_concurrent = max_concurrent(plan.total, demand, args.max_concurrent, plan.n_trials)


def describe_plan(plan) -> str:
    from orchestrator.sweep import plan_resource_lines

    t = plan.trial
    lines = [f"compare     {', '.join(t['methods'])} on one data set, metric {plan.spec.metric} "
             f"({plan.spec.mode}) selects each run's epoch",
             f"runs        {len(t['methods'])} method(s) x {plan.seeds} seed(s) "
             f"({t['seed']}..{t['seed'] + plan.seeds - 1}) = {plan.n_trials}"]
    for m, sub in t["methods"].items():
        lines.append(f"  {m:<10}config {sub['base'] or '(defaults)'}")
    lines += [f"epochs      {t['epochs']}", *plan_resource_lines(plan, "run", EXPERIMENT)]
    return "\n".join(lines)


def closing(plan, rows: list[dict[str, Any]]) -> str:
    """The comparison table (printed and written to ``<storage>/<name>/tables/``)."""
    from orchestrator import compare_tables, results
    from orchestrator.methods import task_of

    t = plan.trial
    methods = list(t["methods"])
    note = f"{t['data']} (fingerprint {t.get('data_fingerprint', '?')})"
    lines = results.compare_lines(rows, methods=methods, metric=plan.spec.metric, data_note=t["data"])
    where = ""
    if "://" not in t["storage"]:
        out = Path(t["storage"], plan.experiment, "tables")
        paths = compare_tables.write_compare_tables(rows, out, metric=plan.spec.metric,
                                                    mode=plan.spec.mode, task=task_of(methods[0]),
                                                    methods=methods, data_note=note)
        where = f"[avtune] wrote {', '.join(p.name for p in paths)} to {out}"
    lines += [where] if where else []
    lines.append(f"[avtune] MLflow: experiment {EXPERIMENT!r}, parent run {plan.experiment!r} "
                 f"(artifacts tables/); again with: python -m orchestrator.sweep --show {plan.experiment}")
    lines.append(f"mlflow ui --backend-store-uri {plan.mlflow_uri} --host 127.0.0.1")
    lines += results.open_lines_for(plan.mlflow_uri, EXPERIMENT, t["sweep_id"])
    return "\n".join(lines)


def list_methods() -> str:
    from orchestrator import methods as treg

    reg = treg.discover()
    w = max(len(n) for n in reg)
    return "\n".join(f"{n.ljust(w)}  {s.task:<5}  {s.description}" for n, s in reg.items())


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; exit status as the sweep CLI's (0, 1, 2, 130)."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.list:
        print(list_methods())
        return 0
    from orchestrator.sweep import execute

    return execute(args, build_plan, describe_plan, closing,
                   lambda plan: f"python -m orchestrator.compare --resume --name {plan.experiment}")


if __name__ == "__main__":
    sys.exit(main())
