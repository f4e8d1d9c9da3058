"""avtune's console: one line per trial event and a status line while a run goes, and its closing
text at the end.

Ray Tune's tables and result dumps are off unless ``--verbose``; instead :class:`ConsoleProgress`
prints, as the trials run::

    [avtune] start  1/4  theta_a=0.6 theta_v=1.8
    [avtune]        1/4  theta_a=0.6 theta_v=1.8  epoch 1/3  val/seg_Type 15.42
    [avtune] done   1/4  theta_a=0.6 theta_v=1.8  val/seg_Type 17.89 (epoch 2 of 3)  test Seg Type 16.3
    [avtune] status 2:13  1 done, 2 running, 1 pending  best val/seg_Type 17.89 (theta_a=0.6 ...)  ETA ~2:40

and :func:`quiet_logs` keeps Ray's and MLflow's informational log lines off the console.
:func:`prepare_progress` is the same for a method's ``prepare`` stage (e.g. a noise estimator
that every trial shares); :func:`closing_text` is what a run prints when it ends.
Nothing here imports Ray at module level except the Tune ``Callback`` base class.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

from ray.tune import Callback

from orchestrator.rows import ARM_KEY, FINISHED, best_group

# Seconds between status lines (``AVTUNE_STATUS_S`` overrides, e.g. for tests).
STATUS_EVERY_S = 30.0


def _status_every() -> float:
    try:
        return float(os.environ.get("AVTUNE_STATUS_S", STATUS_EVERY_S))
    except ValueError:
        return STATUS_EVERY_S


def clock(seconds: float) -> str:
    """``1:05`` / ``1:02:03``."""
    s = int(round(max(0.0, seconds)))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def say(text: str) -> None:
    print(f"[avtune] {text}", flush=True)


def quiet_logs(verbose: bool) -> None:
    """Without ``--verbose``: Ray's loggers show errors only and MLflow's warnings and errors
    (their INFO lines, token and TensorBoard hints are not results)."""
    if verbose:
        return
    # MLflow sets its logger's level when it is imported; this tells it which.
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    logging.getLogger("ray").setLevel(logging.ERROR)
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)


class ConsoleProgress(Callback):
    """Prints trial events and a periodic status line.

    Args:
        planned: Trials the sweep plans (configurations x seeds).
        metric: The metric the search optimises (its selected-epoch value is the trial's result).
        mode: ``max`` or ``min``.
        epochs: Epochs per trial (the longest, where arms differ).
        label: ``config -> str`` naming a trial by its settings (the MLflow run name).
        score: ``(key, label)`` of one test score to show per finished trial, or None.
        group_keys: Config keys that identify a configuration (default: all but the seed index).
        arm_epochs: ``{arm label: epochs}`` where a comparison's arms keep their own schedules
            (a trial's arm is its config's ``arm_key``); the lines and the ETA use each trial's.
        arm_key: The config key naming a trial's arm.
        total_epochs: Epochs of all planned trials (default: ``planned * epochs``).
    """

    def __init__(self, planned: int, metric: str, mode: str, epochs: int, label, *,
                 score: tuple[str, str] | None = None, group_keys: Sequence[str] | None = None,
                 arm_epochs: Mapping[str, int] | None = None, arm_key: str = ARM_KEY,
                 total_epochs: int | None = None) -> None:
        self.planned = int(planned)
        self.metric = metric
        self.mode = mode
        self.epochs = int(epochs)
        self.label = label
        self.score = score
        self.group_keys = list(group_keys) if group_keys is not None else None
        # A plain dict, not a callable: the callback is pickled with the Tuner for --resume.
        self.arm_epochs = {str(k): int(v) for k, v in (arm_epochs or {}).items()}
        self.arm_key = arm_key
        self.total_epochs = int(total_epochs) if total_epochs is not None else self.planned * self.epochs
        self._reset()

    @classmethod
    def for_plan(cls, plan, label) -> ConsoleProgress:
        """The progress lines of ``plan``'s trials, each named by ``label(config)``, with the
        test score that matches the plan's metric on every finished trial's line."""
        from trainables.core.method import task_spec

        task = task_spec(plan.task)
        score = next(((f"test/{k}", lab) for k, lab in zip(task.score_keys, task.score_labels)
                      if f"val/{k}" == plan.metric), None)
        arm_epochs = {k: a.epochs for k, a in plan.arms.items()} if plan.kind == "compare" else None
        total = sum(arm_epochs.values()) * plan.seeds if arm_epochs else None
        return cls(plan.n_trials, plan.metric, plan.mode, plan.epochs, label, score=score,
                   group_keys=plan.axis, arm_epochs=arm_epochs, total_epochs=total)

    def _reset(self) -> None:
        self.t0: float | None = None
        self.last_status = 0.0
        self.index: dict[str, int] = {}
        self.iters: dict[str, int] = {}
        self.done: dict[str, dict[str, Any]] = {}
        self.failed: set[str] = set()
        self.running: set[str] = set()
        self.last_report: dict[str, float] = {}
        self.epoch_s: list[float] = []
        self.trial_epochs: dict[str, int] = {}
        self.slots = 1

    def __getstate__(self) -> dict:
        # Pickled with the Tuner (for --resume); the counts start again in the new driver.
        state = self.__dict__.copy()
        for k in ("t0", "last_status", "index", "iters", "done", "failed", "running", "last_report",
                  "epoch_s", "trial_epochs", "slots"):
            state.pop(k, None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._reset()

    # ------------------------------------------------------------------ helpers

    def _name(self, trial) -> str:
        try:
            return str(self.label(trial.config))
        except Exception:  # a label must never break the sweep
            return str(trial)

    def _num(self, trial) -> str:
        if trial.trial_id not in self.index:
            self.index[trial.trial_id] = len(self.index) + 1
        return f"{self.index[trial.trial_id]}/{self.planned}"

    def _epochs(self, trial) -> int:
        """The trial's own epochs: its arm's where arms keep their own schedules."""
        try:
            return self.arm_epochs.get(str(trial.config.get(self.arm_key)), self.epochs)
        except AttributeError:
            return self.epochs

    def _best(self) -> tuple[float, str, int] | None:
        rows = [{**r, "status": FINISHED} for r in self.done.values()]
        g = best_group(rows, self.metric, self.mode, self.group_keys)
        if g is None:
            return None
        return g.stat(self.metric)[0], g.label(), g.n_finished

    def _units_done(self) -> int:
        units = 0
        for tid, it in self.iters.items():
            n = self.trial_epochs.get(tid, self.epochs)
            units += n if tid in self.done or tid in self.failed else min(it, n)
        return units

    def status_line(self, now: float | None = None) -> str:
        now = time.time() if now is None else now
        elapsed = now - (self.t0 or now)
        done, failed, running = len(self.done), len(self.failed), len(self.running)
        pending = max(0, self.planned - done - failed - running)
        parts = [f"status {clock(elapsed)}", f"{done} done, {running} running, {pending} pending"
                 + (f", {failed} failed" if failed else "")]
        best = self._best()
        if best is not None:
            v, lab, n = best
            parts.append(f"best {self.metric} {v:.2f} ({lab}" + (f", mean of {n} seeds)" if n > 1 else ")"))
        eta = self.eta(now)
        if eta is not None:
            parts.append(f"ETA ~{clock(eta)}")
        return "  ".join(parts)

    def eta(self, now: float) -> float | None:
        """Seconds left: the epochs still to run times the mean epoch's wall time, spread over as
        many trials as have run at once, less what the running epochs have done already."""
        left = self.total_epochs - self._units_done()
        if not self.epoch_s or left <= 0:
            return None
        per = sum(self.epoch_s) / len(self.epoch_s)
        under_way = sum(min(0.9, (now - self.last_report[t]) / per) for t in self.running if t in self.last_report)
        return max(0.0, (left - under_way) * per / self.slots)

    # ------------------------------------------------------------------ Tune hooks

    def on_step_end(self, iteration, trials, **info) -> None:
        now = time.time()
        if self.t0 is not None and now - self.last_status >= _status_every():
            self.last_status = now
            say(self.status_line(now))

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        if self.t0 is None:
            self.t0 = self.last_status = time.time()
        self.running.add(trial.trial_id)
        self.slots = max(self.slots, len(self.running))
        self.last_report[trial.trial_id] = time.time()
        self.iters.setdefault(trial.trial_id, 0)
        self.trial_epochs[trial.trial_id] = self._epochs(trial)
        say(f"start  {self._num(trial)}  {self._name(trial)}")

    def on_trial_recover(self, iteration, trials, trial, **info) -> None:
        self.running.discard(trial.trial_id)
        err, _ = _error_of(trial)
        say(f"retry  {self._num(trial)}  {self._name(trial)}: {err or 'it failed'}; "
            "restarting from its last checkpoint")

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        if result.get("final"):
            return
        it = int(result.get("training_iteration", self.iters.get(trial.trial_id, 0) + 1))
        self.iters[trial.trial_id] = it
        now = time.time()
        if trial.trial_id in self.last_report:
            self.epoch_s.append(now - self.last_report[trial.trial_id])
        self.last_report[trial.trial_id] = now
        v = result.get(self.metric)
        val = f"  {self.metric} {v:.2f}" if isinstance(v, (int, float)) and math.isfinite(v) else ""
        n = self.trial_epochs.setdefault(trial.trial_id, self._epochs(trial))
        say(f"       {self._num(trial)}  {self._name(trial)}  epoch {min(it, n)}/{n}{val}")

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self.running.discard(trial.trial_id)
        last = trial.last_result or {}
        if not last.get("final"):
            say(f"stop   {self._num(trial)}  {self._name(trial)} (stopped before its end)")
            return
        row = {"config/" + k: v for k, v in trial.config.items()}
        row.update({k: v for k, v in last.items() if isinstance(v, (int, float)) and not isinstance(v, bool)})
        self.done[trial.trial_id] = row
        v = last.get(self.metric)
        text = f"done   {self._num(trial)}  {self._name(trial)}"
        if isinstance(v, (int, float)):
            ep = last.get("best_epoch")
            sel = f" (epoch {int(ep) + 1} of {self._epochs(trial)})" if isinstance(ep, (int, float)) else ""
            text += f"  {self.metric} {v:.2f}{sel}"
        if self.score and isinstance(last.get(self.score[0]), (int, float)):
            text += f"  test {self.score[1]} {last[self.score[0]]:.1f}"
        say(text)

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self.running.discard(trial.trial_id)
        self.failed.add(trial.trial_id)
        err, path = _error_of(trial)
        say(f"FAILED {self._num(trial)}  {self._name(trial)}: {err or 'see its error file'}"
            + (f"  ({path})" if path else ""))

    def on_experiment_end(self, trials, **info) -> None:
        if self.t0 is not None:
            say(self.status_line())


def _error_of(trial) -> tuple[str, str]:
    """The last line of a failed trial's error (its exception) and the error file's path."""
    path = getattr(trial, "error_file", None) or ""
    try:
        text = open(path).read() if path else ""
    except OSError:
        text = ""
    line = next((ln.strip() for ln in reversed(text.splitlines()) if ln.strip()), "")
    return line[:300], path


def prepare_progress(refs: Mapping[Any, str], queue=None, metric: str = "", every_s: float | None = None) -> None:
    """Waits for a method's prepare tasks, printing their progress.

    Args:
        refs: Ray object refs of the prepare tasks, each with a label (``METHOD seed 0``).
        queue: A ``ray.util.queue.Queue`` the tasks put ``(label, epoch, metrics)`` on after each
            epoch of what they train (when the hook takes a ``reporter``), or None.
        metric: The metric to show from those reports.
        every_s: Seconds between "still preparing" lines when no report came (default: the
            status interval).
    """
    import ray

    every = _status_every() if every_s is None else every_s
    t0 = last = time.time()
    pending = list(refs)
    while pending:
        ready, pending = ray.wait(pending, num_returns=len(pending), timeout=1.0)
        for ref in ready:
            ray.get(ref)  # raises the task's error
            say(f"prepared {refs[ref]} ({clock(time.time() - t0)})")
        news = []
        if queue is not None:
            try:
                news = queue.get_nowait_batch(queue.qsize())
            except Exception:
                news = []
        for label, epoch, metrics in news:
            v = metrics.get(metric)
            val = f"  {metric} {v:.2f}" if isinstance(v, (int, float)) and math.isfinite(v) else ""
            say(f"  preparing {label}: epoch {int(epoch) + 1}{val} ({clock(time.time() - t0)})")
            last = time.time()
        if pending and time.time() - last >= every:
            last = time.time()
            say(f"  preparing {', '.join(refs[r] for r in pending)}: still running ({clock(time.time() - t0)})")



def closing_text(plan, rows: Sequence[Mapping[str, Any]]) -> str:
    """What a run prints at its end: its rows ranked (a comparison's table beside the papers'),
    where its tables are, and the command that opens MLflow on it."""
    from orchestrator import report, results
    from orchestrator.rows import FAILED

    info = plan.info()
    lines = report.closing_lines(info, rows, plan.n_trials)
    lines.append(f"[avtune] results: {plan.storage}/{plan.name}")
    if "://" not in plan.storage:
        out = f"{plan.storage}/{plan.name}/tables"
        written = report.write_tables(info, rows, out)
        lines.append(f"[avtune] wrote {', '.join(p.name for p in written)} to {out}")
    came_back = sum(r["status"] in (FINISHED, FAILED) for r in rows)
    if came_back >= plan.n_trials:
        lines.append(f"[avtune] tables: MLflow experiment {plan.experiment!r}, parent run {plan.name!r} (its "
                     f"description and artifacts tables/); again with: python -m orchestrator.sweep "
                     f"--show {plan.name}")
    lines.append(f"mlflow ui --backend-store-uri {plan.mlflow_uri} --host 127.0.0.1")
    lines += results.open_lines_for(plan.mlflow_uri, plan.experiment, plan.sweep_id)
    return "\n".join(lines)
