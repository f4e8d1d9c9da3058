"""Trial rows and what every part of the report layer shares: the run statuses, the seed index,
the objective, the MLflow tags, the default tracking store, seeds grouped into configurations, and
:class:`RunInfo`, what a run (a sweep or a comparison) is.

A *row* is one trial as a flat dict: ``trial_id``, ``status``, ``seed``, ``config/<key>`` (its
values on the run's axis: the tuned settings, or ``method`` in a comparison) and numeric results
(``val/seg_V``, ``test/seg_V``, ``best_epoch``, ...). Rows come from Tune at the end of a run
(:mod:`orchestrator.launch`) or from MLflow (:mod:`orchestrator.results`); everything that tables
them works on rows alone, so it is tested without Ray or MLflow. Standard library only.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# A trial's status: it reported fit's final result, it failed, or it was stopped before the end
# (Ctrl+C: Ray stops running trials as TERMINATED, so Ray's status alone cannot tell).
FINISHED, FAILED, INTERRUPTED = "TERMINATED", "ERROR", "INTERRUPTED"
# The config key a repeated configuration's seed index travels under (Ray Tune's Repeater's).
SEED_INDEX = "__trial_index__"
# The metric a run optimises, at each trial's selected epoch, under one name on every child run.
OBJECTIVE = "objective"
# The axis of a comparison: its trials differ in this config key (a method, or a named entry).
ARM_KEY = "method"

# MLflow tags. A run's parent carries TAG_SWEEP (its id) and TAG_KIND (``sweep``/``compare``) and
# the ``avtune.*`` tags of :meth:`RunInfo.tags`; a trial's child run carries TAG_TRIAL, the parent
# id and TAG_KIND ``trial``.
TAG_SWEEP = "avtune.sweep_id"
TAG_TRIAL = "avtune.trial_id"
TAG_KIND = "avtune.kind"
PARENT_TAG = "mlflow.parentRunId"
NOTE_TAG = "mlflow.note.content"
# The MLflow UI's "shared view" of an experiment: a tag holding a view's JSON, opened with
# ``#/experiments/<id>/runs?viewStateShareKey=<key>`` (the key is the run's name).
VIEW_TAG = "mlflow.sharedViewState."
KINDS = ("sweep", "compare")

# Result keys Ray adds itself (bookkeeping, not science) and keys logged as params or that only
# steer the trainable.
_NOT_RESULTS = {"training_iteration", "time_this_iter_s", "time_total_s", "timestamp", "pid",
                "time_since_restore", "iterations_since_restore", "done", "trial_id", "date",
                "hostname", "node_ip", "checkpoint_dir_name", "should_checkpoint", "config",
                "seed", "workers", "final", "replay"}


def default_tracking_uri(start: str | os.PathLike | None = None) -> str:
    """The MLflow store every CLI and the notebook use unless told otherwise:
    ``$AVTUNE_MLFLOW_URI``, else ``mlflow.db`` at the root of the avtune checkout that holds the
    working directory (``start``), else in the working directory itself. So a sweep started in
    the checkout and the notebook in ``notebooks/`` meet in one store."""
    env = os.environ.get("AVTUNE_MLFLOW_URI")
    if env:
        return env
    here = Path(start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        f = d / "pyproject.toml"
        if f.is_file() and 'name = "avtune"' in f.read_text(errors="replace"):
            return f"sqlite:///{d / 'mlflow.db'}"
    return f"sqlite:///{here / 'mlflow.db'}"


def finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts to one level with ``/``-joined keys."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten(v, key + "/"))
        else:
            out[key] = v
    return out


def numeric_metrics(result: Mapping[str, Any]) -> dict[str, float]:
    """Finite numeric, non-bookkeeping entries of a Tune result (nested dicts flattened)."""
    flat = flatten({k: v for k, v in result.items() if k not in _NOT_RESULTS})
    return {k: float(v) for k, v in flat.items() if finite(v)}


def trial_status(ray_status: str, last_result: Mapping[str, Any] | None) -> str:
    """:data:`FINISHED` only for a trial whose last result is fit's final report."""
    if ray_status == "ERROR":
        return FAILED
    if ray_status == "TERMINATED" and (last_result or {}).get("final"):
        return FINISHED
    return INTERRUPTED


