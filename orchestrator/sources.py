"""Where a plan's arms come from: a named sweep (one arm, a search axis) or a comparison (methods
named on the command line, a sweep run's best, or a named comparison's entries), and the steps
both share: ``--set`` routing, stage lengths capped at the run's epochs, config validation, the
methods' hooks. :func:`orchestrator.plan.build` is the one caller; nothing here imports it."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from orchestrator.rows import default_tracking_uri
from trainables.core.config import PRESET_KEY, config_fields
from orchestrator.specs import PlanError

# The name of a comparison of methods given on the command line (no named comparison).
ADHOC = "compare"


@dataclass
class Pending:
    """An arm before ``--set`` and validation: its label, method, base and published row."""

    label: str
    method: str
    base: dict[str, Any]
    reference: str = ""
    source: str = ""  # "best configuration of sweep run X" when it comes from --from-sweep


@dataclass
class Source:
    """What a plan is built from, before the shared steps (data, epochs, names, resources)."""

    kind: str
    ref: str
    experiment: str
    description: str
    task: str
    metric: str
    mode: str
    search: str
    pending: list[Pending]
    defaults: Callable[[bool], tuple[str, int, str]]
    positional: list[str]
    # The command's options between --max-epochs and --seed (a sweep's search), and after it.
    search_opts: Callable[[int], list[tuple[str, object]]]
    tail_opts: list[tuple[str, object]]
    name_stem: str
    tuned: list[str] = field(default_factory=list)
    grid: dict[str, list[Any]] | None = None
    notes: list[str] = field(default_factory=list)
    mark_notes: dict[str, str] = field(default_factory=dict)
    samples: int = 1
    cpu_samples: int = 1
    # --set routing: a sweep's --set applies to its only arm; a comparison's to every arm whose
    # config has the field, or ``ARM.KEY`` to one arm (by label or by method).
    route_sets: bool = False
    columns: list[str] = field(default_factory=list)
    paired: bool = False

    def num_samples(self, args: argparse.Namespace, has_gpu: bool) -> int:
        if self.search == "arms":
            return 1
        return getattr(args, "num_samples", None) or (1 if self.search == "grid"
                                                       else self.samples if has_gpu else self.cpu_samples)


def _method(name: str):
    from orchestrator import methods as treg

    try:
        return treg.get_method(name), treg.load(name)
    except (KeyError, ImportError, TypeError) as e:
        raise PlanError(f"method {name!r} is not available ({e})") from None


def sweep_arms(args: argparse.Namespace) -> Source:
    """A named sweep's one arm and its search axis."""
    from orchestrator.specs import describe_space, load_spec

    spec = load_spec(args.name)
    if args.grid and not spec.grid:
        raise PlanError(f"sweep {spec.name!r} defines no grid; drop --grid")
    try:
        entry, mod = _method(spec.trainable)
    except PlanError as e:
        raise PlanError(f"sweep {spec.name!r}: trainable {spec.trainable!r} is not available "
                        f"({str(e).split('(', 1)[-1].rstrip(')')})") from None
    fields = config_fields(mod.Config)
    for required in ("epochs", "seed"):
        if required not in fields:
            raise PlanError(f"trainable {spec.trainable}: Config has no field {required!r}")
    unknown = sorted(set(spec.base) - set(fields) - {PRESET_KEY})
    if unknown:
        raise PlanError(f"sweep {spec.name}: base keys {unknown} are not fields of {mod.__name__}.Config")
    tuned = list(spec.grid) if args.grid else [ln.split(":")[0] for ln in describe_space(spec, args.seed)]
    bad = sorted(k for k in tuned if k not in fields)
    if bad:
        raise PlanError(f"sweep {spec.name}: tuned keys {bad} are not fields of {mod.__name__}.Config")
    notes = []
    clash = sorted(k for k, _ in args.sets if k in tuned)
    if clash:
        notes.append(f"--set {', '.join(clash)}: tuned by this sweep, so each trial's value wins")

    def defaults(has_gpu: bool) -> tuple[str, int, str]:
        return ((spec.default_data, spec.default_epochs, "") if has_gpu
                else (spec.cpu_data, spec.cpu_epochs, ""))

    def search_opts(n: int) -> list[tuple[str, object]]:
        return ([("--grid", True), ("--num-samples", n if n > 1 else None)] if args.grid
                else [("--num-samples", n)])

    return Source(kind="sweep", ref=args.name, experiment=spec.name, description=spec.description, task=entry.task,
                  metric=spec.metric, mode=spec.mode, search="grid" if args.grid else "optuna",
                  pending=[Pending(spec.trainable, spec.trainable, dict(spec.base))], defaults=defaults,
                  positional=[args.name], search_opts=search_opts,
                  tail_opts=[("--scheduler", args.scheduler if args.scheduler != "fifo" else None),
                             *(("--set", f"{k}={v}") for k, v in args.sets), ("--metric", args.metric),
                             ("--mode", args.mode)],
                  name_stem=spec.name, tuned=tuned,
                  grid={k: list(v) for k, v in spec.grid.items()} if args.grid else None,
                  notes=notes, samples=spec.num_samples, cpu_samples=spec.cpu_num_samples)


