"""MLflow tracking of a run: one parent run, one nested child run per trial. Writes only; what it
writes about results (scores, description, tables) comes from :mod:`orchestrator.report`.

Ray's ``MLflowLoggerCallback`` has no nested runs and, after ``Tuner.restore``, starts a second run
for every resumed trial while the first stays RUNNING. :class:`RunTracker` instead finds every run
by tag (``avtune.sweep_id`` on the parent, ``avtune.trial_id`` plus the parent id on children), so a
restored run reuses its parent and a resumed trial continues its own child run. It keeps no MLflow
objects between calls, so it pickles with the Tuner state and works after a restore.

Child runs are named by their settings (``theta_a=0.6 theta_v=1.8``; a comparison's arm label
first; ``seed=N`` with ``--seeds``), get every resolved config field as ``config/<field>`` params,
every numeric result key with ``step = epoch``, the seed and data fingerprint, and at the end the
optimised metric of the selected epoch under one stable name, :data:`~orchestrator.rows.OBJECTIVE`
(also as ``best/<metric>``). The experiment is tagged as a model-development experiment, so the
MLflow UI opens on its runs.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from orchestrator import report
from orchestrator.rows import (ARM_KEY, NOTE_TAG, OBJECTIVE, PARENT_TAG, SEED_INDEX, TAG_KIND, TAG_SWEEP,
                               TAG_TRIAL, VIEW_TAG, flatten, numeric_metrics, settings_label)

if TYPE_CHECKING:
    from orchestrator.plan import Plan

# MLflow 3 opens an experiment on its GenAI (traces) view unless it is of this kind.
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}
# Plan fields that are no run settings (the commands and notes the description shows).
_NOT_PARAMS = ("command", "resume_command", "verbose", "description", "mark_notes")


def _now() -> int:
    return int(time.time() * 1000)


class RunTracker:
    """MLflow bookkeeping of one run, every run located by tag (no cached run objects)."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.info = plan.info()
        self._client = None
        self._reset()

    def _reset(self) -> None:
        self._exp_id: str | None = None
        self._parent: str | None = None
        self._children: dict[str, str] = {}
        self._best: dict[str, tuple[float, float]] = {}
        self._logged: dict[str, dict[int, dict[str, float]]] = {}
        self._resumed: set[str] = set()

    def __getstate__(self) -> dict:
        # Clients and cached ids are rebuilt after unpickling (e.g. by Tuner.restore).
        return {"plan": self.plan, "info": self.info}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._client = None
        self._reset()

    @property
    def client(self):
        if self._client is None:
            from mlflow.tracking import MlflowClient

            self._client = MlflowClient(tracking_uri=self.plan.mlflow_uri)
        return self._client

    def experiment_id(self) -> str:
        if self._exp_id is None:
            exp = self.client.get_experiment_by_name(self.plan.experiment)
            if exp is None:
                self._exp_id = self.client.create_experiment(self.plan.experiment, tags=EXPERIMENT_KIND)
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
        """The run's parent: found by tag, created on first use, set RUNNING."""
        if self._parent is None:
            runs = self._find(f"tags.`{TAG_SWEEP}` = '{self.plan.sweep_id}' and tags.`{TAG_KIND}` = '{self.info.kind}'")
            if runs:
                self._parent = runs[0].info.run_id
                if runs[0].info.status != "RUNNING":
                    self.client.update_run(self._parent, status="RUNNING")
                    self.client.set_tag(self._parent, NOTE_TAG, self._running_note())
            else:
                self._set_view()
                run = self.client.create_run(self.experiment_id(), run_name=self.plan.name, tags={
                    TAG_SWEEP: self.plan.sweep_id, **self.info.tags(), NOTE_TAG: self._running_note()})
                self._parent = run.info.run_id
                params = {k: v for k, v in self.plan.to_json().items() if k not in _NOT_PARAMS}
                self._log_params(self._parent, {**params, "epochs": self.plan.epochs})
        return self._parent

    def _set_view(self) -> None:
        """Tags the experiment with a UI view of this run: its runs only (parent and trials),
        ranked by the objective (so MLflow lists them flat, not folded under the parent), with
        the objective, the settings, the seed, the selected epoch and the test scores as
        columns; and the objective as the experiment's primary metric (its charts)."""
        scores = report.task_scores(self.info)
        cols = ([f"metrics.`{OBJECTIVE}`"] + [f"params.`config/{k}`" for k in self.info.axis]
                + ["params.`seed`", "metrics.`best_epoch`"] + [f"metrics.`test/{k}`" for k in scores])
        view = {"searchFilter": f"tags.`{TAG_SWEEP}` = '{self.plan.sweep_id}'",
                "orderByKey": f"metrics.`{OBJECTIVE}`", "orderByAsc": self.plan.mode == "min",
                "selectedColumns": cols, "columnOrder": cols}
        exp = self.experiment_id()
        self.client.set_experiment_tag(exp, VIEW_TAG + self.plan.name, json.dumps(view))
        self.client.set_experiment_tag(exp, "mlflow.experiment.primaryMetric.name", OBJECTIVE)

    def _running_note(self) -> str:
        return (f"**{self.plan.experiment}** `{self.plan.name}`: running; the results table appears here "
                f"when every trial has finished.\n\n" + self._command_md())

    def _command_md(self) -> str:
        cmd = self.plan.command
        return f"Reproduce it with:\n\n```bash\n{cmd}\n```\n" if cmd else ""

    def run_name(self, config: Mapping[str, Any]) -> str:
        """A child run's name: its arm (in a comparison), its settings, then its seed when
        configurations repeat over seeds."""
        cfg = {k: v for k, v in config.items() if k != SEED_INDEX}
        arm = cfg.pop(ARM_KEY, None) if ARM_KEY in self.info.axis else None
        parts = [str(arm)] if arm is not None else []
        if cfg or arm is None:
            parts.append(settings_label(cfg))
        if self.plan.seeds > 1 or arm is not None:
            parts.append(f"seed={self.plan.seed + int(config.get(SEED_INDEX, 0))}")
        return " ".join(parts)

    def _log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        existing = self.client.get_run(run_id).data.params
        todo = [Param(k, str(v)[:6000]) for k, v in flatten(params).items() if k not in existing]
        for i in range(0, len(todo), 100):
            self.client.log_batch(run_id, params=todo[i:i + 100])

    def child_run_id(self, trial_id: str, config: Mapping[str, Any]) -> str:
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
                PARENT_TAG: parent, TAG_TRIAL: trial_id, TAG_SWEEP: self.plan.sweep_id, TAG_KIND: "trial",
                "avtune.objective_metric": self.plan.metric})
            rid = run.info.run_id
            self._log_params(rid, {f"config/{k}": v for k, v in self.resolved_config(config).items()})
        self._children[trial_id] = rid
        return rid

    def resolved_config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """Every field of the config the trial runs with, so it can be reproduced from its run."""
        from orchestrator.plan import resolved_config

        return resolved_config(self.plan, dict(config))

    def log_result(self, trial_id: str, config: Mapping[str, Any], result: Mapping[str, Any]) -> None:
        """Logs one reported result of a trial (step = its ``epoch``)."""
        from mlflow.entities import Metric

        rid = self.child_run_id(trial_id, config)
        replay = result.get("replay")
        if isinstance(replay, Mapping) and "epoch" in replay:
            self._log_replay(rid, trial_id, replay)
        metrics = numeric_metrics(result)
        step = int(metrics.get("epoch", result.get("training_iteration", 0)))
        ts = int(float(result.get("timestamp", 0)) * 1000) or _now()
        # fit's final report repeats the selected epoch's values at that epoch's step; log only
        # what is new there (the test scores, the objective) so histories hold one point per epoch.
        metric = self.plan.metric
        if result.get("final") and metric in metrics:
            metrics[OBJECTIVE] = metrics[metric]
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
        if result.get("final") and metric in metrics:
            # fit's final report carries the selected epoch's values: that is the trial's result.
            self._best[trial_id] = (metrics[metric], float(metrics.get("best_epoch", step)))

    def _log_replay(self, rid: str, trial_id: str, replay: Mapping[str, Any]) -> None:
        """Logs a resumed trial's checkpointed epoch unless that step is already in MLflow."""
        from mlflow.entities import Metric

        metrics = numeric_metrics(replay)
        step = int(metrics.get("epoch", 0))
        probe = next((k for k in metrics if k != "epoch"), "epoch")
        if any(m.step == step for m in self.client.get_metric_history(rid, probe)):
            return
        now = _now()
        self.client.log_batch(rid, metrics=[Metric(k, v, now, step) for k, v in metrics.items()])
        self._logged.setdefault(trial_id, {}).setdefault(step, {}).update(metrics)

    def finish_trial(self, trial_id: str, config: Mapping[str, Any], status: str) -> None:
        """Ends the child run with ``status`` (FINISHED/FAILED/KILLED); a FINISHED trial also gets
        ``best/<metric>`` and ``best/epoch``, the selected epoch's (an interrupted one has no result
        yet: it continues on ``--resume``)."""
        from mlflow.entities import Metric

        rid = self.child_run_id(trial_id, config)
        if status == "FINISHED" and trial_id in self._best:
            v, step = self._best[trial_id]
            now = _now()
            self.client.log_batch(rid, metrics=[Metric(f"best/{self.plan.metric}", v, now, int(step)),
                                                Metric("best/epoch", step, now, int(step))])
        self.client.set_terminated(rid, status=status)

    def open_children(self) -> list:
        """Child runs of this run that are still RUNNING."""
        parent = self.parent_run_id()
        return self._find(f"tags.`{PARENT_TAG}` = '{parent}' and attributes.status = 'RUNNING'")

    def finish_run(self, rows: Sequence[Mapping[str, Any]], status: str = "FINISHED") -> dict[str, float]:
        """Logs the report's scores, the best configuration's settings (a sweep's), the
        description and the tables on the parent, then ends it; a child run still RUNNING (its
        trial did not come back) is ended KILLED.

        Returns:
            The metrics logged on the parent.
        """
        from mlflow.entities import Metric

        parent = self.parent_run_id()
        for run in self.open_children():
            self.client.set_terminated(run.info.run_id, status="KILLED")
        scores = report.parent_scores(self.info, rows)
        if scores:
            now = _now()
            self.client.log_batch(parent, metrics=[Metric(k, v, now, 0) for k, v in scores.items()])
        best = report.best_configuration(self.info, rows)
        if best is not None:
            config, seeds, trial_id = best
            settings = {f"config/{k}": v for k, v in self.resolved_config({**config, SEED_INDEX: 0}).items()}
            if len(seeds) > 1:
                settings["config/seed"] = ",".join(str(s) for s in seeds)
            self._log_params(parent, settings)
            self.client.set_tag(parent, "avtune.best_trial_id", str(trial_id))
            self.client.set_tag(parent, "avtune.best_config", json.dumps(config, default=str))
        with tempfile.TemporaryDirectory() as d:
            report.write_tables(self.info, rows, d)
            self.client.log_artifacts(parent, d, artifact_path="tables")
        self.client.set_tag(parent, NOTE_TAG, report.description(self.info, rows))
        self.client.set_terminated(parent, status=status)
        return scores

    def mark_interrupted(self) -> None:
        """Ends the parent and every open child as KILLED (a later ``--resume`` reopens them)."""
        for run in self.open_children():
            self.client.set_terminated(run.info.run_id, status="KILLED")
        parent = self.parent_run_id()
        hint = f" Continue it with `{self.plan.resume_command}`." if self.plan.resume_command else ""
        self.client.set_tag(parent, NOTE_TAG, f"**{self.plan.experiment}** `{self.plan.name}`: interrupted "
                            f"before every trial finished; no results table from partial trials.{hint}"
                            "\n\n" + self._command_md())
        self.client.set_terminated(parent, status="KILLED")


def kill_open_run(tracking_uri: str, experiment: str, sweep_id: str) -> None:
    """Marks an aborted run's parent and open children KILLED, if its parent run exists."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return
    for run in client.search_runs([exp.experiment_id], max_results=1000,
                                  filter_string=f"tags.`{TAG_SWEEP}` = '{sweep_id}' and "
                                                "attributes.status = 'RUNNING'"):
        client.set_terminated(run.info.run_id, status="KILLED")
