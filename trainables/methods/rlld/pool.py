"""A pool of Ray validation actors that turns RLLD's task weights into terminal rewards.

Each actor (:class:`ValidationActor`) loads the validation split once and keeps it resident on its
device (a GPU when ``eval_actor_gpus > 0``, a whole one or a fraction, else the CPU). The learner
publishes the task weights at the end of episode t with ``ray.put`` (one object-store copy,
shared by whichever actor takes the request) and :class:`RayValidationPool` hands the request to
the actor with the fewest evaluations in flight; meanwhile the learner runs the steps of episode
t+1. :class:`RayValidationPool` implements the evaluator protocol of
:mod:`trainables.methods.rlld.evaluator` (``submit``/``poll``/``wait``/``pending``/``close``);
"step" below is the request's key (the episode number).

Placement (our choice): the actors belong to the trial, inside the trial's placement group.
:func:`extra_bundles` returns one bundle per actor (``{"CPU": eval_actor_cpus, "GPU":
eval_actor_gpus}``) that the trainable registry appends to the trial's ``PlacementGroupFactory``;
:func:`evaluator_kwargs`, called inside the trial, schedules actor i on the i-th of those bundles
(the last ``eval_actors`` bundles of the current placement group) with
``PlacementGroupSchedulingStrategy``. So Tune only starts a trial when its validation GPUs are free
as well, concurrent trials never share or oversubscribe actors, and the actors die with the trial.
Actors shared by all trials at the driver level would save one validation-split copy per trial but
make trials compete for rewards and break the "a trial reserves what it uses" accounting. Outside
a placement group (benchmarks, tests) actors are scheduled normally with the same resources.
On a one-GPU node the trial's own bundle must leave room: e.g. trainer 0.5 GPU, two actors 0.25.

Fault tolerance: actors are created with ``max_restarts``; when an evaluation fails because its
actor died, the step is resubmitted (same weights object) to the restarted actor, or to another
one, at most ``max_resubmits`` times. Results are deduplicated by step, so each reward reaches the
learner once (and the learner itself ignores a step it has already applied).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, is_dataclass
from typing import Any

import torch

from trainables.methods.rlld.config import Config
from trainables.methods.rlld.evaluator import LocalEvaluator

# Ray is imported inside the functions that use it: nothing under trainables/ imports ray at
# module import time (the method package is discovered by processes that never start Ray).
RESTART_GRACE_S = 30.0


def _actor_errors() -> tuple[type[BaseException], ...]:
    """The errors of a dead or restarting actor, and of a timed-out get."""
    from ray.exceptions import GetTimeoutError, RayActorError

    try:  # Ray versions name the "actor restarting, retry later" error differently.
        from ray.exceptions import ActorUnavailableError
    except ImportError:  # pragma: no cover
        ActorUnavailableError = RayActorError  # type: ignore[misc,assignment]
    return RayActorError, ActorUnavailableError, GetTimeoutError


def _cfg_dict(cfg: Config | Mapping[str, Any]) -> dict[str, Any]:
    return asdict(cfg) if is_dataclass(cfg) else dict(cfg)


def _pool_settings(cfg: Config | Mapping[str, Any]) -> tuple[int, float, float, int]:
    d = _cfg_dict(cfg)
    base = Config()
    n = int(d.get("eval_actors", base.eval_actors))
    gpus = float(d.get("eval_actor_gpus", base.eval_actor_gpus))
    cpus = float(d.get("eval_actor_cpus", base.eval_actor_cpus))
    restarts = int(d.get("eval_max_restarts", base.eval_max_restarts))
    if n < 1:
        raise ValueError(f"eval_actors must be >= 1, got {n}")
    if gpus < 0 or cpus < 0:
        raise ValueError(f"eval_actor_gpus/eval_actor_cpus must be >= 0, got {gpus}/{cpus}")
    return n, gpus, cpus, restarts


def extra_bundles(cfg: Config | Mapping[str, Any]) -> list[dict[str, float]]:
    """One placement-group bundle per validation actor, appended to the trial's own bundles."""
    n, gpus, cpus, _ = _pool_settings(cfg)
    b = {k: v for k, v in (("CPU", cpus), ("GPU", gpus)) if v > 0}
    if not b:
        raise ValueError("eval_actor_cpus and eval_actor_gpus are both 0: an actor bundle needs "
                         "some resource")
    return [dict(b) for _ in range(n)]


