"""The Tune side of MLflow tracking: the callback that drives
:class:`orchestrator.tracking.RunTracker` from trial events (the only part that needs Ray)."""

from __future__ import annotations

from typing import Any

from ray.tune import Callback

from orchestrator.rows import FAILED, FINISHED, INTERRUPTED, trial_row, trial_status
from orchestrator.tracking import RunTracker


def tune_trial_row(trial) -> dict[str, Any]:
    """One row of a Tune trial: id, name, status, ``config/...`` and its last result."""
    return trial_row(trial.trial_id, trial_status(trial.status, trial.last_result), trial.config,
                     trial.last_result or {}, trial_name=str(trial))


class MLflowTuneCallback(Callback):
    """Tune callback driving :class:`RunTracker` from trial events.

    Args:
        tracker: The run's tracker.
        planned: Trials the sweep plans; fewer finished ones at the end mean it was interrupted:
            the parent and the unfinished children are then KILLED and no best trial or tables
            are written (a later ``--resume`` reopens them).
    """

    def __init__(self, tracker: RunTracker, planned: int = 0) -> None:
        self.tracker = tracker
        self.planned = planned
        self.rows: list[dict[str, Any]] = []

    def setup(self, **info) -> None:
        self.tracker.parent_run_id()

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        self.tracker.child_run_id(trial.trial_id, trial.config)

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        self.tracker.log_result(trial.trial_id, trial.config, result)

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        done = trial_status("TERMINATED", trial.last_result) == FINISHED
        self.tracker.finish_trial(trial.trial_id, trial.config, "FINISHED" if done else "KILLED")

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self.tracker.finish_trial(trial.trial_id, trial.config, "FAILED")

    def on_experiment_end(self, trials, **info) -> None:
        self.rows = [tune_trial_row(t) for t in trials]
        status = [r["status"] for r in self.rows]
        if INTERRUPTED in status or len(status) < self.planned:
            self.tracker.mark_interrupted()
            return
        self.tracker.finish_run(self.rows, status="FAILED" if FAILED in status else "FINISHED")
