"""Reading finished runs back from MLflow (never writing): ``sweep --show``, ``compare
--from-sweep`` and the notebook get the same rows and :class:`~orchestrator.rows.RunInfo` as the
end of a run, and the same tables (:mod:`orchestrator.report`).

A run is an MLflow parent run with the tags of :meth:`RunInfo.tags`; its children are the trials.
A trial's result is its ``objective`` metric (the optimised metric at the selected epoch) and its
``test/...`` scores; its settings are its ``config/<field>`` params. Imports MLflow, never Ray.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from typing import Any

from orchestrator import report
from orchestrator.rows import (FAILED, FINISHED, INTERRUPTED, KINDS, OBJECTIVE, PARENT_TAG,
                               RunInfo, TAG_KIND, TAG_SWEEP, TAG_TRIAL, VIEW_TAG, default_tracking_uri)


class NotFound(LookupError):
    """No run matches; the message says what was looked for and where."""


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


def client(uri: str):
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
            f = f"tags.`{TAG_KIND}` = '{kind}'" + (f" and {extra}" if extra else "")
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


def run_info(parent) -> RunInfo:
    """What a parent run's tags say about it."""
    return RunInfo.from_tags(parent.data.tags, parent.info.run_name, parent.data.params.get("data", ""))


_STATUS = {"FINISHED": FINISHED, "FAILED": FAILED}


def trial_rows(c, parent) -> list[dict[str, Any]]:
    """One row per child run, shaped like the rows at the end of a run: ``trial_id``,
    ``trial_name``, ``status``, ``seed``, ``config/<tuned key>``, the metric (from ``objective``),
    ``test/...`` and ``best_epoch``."""
    meta = run_info(parent)
    children = c.search_runs([parent.info.experiment_id], max_results=5000,
                                  filter_string=f"tags.`{PARENT_TAG}` = '{parent.info.run_id}'")
    rows = []
    for ch in children:
        p, m = ch.data.params, ch.data.metrics
        row: dict[str, Any] = {"trial_id": ch.data.tags.get(TAG_TRIAL, ch.info.run_id),
                               "trial_name": ch.info.run_name, "run_id": ch.info.run_id,
                               "status": _STATUS.get(ch.info.status, INTERRUPTED)}
        if "seed" in p:
            row["seed"] = parse_param(p["seed"])
        for k in meta.axis:
            if f"config/{k}" in p:
                row[f"config/{k}"] = parse_param(p[f"config/{k}"])
        value = m.get(OBJECTIVE, m.get(f"best/{meta.metric}"))
        if value is not None:
            row[meta.metric] = value
        elif row["status"] == FINISHED:
            row["status"] = INTERRUPTED  # no result: never ranked as a finished trial
        for k, v in m.items():
            if k.startswith("test/") or k in ("best_epoch", "last_epoch"):
                row[k] = v
        for k in meta.columns:  # the selected epoch's value: logged at that step
            hist = [x for x in c.get_metric_history(ch.info.run_id, k)] if k in m else []
            at = [x.value for x in hist if x.step == int(row.get("best_epoch", -1))]
            if at:
                row[k] = at[-1]
        if "best_epoch" not in row and "best/epoch" in m:
            row["best_epoch"] = m["best/epoch"]
        rows.append(row)
    rows.sort(key=lambda r: (str(r.get("trial_name")), r.get("seed") or 0))
    return rows


def show_text(uri: str, ref: str = "") -> str:
    """What ``python -m orchestrator.sweep --show [NAME]`` prints."""
    c = client(uri)
    parent = find_parent(c, ref)
    meta = run_info(parent)
    rows = trial_rows(c, parent)
    what = f"comparison {meta.ref} ({', '.join(meta.arms)})" if meta.kind == "compare" else f"sweep {meta.ref}"
    head = (f"[avtune] {what}, run {meta.name!r} ({parent.info.status}), {len(rows)} trial run(s), "
            f"data {meta.data_note or '?'}, metric {meta.metric} ({meta.mode})")
    tail = [f"[avtune] reproduce: {meta.command}"] if meta.command else []
    tail.append(f"mlflow ui --backend-store-uri {uri} --host 127.0.0.1")
    tail.extend(open_lines(c, parent))
    return "\n".join([head, *report.closing_lines(meta, rows), *tail])


def show(ref: str, uri: str | None = None) -> int:
    """``--show [NAME]``: prints a finished run's tables read back from MLflow; the exit status."""
    try:
        text = show_text(uri or default_tracking_uri(), ref)
    except (NotFound, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(text)
    return 0


def open_lines(c, parent) -> list[str]:
    """Where to look in the MLflow UI: the run's trials ranked (its saved view, where there is
    one) and the parent run's page (its description holds the tables)."""
    exp_id, name = parent.info.experiment_id, parent.info.run_name
    exp = c.get_experiment(exp_id)
    key = name if f"{VIEW_TAG}{name}" in exp.tags else ""
    return [f"  trials, ranked: {ui_url(exp_id, view=key)}",
            f"  the run's tables: {ui_url(exp_id, parent.info.run_id)}"]


def open_lines_for(uri: str, experiment: str, sweep_id: str) -> list[str]:
    """:func:`open_lines` of the run tagged ``sweep_id`` in ``experiment`` (none if not found)."""
    try:
        c = client(uri)
        exp = c.get_experiment_by_name(experiment)
        runs = c.search_runs([exp.experiment_id], max_results=1,
                             filter_string=f"tags.`{TAG_SWEEP}` = '{sweep_id}' and "
                                           f"tags.`{TAG_KIND}` != 'trial'") if exp else []
        return open_lines(c, runs[0]) if runs else []
    except Exception:  # only a hint: never fail the run's report over it
        return []


def best_overrides(c, parent, config_cls) -> dict[str, Any]:
    """The best configuration of a finished sweep as config overrides for ``config_cls`` (every
    field the parent logged as ``config/<field>``, parsed as the field's type; epochs and seed
    excluded: the caller chooses them).

    Raises:
        NotFound: The run has no best configuration (it did not finish).
    """
    from trainables.core.config import coerce_value, config_fields

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