def evaluator_kwargs(cfg: Config | Mapping[str, Any], data_path) -> dict[str, Any]:
    """``{"evaluator": RayValidationPool(...)}`` for :func:`trainables.methods.rlld.training.fit` (inside a trial)."""
    return {"evaluator": RayValidationPool(cfg, data_path)}


class ValidationActorImpl:
    """Holds the validation split resident on its device and scores task weights (the body of
    the Ray actor :func:`validation_actor`)."""

    def __init__(self, cfg: dict[str, Any], data_path: str, threads: int = 1,
                 slowdown_s: float = 0.0):
        import ray

        torch.set_num_threads(max(1, threads))
        self.slowdown_s = slowdown_s
        device = "cuda" if torch.cuda.is_available() and ray.get_gpu_ids() else "cpu"
        self.evaluator = LocalEvaluator.from_path(Config(**cfg), data_path, device)
        self.evaluations = 0

    def evaluate(self, step: int, weights: Mapping[str, torch.Tensor]) -> tuple[int, dict[str, float]]:
        """Scores ``weights`` (resolved from the object store) for ``step``."""
        self.evaluations += 1
        if self.slowdown_s:
            time.sleep(self.slowdown_s)
        return int(step), self.evaluator.evaluate(weights)

    def pid(self) -> int:
        import os

        return os.getpid()


_ACTOR_CLASS: Any = None


def validation_actor():
    """The Ray actor class of :class:`ValidationActorImpl` (made once, on first use)."""
    global _ACTOR_CLASS
    if _ACTOR_CLASS is None:
        import ray

        _ACTOR_CLASS = ray.remote(ValidationActorImpl)
    return _ACTOR_CLASS


