"""The typed plan of a run, built once for sweeps and comparisons alike.

A **sweep** is a plan with one arm (a method and its base settings) and a search axis (Optuna's
suggestions or a grid over config fields); a **comparison** is a plan with several arms (methods
at their defaults, a sweep's best, or a named comparison's entries) and the arm axis
(``config/method``). Either way each configuration runs under ``seeds`` seeds, every trial is one
``fit`` of one arm, and the same :class:`Plan` goes to the driver (:mod:`orchestrator.launch`), the
trials (:mod:`orchestrator.tune_runner`), the tracker and the tables. It is saved next to Tune's
experiment (``avtune_plan.json``), so ``--resume`` rebuilds exactly the same trials.

:func:`build` resolves a parsed command line (defaults of the GPU or the CPU preset, ``--set``,
config validation, resources, names, the reproducing command); :func:`describe` is what
``--dry-run`` prints; :func:`trial_overrides` is one trial's config. Module-level imports are the
standard library and light modules only, so bad input is reported before torch, Ray or MLflow load.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import shlex
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator import cli, storage
from orchestrator.rows import ARM_KEY, SEED_INDEX, RunInfo, default_tracking_uri
from orchestrator.specs import PlanError


@dataclass
class Arm:
    """One method at one set of base settings: a sweep's only arm, or a comparison's row.

    Attributes:
        label: Its name on the arm axis (the method's name, or a named comparison's entry).
        method: The discovered method (or importable module) it trains.
        base: Config overrides every trial of the arm applies.
        epochs: Epochs per trial.
        prepare: The method's ``prepare`` hook (run once per seed before any trial), or None.
        mark: A protocol marker the tables put after the label (the method's ``mark`` hook).
        reference: The published row it is read against (a prediction), or empty.
    """

    label: str
    method: str
    base: dict[str, Any]
    epochs: int
    prepare: str | None = None
    mark: str = ""
    reference: str = ""


@dataclass
class Plan:
    """Everything a run needs, resolved. The fields up to ``data_fingerprint`` are saved with the
    run; the driver-side ones after it are rebuilt on every start."""

    kind: str
    ref: str  # what the CLI named: the sweep (or its module:SPEC) or the comparison
    experiment: str  # the MLflow experiment: the sweep's or the comparison's name
    name: str
    description: str
    task: str
    metric: str
    mode: str
    arms: dict[str, Arm]
    data: str
    seed: int
    seeds: int
    num_samples: int
    search: str  # "optuna", "grid" or "arms"
    tuned: list[str]
    grid: dict[str, list[Any]] | None
    scheduler: str
    workers: int
    cpus: float
    gpus: float
    max_failures: int
    storage: str
    mlflow_uri: str
    sweep_id: str
    command: str = ""
    resume_command: str = ""
    verbose: bool = False
    mark_notes: dict[str, str] = field(default_factory=dict)
    columns: list[str] = field(default_factory=list)
    paired: bool = False
    data_fingerprint: str = ""
    # ---- driver side, not saved
    address: str | None = None
    resume: bool = False
    has_gpu: bool = False
    notes: list[str] = field(default_factory=list)
    total: dict[str, float] = field(default_factory=dict)
    extra_bundles: dict[str, list[dict]] = field(default_factory=dict)
    max_concurrent: int = 1

    @property
    def epochs(self) -> int:
        return max(a.epochs for a in self.arms.values())

    @property
    def axis(self) -> list[str]:
        """The config keys trials differ in (besides the seed index)."""
        return [ARM_KEY] if self.kind == "compare" else list(self.tuned)

    @property
    def n_trials(self) -> int:
        if self.kind == "compare":
            return len(self.arms) * self.seeds
        cells = math.prod(len(v) for v in self.grid.values()) if self.search == "grid" and self.grid else 1
        return self.num_samples * cells * self.seeds

    def only_arm(self) -> Arm:
        return next(iter(self.arms.values()))

    def info(self) -> RunInfo:
        """What the tables need to know of this run."""
        return RunInfo(kind=self.kind, ref=self.experiment, name=self.name, task=self.task, metric=self.metric,
                       mode=self.mode, methods=list(dict.fromkeys(a.method for a in self.arms.values())),
                       axis=self.axis, arms=list(self.arms) if self.kind == "compare" else [],
                       seeds=self.seeds, command=self.command,
                       data_note=f"{self.data} (fingerprint {self.data_fingerprint or '?'})",
                       marks={k: a.mark for k, a in self.arms.items() if a.mark},
                       mark_notes=dict(self.mark_notes),
                       references={k: a.reference for k, a in self.arms.items() if a.reference},
                       columns=list(self.columns), paired=self.paired)

    def to_json(self) -> dict[str, Any]:
        out = {}
        for f in dataclasses.fields(self):
            if f.name == "address":
                break
            out[f.name] = getattr(self, f.name)
        out["arms"] = {k: dataclasses.asdict(a) for k, a in self.arms.items()}
        return out

    @classmethod
    def from_json(cls, blob: dict[str, Any]) -> Plan:
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in blob.items() if k in names}
        kw["arms"] = {k: Arm(**a) for k, a in blob["arms"].items()}
        return cls(**kw)

    def save(self) -> str:
        return storage.save_plan_file(self.storage, self.name, self.to_json())


# ----------------------------------------------------------------------------- one trial

def trial_arm(plan: Plan, config: dict[str, Any]) -> tuple[Arm, dict[str, Any]]:
    """The arm one trial runs, and its own tuned values (the arm label and seed index removed)."""
    own = {k: v for k, v in config.items() if k != SEED_INDEX}
    if plan.kind == "compare":
        return plan.arms[own.pop(ARM_KEY)], own
    return plan.only_arm(), own


def trial_seed(plan: Plan, config: dict[str, Any]) -> int:
    """The trial's seed: the plan's seed plus its seed index (``--seeds N``: seed .. seed+N-1)."""
    return int(plan.seed) + int(config.get(SEED_INDEX, 0))


def trial_overrides(plan: Plan, config: dict[str, Any]) -> dict[str, Any]:
    """One trial's config overrides: its arm's base, the tuned values, the constants its space
    derives (a grid skips Optuna, so they come from running the space on the cell), epochs, seed."""
    arm, own = trial_arm(plan, config)
    consts = _grid_constants(plan, arm, own) if plan.search == "grid" else {}
    return {**arm.base, **own, **consts, "epochs": arm.epochs, "seed": trial_seed(plan, config)}


def _grid_constants(plan: Plan, arm: Arm, fixed: dict[str, Any]) -> dict[str, Any]:
    """The constants a define-by-run space derives (e.g. ``alpha2 = 1 - alpha1``) for one grid
    cell. A grid may fix only some of the space's parameters; the others take the value the trial
    runs with (the base config, else the default), so the space runs to its end."""
    import optuna

    from orchestrator.methods import load
    from trainables.core.config import config_fields, field_default
    from orchestrator.specs import load_spec

    fallback = {k: field_default(f) for k, f in config_fields(load(arm.method).Config).items()}
    fallback.update(arm.base)

    class GridTrial(optuna.trial.FixedTrial):
        def _suggest(self, name, distribution):
            if name not in self._params and name in fallback:
                self._params[name] = fallback[name]
            return super()._suggest(name, distribution)

    return dict(load_spec(plan.ref).space(GridTrial(dict(fixed))) or {})


def resolved_config(plan: Plan, config: dict[str, Any]) -> dict[str, Any]:
    """Every field of the config a trial runs with (defaults, preset, base, tuned values, derived
    constants) and its arm label, so it can be reproduced from its MLflow run alone."""
    from orchestrator.methods import load
    from trainables.core.config import build_config

    arm, own = trial_arm(plan, config)
    cfg = build_config(load(arm.method).Config, trial_overrides(plan, config))
    extra = {ARM_KEY: arm.label} if plan.kind == "compare" else {}
    return {**dataclasses.asdict(cfg), **own, **extra}


# ----------------------------------------------------------------------------- building

def build(args: argparse.Namespace, kind: str, total: dict[str, float] | None = None) -> Plan:
    """The plan of a parsed ``sweep`` or ``compare`` command line.

    Args:
        args: The parsed command line (:func:`orchestrator.cli.add_run_options` and the CLI's own).
        kind: ``sweep`` or ``compare``.
        total: Resources of the cluster to run on (default: this machine's CPUs and GPUs).

    Raises:
        PlanError: Unknown sweep, method or comparison, bad ``--set``, data the methods cannot
            use, a taken ``--name``, ...; the message names the value.
    """
    from orchestrator import sources
    from orchestrator.resources import local_resources

    if args.data:
        _check_data(args.data)  # before anything heavy loads
    if args.resume:
        return _resumed(args, kind, dict(total if total is not None else local_resources()))
    src = sources.sweep_arms(args) if kind == "sweep" else sources.comparison_arms(args)
    total = dict(total if total is not None else local_resources())
    has_gpu = (args.gpus_per_trial or 0) > 0 or (args.gpus_per_trial is None and total.get("GPU", 0) > 0)
    notes = list(src.notes)
    data, epochs = _defaults(args, src, has_gpu, notes)
    _check_data(data)
    arms = {a["label"]: Arm(**a) for a in sources.finish_arms(src, args, data, epochs, notes)}
    gpus = args.gpus_per_trial if args.gpus_per_trial is not None else (0.125 if has_gpu else 0.0)
    if gpus > 0 and total.get("GPU", 0) == 0 and args.address is None:
        raise PlanError(f"--gpus-per-trial {gpus}: this machine has no GPU")
    store = _storage(args.storage)
    name = args.run_name or f"{src.name_stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    if "://" not in store and (Path(store) / name).exists():
        raise PlanError(f"--name {name}: {Path(store) / name} already exists; "
                        "continue it with --resume or pick another --name")
    plan = Plan(kind=kind, ref=src.ref, experiment=src.experiment, name=name, description=src.description,
                task=src.task,
                metric=args.metric or src.metric, mode=args.mode or src.mode, arms=arms, data=data, seed=int(args.seed),
                seeds=int(args.seeds), num_samples=src.num_samples(args, has_gpu), search=src.search,
                tuned=src.tuned, grid=src.grid, scheduler=getattr(args, "scheduler", "fifo"),
                workers=int(args.workers_per_trial), cpus=float(args.cpus_per_trial or 1.0), gpus=float(gpus),
                max_failures=int(args.max_failures), storage=store,
                mlflow_uri=args.mlflow_uri or default_tracking_uri(), sweep_id=uuid.uuid4().hex,
                verbose=bool(args.verbose), mark_notes=src.mark_notes, columns=src.columns,
                paired=src.paired, address=args.address,
                has_gpu=has_gpu, notes=notes, total=total)
    plan.command = command_line(kind, src.positional, plan, src.search_opts(plan.num_samples), src.tail_opts)
    # The saved plan lives in the storage, so a resume from elsewhere must be told where it is.
    storage = "" if store == _storage("./ray_results") else f" --storage {shlex.quote(store)}"
    plan.resume_command = (f"python -m orchestrator.{kind}{' ' + plan.ref if kind == 'sweep' else ''} "
                           f"--resume --name {name}{storage}")
    _finish_resources(plan, args)
    return plan


def _check_data(spec: str) -> None:
    from trainables.data.registry import describe_data

    try:
        describe_data(spec)
    except ValueError as e:
        raise PlanError(f"--data: {e}") from None


def _storage(s: str) -> str:
    return s if "://" in s else str(Path(s).expanduser().resolve())


def _defaults(args, src, has_gpu: bool, notes: list[str]) -> tuple[str, int]:
    """The run's data and epochs: the command line's, else the source's (a sweep run's for
    ``--from-sweep``), else its GPU or CPU preset; what a CPU preset or the source decided is
    said in a note."""
    data, epochs, where = src.defaults(has_gpu)
    # Arms that keep their own schedule (a named comparison's per-entry epochs) take no default length.
    own = bool(src.pending) and all("epochs" in p.base for p in src.pending)
    taken = [x for x, given in ((f"data {data}", args.data), (f"{epochs} epochs", args.max_epochs or own))
             if not given]
    flags = [f for f, given in (("--data", args.data), ("--max-epochs", args.max_epochs)) if not given]
    if src.kind == "sweep" and not has_gpu and not (args.num_samples or args.grid):
        taken.append(f"{src.cpu_samples} trials")
        flags.append("--num-samples")
    if taken and src.kind == "sweep" and not has_gpu:
        notes.append(f"no GPU found: using the CPU preset of {src.experiment} for {', '.join(taken)}; "
                     f"{'/'.join(flags)} override{'s' if len(flags) == 1 else ''} it")
    elif taken and src.kind == "compare":
        notes.append(f"{', '.join(taken)} {where}; --data/--max-epochs override")
    return args.data or data, int(args.max_epochs or epochs)


def _resumed(args, kind: str, total: dict[str, float]) -> Plan:
    """The saved plan of the run to continue (``--name``, else the newest one of the sweep or
    comparison in ``--storage``)."""
    store = _storage(args.storage)
    ref = getattr(args, "name", None) if kind == "sweep" else None
    name = args.run_name or find_latest(store, kind, ref)
    try:
        blob = storage.load_plan_file(storage.run_dir(store, name))
    except FileNotFoundError as e:
        raise PlanError(f"--resume: {e}") from None
    if blob.get("kind") != kind:
        other = "comparison" if blob.get("kind") == "compare" else "sweep"
        raise PlanError(f"--resume: experiment {name!r} is a {other}; continue it with "
                        f"python -m orchestrator.{blob.get('kind')} ... --resume")
    if ref is not None and blob.get("ref") != ref:
        raise PlanError(f"--resume: experiment {name!r} ran sweep {blob.get('ref')!r}, not {ref!r}")
    plan = Plan.from_json(blob)
    plan.storage, plan.verbose, plan.address, plan.resume, plan.total = store, bool(args.verbose), args.address, True, total
    plan.has_gpu = plan.gpus > 0
    what = "trials" if kind == "sweep" else "runs"
    plan.notes = [f"resuming {store}/{name}: finished {what} are kept, the others continue from their last checkpoint"]
    _finish_resources(plan, args)
    return plan


def find_latest(store: str, kind: str, ref: str | None) -> str:
    """Name of the newest experiment under ``store`` whose saved plan is of ``kind`` (and ran
    sweep ``ref``) and saved some trial state."""
    import json

    what = f"sweep of {ref!r}" if ref else "comparison"
    if "://" in store:
        raise PlanError("--resume on remote storage needs --name (the experiment to continue)")
    root = Path(store)
    cands = []
    for f in root.glob(f"*/{storage.PLAN_FILE}") if root.is_dir() else []:
        try:
            blob = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        if blob.get("kind") == kind and (ref is None or blob.get("ref") == ref):
            cands.append(f)
    if not cands:
        raise PlanError(f"--resume: no interrupted {what} under {store}; pass --name")
    # An experiment that stopped before any trial state was saved is no "newest run".
    started = [f for f in cands if storage.has_tune_state(store, f.parent.name)]
    if not started:
        names = ", ".join(sorted(f.parent.name for f in cands))
        raise PlanError(f"--resume: no {what} under {store} saved any trial state ({names}); "
                        "--resume --name NAME restarts one as planned")
    return max(started, key=lambda f: f.stat().st_mtime).parent.name


def _finish_resources(plan: Plan, args: argparse.Namespace) -> None:
    """Each arm's extra resource bundles and how many trials run at once."""
    from orchestrator import methods as treg
    from orchestrator.resources import max_concurrent, per_trial_demand
    from trainables.core.config import build_config

    demand: dict[str, float] = {}
    for label, arm in plan.arms.items():
        hook = treg.load_hook(treg.get_method(arm.method).extra_bundles)
        if hook is not None:
            cfg = build_config(treg.load(arm.method).Config, {**arm.base, "epochs": arm.epochs,
                                                                   "seed": plan.seed})
            plan.extra_bundles[label] = [dict(b) for b in hook(cfg) or []]
        for k, v in per_trial_demand(plan, plan.extra_bundles.get(label)).items():
            demand[k] = max(demand.get(k, 0.0), v)
    plan.max_concurrent = max_concurrent(plan.total, demand, args.max_concurrent, plan.n_trials)


def describe(plan: Plan) -> str:
    """What ``--dry-run`` prints (and every run prints before it starts)."""
    from orchestrator.specs import describe_space

    lines = []
    if plan.kind == "sweep":
        arm = plan.only_arm()
        n_grid = math.prod(len(v) for v in plan.grid.values()) if plan.search == "grid" and plan.grid else None
        lines += [f"sweep       {plan.ref}: {plan.description}",
                  f"trainable   {arm.method}   metric {plan.metric} ({plan.mode})",
                  "search      " + (f"grid of {n_grid} cells x {plan.num_samples}" if n_grid
                                    else f"Optuna TPE (seed {plan.seed}), {plan.num_samples} trials")
                  + (f", each under {plan.seeds} seeds ({plan.seed}..{plan.seed + plan.seeds - 1}; "
                     f"Optuna sees the mean): {plan.n_trials} runs" if plan.seeds > 1 else ""),
                  f"scheduler   {plan.scheduler}", "space"]
        if plan.search == "grid":
            lines += [f"  {k}: {list(v)}" for k, v in (plan.grid or {}).items()]
        else:
            from orchestrator.specs import load_spec

            spec = load_spec(plan.ref)
            lines += [f"  {ln}" for ln in describe_space(spec, plan.seed)]
            if spec.points_to_evaluate:
                lines += ["points to evaluate first"] + [f"  {dict(p)}" for p in spec.points_to_evaluate]
        lines.append(f"base config {arm.base or '{}'} (epochs {arm.epochs}, seed {plan.seed})")
    else:
        lines += [f"compare     {plan.ref}: {plan.description}; metric {plan.metric} ({plan.mode}) "
                  f"is read at each run's selected epoch",
                  f"runs        {len(plan.arms)} arm(s) x {plan.seeds} seed(s) "
                  f"({plan.seed}..{plan.seed + plan.seeds - 1}) = {plan.n_trials}"]
        w = max(len(k) for k in plan.arms) + 2
        lines += [f"  {k:<{w}}{a.method} {a.base or '(defaults)'}, {a.epochs} epochs" for k, a in plan.arms.items()]
    what = "trial" if plan.kind == "sweep" else "run"
    from trainables.data.registry import describe_data

    try:
        data_desc = describe_data(plan.data)
    except Exception as e:  # the registry may not describe every spec; the spec itself is valid
        data_desc = f"({type(e).__name__}: {e})"
    bundles = {k: v for k, v in plan.extra_bundles.items() if v}
    lines += [f"data        {plan.data}: {data_desc}",
              f"resources   per {what}: {plan.workers} worker(s) x {plan.cpus:g} CPU, {plan.gpus:g} GPU"
              + (f" + extra bundles {bundles}" if bundles else ""),
              f"            cluster {', '.join(f'{k} {v:g}' for k, v in sorted(plan.total.items()))}; "
              f"{plan.max_concurrent} {what}(s) at once",
              f"ray         {plan.address or 'private local Ray (address=local, no dashboard)'}",
              f"storage     {plan.storage}/{plan.name}",
              f"mlflow      {plan.mlflow_uri} (experiment {plan.experiment})"]
    return "\n".join(lines)


def command_line(kind: str, positional: list[str], plan: Plan, search: list[tuple[str, object]],
                 tail: list[tuple[str, object]]) -> str:
    """The command that runs the same plan again: every resolved setting that changes results,
    explicit (so it does not depend on the machine's presets)."""
    # Arms on their own schedules (a named comparison's) keep them: no --max-epochs over them.
    one = len({a.epochs for a in plan.arms.values()}) == 1
    opts: list[tuple[str, object]] = [("--data", plan.data), ("--max-epochs", plan.epochs if one else None),
                                      *search,
                                      ("--seed", plan.seed), ("--seeds", plan.seeds if plan.seeds > 1 else None),
                                      ("--workers-per-trial", plan.workers if plan.workers > 1 else None),
                                      *tail]
    return cli.command(f"orchestrator.{kind}", positional, opts)
