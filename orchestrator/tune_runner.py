"""Ray Tune side of a run: the function trainable, the searcher/scheduler and the Tuner.

Every trial receives the run's :class:`~orchestrator.plan.Plan` and its own config (the tuned
values, or the arm label of a comparison, and the seed index) and runs its arm's ``fit``
in-process (one worker: no extra actors) or, with ``workers > 1``, as a Ray Train
``TorchTrainer`` started inside the trial (``Tuner(TorchTrainer(...))`` is not supported by Ray
Train V2). Either way every epoch's metrics reach Tune with a checkpoint of ``state_fn()``, and a
restarted trial resumes from it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Callable

from orchestrator.plan import trial_arm, trial_overrides
from orchestrator.rows import ARM_KEY, SEED_INDEX
from orchestrator.storage import run_dir, filesystem

if TYPE_CHECKING:
    from orchestrator.plan import Plan

STATE_FILE = "state.pt"
METRICS_FILE = "metrics.json"


# ----------------------------------------------------------------------------- inside a trial

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


def _newest_saved_state(plan: Plan, trial_id: str) -> tuple[dict | None, dict | None]:
    """``(state, metrics)`` of the newest readable checkpoint among the trial's directories.

    Tune snapshots its experiment state every few seconds, so a driver killed between a trial's
    checkpoint and the next snapshot restores the trial without that checkpoint; reading the
    trial directory directly resumes from the true last epoch instead of repeating it.
    """
    import io
    import json

    import pyarrow.fs as pafs
    import torch

    fs, root = filesystem(f"{run_dir(plan.storage, plan.name)}/trial_{trial_id}")
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


def _fit_kwargs(method: str, cfg, data_path) -> dict[str, Any]:
    """The further ``fit`` keyword arguments the method's ``extra_kwargs`` hook supplies."""
    from orchestrator.methods import get_method, load_hook

    extra = load_hook(get_method(method).extra_kwargs)
    return dict(extra(cfg, data_path) or {}) if extra else {}


def run_trial(config: dict, plan: Plan) -> None:
    """The Tune function trainable.

    Args:
        config: The trial's own values (tuned settings, or the arm label; the seed index).
        plan: The run's plan.
    """
    from orchestrator.methods import load
    from trainables.core.config import build_config

    arm, _ = trial_arm(plan, config)
    mod = load(arm.method)
    cfg = build_config(mod.Config, trial_overrides(plan, config))
    if plan.workers > 1:
        _run_ddp(config, plan)
        return

    import torch
    from ray import tune

    from trainables.core.seed import set_seed
    from trainables.data.format import fingerprint
    from trainables.data.registry import resolve_data

    torch.set_num_threads(max(1, int(plan.cpus)))
    seed = set_seed(cfg.seed)
    data_path = resolve_data(plan.data)
    use_cuda = plan.gpus > 0 and torch.cuda.is_available()
    device = "cuda" if use_cuda else "cpu"
    kwargs = _fit_kwargs(arm.method, cfg, data_path)
    info = {"seed": seed, "data_fingerprint": fingerprint(data_path), "data": plan.data, "device": device}
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

    from orchestrator.methods import load
    from trainables.core.config import build_config
    from trainables.core.seed import set_seed
    from trainables.data.format import fingerprint
    from trainables.data.registry import resolve_data

    plan, method, overrides = loop_cfg["plan"], loop_cfg["method"], loop_cfg["overrides"]
    mod = load(method)
    cfg = build_config(mod.Config, overrides)
    torch.set_num_threads(max(1, int(plan.cpus)))
    seed = set_seed(cfg.seed)
    rank = ray.train.get_context().get_world_rank()
    device = ray.train.torch.get_device()
    data_path = resolve_data(plan.data)
    info = {"seed": seed, "data_fingerprint": fingerprint(data_path), "data": plan.data,
            "device": str(device.type), "workers": plan.workers}
    kwargs = _fit_kwargs(method, cfg, data_path)
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


def _run_ddp(config: dict, plan: Plan) -> None:
    """Runs the trial as a TorchTrainer with ``plan.workers`` workers, forwarding to Tune.

    The Train run's name is fixed per trial, so a restarted trial (FailureConfig or ``--resume``)
    finds the Train run's own checkpoints and Ray Train resumes the workers from the latest one.
    """
    import ray.train
    from ray import tune
    from ray.train.torch import TorchTrainer
    from ray.tune.integration.ray_train import TuneReportCallback

    per_worker = {"CPU": plan.cpus}
    if plan.gpus > 0:
        per_worker["GPU"] = plan.gpus
    trial_id = tune.get_context().get_trial_id()
    trainer = TorchTrainer(
        _ddp_worker,
        train_loop_config={"plan": plan, "method": trial_arm(plan, config)[0].method,
                           "overrides": trial_overrides(plan, config)},
        scaling_config=ray.train.ScalingConfig(num_workers=plan.workers, use_gpu=plan.gpus > 0,
                                               resources_per_worker=per_worker),
        run_config=ray.train.RunConfig(
            name=f"{plan.name}-ddp-{trial_id}",
            storage_path=plan.storage,
            callbacks=[TuneReportCallback()],
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=2),
            failure_config=ray.train.FailureConfig(max_failures=plan.max_failures),
        ),
    )
    trainer.fit()


