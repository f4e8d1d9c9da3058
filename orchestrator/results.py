"""Reading finished runs back from MLflow: ``sweep --show``, ``compare --from-sweep`` and the
notebook use the same rows as the end of a run.

A run (a sweep or a comparison) is an MLflow parent run tagged ``avtune.kind`` (``sweep`` or
``compare``) with ``avtune.metric``, ``avtune.mode``, ``avtune.method``, ``avtune.tuned`` and
``avtune.seeds``; its children are the trials. A trial's result is its ``objective`` metric (the
optimised metric at the selected epoch) and its ``test/...`` scores; its settings are its
``config/<field>`` params. Imports MLflow, never Ray.
"""

from __future__ import annotations

import ast
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from orchestrator import compare_tables, tables

OBJECTIVE = "objective"  # orchestrator.tracking.OBJECTIVE (tracking imports Ray; this does not)
KINDS = ("sweep", "compare")


class NotFound(LookupError):
    """No run matches; the message says what was looked for and where."""


def repo_root(start: str | os.PathLike | None = None) -> Path:
    """The avtune checkout holding ``start`` (default: the working directory): the nearest
    directory upward with a ``pyproject.toml`` naming avtune; else the package's own checkout."""
    here = Path(start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        f = d / "pyproject.toml"
        if f.is_file() and 'name = "avtune"' in f.read_text(errors="replace"):
            return d
    return Path(__file__).resolve().parents[1]


def notebook_uri() -> str:
    """``$AVTUNE_MLFLOW_URI``, else the repository root's ``mlflow.db`` (where the Quickstart
    writes it), wherever in the checkout the notebook runs from."""
    return os.environ.get("AVTUNE_MLFLOW_URI") or f"sqlite:///{repo_root() / 'mlflow.db'}"


def ui_url(experiment_id: str, run_id: str = "", view: str = "", port: int = 5000) -> str:
    """A page of the MLflow UI (``mlflow ui``'s default port) in its model-training mode: one
    run's page, or the experiment's runs, with ``view`` the share key of the view avtune saved
    for a sweep (its runs ranked by the objective, settings and test scores as columns)."""
    base = f"http://127.0.0.1:{port}/#/experiments/{experiment_id}"
    if run_id:
        return f"{base}/runs/{run_id}?workflowType=machine_learning"
    q = "?workflowType=machine_learning" + (f"&viewStateShareKey={view}" if view else "")
    return f"{base}/runs{q}"


def parse_param(text: str) -> Any:
    """An MLflow param string back to a number, bool or None where it reads as one."""
    if text in ("True", "False", "None"):
        return {"True": True, "False": False, "None": None}[text]
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    try:
        v = ast.literal_eval(text)
        return v if isinstance(v, (list, tuple, dict)) else text
    except (ValueError, SyntaxError):
        return text


def _client(uri: str):
    from mlflow.tracking import MlflowClient

    db = uri[len("sqlite:///"):] if uri.startswith("sqlite:///") else None
    if db is not None and not Path(db).is_file():
        # MLflow would create an empty store here; a reader must not.
        raise NotFound(f"no MLflow store at {db} (set --mlflow-uri / AVTUNE_MLFLOW_URI)")
    return MlflowClient(tracking_uri=uri)


def find_parent(client, ref: str = ""):
    """The parent run named ``ref`` (a ``--name``), else the newest run of the sweep or
    comparison experiment ``ref``; with no ``ref`` the newest avtune run of the store.

    Raises:
        NotFound: Nothing matches.
    """
    exps = [e.experiment_id for e in client.search_experiments()]
    if not exps:
        raise NotFound("the MLflow store has no experiments")

    def search(extra: str = "", ids=exps):
        out = []
        for kind in KINDS:
            f = f"tags.`avtune.kind` = '{kind}'" + (f" and {extra}" if extra else "")
            out += client.search_runs(ids, filter_string=f, max_results=200, order_by=["attributes.start_time DESC"])
        return sorted(out, key=lambda r: r.info.start_time or 0, reverse=True)

    if ref:
        named = search(f"attributes.run_name = '{ref}'")
        if named:
            return named[0]
        exp = client.get_experiment_by_name(ref)
        runs = search(ids=[exp.experiment_id]) if exp is not None else []
        if runs:
            return runs[0]
        raise NotFound(f"no avtune run or sweep named {ref!r} in the MLflow store")
    runs = search()
    if not runs:
        raise NotFound("the MLflow store holds no avtune sweep or comparison")
    return runs[0]


def info(parent) -> dict[str, Any]:
    """What a parent run's tags say about it."""
    t = parent.data.tags
    methods = [m for m in t.get("avtune.method", "").split(",") if m]
    try:
        tuned = json.loads(t.get("avtune.tuned", "[]"))
    except ValueError:
        tuned = []
    return {"kind": t.get("avtune.kind", "sweep"), "sweep": t.get("avtune.sweep", ""),
            "name": parent.info.run_name, "metric": t.get("avtune.metric", "val/seg_Type"),
            "mode": t.get("avtune.mode", "max"), "methods": methods, "tuned": list(tuned),
            "seeds": int(t.get("avtune.seeds", "1") or 1), "status": parent.info.status,
            "task": t.get("avtune.task", ""),
            "command": t.get("avtune.command", ""), "data": parent.data.params.get("data", ""),
            "run_id": parent.info.run_id, "experiment_id": parent.info.experiment_id}


_STATUS = {"FINISHED": tables.FINISHED, "FAILED": "ERROR"}


def trial_rows(client, parent) -> list[dict[str, Any]]:
    """One row per child run, shaped like the rows at the end of a run: ``trial_id``,
    ``trial_name``, ``status``, ``seed``, ``config/<tuned key>``, the metric (from ``objective``),
    ``test/...`` and ``best_epoch``."""
    meta = info(parent)
    keys = ["method"] if meta["kind"] == "compare" else meta["tuned"]
    children = client.search_runs([parent.info.experiment_id], max_results=5000,
                                  filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    rows = []
    for ch in children:
        p, m = ch.data.params, ch.data.metrics
        row: dict[str, Any] = {"trial_id": ch.data.tags.get("avtune.trial_id", ch.info.run_id),
                               "trial_name": ch.info.run_name, "run_id": ch.info.run_id,
                               "status": _STATUS.get(ch.info.status, "INTERRUPTED")}
        if "seed" in p:
            row["seed"] = parse_param(p["seed"])
        for k in keys:
            if f"config/{k}" in p:
                row[f"config/{k}"] = parse_param(p[f"config/{k}"])
        value = m.get(OBJECTIVE, m.get(f"best/{meta['metric']}"))
        if value is not None:
            row[meta["metric"]] = value
        elif row["status"] == tables.FINISHED:
            row["status"] = "INTERRUPTED"  # no result: never ranked as a finished trial
        for k, v in m.items():
            if k.startswith("test/") or k in ("best_epoch", "last_epoch"):
                row[k] = v
        if "best_epoch" not in row and "best/epoch" in m:
            row["best_epoch"] = m["best/epoch"]
        rows.append(row)
    rows.sort(key=lambda r: (str(r.get("trial_name")), r.get("seed") or 0))
    return rows


def task_for(meta_or_method: Mapping[str, Any] | str):
    """The TaskSpec of a run (its ``avtune.task`` tag, else its first method's task) or of a
    method name."""
    from orchestrator.methods import get_task, task_of

    if isinstance(meta_or_method, str):
        return task_of(meta_or_method)
    if meta_or_method.get("task"):
        return get_task(meta_or_method["task"])
    if meta_or_method.get("methods"):
        return task_of(meta_or_method["methods"][0])
    raise KeyError(f"run {meta_or_method.get('name')!r} names neither its task nor its method")


def closing_lines(rows: Sequence[Mapping[str, Any]], *, metric: str, mode: str, method: str | Any,
                  planned: int = 0, keys: Sequence[str] | None = None) -> list[str]:
    """Every configuration ranked by its selected validation metric (mean ± std over seeds) with
    its test scores, then the best configuration's line; what a sweep prints at its end.
    ``method``: a method name, or the TaskSpec itself."""
    task = task_for(method) if isinstance(method, str) else method
    finished = [r for r in rows if r["status"] == tables.FINISHED]
    lines = [f"[avtune] {len(finished)}/{planned or len(rows)} trials finished"]
    if rows:
        lines.append(f"[avtune] trials ranked by {metric} at the selected epoch (test scores of that epoch):")
        lines += ["  " + ln for ln in tables.ranked_table(rows, task=task, metric=metric, mode=mode,
                                                          keys=keys).splitlines()]
    # Only finished trials compete: an interrupted trial's partial epochs are no result.
    best = tables.best_group(finished, metric, mode, keys)
    if best is None:
        lines.append(f"[avtune] no trial reported {metric}")
        return lines
    m, sd = best.stat(metric)
    pm = f" ± {sd:.2f} (mean of {best.n_finished} seeds)" if best.n_finished > 1 else ""
    cfg = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(best.config.items()))
    lines.append(f"[avtune] best trial {best.rows[0].get('trial_id')}: {cfg}  {metric}={m:.2f}{pm}")
    means, _ = best.scores(task, "test/")
    if any(math.isfinite(v) for v in means.values()):
        lines.append("[avtune] test  " + "  ".join(f"{lab} {means[k]:.1f}" for k, lab in
                                                   zip(task.score_keys, task.score_labels)))
    return lines


def compare_lines(rows: Sequence[Mapping[str, Any]], *, methods: Sequence[str], metric: str,
                  data_note: str) -> list[str]:
    """A comparison's paper-style table (mean ± std per method beside the published rows) and
    its per-class table where the methods report per-class scores."""
    task = task_for(methods[0])
    finished = [r for r in rows if r["status"] == tables.FINISHED]
    lines = [f"[avtune] {len(finished)}/{len(rows)} runs finished"]
    lines += compare_tables.compare_text(rows, task=task, methods=methods, metric=metric,
                                 data_note=data_note).splitlines()
    return lines


def show_text(uri: str, ref: str = "") -> str:
    """What ``python -m orchestrator.sweep --show [NAME]`` prints."""
    client = _client(uri)
    parent = find_parent(client, ref)
    meta = info(parent)
    rows = trial_rows(client, parent)
    what = (f"comparison of {', '.join(meta['methods'])}" if meta["kind"] == "compare"
            else f"sweep {meta['sweep']}")
    head = (f"[avtune] {what}, run {meta['name']!r} ({meta['status']}), {len(rows)} trial run(s), "
            f"data {meta['data'] or '?'}, metric {meta['metric']} ({meta['mode']})")
    if meta["kind"] == "compare":
        body = compare_lines(rows, methods=meta["methods"], metric=meta["metric"], data_note=meta["data"])
    else:
        body = closing_lines(rows, metric=meta["metric"], mode=meta["mode"], method=task_for(meta),
                             keys=meta["tuned"] or None)
    tail = [f"[avtune] reproduce: {meta['command']}"] if meta["command"] else []
    tail.append(f"mlflow ui --backend-store-uri {uri} --host 127.0.0.1")
    tail.extend(open_lines(client, meta))
    return "\n".join([head, *body, *tail])


def open_lines(client, meta: Mapping[str, Any]) -> list[str]:
    """Where to look in the MLflow UI: the run's trials ranked (its saved view, where there is
    one) and the parent run's page (its description holds the tables)."""
    exp = client.get_experiment(meta["experiment_id"])
    key = meta["name"] if f"mlflow.sharedViewState.{meta['name']}" in exp.tags else ""
    return [f"  trials, ranked: {ui_url(meta['experiment_id'], view=key)}",
            f"  the run's tables: {ui_url(meta['experiment_id'], meta['run_id'])}"]


def open_lines_for(uri: str, experiment: str, sweep_id: str) -> list[str]:
    """:func:`open_lines` of the run tagged ``sweep_id`` in ``experiment`` (none if not found)."""
    try:
        client = _client(uri)
        exp = client.get_experiment_by_name(experiment)
        runs = client.search_runs([exp.experiment_id], max_results=1,
                                  filter_string=f"tags.`avtune.sweep_id` = '{sweep_id}' and "
                                                "tags.`avtune.kind` != 'trial'") if exp else []
    except Exception:  # only a hint: never fail the run's report over it
        return []
    return open_lines(client, info(runs[0])) if runs else []


def best_overrides(client, parent, config_cls) -> dict[str, Any]:
    """The best configuration of a finished sweep as config overrides for ``config_cls`` (every
    field the parent logged as ``config/<field>``, parsed as the field's type; epochs and seed
    excluded: the caller chooses them).

    Raises:
        NotFound: The run has no best configuration (it did not finish).
    """
    from orchestrator.methods import coerce_value, config_fields

    fields = config_fields(config_cls)
    params = {k.removeprefix("config/"): v for k, v in parent.data.params.items() if k.startswith("config/")}
    if not params:
        raise NotFound(f"run {parent.info.run_name!r} has no best configuration "
                       f"(status {parent.info.status}; only a finished sweep has one)")
    out = {}
    for k, raw in params.items():
        if k in ("epochs", "seed") or k not in fields:
            continue
        out[k] = coerce_value(config_cls, k, raw)
    return out