def comparison_arms(args: argparse.Namespace) -> Source:
    """A comparison's arms: the methods named (at their defaults or a sweep run's best), or a
    named comparison's entries (``--only`` picks some)."""
    from orchestrator import methods as treg
    from orchestrator.specs import comparison_names, load_comparison

    names = list(args.methods)
    named = [n for n in names if n in comparison_names()]
    if named and len(names) > 1:
        raise PlanError(f"a named comparison ({named[0]}) runs alone; drop the other names")
    if named:
        spec = load_comparison(named[0])
        entries = list(spec.entries)
        if args.only:
            want = [x.strip() for x in args.only.split(",") if x.strip()]
            missing = [w for w in want if w not in {e.label for e in entries}]
            if missing:
                raise PlanError(f"--only {','.join(missing)}: not entries of {spec.name} "
                                f"({', '.join(e.label for e in entries)})")
            entries = [e for e in entries if e.label in want]
        pending = [Pending(e.label, e.method, dict(e.overrides), e.reference) for e in entries]
        for p in pending:
            _method(p.method)
        ref, description, stem = spec.name, spec.description, spec.name
        columns, paired = list(spec.columns), spec.paired
    else:
        if args.only:
            raise PlanError("--only picks entries of a named comparison; name one")
        for m in names:
            try:
                treg.get_method(m)  # a discovered method, or an importable module defining one
            except KeyError:
                raise PlanError(f"unknown method {m!r}; known methods: {', '.join(treg.discover())}; "
                                f"named comparisons: {', '.join(comparison_names()) or '(none)'}") from None
        pending = [Pending(m, m, {}) for m in names]
        ref, stem, spec, columns, paired = ADHOC, f"compare-{'-'.join(names)}", None, [], False
        description = f"{' vs '.join(names)} at fixed settings"
    tasks = {p.label: treg.get_method(p.method).task for p in pending}
    if len(set(tasks.values())) > 1:
        raise PlanError("methods of different tasks cannot share one table: "
                        + ", ".join(f"{m} ({t})" for m, t in tasks.items()))
    task = treg.get_task(next(iter(tasks.values())))
    sweep_data = _from_sweeps(args, pending)

    def defaults(has_gpu: bool) -> tuple[str, int, str]:
        if sweep_data:
            return sweep_data["data"], int(sweep_data["epochs"]), f"from sweep run {args.from_sweep[0]!r}"
        src = spec or task
        what = f"comparison {spec.name}" if spec else f"task {task.name}"
        if has_gpu:
            return src.default_data, src.default_epochs, f"from the GPU preset of {what}"
        return src.cpu_data, src.cpu_epochs, f"from the CPU preset of {what} (no GPU found)"


    return Source(kind="compare", ref=ref, experiment=ref, description=description, task=task.name,
                  metric=(spec.metric if spec else task.select_metric), mode=(spec.mode if spec else task.mode),
                  search="arms", pending=pending, defaults=defaults, positional=names,
                  search_opts=lambda n: [],
                  tail_opts=[*(("--from-sweep", r) for r in args.from_sweep), ("--only", args.only),
                             *(("--set", f"{k}={v}") for k, v in args.sets), ("--metric", args.metric),
                             ("--mode", args.mode)],
                  name_stem=stem, route_sets=True, columns=columns, paired=paired)


