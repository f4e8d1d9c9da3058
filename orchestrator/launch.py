"""Running a plan: a private loopback Ray or a cluster, the prepare stage, the Tuner, the rows."""

from __future__ import annotations

import contextlib
import os
import time
from typing import TYPE_CHECKING, Any

from orchestrator.resources import local_resources

if TYPE_CHECKING:
    from orchestrator.plan import Plan


def _loopback_init(**kwargs) -> None:
    """``ray.init`` of a private single-node instance that listens on 127.0.0.1 only.

    Ray 2.60 binds its GCS, raylet and worker servers to loopback when the node's IP is
    127.0.0.1, but ``ray.init`` swaps a loopback ``_node_ip_address`` for the machine's routable
    IP (``services.resolve_ip_for_localhost``). A private instance is never reached from another
    machine, so the swap is skipped for the duration of this call.
    """
    import ray
    from ray._private import services

    resolve = services.resolve_ip_for_localhost
    services.resolve_ip_for_localhost = lambda host: host
    try:
        ray.init(_node_ip_address="127.0.0.1", **kwargs)
    finally:
        services.resolve_ip_for_localhost = resolve


def _is_loopback(address: str) -> bool:
    """Whether a ``HOST:PORT`` GCS address names this machine's loopback interface (Ray Client
    ``ray://`` addresses connect differently and are left to ``ray.init``)."""
    if address.startswith("ray://"):
        return False
    host = address.rpartition(":")[0].strip("[]")
    return host in ("127.0.0.1", "localhost", "::1")


def start_ray(address: str | None, total: dict[str, float] | None = None,
              verbose: bool = False) -> dict[str, float]:
    """Connects to ``address`` or starts a private local Ray (no dashboard, bound to
    127.0.0.1); returns its resources. Workers' output reaches the console only with
    ``verbose`` (trial errors are reported by avtune either way)."""
    import logging

    import ray

    from orchestrator.progress import quiet_logs

    quiet_logs(verbose)
    level = logging.INFO if verbose else logging.ERROR
    if address and _is_loopback(address):
        # A cluster on this machine listening on 127.0.0.1 (e.g. `ray start --head
        # --node-ip-address 127.0.0.1`): join it as a loopback node too, or ray.init would swap
        # 127.0.0.1 for the routable IP, where nothing listens.
        _loopback_init(address=address, log_to_driver=verbose, logging_level=level)
    elif address:
        ray.init(address=address, log_to_driver=verbose, logging_level=level)
    else:
        # address="local" always starts a new private instance, never joins a stray one. No
        # dashboard (no HTTP server at all), loopback only, and token authentication on top
        # (the default for local clusters since Ray 2.59).
        res = total or local_resources()
        _loopback_init(address="local", num_cpus=int(res["CPU"]), num_gpus=int(res.get("GPU", 0)),
                       include_dashboard=False, log_to_driver=verbose, logging_level=level)
    return {k: float(v) for k, v in ray.cluster_resources().items() if k in ("CPU", "GPU")}


def prepare_jobs(plan: Plan) -> list[dict[str, Any]]:
    """The prepare calls a run needs: each arm's ``prepare`` hook, once per seed (what it trains,
    e.g. a noise estimator shared by the trials, is cached by its config and seed)."""
    jobs = []
    for label, arm in plan.arms.items():
        if not arm.prepare:
            continue
        for i in range(plan.seeds):
            seed = plan.seed + i
            jobs.append({"label": label + (f" seed {seed}" if plan.seeds > 1 else ""), "method": arm.method,
                         "prepare": arm.prepare, "epochs": arm.epochs, "base": arm.base, "seed": seed})
    return jobs


