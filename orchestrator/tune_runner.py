"""Ray Tune side of a sweep: the function trainable, the searcher/scheduler and the Tuner.

A *plan* is a plain JSON-able dict built by ``orchestrator.sweep`` (keys documented in
:func:`run_trial`); it is saved next to the Tune experiment so that ``--resume`` rebuilds exactly
the same trainable. Each trial runs the trainable's ``fit`` in-process (one worker: no extra
actors) or, with ``workers > 1``, as a Ray Train ``TorchTrainer`` started inside the trial
(``Tuner(TorchTrainer(...))`` is not supported by Ray Train V2). Either way every epoch's metrics
reach Tune with a checkpoint of ``state_fn()``, and a restarted trial resumes from it.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Mapping
from typing import Any, Callable

STATE_FILE = "state.pt"
METRICS_FILE = "metrics.json"
PLAN_FILE = "avtune_plan.json"


# ----------------------------------------------------------------------------- inside a trial

def _grid_constants(plan: Mapping[str, Any], fixed: Mapping[str, Any]) -> dict[str, Any]:
    """The constants a define-by-run space derives (e.g. ``alpha2 = 1 - alpha1``) for one grid
    cell, by running the space on the cell's values.

    A grid may fix only some of the space's parameters; the others take the value the trial
    actually runs with (the sweep's base config, else the config default), so the space runs to
    its end and every derived constant is computed from the values the trial uses.
    """
    import optuna

    from orchestrator.specs import load_spec
    from orchestrator.methods import _default_of, config_fields, load

    fields = config_fields(load(plan["trainable"]).Config)
    fallback = {k: _default_of(f) for k, f in fields.items()}
    fallback.update(plan["base"])

    class GridTrial(optuna.trial.FixedTrial):
        def _suggest(self, name, distribution):
            if name not in self._params and name in fallback:
                self._params[name] = fallback[name]
            return super()._suggest(name, distribution)

    return dict(load_spec(plan["sweep"]).space(GridTrial(dict(fixed))) or {})


# A repeated configuration's seed index (Ray Tune's Repeater sets it; a grid sweeps it).
SEED_INDEX = "__trial_index__"


def trial_plan(plan: Mapping[str, Any], config: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The plan one trial runs under, and its own config values.

    A comparison's plan holds one sub-plan per method (``plan["methods"][name]``: its
    ``trainable``, ``base``, ``prepare``); its trials carry ``method`` in their config, and run
    under the plan with that method's sub-plan merged in. The seed index is not a config value.
    """
    own = {k: v for k, v in config.items() if k != SEED_INDEX}
    methods = plan.get("methods")
    if methods and "method" in own:
        sub = methods[own.pop("method")]
        return {**plan, **sub}, own
    return dict(plan), own


def trial_seed(plan: Mapping[str, Any], config: Mapping[str, Any]) -> int:
    """The trial's seed: the plan's seed plus its seed index (``--seeds N`` runs seed .. seed+N-1)."""
    return int(plan["seed"]) + int(config.get(SEED_INDEX, 0))


def trial_overrides(plan: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
    """Config-field overrides of one trial: base fields, tuned values, derived constants, epochs, seed."""
    sub, tuned = trial_plan(plan, config)
    # A grid skips Optuna, so the derived constants come from running the space on the cell.
    consts = _grid_constants(sub, tuned) if sub.get("grid") and not sub.get("methods") else {}
    return {**sub["base"], **tuned, **consts, "epochs": sub["epochs"], "seed": trial_seed(plan, config)}


def _save_state(state: dict, metrics: Mapping[str, Any], directory: str) -> None:
    import json

    import torch

    torch.save(state, os.path.join(directory, STATE_FILE))
    with open(os.path.join(directory, METRICS_FILE), "w") as f:
        json.dump(dict(metrics), f)


def _load_state(checkpoint) -> tuple[dict | None, dict | None]:
    """``(state, metrics)`` of a Ray checkpoint (``(None, None)`` without one)."""
    import json

    import torch

    if checkpoint is None:
        return None, None
    with checkpoint.as_directory() as d:
        state = torch.load(os.path.join(d, STATE_FILE), weights_only=True, map_location="cpu")
        mpath = os.path.join(d, METRICS_FILE)
        metrics = json.load(open(mpath)) if os.path.exists(mpath) else None
    return state, metrics


def _newest_saved_state(plan: Mapping[str, Any], trial_id: str) -> tuple[dict | None, dict | None]:
    """``(state, metrics)`` of the newest readable checkpoint among the trial's directories.

    Tune snapshots its experiment state every few seconds, so a driver killed between a trial's
    checkpoint and the next snapshot restores the trial without that checkpoint; reading the
    trial directory directly resumes from the true last epoch instead of repeating it.
    """
    import io
    import json

    import pyarrow.fs as pafs
    import torch

    fs, root = _fs(f"{experiment_path(plan)}/trial_{trial_id}")
    infos = fs.get_file_info(pafs.FileSelector(root, allow_not_found=True))
    dirs = sorted((i.path for i in infos
                   if i.type == pafs.FileType.Directory and i.base_name.startswith("checkpoint_")),
                  key=lambda p: p.rsplit("_", 1)[-1])
    for d in reversed(dirs):
        try:
            with fs.open_input_stream(f"{d}/{STATE_FILE}") as f:
                state = torch.load(io.BytesIO(f.read()), weights_only=True, map_location="cpu")
            with fs.open_input_stream(f"{d}/{METRICS_FILE}") as f:
                metrics = json.loads(f.read())
            return state, metrics
        except Exception:  # a checkpoint cut short by the kill: fall back to the previous one
            continue
    return None, None


def _final_metrics(result: Mapping[str, Any], last: Mapping[str, Any]) -> dict[str, Any]:
    """The trial's last report: the last epoch's metrics overlaid with ``fit``'s final/best dict."""
    out = {**last}
    for k, v in (result or {}).items():
        if isinstance(v, (int, float, str)) and not isinstance(v, bool):
            out[k] = v
    out["final"] = 1
    return out


def run_trial(config: dict, plan: dict) -> None:
    """The Tune function trainable.

    Args:
        config: The trial's tuned values (what the search space suggested).
        plan: ``trainable`` (registry key or module), ``sweep`` (spec reference), ``data`` (data
            spec), ``data_fingerprint`` (from the driver), ``base`` (config overrides), ``epochs``,
            ``seed``, ``workers``, ``cpus``, ``gpus``, ``storage``, ``name``, ``grid``.
    """
    from orchestrator.methods import build_config, get_method, load, load_hook

    overrides = trial_overrides(plan, config)
    full, plan = plan, trial_plan(plan, config)[0]
    mod = load(plan["trainable"])
    cfg = build_config(mod.Config, overrides)
    if int(plan.get("workers", 1)) > 1:
        _run_ddp(config, full)
        return

    import torch
    from ray import tune

    from trainables.data.format import fingerprint
    from trainables.data.registry import resolve_data
    from trainables.core.seed import set_seed

    torch.set_num_threads(max(1, int(plan.get("cpus", 1))))
    seed = set_seed(cfg.seed)
    data_path = resolve_data(plan["data"])
    fp = fingerprint(data_path)
    use_cuda = float(plan.get("gpus", 0)) > 0 and torch.cuda.is_available()
    device = "cuda" if use_cuda else "cpu"
    extra = load_hook(get_method(plan["trainable"]).extra_kwargs)
    kwargs = dict(extra(cfg, data_path) or {}) if extra else {}
    info = {"seed": seed, "data_fingerprint": fp, "data": plan["data"], "device": device}
    last: dict[str, Any] = {}
    resume, replay = _newest_saved_state(plan, tune.get_context().get_trial_id())
    if resume is None:
        resume, replay = _load_state(tune.get_checkpoint())

    def reporter(epoch: int, metrics: Mapping[str, float], state_fn: Callable[[], dict]) -> None:
        nonlocal last, replay
        last = {**metrics, "epoch": int(epoch), **info}
        out = dict(last)
        if replay:
            # The checkpointed epoch's own result may never have reached the driver (it died
            # first); the tracker logs it unless MLflow already has it.
            out["replay"], replay = replay, None
        with tempfile.TemporaryDirectory() as d:
            _save_state(state_fn(), last, d)
            tune.report(out, checkpoint=tune.Checkpoint.from_directory(d))

    result = mod.fit(cfg, data_path, reporter=reporter, resume_state=resume, device=device, **kwargs)
    if not last:
        last = {**(replay or {}), "epoch": int((replay or {}).get("epoch", cfg.epochs)), **info}
    final = _final_metrics(result, last)
    if replay:
        final["replay"] = replay
    tune.report(final)


def _ddp_worker(loop_cfg: dict) -> None:
    """One Ray Train worker: runs ``fit`` under torch.distributed; rank 0 writes checkpoints."""
    import ray.train
    import ray.train.torch
    import torch

    from orchestrator.methods import build_config, get_method, load, load_hook
    from trainables.data.format import fingerprint
    from trainables.data.registry import resolve_data
    from trainables.core.seed import set_seed

    plan, overrides = loop_cfg["plan"], loop_cfg["overrides"]
    mod = load(plan["trainable"])
    cfg = build_config(mod.Config, overrides)
    torch.set_num_threads(max(1, int(plan.get("cpus", 1))))
    seed = set_seed(cfg.seed)
    rank = ray.train.get_context().get_world_rank()
    device = ray.train.torch.get_device()
    data_path = resolve_data(plan["data"])
    info = {"seed": seed, "data_fingerprint": fingerprint(data_path), "data": plan["data"],
            "device": str(device.type), "workers": int(plan["workers"])}
    extra = load_hook(get_method(plan["trainable"]).extra_kwargs)
    kwargs = dict(extra(cfg, data_path) or {}) if extra else {}
    last: dict[str, Any] = {}

    def reporter(epoch: int, metrics: Mapping[str, float], state_fn: Callable[[], dict]) -> None:
        nonlocal last
        last = {**metrics, "epoch": int(epoch), **info}
        state = state_fn()  # every rank calls it, in case building the state is collective
        with tempfile.TemporaryDirectory() as d:
            ckpt = None
            if rank == 0:
                _save_state(state, last, d)
                ckpt = ray.train.Checkpoint.from_directory(d)
            ray.train.report(last, checkpoint=ckpt)

    resume, _ = _load_state(ray.train.get_checkpoint())
    result = mod.fit(cfg, data_path, reporter=reporter, resume_state=resume, device=device, **kwargs)
    if not last:
        last = {"epoch": int(cfg.epochs), **info}
    ray.train.report(_final_metrics(result, last))


def _run_ddp(config: dict, plan: dict) -> None:
    """Runs the trial as a TorchTrainer with ``plan['workers']`` workers, forwarding to Tune.

    The Train run's name is fixed per trial, so a restarted trial (FailureConfig or ``--resume``)
    finds the Train run's own checkpoints and Ray Train resumes the workers from the latest one.
    """
    import ray.train
    from ray import tune
    from ray.train.torch import TorchTrainer
    from ray.tune.integration.ray_train import TuneReportCallback

    gpus = float(plan.get("gpus", 0))
    per_worker = {"CPU": float(plan.get("cpus", 1))}
    if gpus > 0:
        per_worker["GPU"] = gpus
    trial_id = tune.get_context().get_trial_id()
    overrides = trial_overrides(plan, config)
    plan = trial_plan(plan, config)[0]
    trainer = TorchTrainer(
        _ddp_worker,
        train_loop_config={"plan": plan, "overrides": overrides},
        scaling_config=ray.train.ScalingConfig(num_workers=int(plan["workers"]), use_gpu=gpus > 0,
                                               resources_per_worker=per_worker),
        run_config=ray.train.RunConfig(
            name=f"{plan['name']}-ddp-{trial_id}",
            storage_path=plan["storage"],
            callbacks=[TuneReportCallback()],
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=2),
            failure_config=ray.train.FailureConfig(max_failures=int(plan.get("max_failures", 2))),
        ),
    )
    trainer.fit()


# ----------------------------------------------------------------------------- the driver side

def trial_resources(plan: Mapping[str, Any], extra_bundles: list[dict] | None = None):
    """The trial's placement group.

    One worker: a single bundle with the trial's CPUs/GPUs (plus any extra bundles the trainable
    asks for). Several workers: the trial itself only runs the Train driver, which waits on its
    workers, and Ray Train V2 reserves the workers' resources in its own placement group; so the
    trial holds no CPU (Tune needs a non-empty bundle, hence a token 1 MiB of Ray's ``memory``),
    and N workers x 1 CPU fit an N-CPU machine.
    """
    from ray.tune import PlacementGroupFactory

    cpus, gpus, workers = float(plan["cpus"]), float(plan["gpus"]), int(plan["workers"])
    if workers > 1:
        head: dict[str, float] = {"memory": float(2**20)}
    else:
        head = {"CPU": cpus}
        if gpus > 0:
            head["GPU"] = gpus
    return PlacementGroupFactory([head, *(extra_bundles or [])])


def per_trial_demand(plan: Mapping[str, Any], extra_bundles: list[dict] | None = None) -> dict[str, float]:
    """Total resources one running trial occupies (its workers and extra bundles included)."""
    workers = int(plan["workers"])
    demand = {"CPU": float(plan["cpus"]) * workers, "GPU": float(plan["gpus"]) * workers}
    for b in extra_bundles or []:
        for k, v in b.items():
            demand[k] = demand.get(k, 0.0) + float(v)
    return demand


def max_concurrent(total: Mapping[str, float], demand: Mapping[str, float], cap: int | None,
                   n_trials: int | None) -> int:
    """How many trials fit at once: floor(total/demand) over every demanded resource, capped.

    A resource the cluster does not have (yet) is ignored, so an autoscaling cluster can still add
    the nodes that the pending trials request.
    """
    fits = []
    for k, need in demand.items():
        have = float(total.get(k, 0.0))
        if need > 0 and have > 0:
            fits.append(int(math.floor(have / need + 1e-9)))
    n = max(1, min(fits)) if fits else 1
    if cap:
        n = min(n, cap)
    if n_trials:
        n = min(n, n_trials)
    return max(1, n)


def trial_name(trial) -> str:
    """``<trial id>[k=v,...]`` with the tuned values (and the seed index of a repeated
    configuration as ``seed+i``), so Tune's own output shows them."""
    parts = []
    for k, v in sorted(trial.config.items()):
        if k == SEED_INDEX:
            continue
        parts.append(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}")
    if SEED_INDEX in trial.config:
        parts.append(f"seed+{trial.config[SEED_INDEX]}")
    return f"{trial.trial_id}[{','.join(parts)}]"


def trial_dirname(trial) -> str:
    """Short, filesystem-safe trial directory names (tuned values live in the config, not the path)."""
    return f"trial_{trial.trial_id}"


def make_trainable(plan: dict, extra_bundles: list[dict] | dict[str, list[dict]] | None = None):
    """The function trainable with the plan bound and the trial's resources attached (for a
    comparison, ``extra_bundles`` maps each method to its own and each trial gets its method's)."""
    from ray import tune

    trainable = tune.with_parameters(run_trial, plan=plan)
    if plan.get("methods"):
        per = dict(extra_bundles or {})

        def resources(config):
            sub = trial_plan(plan, config)[0]
            return trial_resources(sub, per.get(config.get("method"), []))
        return tune.with_resources(trainable, resources)
    return tune.with_resources(trainable, trial_resources(plan, extra_bundles))


def make_tuner(plan: dict, spec, *, callbacks: list, extra_bundles: list[dict] | dict | None,
               max_concurrent_trials: int, scheduler: str, num_samples: int):
    """A fresh Tuner for ``plan``: Optuna TPE, the spec's grid with ``plan['grid']``, or a
    comparison's methods (``plan['methods']``).

    With ``plan['seeds'] = N > 1`` every configuration runs under N seeds (seed index
    :data:`SEED_INDEX`; seed = plan seed + index): Optuna suggests a configuration once and is
    told the mean of its N trials (Ray Tune's ``Repeater``); a grid sweeps the seed index as one
    more axis, so each cell runs N times. ``num_samples`` counts configurations (grid:
    repetitions of the grid).
    """
    from ray import tune

    seeds = int(plan.get("seeds", 1))
    search_alg = None
    param_space: dict[str, Any] = {}
    if plan.get("methods"):
        param_space = {"method": tune.grid_search(list(plan["methods"]))}
    elif plan["grid"]:
        param_space = {k: tune.grid_search(list(v)) for k, v in spec.grid.items()}
    else:
        import optuna
        from ray.tune.search.optuna import OptunaSearch

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        search_alg = OptunaSearch(
            space=spec.space,
            metric=spec.metric,
            mode=spec.mode,
            points_to_evaluate=[dict(p) for p in spec.points_to_evaluate] or None,
            sampler=optuna.samplers.TPESampler(seed=int(plan["seed"])),
        )
        if seeds > 1:
            from ray.tune.search import Repeater

            search_alg = Repeater(search_alg, repeat=seeds, set_index=True)
    if seeds > 1 and search_alg is None:
        param_space[SEED_INDEX] = tune.grid_search(list(range(seeds)))
    samples = num_samples * seeds if search_alg is not None else num_samples
    sched = None
    if scheduler == "asha":
        from ray.tune.schedulers import ASHAScheduler

        # +1: the trial's last report (fit's final/best metrics) comes after its last epoch.
        sched = ASHAScheduler(metric=spec.metric, mode=spec.mode, time_attr="training_iteration",
                              max_t=int(plan["epochs"]) + 1, grace_period=1, reduction_factor=2)
    tune_config = tune.TuneConfig(
        search_alg=search_alg,
        scheduler=sched,
        num_samples=samples,
        max_concurrent_trials=max_concurrent_trials,
        trial_name_creator=trial_name,
        trial_dirname_creator=trial_dirname,
        **({} if search_alg is not None or sched is not None else {"metric": spec.metric, "mode": spec.mode}),
    )
    run_config = tune.RunConfig(
        name=plan["name"],
        storage_path=plan["storage"],
        callbacks=callbacks,
        failure_config=tune.FailureConfig(max_failures=int(plan.get("max_failures", 2))),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
        # Ray's own tables and result dumps only with --verbose; avtune prints its own progress.
        verbose=1 if plan.get("verbose") else 0,
    )
    return tune.Tuner(make_trainable(plan, extra_bundles), param_space=param_space,
                      tune_config=tune_config, run_config=run_config)


def restore_tuner(plan: dict, extra_bundles: list[dict] | dict | None = None):
    """Restores the interrupted experiment of ``plan``: finished trials stay finished; unfinished
    and errored ones continue from their last checkpoint."""
    from ray import tune

    return tune.Tuner.restore(experiment_path(plan), trainable=make_trainable(plan, extra_bundles),
                              resume_unfinished=True, resume_errored=True)


def has_tune_state(plan: Mapping[str, Any]) -> bool:
    """Whether Tune saved a state snapshot of the experiment (``experiment_state-*.json``), which
    ``Tuner.restore`` needs; ``tuner.pkl`` alone is written before any trial starts."""
    import pyarrow.fs

    fs, rel = _fs(experiment_path(plan))
    infos = fs.get_file_info(pyarrow.fs.FileSelector(rel, allow_not_found=True))
    return any(os.path.basename(i.path).startswith("experiment_state-") for i in infos)


def experiment_path(plan: Mapping[str, Any]) -> str:
    """``<storage>/<name>`` (a local path or a URI such as ``s3://bucket/prefix/name``)."""
    return f"{str(plan['storage']).rstrip('/')}/{plan['name']}"


def _fs(path: str):
    import pyarrow.fs

    return pyarrow.fs.FileSystem.from_uri(path if "://" in path else os.path.abspath(path))


def save_plan(plan: Mapping[str, Any]) -> str:
    """Writes the plan as ``<experiment>/avtune_plan.json`` (atomically on local disks)."""
    import json

    path = f"{experiment_path(plan)}/{PLAN_FILE}"
    blob = json.dumps(plan, indent=2, sort_keys=True).encode()
    if "://" not in path:
        from trainables.data.format import atomic_write_bytes

        return str(atomic_write_bytes(path, blob))
    fs, rel = _fs(path)
    fs.create_dir(os.path.dirname(rel), recursive=True)
    with fs.open_output_stream(rel) as f:
        f.write(blob)
    return path


def load_plan(experiment: str) -> dict:
    """Reads ``<experiment>/avtune_plan.json``; a clear error if the experiment has none."""
    import json

    import pyarrow.fs

    path = f"{experiment.rstrip('/')}/{PLAN_FILE}"
    fs, rel = _fs(path)
    if fs.get_file_info(rel).type == pyarrow.fs.FileType.NotFound:
        raise FileNotFoundError(f"{path}: no avtune sweep to resume here")
    with fs.open_input_stream(rel) as f:
        return json.loads(f.read())
