"""The Tune side of MLflow tracking: trial rows and the callback that drives
:class:`orchestrator.tracking.MLflowSweepTracker` from trial events (the only part that needs Ray)."""

from __future__ import annotations

from typing import Any

from ray.tune import Callback

from orchestrator.tracking import (FAILED, FINISHED, INTERRUPTED, MLflowSweepTracker, flatten,
                                   numeric_metrics, trial_status)


def trial_row(trial) -> dict[str, Any]:
    """One flat table row of a Tune trial: id, name, status, ``config/...`` and its last result."""
    row: dict[str, Any] = {"trial_id": trial.trial_id, "trial_name": str(trial),
                           "status": trial_status(trial.status, trial.last_result)}
    row.update({f"config/{k}": v for k, v in flatten(trial.config).items()})
    last = trial.last_result or {}
    row.update(numeric_metrics(last))
    if isinstance(last.get("seed"), (int, float)):
        row["seed"] = int(last["seed"])
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
