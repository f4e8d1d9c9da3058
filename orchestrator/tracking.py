"""MLflow tracking for sweeps: one parent run per sweep, one nested child run per trial.

Ray's ``MLflowLoggerCallback`` has no nested runs and, after ``Tuner.restore``, starts a second run
for every resumed trial while the first stays RUNNING. This callback instead finds every run by tag
(``avtune.sweep_id`` on the parent, ``avtune.trial_id`` plus the parent id on children), so a
restored sweep reuses its parent run and a resumed trial continues its own child run. It keeps no
MLflow objects between calls, so it pickles with the Tuner state and works after a restore.

Child runs are named by their settings (``theta_a=0.6 theta_v=1.8``, plus ``seed=N`` with
``--seeds``), get every resolved config field as ``config/<field>`` params, every numeric result
key with ``step = epoch``, the seed and data fingerprint, and at the end the optimised metric of
the selected epoch under one stable name, :data:`OBJECTIVE` (also as ``best/<metric>``). The
experiment is tagged as a model-development experiment, so the MLflow UI opens on its runs. The
parent gets the best configuration's settings as ``config/<field>`` params, its scores (mean over
seeds), a description (``mlflow.note.content``) with the paper-style table, the ranked trials and
the command that reproduces the run, and the tables of ``orchestrator.tables`` as artifacts.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any

from orchestrator import compare_tables, tables
from orchestrator.methods import task_of

TAG_SWEEP = "avtune.sweep_id"
TAG_TRIAL = "avtune.trial_id"
TAG_KIND = "avtune.kind"
PARENT_TAG = "mlflow.parentRunId"
NOTE_TAG = "mlflow.note.content"
# MLflow 3 opens an experiment on its GenAI (traces) view unless it is of this kind.
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}
# The metric the search optimises, at the selected epoch, under one name on every child run.
OBJECTIVE = "objective"
# The MLflow UI's "shared view" of an experiment: a tag holding a view's JSON, opened with
# ``#/experiments/<id>/runs?viewStateShareKey=<key>`` (see :meth:`MLflowSweepTracker.view_key`).
VIEW_TAG = "mlflow.sharedViewState."
# Result keys Ray adds itself: bookkeeping, not science.
_RAY_KEYS = {"training_iteration", "time_this_iter_s", "time_total_s", "timestamp", "pid",
             "time_since_restore", "iterations_since_restore", "done", "trial_id", "date",
             "hostname", "node_ip", "checkpoint_dir_name", "should_checkpoint", "config",
             # logged as params or only steering the trainable
             "seed", "workers", "final", "replay"}


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
    out = {}
    for k, v in flatten({k: v for k, v in result.items() if k not in _RAY_KEYS}).items():
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        if math.isfinite(v):
            out[k] = float(v)
    return out


class MLflowSweepTracker:
    """MLflow bookkeeping of one sweep, every run located by tag (no cached run objects)."""

    def __init__(self, tracking_uri: str, experiment: str, sweep_id: str, sweep_name: str,
                 metric: str, mode: str, params: Mapping[str, Any] | None = None,
                 tuned: Sequence[str] = (), data_note: str = "", method: str = "", *,
                 sweep: str = "", command: str = "", resume_command: str = "", kind: str = "sweep",
                 seeds: int = 1, methods: Sequence[str] | None = None) -> None:
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.sweep_id = sweep_id
        self.sweep_name = sweep_name
        self.metric = metric
        self.mode = mode
        self.params = dict(params or {})
        self.tuned = list(tuned)
        self.method = method
        self.methods = list(methods or ([method] if method else []))
        self.data_note = data_note
        self.sweep = sweep or experiment
        self.command = command
        self.resume_command = resume_command
        self.kind = kind
        self.seeds = int(seeds)
        self._client = None
        self._exp_id: str | None = None
        self._parent: str | None = None
        self._children: dict[str, str] = {}
        self._best: dict[str, tuple[float, float]] = {}
        self._logged: dict[str, dict[int, dict[str, float]]] = {}
        self._resumed: set[str] = set()

    def __getstate__(self) -> dict:
        # Clients and cached ids are rebuilt after unpickling (e.g. by Tuner.restore).
        state = self.__dict__.copy()
        state.update(_client=None, _exp_id=None, _parent=None, _children={}, _best={}, _logged={}, _resumed=set())
        return state

    @property
    def client(self):
        if self._client is None:
            from mlflow.tracking import MlflowClient

            self._client = MlflowClient(tracking_uri=self.tracking_uri)
        return self._client

    def experiment_id(self) -> str:
        if self._exp_id is None:
            exp = self.client.get_experiment_by_name(self.experiment)
            if exp is None:
                self._exp_id = self.client.create_experiment(self.experiment, tags=EXPERIMENT_KIND)
            else:
                self._exp_id = exp.experiment_id
                for k, v in EXPERIMENT_KIND.items():
                    if exp.tags.get(k) != v:  # stores made before avtune set it
                        self.client.set_experiment_tag(self._exp_id, k, v)
        return self._exp_id

    def _find(self, filter_string: str) -> list:
        return list(self.client.search_runs([self.experiment_id()], filter_string=filter_string,
                                            max_results=50))

    def parent_run_id(self) -> str:
        """The sweep's parent run: found by tag, created on first use, set RUNNING."""
        if self._parent is None:
            runs = self._find(f"tags.`{TAG_SWEEP}` = '{self.sweep_id}' and tags.`{TAG_KIND}` = '{self.kind}'")
            if runs:
                self._parent = runs[0].info.run_id
                if runs[0].info.status != "RUNNING":
                    self.client.update_run(self._parent, status="RUNNING")
                    self.client.set_tag(self._parent, NOTE_TAG, self._running_note())
            else:
                import json

                self._set_view()
                run = self.client.create_run(self.experiment_id(), run_name=self.sweep_name, tags={
                    TAG_SWEEP: self.sweep_id, TAG_KIND: self.kind, "avtune.sweep": self.sweep,
                    "avtune.name": self.sweep_name, "avtune.metric": self.metric,
                    "avtune.mode": self.mode, "avtune.method": ",".join(self.methods),
                    "avtune.tuned": json.dumps(self.tuned), "avtune.seeds": str(self.seeds),
                    "avtune.task": task_of(self.method).name if self.method else "",
                    "avtune.command": self.command[:5000], NOTE_TAG: self._running_note()})
                self._parent = run.info.run_id
                self._log_params(self._parent, self.params)
        return self._parent

    def view_key(self) -> str:
        """The share key of this run's MLflow UI view (its ``--name``)."""
        return self.sweep_name

    def _set_view(self) -> None:
        """Tags the experiment with a UI view of this run: its runs only (parent and trials),
        ranked by the objective (so MLflow lists them flat, not folded under the parent), with
        the objective, the settings, the seed, the selected epoch and the test scores as
        columns; and the objective as the experiment's primary metric (its charts)."""
        import json

        keys = ["method"] if self.kind == "compare" else self.tuned
        try:
            scores = list(task_of(self.method).score_keys) if self.method else []
        except KeyError:
            scores = []
        cols = ([f"metrics.`{OBJECTIVE}`"] + [f"params.`config/{k}`" for k in keys]
                + ["params.`seed`", "metrics.`best_epoch`"] + [f"metrics.`test/{k}`" for k in scores])
        view = {"searchFilter": f"tags.`{TAG_SWEEP}` = '{self.sweep_id}'",
                "orderByKey": f"metrics.`{OBJECTIVE}`", "orderByAsc": self.mode == "min",
                "selectedColumns": cols, "columnOrder": cols}
        exp = self.experiment_id()
        self.client.set_experiment_tag(exp, VIEW_TAG + self.view_key(), json.dumps(view))
        self.client.set_experiment_tag(exp, "mlflow.experiment.primaryMetric.name", OBJECTIVE)

    def _running_note(self) -> str:
        what = "comparison" if self.kind == "compare" else "sweep"
        return (f"**{self.sweep}** {what} `{self.sweep_name}`: running; the results table appears "
                f"here when every trial has finished.\n\n" + self._command_md())

    def _command_md(self) -> str:
        return f"Reproduce it with:\n\n```bash\n{self.command}\n```\n" if self.command else ""

    def run_name(self, config: Mapping[str, Any]) -> str:
        """A child run's name: its settings (the method first in a comparison), then its seed
        when configurations repeat over seeds."""
        cfg = {k: v for k, v in config.items() if k != tables.SEED_INDEX}
        method = cfg.pop("method", None) if self.kind == "compare" else None
        parts = [str(method)] if method is not None else []
        if cfg or method is None:
            parts.append(tables.settings_label(cfg))
        if self.seeds > 1 or self.kind == "compare":
            parts.append(f"seed={int(self.params.get('seed', 0)) + int(config.get(tables.SEED_INDEX, 0))}")
        return " ".join(parts)

    def _log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        existing = self.client.get_run(run_id).data.params
        todo = [Param(k, str(v)[:6000]) for k, v in flatten(params).items() if k not in existing]
        for i in range(0, len(todo), 100):
            self.client.log_batch(run_id, params=todo[i:i + 100])

    def child_run_id(self, trial_id: str, trial_name: str, config: Mapping[str, Any]) -> str:
        """The trial's own child run, found by trial id under this parent, else created."""
        if trial_id in self._children:
            return self._children[trial_id]
        parent = self.parent_run_id()
        runs = self._find(f"tags.`{TAG_TRIAL}` = '{trial_id}' and tags.`{PARENT_TAG}` = '{parent}'")
        if runs:
            rid = runs[0].info.run_id
            if runs[0].info.status != "RUNNING":
                self.client.update_run(rid, status="RUNNING")
            self._resumed.add(trial_id)
        else:
            run = self.client.create_run(self.experiment_id(), run_name=self.run_name(config), tags={
                PARENT_TAG: parent, TAG_TRIAL: trial_id, TAG_SWEEP: self.sweep_id, TAG_KIND: "trial",
                "avtune.objective_metric": self.metric})
            rid = run.info.run_id
            self._log_params(rid, {f"config/{k}": v for k, v in self.resolved_config(config).items()})
        self._children[trial_id] = rid
        return rid

    def resolved_config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """Every field of the config the trial runs with (defaults, preset, base, tuned values and
        derived constants), so a trial can be reproduced from its MLflow run alone. Without a plan
        (``params`` lacks the method) only the tuned values are known."""
        if "trainable" not in self.params or "base" not in self.params:
            return dict(config)
        import dataclasses

        from orchestrator.methods import build_config, load
        from orchestrator.tune_runner import trial_overrides

        from orchestrator.tune_runner import trial_plan

        plan, own = trial_plan(self.params, config)
        cfg = build_config(load(plan["trainable"]).Config, trial_overrides(self.params, config))
        return {**dataclasses.asdict(cfg), **own, **({"method": config["method"]} if "method" in config else {})}

    def log_result(self, trial_id: str, trial_name: str, config: Mapping[str, Any],
                   result: Mapping[str, Any]) -> None:
        """Logs one reported result of a trial (step = its ``epoch``)."""
        from mlflow.entities import Metric

        rid = self.child_run_id(trial_id, trial_name, config)
        replay = result.get("replay")
        if isinstance(replay, Mapping) and "epoch" in replay:
            self._log_replay(rid, trial_id, replay)
        metrics = numeric_metrics(result)
        step = int(metrics.get("epoch", result.get("training_iteration", 0)))
        ts = int(float(result.get("timestamp", 0)) * 1000) or None
        import time

        ts = ts or int(time.time() * 1000)
        # fit's final report repeats the selected epoch's values at that epoch's step; log only
        # what is new there (the test scores, the objective) so histories hold one point per epoch.
        if result.get("final") and self.metric in metrics:
            metrics[OBJECTIVE] = metrics[self.metric]
        if trial_id in self._resumed:
            # A trial resumed in a new driver: learn what its run already holds, so repeated
            # epochs (the final report, a replay) are not logged twice.
            self._resumed.discard(trial_id)
            known = self._logged.setdefault(trial_id, {})
            for k in metrics:
                for m in self.client.get_metric_history(rid, k):
                    known.setdefault(int(m.step), {})[k] = m.value
        seen = self._logged.get(trial_id, {}).get(step, {})
        batch = [Metric(k, v, ts, step) for k, v in metrics.items() if seen.get(k) != v]
        self._logged.setdefault(trial_id, {})[step] = {**seen, **metrics}
        for i in range(0, len(batch), 500):
            self.client.log_batch(rid, metrics=batch[i:i + 500])
        extra = {k: result[k] for k in ("seed", "data_fingerprint", "data", "device") if k in result}
        if extra:
            self._log_params(rid, extra)
        if result.get("final") and self.metric in metrics:
            # fit's final report carries the selected epoch's values: that is the trial's result.
            self._best[trial_id] = (metrics[self.metric], float(metrics.get("best_epoch", step)))

    def _log_replay(self, rid: str, trial_id: str, replay: Mapping[str, Any]) -> None:
        """Logs a resumed trial's checkpointed epoch unless that step is already in MLflow."""
        from mlflow.entities import Metric
        import time

        metrics = numeric_metrics(replay)
        step = int(metrics.get("epoch", 0))
        probe = next((k for k in metrics if k != "epoch"), "epoch")
        if any(m.step == step for m in self.client.get_metric_history(rid, probe)):
            return
        now = int(time.time() * 1000)
        self.client.log_batch(rid, metrics=[Metric(k, v, now, step) for k, v in metrics.items()])
        self._logged.setdefault(trial_id, {}).setdefault(step, {}).update(metrics)

    def finish_trial(self, trial_id: str, trial_name: str, config: Mapping[str, Any],
                     status: str) -> None:
        """Ends the child run with ``status`` (FINISHED/FAILED/KILLED); a FINISHED trial also gets
        ``best/<metric>`` and ``best/epoch``, the selected epoch's (an interrupted one has no result
        yet: it continues on ``--resume``)."""
        from mlflow.entities import Metric

        rid = self.child_run_id(trial_id, trial_name, config)
        if status == "FINISHED" and trial_id in self._best:
            v, step = self._best[trial_id]
            import time

            now = int(time.time() * 1000)
            self.client.log_batch(rid, metrics=[Metric(f"best/{self.metric}", v, now, int(step)),
                                                Metric("best/epoch", step, now, int(step))])
        self.client.set_terminated(rid, status=status)

    def open_children(self) -> list:
        """Child runs of this sweep that are still RUNNING."""
        parent = self.parent_run_id()
        return self._find(f"tags.`{PARENT_TAG}` = '{parent}' and attributes.status = 'RUNNING'")

    def finish_sweep(self, rows: Sequence[Mapping[str, Any]], status: str = "FINISHED") -> dict[str, float]:
        """Logs the best configuration's settings and scores (means over its seeds), the
        description and the result tables on the parent, then ends it.

        Any child run still RUNNING (its trial did not come back) is ended as KILLED.

        Returns:
            The metrics logged on the parent.
        """
        import json
        import time

        from mlflow.entities import Metric

        parent = self.parent_run_id()
        for run in self.open_children():
            self.client.set_terminated(run.info.run_id, status="KILLED")
        task = task_of(self.method)
        finished = [r for r in rows if r.get("status", tables.FINISHED) == tables.FINISHED]
        keys = ["method"] if self.kind == "compare" else None
        best = tables.best_group(finished, self.metric, self.mode, keys)
        logged: dict[str, float] = {}
        if best is not None and self.kind != "compare":
            n = best.n_finished
            mean, std = best.stat(self.metric)
            logged[f"best/{self.metric}"] = mean
            logged[OBJECTIVE] = mean
            if n > 1 and math.isfinite(std):
                logged[f"{OBJECTIVE}_std"] = std
            for prefix in ("test/", "val/"):
                means, stds = best.scores(task, prefix)
                for k, v in means.items():
                    if math.isfinite(v):
                        logged[f"best/{prefix}{k}"] = v
                        if prefix == "test/":
                            logged[k] = v
                    if n > 1 and math.isfinite(stds[k]):
                        logged[f"best/{prefix.rstrip('/')}_std/{k}"] = stds[k]
            # The parent's params are the best configuration's settings (what its children log).
            settings = {f"config/{k}": v for k, v in self.resolved_config(
                {**best.config, tables.SEED_INDEX: 0}).items()}
            if n > 1:
                seeds = sorted({r.get("seed") for r in best.finished if r.get("seed") is not None})
                settings["config/seed"] = ",".join(str(int(x)) for x in seeds)
            self._log_params(parent, settings)
            self.client.set_tag(parent, "avtune.best_trial_id", str(best.rows[0].get("trial_id")))
            self.client.set_tag(parent, "avtune.best_config", json.dumps(best.config, default=str))
        if self.kind == "compare":
            # One set of scores per method (mean and std over its seeds), e.g. ``<method>/seg_V``.
            for meth, g in compare_tables.method_groups(finished, self.methods):
                means, stds = g.scores(task, "test/")
                vm, vs = g.stat(self.metric)
                for k, v in [(f"{meth}/{self.metric}", vm), *((f"{meth}/{k}", v) for k, v in means.items())]:
                    if math.isfinite(v):
                        logged[k] = v
                for k, v in [(f"{meth}/{self.metric}_std", vs), *((f"{meth}/{k}_std", v) for k, v in stds.items())]:
                    if g.n_finished > 1 and math.isfinite(v):
                        logged[k] = v
        if logged:
            now = int(time.time() * 1000)
            self.client.log_batch(parent, metrics=[Metric(k, v, now, 0) for k, v in logged.items()])
        with tempfile.TemporaryDirectory() as d:
            if self.kind == "compare":
                compare_tables.write_compare_tables(rows, d, metric=self.metric, mode=self.mode, task=task,
                                            methods=self.methods, data_note=self.data_note)
            else:
                label = f"{self.sweep}: best {best.label() if best else '(none)'}"
                tables.write_sweep_tables(rows, d, metric=self.metric, mode=self.mode, tuned=self.tuned,
                                          label=label, data_note=self.data_note, task=task,
                                          methods=self.methods)
            self.client.log_artifacts(parent, d, artifact_path="tables")
        self.client.set_tag(parent, NOTE_TAG, self.description(rows, best, task))
        self.client.set_terminated(parent, status=status)
        return logged

    def description(self, rows: Sequence[Mapping[str, Any]], best: Any, task) -> str:
        """The parent run's Markdown description: a one-line result and the reproducing command
        first (what the UI shows before "Show more"), then the paper-style table, the ranked
        trials and the command again as a block."""
        finished = [r for r in rows if r.get("status", tables.FINISHED) == tables.FINISHED]
        failed = len(rows) - len(finished)
        cmd = f"Reproduce: `{self.command}`\n\n" if self.command else ""
        if self.kind == "compare":
            entries = compare_tables.method_groups(finished, self.methods)
            table = tables.paper_table_markdown(entries or None, "", self.data_note, task, self.methods)
            key = next((k for k in task.score_keys if f"val/{k}" == self.metric), task.score_keys[0])
            summary = ", ".join(f"{m} {g.stat('test/' + key)[0]:.1f}" for m, g in entries)
            lab = dict(zip(task.score_keys, task.score_labels))[key]
            head = (f"**{' vs '.join(self.methods)}**, {self.seeds} seed(s) each on {self.data_note}: "
                    f"test {lab} {summary}.\n\n")
            body = f"{table}"
            panels = compare_tables.class_panels(finished)
            if panels and entries:
                body += ("\n### Per-class segment F (test, mean ± std over seeds)\n\n"
                         + compare_tables.class_table_markdown(entries, panels) + "\nBars: `tables/class_f.png`.\n")
        else:
            table = tables.paper_table_markdown(best, f"best: {best.label()}" if best else "",
                                                self.data_note, task, self.methods)
            head = f"**{self.sweep}** `{self.sweep_name}`: no trial finished.\n\n"
            if best is not None:
                m, sd = best.stat(self.metric)
                pm = f" ± {sd:.2f} over {best.n_finished} seeds" if best.n_finished > 1 else ""
                key = next((k for k in task.score_keys if f"val/{k}" == self.metric), None)
                test = ""
                if key is not None:
                    tm, ts = best.stat(f"test/{key}")
                    lab = dict(zip(task.score_keys, task.score_labels))[key]
                    test = f"; test {lab} {tables._fmt_pm(tm, ts, best.n_finished)}"
                head = (f"Best configuration of **{self.sweep}** `{self.sweep_name}`: **{best.label()}**, "
                        f"{self.metric} {m:.2f}{pm} at the selected epoch{test}.\n\n")
            ranked = tables.ranked_markdown(rows, task=task, metric=self.metric, mode=self.mode)
            body = (f"{table}\n### Trials, ranked by {self.metric} ({self.mode}) at the selected epoch\n\n"
                    f"{ranked}")
        if failed:
            body += f"\n{failed} trial(s) did not finish (see their runs).\n"
        return (head + cmd + body + "\nTables, all trials as Parquet: artifacts `tables/`.\n\n"
                + self._command_md())

    def mark_interrupted(self) -> None:
        """Ends the parent and every open child as KILLED (a later ``--resume`` reopens them)."""
        for run in self.open_children():
            self.client.set_terminated(run.info.run_id, status="KILLED")
        parent = self.parent_run_id()
        hint = f" Continue it with `{self.resume_command}`." if self.resume_command else ""
        self.client.set_tag(parent, NOTE_TAG, f"**{self.sweep}** `{self.sweep_name}`: interrupted "
                            f"before every trial finished; no results table from partial trials.{hint}"
                            "\n\n" + self._command_md())
        self.client.set_terminated(parent, status="KILLED")


# A trial row's status: it reported fit's final result, it failed, or it was stopped before the
# end (Ctrl+C: Ray stops running trials as TERMINATED, so Ray's status alone cannot tell).
FINISHED, FAILED, INTERRUPTED = "TERMINATED", "ERROR", "INTERRUPTED"


def trial_status(ray_status: str, last_result: Mapping[str, Any] | None) -> str:
    """:data:`FINISHED` only for a trial whose last result is fit's final report."""
    if ray_status == "ERROR":
        return FAILED
    if ray_status == "TERMINATED" and (last_result or {}).get("final"):
        return FINISHED
    return INTERRUPTED


def kill_open_sweep(tracking_uri: str, experiment: str, sweep_id: str) -> None:
    """Marks an aborted sweep's parent and open children KILLED, if its parent run exists."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return
    for run in client.search_runs([exp.experiment_id], max_results=1000,
                                  filter_string=f"tags.`{TAG_SWEEP}` = '{sweep_id}' and "
                                                "attributes.status = 'RUNNING'"):
        client.set_terminated(run.info.run_id, status="KILLED")