class RayValidationPool:
    """The evaluator protocol of :mod:`trainables.methods.rlld.evaluator` backed by Ray actors.

    Args:
        cfg: RLLD config (or its dict): model settings plus ``eval_actors``, ``eval_actor_gpus``,
            ``eval_actor_cpus``, ``eval_max_restarts``.
        data_path: The data set (must be readable at the same path on the actors' nodes).
        max_resubmits: How often one step may be resubmitted after actor failures.
        placement_group: Placement group whose *last* ``eval_actors`` bundles host the actors
            (default: the current one, if any).
        slowdown_s: Extra seconds per evaluation (tests and benchmarks: emulate a validation
            pass as long as a real LLP one on a tiny data set).
    """

    def __init__(self, cfg: Config | Mapping[str, Any], data_path, *, max_resubmits: int = 5,
                 placement_group="current", slowdown_s: float = 0.0):
        from ray.util.placement_group import get_current_placement_group
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        n, gpus, cpus, restarts = _pool_settings(cfg)
        self.num_workers = n
        self.max_resubmits = max_resubmits
        pg = get_current_placement_group() if placement_group == "current" else placement_group
        cfg_d = _cfg_dict(cfg)
        self.actors = []
        for i in range(n):
            opts: dict[str, Any] = {"num_cpus": cpus, "num_gpus": gpus, "max_restarts": restarts,
                                    "max_task_retries": 0}
            if pg is not None:
                index = len(pg.bundle_specs) - n + i
                if index < 0:
                    raise ValueError(f"placement group has {len(pg.bundle_specs)} bundles; the pool "
                                     f"needs its {n} actor bundles (extra_bundles) appended")
                opts["scheduling_strategy"] = PlacementGroupSchedulingStrategy(
                    placement_group=pg, placement_group_bundle_index=index)
            self.actors.append(validation_actor().options(**opts).remote(
                cfg_d, str(data_path), max(1, int(cpus)), slowdown_s))
        self._inflight: dict[Any, tuple[int, int]] = {}  # result ref -> (step, actor index)
        self._by_step: dict[int, Any] = {}  # step -> result ref in flight
        self._weights: dict[int, Any] = {}  # step -> weights ref
        self._tries: dict[int, int] = {}
        self._ready: dict[int, dict[str, float]] = {}
        self._delivered: set[int] = set()
        self._load = [0] * n
        self._failed_at = [float("-inf")] * n  # last failure per actor (restart in progress)
        self.resubmits = 0
        self.duplicates = 0

    # -- protocol ----------------------------------------------------------------------------

    def submit(self, step: int, state_dict: Mapping[str, torch.Tensor]) -> None:
        import ray

        step = int(step)
        if step in self._by_step or step in self._ready or step in self._delivered:
            raise ValueError(f"step {step} was already submitted")
        weights = ray.put({k: v.detach().to("cpu") for k, v in state_dict.items()})
        self._weights[step] = weights
        self._tries[step] = 0
        self._launch(step)

    def poll(self) -> list[tuple[int, dict[str, float]]]:
        self._harvest(timeout=0)
        out = sorted(self._ready.items())
        self._ready.clear()
        self._delivered.update(s for s, _ in out)
        return out

    def wait(self, step: int, timeout: float | None = None) -> None:
        import ray

        step = int(step)
        deadline = None if timeout is None else time.monotonic() + timeout
        while step in self._by_step:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            ref = self._by_step[step]
            ready, _ = ray.wait([ref], num_returns=1, timeout=left)
            if not ready:
                raise TimeoutError(f"validation of step {step} not done after {timeout} s")
            self._harvest(timeout=0)

    def pending(self) -> int:
        return len(self._by_step) + len(self._ready)

    def close(self) -> None:
        import ray

        for a in self.actors:
            try:
                ray.kill(a, no_restart=True)
            except Exception:  # already gone
                pass
        self.actors = []
        self._inflight.clear()
        self._by_step.clear()
        self._weights.clear()

    # -- internals ---------------------------------------------------------------------------

    def actor_loads(self) -> list[int]:
        """Evaluations in flight per actor."""
        return list(self._load)

    def _launch(self, step: int, avoid: int | None = None) -> None:
        # Prefer actors not seen failing in the last RESTART_GRACE_S seconds (a restarting actor
        # rejects calls), then the least loaded.
        now = time.monotonic()
        order = sorted(range(len(self.actors)), key=lambda i: (
            i == avoid, now - self._failed_at[i] < RESTART_GRACE_S, self._load[i], i))
        i = order[0]
        ref = self.actors[i].evaluate.remote(step, self._weights[step])
        self._inflight[ref] = (step, i)
        self._by_step[step] = ref
        self._load[i] += 1

    def _harvest(self, timeout: float) -> None:
        import ray

        if not self._inflight:
            return
        refs = list(self._inflight)
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=timeout)
        for ref in ready:
            step, i = self._inflight.pop(ref)
            self._load[i] -= 1
            if self._by_step.get(step) is ref:
                del self._by_step[step]
            try:
                got_step, metrics = ray.get(ref, timeout=60)
            except _actor_errors() as e:
                self._retry(step, i, e)
                continue
            self._failed_at[i] = float("-inf")
            if got_step in self._ready or got_step in self._delivered:
                self.duplicates += 1
                continue
            self._ready[got_step] = metrics
            self._weights.pop(got_step, None)
            self._tries.pop(got_step, None)

    def _retry(self, step: int, actor: int, err: Exception) -> None:
        self._failed_at[actor] = time.monotonic()
        self._tries[step] = self._tries.get(step, 0) + 1
        if self._tries[step] > self.max_resubmits:
            raise RuntimeError(f"validation of step {step} failed {self._tries[step]} times; "
                               f"last error: {err}") from err
        self.resubmits += 1
        others = len(self.actors) > 1
        if not others:
            # The only actor is restarting: give it time before calling it again.
            time.sleep(min(5.0, 0.5 * 2 ** (self._tries[step] - 1)))
        self._launch(step, avoid=actor if others else None)
