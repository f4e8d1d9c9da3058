"""MLflow tracking for sweeps: one parent run per sweep, one nested child run per trial.

Ray's ``MLflowLoggerCallback`` has no nested runs and, after ``Tuner.restore``, starts a second run
for every resumed trial while the first stays RUNNING. This callback instead finds every run by tag
(``avtune.sweep_id`` on the parent, ``avtune.trial_id`` plus the parent id on children), so a
restored sweep reuses its parent run and a resumed trial continues its own child run. It keeps no
MLflow objects between calls, so it pickles with the Tuner state and works after a restore.

Child runs get the flattened trial config as params, every numeric result key with ``step = epoch``,
the seed and data fingerprint, and ``best/<metric>`` at the end; the parent gets the best trial's
scores and the tables of ``orchestrator.tables`` as artifacts.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any

from ray.tune import Callback

from orchestrator import tables
from orchestrator.methods import task_of

TAG_SWEEP = "avtune.sweep_id"
TAG_TRIAL = "avtune.trial_id"
TAG_KIND = "avtune.kind"
PARENT_TAG = "mlflow.parentRunId"
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
                 tuned: Sequence[str] = (), data_note: str = "", method: str = "") -> None:
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.sweep_id = sweep_id
        self.sweep_name = sweep_name
        self.metric = metric
        self.mode = mode
        self.params = dict(params or {})
        self.tuned = list(tuned)
        self.method = method
        self.data_note = data_note
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
            self._exp_id = exp.experiment_id if exp else self.client.create_experiment(self.experiment)
        return self._exp_id

    def _find(self, filter_string: str) -> list:
        return list(self.client.search_runs([self.experiment_id()], filter_string=filter_string,
                                            max_results=50))

    def parent_run_id(self) -> str:
        """The sweep's parent run: found by tag, created on first use, set RUNNING."""
        if self._parent is None:
            runs = self._find(f"tags.`{TAG_SWEEP}` = '{self.sweep_id}' and tags.`{TAG_KIND}` = 'sweep'")
            if runs:
                self._parent = runs[0].info.run_id
                if runs[0].info.status != "RUNNING":
                    self.client.update_run(self._parent, status="RUNNING")
            else:
                run = self.client.create_run(self.experiment_id(), run_name=self.sweep_name, tags={
                    TAG_SWEEP: self.sweep_id, TAG_KIND: "sweep", "avtune.sweep": self.sweep_name})
                self._parent = run.info.run_id
                self._log_params(self._parent, self.params)
        return self._parent

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
            run = self.client.create_run(self.experiment_id(), run_name=trial_name, tags={
                PARENT_TAG: parent, TAG_TRIAL: trial_id, TAG_SWEEP: self.sweep_id, TAG_KIND: "trial"})
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

        cfg = build_config(load(self.params["trainable"]).Config, trial_overrides(self.params, config))
        return {**dataclasses.asdict(cfg), **dict(config)}

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
        # what is new there (the test scores) so histories hold one point per epoch.
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
        if self.metric in metrics:
            v = metrics[self.metric]
            old = self._best.get(trial_id)
            better = old is None or (v > old[0] if self.mode == "max" else v < old[0])
            if better:
                self._best[trial_id] = (v, float(step))

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
        ``best/<metric>`` (an interrupted one has no best yet: it continues on ``--resume``)."""
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
        """Logs the best trial's scores and the result tables on the parent, then ends it.

        Any child run still RUNNING (its trial did not come back) is ended as KILLED.

        Returns:
            The metrics logged on the parent.
        """
        parent = self.parent_run_id()
        for run in self.open_children():
            self.client.set_terminated(run.info.run_id, status="KILLED")
        best = tables.best_row(rows, self.metric, self.mode)
        task = task_of(self.method)
        logged: dict[str, float] = {}
        if best is not None:
            logged[f"best/{self.metric}"] = float(best[self.metric])
            for prefix in ("test/", "val/"):
                for k, v in tables.scores_of(best, task, prefix).items():
                    if math.isfinite(v):
                        logged[f"best/{prefix}{k}"] = v
            for k, v in tables.scores_of(best, task, "test/").items():
                if math.isfinite(v):
                    logged[k] = v
            from mlflow.entities import Metric
            import time

            now = int(time.time() * 1000)
            self.client.log_batch(parent, metrics=[Metric(k, v, now, 0) for k, v in logged.items()])
            self.client.set_tag(parent, "avtune.best_trial_id", str(best.get("trial_id")))
        with tempfile.TemporaryDirectory() as d:
            label = f"{self.sweep_name}: best trial {best.get('trial_name', '') if best else '(none)'}"
            tables.write_sweep_tables(rows, d, metric=self.metric, mode=self.mode, tuned=self.tuned,
                                      label=label, data_note=self.data_note, task=task,
                                      methods=[self.method])
            self.client.log_artifacts(parent, d, artifact_path="tables")
        self.client.set_terminated(parent, status=status)
        return logged

    def mark_interrupted(self) -> None:
        """Ends the parent and every open child as KILLED (a later ``--resume`` reopens them)."""
        for run in self.open_children():
            self.client.set_terminated(run.info.run_id, status="KILLED")
        self.client.set_terminated(self.parent_run_id(), status="KILLED")


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


def trial_row(trial) -> dict[str, Any]:
    """One flat table row of a Tune trial: id, name, status, ``config/...`` and its last result."""
    row: dict[str, Any] = {"trial_id": trial.trial_id, "trial_name": str(trial),
                           "status": trial_status(trial.status, trial.last_result)}
    row.update({f"config/{k}": v for k, v in flatten(trial.config).items()})
    last = trial.last_result or {}
    row.update(numeric_metrics(last))
    return row


class MLflowTuneCallback(Callback):
    """Tune callback driving :class:`MLflowSweepTracker` from trial events.

    Args:
        tracker: The sweep's tracker.
        planned: Trials the sweep plans; fewer finished ones at the end mean it was interrupted:
            the parent and the unfinished children are then KILLED and no best trial or tables
            are written (a later ``--resume`` reopens them).
    """

    def __init__(self, tracker: MLflowSweepTracker, planned: int = 0) -> None:
        self.tracker = tracker
        self.planned = planned
        self.rows: list[dict[str, Any]] = []

    def setup(self, **info) -> None:
        self.tracker.parent_run_id()

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        self.tracker.child_run_id(trial.trial_id, str(trial), trial.config)

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        self.tracker.log_result(trial.trial_id, str(trial), trial.config, result)

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        done = trial_status("TERMINATED", trial.last_result) == FINISHED
        self.tracker.finish_trial(trial.trial_id, str(trial), trial.config,
                                  "FINISHED" if done else "KILLED")

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self.tracker.finish_trial(trial.trial_id, str(trial), trial.config, "FAILED")

    def on_experiment_end(self, trials, **info) -> None:
        self.rows = [trial_row(t) for t in trials]
        status = [r["status"] for r in self.rows]
        if INTERRUPTED in status or len(status) < self.planned:
            self.tracker.mark_interrupted()
            return
        self.tracker.finish_sweep(self.rows, status="FAILED" if FAILED in status else "FINISHED")