def _from_sweeps(args: argparse.Namespace, pending: list[Pending]) -> dict[str, Any]:
    """Applies each ``--from-sweep`` (a finished sweep's best configuration) to the arm of the
    method it tuned; returns that run's data and epochs (the first one's)."""
    if not args.from_sweep:
        return {}
    from orchestrator import methods as treg
    from orchestrator import preflight, results

    by_method = {p.method: p for p in pending}
    out: dict[str, Any] = {}
    seen: set[str] = set()
    mlflow_uri = args.mlflow_uri or default_tracking_uri()
    try:
        preflight.check_tracking(mlflow_uri)
        client = results.client(mlflow_uri)
        for ref in args.from_sweep:
            parent = results.find_parent(client, ref)
            info = results.run_info(parent)
            if info.kind != "sweep" or not info.methods:
                raise PlanError(f"--from-sweep {ref}: run {info.name!r} is no sweep")
            m = info.methods[0]
            if m not in by_method:
                raise PlanError(f"--from-sweep {ref}: that sweep tuned {m!r}, which is not among the "
                                f"methods compared ({' '.join(by_method)})")
            if m in seen:
                raise PlanError(f"--from-sweep: two sweeps given for {m!r}")
            seen.add(m)
            by_method[m].base.update(results.best_overrides(client, parent, treg.load(m).Config))
            by_method[m].source = f"the best configuration of sweep run {info.name!r}"
            out.setdefault("data", parent.data.params.get("data"))
            out.setdefault("epochs", parent.data.params.get("epochs"))
    except results.NotFound as e:
        raise PlanError(f"--from-sweep: {e}") from None
    return out if out.get("data") and out.get("epochs") else {}


def _route(src: Source, sets: list[tuple[str, str]]) -> dict[str, list[tuple[str, str]]]:
    """``--set`` pairs per arm label."""
    from orchestrator import methods as treg

    out: dict[str, list[tuple[str, str]]] = {p.label: [] for p in src.pending}
    if not src.route_sets:
        out[src.pending[0].label] = list(sets)
        return out
    for key, raw in sets:
        head, dot, rest = key.partition(".")
        chosen = [p for p in src.pending if dot and head in (p.label, p.method)]
        if chosen:
            for p in chosen:
                out[p.label].append((rest, raw))
            continue
        if dot and head in treg.discover():
            raise PlanError(f"--set {key}={raw}: {head!r} is not among the methods compared")
        if key in ("epochs", "seed"):
            raise PlanError(f"--set {key}=...: use --{'max-epochs' if key == 'epochs' else 'seed'} instead")
        takers = [p for p in src.pending
                  if key == PRESET_KEY or key in config_fields(treg.load(p.method).Config)]
        if not takers:
            raise PlanError(f"--set {key}={raw}: no compared method's config has the field {key!r}")
        for p in takers:
            out[p.label].append((key, raw))
    return out


def finish_arms(src: Source, args: argparse.Namespace, data: str, epochs: int,
                notes: list[str]) -> list[dict[str, Any]]:
    """``--set`` applied, stage lengths capped at ``epochs``, every config validated (and the
    method's data checks run), hooks resolved: the fields of the plan's arms, in order."""
    from orchestrator import methods as treg

    routed = _route(src, args.sets)
    arms: list[dict[str, Any]] = []
    capped_by: dict[tuple[tuple[str, ...], int], list[str]] = {}
    for p in src.pending:
        entry, mod = _method(p.method)
        base = dict(p.base)
        # A named comparison's entry may keep its paper's schedule; --max-epochs overrides it.
        own = base.pop("epochs", None)
        n_epochs = int(args.max_epochs or own or epochs)
        label = f"{p.label}." if src.route_sets else ""
        try:
            capped = treg.apply_sets(mod.Config, base, routed[p.label], n_epochs, label=label)
        except ValueError as e:
            raise PlanError(str(e)) from None
        if capped:
            capped_by.setdefault((tuple(capped), n_epochs), []).append(p.label)
        try:
            cfg = treg.checked_config(entry, mod.Config, {**base, "epochs": n_epochs, "seed": args.seed}, data)
        except (TypeError, ValueError, KeyError) as e:
            raise PlanError(f"config of {p.label if src.route_sets else p.method}: {e}") from None
        if p.source:
            notes.append(f"{p.label}: {p.source}")
        mark = treg.load_hook(entry.mark)
        flag = mark(cfg) if mark is not None else None
        if flag:
            src.mark_notes[flag[0]] = flag[1]
        arms.append(dict(label=p.label, method=p.method, base=base, epochs=n_epochs,
                         prepare=entry.prepare, mark=flag[0] if flag else "", reference=p.reference))
    for (fields, n), labels in capped_by.items():
        what = f"{', '.join(labels)}: " if src.route_sets else ""
        hint = "" if src.route_sets else f" (--set {fields[0]}=N to change)"
        notes.append(f"{what}{', '.join(fields)} capped at {n} like epochs{hint}")
    return arms
