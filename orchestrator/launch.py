"""Running a planned sweep: a private loopback Ray or a cluster, the prepare stage, the Tuner."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.sweep import Plan


def _local_resources() -> dict[str, float]:
    import torch

    return {"CPU": float(os.cpu_count() or 1), "GPU": float(torch.cuda.device_count())}


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


def start_ray(address: str | None, total: dict[str, float] | None = None) -> dict[str, float]:
    """Connects to ``address`` or starts a private local Ray (no dashboard, bound to
    127.0.0.1); returns its resources."""
    import ray

    if address:
        ray.init(address=address, log_to_driver=True)
    else:
        # address="local" always starts a new private instance, never joins a stray one. No
        # dashboard (no HTTP server at all), loopback only, and token authentication on top
        # (the default for local clusters since Ray 2.59).
        res = total or _local_resources()
        _loopback_init(address="local", num_cpus=int(res["CPU"]), num_gpus=int(res.get("GPU", 0)),
                       include_dashboard=False, log_to_driver=True)
    return {k: float(v) for k, v in ray.cluster_resources().items() if k in ("CPU", "GPU")}


def _prepare(plan: Plan) -> None:
    """Runs the trainable's ``prepare`` hook once, as a Ray task with one trial's resources."""
    ref = plan.trial.get("prepare")
    if not ref:
        return
    import ray

    from orchestrator import methods as treg
    from trainables.data.registry import resolve_data

    t = plan.trial

    # No trial runs yet, so on a private local Ray the one-off step may use every CPU.
    cpus = float(t["cpus"]) if plan.address else max(float(t["cpus"]), float(plan.total.get("CPU", 1)))

    def run_prepare(trial: dict, threads: int) -> None:
        import torch

        hook = treg.load_hook(trial["prepare"])
        mod = treg.load(trial["trainable"])
        cfg = treg.build_config(mod.Config, {**trial["base"], "epochs": trial["epochs"], "seed": trial["seed"]})
        torch.set_num_threads(threads)
        device = "cuda" if trial["gpus"] > 0 and torch.cuda.is_available() else "cpu"
        hook(cfg, resolve_data(trial["data"]), device)

    task = ray.remote(num_cpus=cpus, num_gpus=min(1.0, t["gpus"]))(run_prepare)
    t0 = time.time()
    ray.get(task.remote(t, max(1, int(cpus))))
    print(f"[avtune] prepared {t['trainable']} once for all trials ({ref}, {time.time() - t0:.1f} s)")


def fit(plan: Plan) -> list[dict[str, Any]]:
    """Runs (or resumes) the sweep; returns one row per trial (see ``tracking.trial_row``)."""
    import ray

    from orchestrator import preflight, tracking, tune_runner
    from trainables.data.format import fingerprint
    from trainables.data.registry import resolve_data

    t = plan.trial
    t0 = time.time()
    data_path = resolve_data(t["data"])
    t["data_fingerprint"] = fingerprint(data_path)
    print(f"[avtune] data {t['data']} -> {data_path} (fingerprint {t['data_fingerprint']}, "
          f"{time.time() - t0:.1f} s)")
    try:
        # Sweeps started together on one fresh store would race in MLflow's schema migration.
        preflight.ensure_store(plan.mlflow_uri)
        _prepare(plan)
        # The saved plan is the truth: a sweep that stopped before Tune saved any state
        # restarts as planned (same trials, grid, space, seed and MLflow parent).
        fresh = not plan.resume or not tune_runner.has_tune_state(t)
        if plan.resume and fresh:
            print(f"[avtune] --resume: {plan.experiment} stopped before Tune saved its state; "
                  f"restarting its {plan.n_trials} planned trial(s) from the start")
            tracking.kill_open_sweep(plan.mlflow_uri, plan.spec.name, t["sweep_id"])
        if not fresh:
            tuner = tune_runner.restore_tuner(t, plan.extra_bundles)
        else:
            tracker = tracking.MLflowSweepTracker(
                plan.mlflow_uri, plan.spec.name, t["sweep_id"], plan.experiment, plan.spec.metric,
                plan.spec.mode, params={k: v for k, v in t.items() if k not in ("prepare",)},
                tuned=plan.tuned, data_note=f"{t['data']} (fingerprint {t['data_fingerprint']})",
                method=t["trainable"])
            if not plan.resume:
                tune_runner.save_plan(t)
            tuner = tune_runner.make_tuner(
                t, plan.spec, callbacks=[tracking.MLflowTuneCallback(tracker, plan.n_trials)],
                extra_bundles=plan.extra_bundles, max_concurrent_trials=plan.max_concurrent,
                scheduler=plan.scheduler, num_samples=plan.num_samples)
        results = tuner.fit()
    finally:
        ray.shutdown()
    rows = []
    for r in results:
        row: dict[str, Any] = {"trial_id": (r.metrics or {}).get("trial_id"),
                               "status": tracking.trial_status("ERROR" if r.error else "TERMINATED",
                                                               r.metrics)}
        row.update({f"config/{k}": v for k, v in tracking.flatten(r.config or {}).items()})
        row.update(tracking.numeric_metrics(r.metrics or {}))
        rows.append(row)
    return rows