def trial_row(trial_id: Any, status: str, config: Mapping[str, Any], result: Mapping[str, Any],
              **extra: Any) -> dict[str, Any]:
    """One row: id, status, ``config/...``, the numeric results and the seed."""
    row: dict[str, Any] = {"trial_id": trial_id, **extra, "status": status}
    row.update({f"config/{k}": v for k, v in flatten(config or {}).items()})
    row.update(numeric_metrics(result or {}))
    if finite((result or {}).get("seed")):
        row["seed"] = int(result["seed"])
    return row


def _value_text(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def settings_label(config: Mapping[str, Any]) -> str:
    """``theta_a=0.6 theta_v=1.8``: a configuration's values, as runs and tables name it."""
    return " ".join(f"{k}={_value_text(v)}" for k, v in sorted(config.items())) or "(defaults)"


def config_of(row: Mapping[str, Any], keys: Sequence[str] | None = None) -> dict[str, Any]:
    """The axis values of a trial row (``config/<k>``), without the seed index."""
    cfg = {k.removeprefix("config/"): v for k, v in row.items() if k.startswith("config/")}
    cfg.pop(SEED_INDEX, None)
    if keys is not None:
        cfg = {k: cfg[k] for k in keys if k in cfg}
    return cfg


@dataclass
class Group:
    """The trials of one configuration (one per seed; a single trial without ``--seeds``).

    Attributes:
        config: The configuration's axis values (``{"theta_a": 0.6, ...}``), seed index excluded.
        rows: Its trial rows, in seed order.
    """

    config: dict[str, Any]
    rows: list[Mapping[str, Any]] = field(default_factory=list)

    @property
    def finished(self) -> list[Mapping[str, Any]]:
        return [r for r in self.rows if r.get("status", FINISHED) == FINISHED]

    @property
    def n_finished(self) -> int:
        return len(self.finished)

    def stat(self, key: str) -> tuple[float, float]:
        """Mean and sample standard deviation of ``key`` over the finished seeds (NaN if none;
        std NaN for one seed)."""
        vals = [float(r[key]) for r in self.finished if finite(r.get(key))]
        if not vals:
            return math.nan, math.nan
        mean = sum(vals) / len(vals)
        if len(vals) < 2:
            return mean, math.nan
        return mean, math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1))

    def scores(self, keys: Sequence[str], prefix: str = "test/") -> tuple[dict[str, float], dict[str, float]]:
        """``(means, stds)`` of ``keys`` (a task's score keys) under ``prefix``."""
        pairs = {k: self.stat(prefix + k) for k in keys}
        return {k: v[0] for k, v in pairs.items()}, {k: v[1] for k, v in pairs.items()}

    def label(self) -> str:
        return settings_label(self.config)


def group_rows(rows: Sequence[Mapping[str, Any]], keys: Sequence[str] | None = None) -> list[Group]:
    """Trial rows grouped by configuration (``keys`` of their config; all but the seed index by
    default), in first-seen order; within a group, rows are in seed order."""
    groups: dict[str, Group] = {}
    for r in rows:
        cfg = config_of(r, keys)
        key = repr(sorted((k, repr(v)) for k, v in cfg.items()))
        groups.setdefault(key, Group(cfg)).rows.append(r)
    for g in groups.values():
        g.rows.sort(key=lambda r: (r.get("seed") is None, r.get("seed") or 0))
    return list(groups.values())


def rank_groups(groups: Sequence[Group], metric: str, mode: str) -> list[Group]:
    """Configurations best first by the mean of ``metric`` over finished seeds; configurations
    without a finished seed last."""
    def key(g: Group):
        m = g.stat(metric)[0]
        if not math.isfinite(m):
            return (1, 0.0)
        return (0, -m if mode == "max" else m)
    return sorted(groups, key=key)


def best_group(rows: Sequence[Mapping[str, Any]], metric: str, mode: str,
               keys: Sequence[str] | None = None) -> Group | None:
    """The configuration with the best mean ``metric`` over its finished seeds (its group holds
    its unfinished seeds too), or None."""
    ranked = rank_groups(group_rows(rows, keys), metric, mode)
    return ranked[0] if ranked and math.isfinite(ranked[0].stat(metric)[0]) else None