# ----------------------------------------------------------------------------- the driver side

def trial_resources(plan: Any, extra_bundles: list[dict] | None = None):
    """The trial's placement group.

    One worker: a single bundle with the trial's CPUs/GPUs (plus any extra bundles the trainable
    asks for). Several workers: the trial itself only runs the Train driver, which waits on its
    workers, and Ray Train V2 reserves the workers' resources in its own placement group; so the
    trial holds no CPU (Tune needs a non-empty bundle, hence a token 1 MiB of Ray's ``memory``),
    and N workers x 1 CPU fit an N-CPU machine.
    """
    from ray.tune import PlacementGroupFactory

    cpus, gpus, workers = float(plan.cpus), float(plan.gpus), int(plan.workers)
    if workers > 1:
        head: dict[str, float] = {"memory": float(2**20)}
    else:
        head = {"CPU": cpus}
        if gpus > 0:
            head["GPU"] = gpus
    return PlacementGroupFactory([head, *(extra_bundles or [])])


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


def make_trainable(plan: Plan):
    """The function trainable with the plan bound and each trial's resources attached (its arm's
    extra bundles)."""
    from ray import tune

    trainable = tune.with_parameters(run_trial, plan=plan)
    if plan.kind == "compare":
        def resources(config):
            return trial_resources(plan, plan.extra_bundles.get(config.get(ARM_KEY), []))
        return tune.with_resources(trainable, resources)
    return tune.with_resources(trainable, trial_resources(plan, plan.extra_bundles.get(plan.only_arm().label)))


def make_tuner(plan: Plan, *, callbacks: list):
    """A fresh Tuner for ``plan``: Optuna TPE over its sweep's space, its grid, or a
    comparison's arms.

    With ``plan.seeds = N > 1`` every configuration runs under N seeds (seed index
    :data:`SEED_INDEX`; seed = plan seed + index): Optuna suggests a configuration once and is
    told the mean of its N trials (Ray Tune's ``Repeater``); a grid sweeps the seed index as one
    more axis, so each cell runs N times. ``plan.num_samples`` counts configurations (grid:
    repetitions of the grid).
    """
    from ray import tune

    seeds = plan.seeds
    search_alg = None
    param_space: dict[str, Any] = {}
    if plan.kind == "compare":
        param_space = {ARM_KEY: tune.grid_search(list(plan.arms))}
    elif plan.search == "grid":
        param_space = {k: tune.grid_search(list(v)) for k, v in (plan.grid or {}).items()}
    else:
        import optuna
        from ray.tune.search.optuna import OptunaSearch

        from orchestrator.specs import load_spec

        spec = load_spec(plan.ref)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        search_alg = OptunaSearch(
            space=spec.space,
            metric=plan.metric,
            mode=plan.mode,
            points_to_evaluate=[dict(p) for p in spec.points_to_evaluate] or None,
            sampler=optuna.samplers.TPESampler(seed=plan.seed),
        )
        if seeds > 1:
            from ray.tune.search import Repeater

            search_alg = Repeater(search_alg, repeat=seeds, set_index=True)
    if seeds > 1 and search_alg is None:
        param_space[SEED_INDEX] = tune.grid_search(list(range(seeds)))
    samples = plan.num_samples * seeds if search_alg is not None else plan.num_samples
    sched = None
    if plan.scheduler == "asha":
        from ray.tune.schedulers import ASHAScheduler

        # +1: the trial's last report (fit's final/best metrics) comes after its last epoch.
        sched = ASHAScheduler(metric=plan.metric, mode=plan.mode, time_attr="training_iteration",
                              max_t=plan.epochs + 1, grace_period=1, reduction_factor=2)
    tune_config = tune.TuneConfig(
        search_alg=search_alg,
        scheduler=sched,
        num_samples=samples,
        max_concurrent_trials=plan.max_concurrent,
        trial_name_creator=trial_name,
        trial_dirname_creator=trial_dirname,
        **({} if search_alg is not None or sched is not None else {"metric": plan.metric, "mode": plan.mode}),
    )
    run_config = tune.RunConfig(
        name=plan.name,
        storage_path=plan.storage,
        callbacks=callbacks,
        failure_config=tune.FailureConfig(max_failures=plan.max_failures),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
        # Ray's own tables and result dumps only with --verbose; avtune prints its own progress.
        verbose=1 if plan.verbose else 0,
    )
    return tune.Tuner(make_trainable(plan), param_space=param_space, tune_config=tune_config,
                      run_config=run_config)


def restore_tuner(plan: Plan):
    """Restores the interrupted experiment of ``plan``: finished trials stay finished; unfinished
    and errored ones continue from their last checkpoint."""
    from ray import tune

    return tune.Tuner.restore(run_dir(plan.storage, plan.name), trainable=make_trainable(plan),
                              resume_unfinished=True, resume_errored=True)