def _prepare(plan: Plan) -> None:
    """Runs the methods' ``prepare`` hooks before any trial, as Ray tasks with one trial's
    resources (on a private local Ray, the machine's CPUs shared among them), printing their
    progress: a hook that takes a ``reporter`` reports each epoch of what it trains."""
    jobs = prepare_jobs(plan)
    if not jobs:
        return
    import ray
    from ray.util.queue import Queue

    from orchestrator import methods as treg
    from orchestrator.progress import prepare_progress, say
    from trainables.core.config import build_config
    from trainables.data.registry import resolve_data

    # No trial runs yet, so on a private local Ray the one-off steps may use every CPU.
    cpus = plan.cpus if plan.address else max(plan.cpus, float(plan.total.get("CPU", 1)) // len(jobs) or 1.0)
    queue = Queue(actor_options={"num_cpus": 0})

    def run_prepare(job: dict, data: str, gpus: float, threads: int, q) -> None:
        import inspect

        import torch

        hook = treg.load_hook(job["prepare"])
        mod = treg.load(job["method"])
        cfg = build_config(mod.Config, {**job["base"], "epochs": job["epochs"], "seed": job["seed"]})
        torch.set_num_threads(threads)
        device = "cuda" if gpus > 0 and torch.cuda.is_available() else "cpu"
        kwargs = {}
        try:
            if "reporter" in inspect.signature(hook).parameters:
                def reporter(epoch, metrics, state_fn=None):
                    q.put_nowait((job["label"], int(epoch), {k: float(v) for k, v in metrics.items()
                                                             if isinstance(v, (int, float))}))
                kwargs["reporter"] = reporter
        except (TypeError, ValueError):
            pass
        hook(cfg, resolve_data(data), device, **kwargs)

    task = ray.remote(num_cpus=cpus, num_gpus=min(1.0, plan.gpus))(run_prepare)
    names = sorted({j["prepare"] for j in jobs})
    say(f"preparing once for all trials: {', '.join(j['label'] for j in jobs)} ({', '.join(names)})")
    t0 = time.time()
    refs = {task.remote(j, plan.data, plan.gpus, max(1, int(cpus)), queue): j["label"] for j in jobs}
    try:
        prepare_progress(refs, queue, metric=plan.metric)
    finally:
        queue.shutdown()
    say(f"prepared in {time.time() - t0:.1f} s")


def run_trials(plan: Plan) -> list[dict[str, Any]]:
    """Runs (or resumes) the plan's trials; returns one row per trial (:func:`rows.trial_row`)."""
    import ray

    from orchestrator import preflight, progress, rows, tracking, tune_callback, tune_runner
    from orchestrator.storage import has_tune_state
    from trainables.data.format import fingerprint
    from trainables.data.registry import resolve_data

    t0 = time.time()
    data_path = resolve_data(plan.data)
    plan.data_fingerprint = fingerprint(data_path)
    print(f"[avtune] data {plan.data} -> {data_path} (fingerprint {plan.data_fingerprint}, "
          f"{time.time() - t0:.1f} s)")
    try:
        # Runs started together on one fresh store would race in MLflow's schema migration.
        preflight.ensure_store(plan.mlflow_uri)
        _prepare(plan)
        # The saved plan is the truth: a run that stopped before Tune saved any state restarts
        # as planned (same trials, grid, space, seed and MLflow parent).
        fresh = not plan.resume or not has_tune_state(plan.storage, plan.name)
        if plan.resume and fresh:
            print(f"[avtune] --resume: {plan.name} stopped before Tune saved its state; "
                  f"restarting its {plan.n_trials} planned trial(s) from the start")
            tracking.kill_open_run(plan.mlflow_uri, plan.experiment, plan.sweep_id)
        if not fresh:
            tuner = tune_runner.restore_tuner(plan)
        else:
            if not plan.resume:
                plan.save()
            tracker = tracking.RunTracker(plan)
            callbacks = [tune_callback.MLflowTuneCallback(tracker, plan.n_trials),
                         progress.ConsoleProgress.for_plan(plan, tracker.run_name), *result_loggers()]
            tuner = tune_runner.make_tuner(plan, callbacks=callbacks)
        with _tune_output(plan.verbose):
            results = tuner.fit()
    finally:
        ray.shutdown()
    return [rows.trial_row((r.metrics or {}).get("trial_id"),
                           rows.trial_status("ERROR" if r.error else "TERMINATED", r.metrics),
                           r.config or {}, r.metrics or {}) for r in results]


@contextlib.contextmanager
def _tune_output(verbose: bool):
    """Ray Tune's console output: its new output engine (status tables, result dumps, the
    experiment box) only with ``verbose``; never the TensorBoard logger (MLflow is the results
    store; the JSON and CSV loggers are added explicitly, see :func:`result_loggers`)."""
    env = {"TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1"}
    if not verbose:
        env["RAY_AIR_NEW_OUTPUT"] = "0"  # the classic reporter, which verbose=0 silences
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def result_loggers() -> list:
    """Tune's per-trial ``result.json`` and ``progress.csv`` loggers (what Tune adds by default,
    without TensorBoard's)."""
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    return [JsonLoggerCallback(), CSVLoggerCallback()]