def finished_rows(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [r for r in rows if r.get("status", FINISHED) == FINISHED]


@dataclass
class RunInfo:
    """What a run is, as its tables need it: built from the plan while it runs, read back from
    the parent run's tags afterwards (:mod:`orchestrator.results`).

    Attributes:
        kind: ``sweep`` (one method, configurations ranked by ``metric``) or ``compare`` (the
            arms of ``arms``, in that order: methods or a named comparison's entries).
        ref: The sweep's name (or module reference), or the comparison's (``compare`` for
            methods named on the command line).
        name: The run's name (its ``--name``: Tune directory and MLflow parent run).
        task: The task's name (its score keys and published rows).
        metric: The validation metric that selects each trial's epoch (and, in a sweep, ranks).
        mode: ``max`` or ``min``.
        methods: The methods the run trains (a sweep: one).
        axis: The config keys its trials differ in: the tuned settings, or ``[ARM_KEY]``.
        arms: A comparison's arm labels, in table order.
        seeds: Seeds per configuration.
        data_note: The data set (spec and fingerprint), for the tables' note.
        command: The command that reproduces the run.
        marks: Arm label -> a protocol marker the tables show after its label (e.g. thresholds
            chosen on the validation set), with its footnote in ``mark_notes``.
        references: Arm label -> the published row it is read against (prediction tables).
        columns: Further result keys its tables show per entry (a named comparison's).
        paired: Its arms are an expected order: tables show per-seed paired differences.
    """

    kind: str
    ref: str
    name: str
    task: str
    metric: str
    mode: str
    methods: list[str]
    axis: list[str]
    arms: list[str] = field(default_factory=list)
    seeds: int = 1
    data_note: str = ""
    command: str = ""
    marks: dict[str, str] = field(default_factory=dict)
    mark_notes: dict[str, str] = field(default_factory=dict)
    references: dict[str, str] = field(default_factory=dict)
    columns: list[str] = field(default_factory=list)
    paired: bool = False

    def entries(self, rows: Sequence[Mapping[str, Any]]) -> list[tuple[str, Group]]:
        """The rows a run's paper table shows: a sweep's best configuration (mean over its
        seeds), or every arm of a comparison in its order."""
        if self.kind == "sweep":
            best = best_group(rows, self.metric, self.mode, self.axis)
            return [(f"best: {best.label()}", best)] if best is not None else []
        by = {str(g.config.get(ARM_KEY)): g for g in group_rows(rows, [ARM_KEY])}
        return [(a, by[a]) for a in self.arms if a in by]

    def tags(self) -> dict[str, str]:
        """The parent run's ``avtune.*`` tags (what :func:`from_tags` reads back)."""
        import json

        return {TAG_KIND: self.kind, "avtune.sweep": self.ref, "avtune.name": self.name,
                "avtune.task": self.task, "avtune.metric": self.metric, "avtune.mode": self.mode,
                "avtune.method": ",".join(self.methods), "avtune.tuned": json.dumps(self.axis),
                "avtune.arms": json.dumps(self.arms), "avtune.seeds": str(self.seeds),
                "avtune.marks": json.dumps({"marks": self.marks, "notes": self.mark_notes,
                                            "references": self.references}),
                "avtune.columns": json.dumps({"columns": self.columns, "paired": self.paired}),
                "avtune.command": self.command[:5000]}

    @classmethod
    def from_tags(cls, tags: Mapping[str, str], name: str, data_note: str = "") -> RunInfo:
        import json

        def loads(key: str, default: Any) -> Any:
            try:
                return json.loads(tags.get(key, "")) if tags.get(key) else default
            except ValueError:
                return default

        marks = loads("avtune.marks", {})
        methods = [m for m in tags.get("avtune.method", "").split(",") if m]
        kind = tags.get(TAG_KIND, "sweep")
        axis = loads("avtune.tuned", [])
        return cls(kind=kind, ref=tags.get("avtune.sweep", ""), name=name, task=tags.get("avtune.task", ""),
                   metric=tags.get("avtune.metric", ""), mode=tags.get("avtune.mode", "max"),
                   methods=methods, axis=list(axis) if kind == "sweep" else [ARM_KEY],
                   arms=list(loads("avtune.arms", methods if kind == "compare" else [])),
                   seeds=int(tags.get("avtune.seeds", "1") or 1), data_note=data_note,
                   command=tags.get("avtune.command", ""), marks=dict(marks.get("marks", {})),
                   mark_notes=dict(marks.get("notes", {})), references=dict(marks.get("references", {})),
                   columns=list(loads("avtune.columns", {}).get("columns", [])),
                   paired=bool(loads("avtune.columns", {}).get("paired", False)))
