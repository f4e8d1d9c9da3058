"""RLLD's ``fit``: the learner's epochs inside the core fit loop.

The core loop (:func:`trainables.core.loop.fit_loop`) owns the task network's checkpoint (weights,
optimiser, schedule), the batching generator and global RNG states, model selection and the result
(:func:`trainables.core.loop.fit_result`); RLLD supplies a custom epoch (the learner's episodes),
the epoch-end denoising figures and the agent side of the checkpoint (``extra``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import torch

from trainables.core import loop as tc
from trainables.core.checkpoint import check_resume_config
from trainables.core.dist import resolve_device
from trainables.core.seed import set_seed
from trainables.methods.rlld.config import Config
from trainables.methods.rlld.diagnostics import denoise_scores
from trainables.methods.rlld.evaluator import Evaluator, LocalEvaluator
from trainables.methods.rlld.learner import Learner
from trainables.tasks.avvp import backbone as bb
from trainables.tasks.avvp import eval as ae


def fit(cfg: Config, data_path, *, reporter: tc.Reporter | None = None,
        resume_state: Mapping[str, Any] | None = None, device=None,
        evaluator: Evaluator | None = None) -> dict[str, float]:
    """Trains RLLD (agent + HAN) and returns the selected epoch's metrics plus ``test/...``.

    Args:
        cfg: Settings (validated here as well as at plan time).
        data_path: An AVVP data set (LLP or LLP-sim) in avtune's format.
        reporter: ``reporter(epoch, metrics, state_fn)`` after every epoch; ``state_fn()`` is a
            snapshot that loads with ``torch.load(..., weights_only=True)``.
        resume_state: A ``state_fn()`` dict to continue from (written under the same config).
        device: Torch device (default: CUDA when available).
        evaluator: Source of terminal rewards (default: an in-process
            :class:`~trainables.methods.rlld.evaluator.LocalEvaluator`). ``fit`` closes it.

    Returns:
        :func:`trainables.core.loop.fit_result`: the selected epoch's metrics (``epoch``,
        ``train/...``, ``reward/...``, ``rlld/...``, ``val/...``, ``denoise/...`` when train truth
        exists), ``test/...`` of the selected task weights, ``best_epoch``, ``last_epoch``,
        ``last/val/...``; plus ``seed``, ``time/total_s`` and ``time/run_steps_per_s`` (task steps
        per second of training over the whole run, resumed parts included).

    Raises:
        ValueError: A bad config value, or ``resume_state`` written under another config.
    """
    cfg.validate()
    if torch.distributed.is_available() and torch.distributed.is_initialized() \
            and torch.distributed.get_world_size() > 1:
        raise RuntimeError("trainables.methods.rlld.training.fit runs in one process; start it "
                           "without torch.distributed (its parallelism is the validation pool)")
    if resume_state is not None:
        # Before anything is built from the config: a mismatch is a ValueError naming the fields,
        # not a shape error while loading weights.
        check_resume_config(resume_state.get("config"), cfg)
    seed = set_seed(cfg.seed)
    dev = resolve_device(device)
    data = bb.load_data(cfg, data_path, dev)
    if evaluator is None:
        evaluator = LocalEvaluator(cfg, data["val"], dev)
    t_start = time.perf_counter()
    try:
        learner = Learner(cfg, data["train"], evaluator, dev, dims=ae.feature_dims(data["train"]))
        if resume_state is not None:
            learner.load_state_dict(resume_state["extra"])

        def epoch_fn(model, epoch: int, gen: torch.Generator) -> tuple[float, dict[str, float]]:
            metrics = learner.run_epoch(gen)
            return metrics.pop("train/loss"), metrics

        def epoch_end_fn(epoch: int) -> dict[str, float]:
            if cfg.denoise_metrics and data["train"].has_truth:
                return denoise_scores(learner.agent, learner.train, cfg.all_removed)
            return {}

        result = tc.fit_loop(
            cfg=cfg, model=learner.task, data=data, device=dev,
            evaluate_fn=ae.evaluator(cfg, data, with_ca=cfg.with_ca), epoch_fn=epoch_fn,
            optimizer=learner.task_opt, scheduler=learner.task_sched, reporter=reporter,
            resume_state=resume_state, epoch_end_fn=epoch_end_fn,
            extra_state_fn=learner.state_dict)
        result["seed"] = float(seed)
        result["time/total_s"] = time.perf_counter() - t_start
        if learner.run_steps:
            result["time/run_steps_per_s"] = learner.run_steps / max(learner.run_time, 1e-9)
        return result
    finally:
        evaluator.close()
