"""The one epoch loop every method trains in, and what it returns.

* :func:`epoch_batches`: index-based batching from a seeded ``torch.Generator`` (its state is
  checkpointed, so a resumed run draws the same batches); under ``torch.distributed`` every rank
  draws the same global order and takes its contiguous shard of each global batch.
* :func:`make_optimizer`: Adam + StepLR (HAN defaults lr 5e-4, step 6, gamma 0.25).
* :class:`BestTracker` and :func:`fit_loop`: the epoch loop (reporter after every epoch, model
  selection by ``select_metric``, resume, test of the selected model at the end).

The task supplies evaluation (``evaluate_fn(model, split_name) -> metrics``); a method supplies a
training step (or a whole custom epoch) and optional epoch-end metrics and extra state.
Nothing here imports ray or mlflow.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from trainables.core.checkpoint import check_resume_config, config_dict, rng_state, set_rng_state
from trainables.core.dist import dist_info, maybe_ddp, shard_slice, unwrap

Reporter = Callable[[int, dict[str, float], Callable[[], dict]], None]


def epoch_batches(n: int, batch_size: int, generator: torch.Generator, device: torch.device,
                  rank: int = 0, world: int = 1) -> Iterator[tuple[torch.Tensor, slice]]:
    """Yields the global batches of one shuffled epoch.

    The permutation is drawn on the CPU from ``generator`` (so its state is device-independent and
    checkpointable) and moved to ``device`` once.

    Args:
        n: Number of training videos.
        batch_size: Global batch size (all ranks together).
        generator: Seeded CPU generator.
        device: Where the index tensors live.
        rank: This process's rank.
        world: Number of processes.

    Yields:
        ``(global_idx, local)``: the global batch's row indices and the slice of it this rank
        trains on (contiguous shards in rank order, so ``all_gather_cat`` restores the order).
    """
    perm = torch.randperm(n, generator=generator).to(device)
    for start in range(0, n, batch_size):
        idx = perm[start:start + batch_size]
        yield idx, shard_slice(len(idx), rank, world)



def num_batches(n: int, batch_size: int) -> int:
    return math.ceil(n / batch_size)



def make_optimizer(model: nn.Module, lr: float = 5e-4, lr_step: int = 6, lr_gamma: float = 0.25
                   ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.StepLR]:
    """Adam and a per-epoch StepLR (HAN's schedule: x``lr_gamma`` every ``lr_step`` epochs).

    Adam is the fused implementation where torch has one for the parameters' device (CPU and
    CUDA): one kernel for the whole update instead of several per parameter tensor.
    """
    params = list(model.parameters())
    fused = all(p.device.type in ("cpu", "cuda") for p in params)
    opt = torch.optim.Adam(params, lr=lr, fused=fused)
    return opt, torch.optim.lr_scheduler.StepLR(opt, step_size=lr_step, gamma=lr_gamma)




@dataclass
class BestTracker:
    """Keeps the best epoch by ``metric`` (``mode`` max or min) and a copy of its weights."""

    metric: str
    mode: str = "max"
    epoch: int = -1
    value: float = float("nan")
    metrics: dict[str, float] = field(default_factory=dict)
    weights: dict[str, torch.Tensor] | None = None

    def __post_init__(self) -> None:
        if self.mode not in ("max", "min"):
            raise ValueError(f"select mode must be 'max' or 'min', got {self.mode!r}")

    def update(self, epoch: int, metrics: Mapping[str, float], model: nn.Module) -> bool:
        """Records ``epoch`` if it beats the best so far; returns whether it did."""
        if self.metric not in metrics:
            raise KeyError(f"select_metric {self.metric!r} not among metrics {sorted(metrics)}")
        v = float(metrics[self.metric])
        better = (self.epoch < 0 or (math.isnan(self.value) and not math.isnan(v))
                  or (v > self.value if self.mode == "max" else v < self.value))
        if better:
            self.epoch, self.value, self.metrics = epoch, v, dict(metrics)
            self.weights = {k: t.detach().clone() for k, t in unwrap(model).state_dict().items()}
        return better

    def state_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "mode": self.mode, "epoch": self.epoch, "value": self.value,
                "metrics": dict(self.metrics), "weights": self.weights}

    def load_state_dict(self, s: Mapping[str, Any]) -> None:
        self.metric, self.mode, self.epoch = s["metric"], s["mode"], int(s["epoch"])
        self.value, self.metrics, self.weights = float(s["value"]), dict(s["metrics"]), s["weights"]


def select_mode(metric: str) -> str:
    """``min`` for loss/error-like metrics, ``max`` otherwise."""
    m = metric.lower()
    return "min" if ("loss" in m or "mae" in m or "error" in m) else "max"


@dataclass
class StepInfo:
    """What a training step gets from :func:`fit_loop`.

    Attributes:
        epoch: 0-based epoch.
        it: 0-based batch index in the epoch.
        iters: Batches per epoch.
        global_idx: Row indices (into the train split) of the whole global batch.
        local: This rank's slice of ``global_idx``.
        rank: Process rank.
        world: Number of processes.
    """

    epoch: int
    it: int
    iters: int
    global_idx: torch.Tensor
    local: slice
    rank: int
    world: int

    @property
    def local_idx(self) -> torch.Tensor:
        return self.global_idx[self.local]

    @property
    def progress(self) -> float:
        """Epochs completed before this step, fractional (0 at the first step)."""
        return self.epoch + self.it / self.iters



EpochFn = Callable[[nn.Module, int, torch.Generator], tuple[float, dict[str, float]]]


def fit_loop(
    *,
    cfg: Any,
    model: nn.Module,
    data: Mapping[str, Any],
    device: torch.device,
    evaluate_fn: Callable[[nn.Module, str], dict[str, float]],
    step_fn: Callable[[nn.Module, StepInfo], torch.Tensor] | None = None,
    epoch_fn: EpochFn | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    reporter: Reporter | None = None,
    resume_state: Mapping[str, Any] | None = None,
    epoch_end_fn: Callable[[int], dict[str, float]] | None = None,
    extra_state_fn: Callable[[], dict[str, Any]] | None = None,
    select: BestTracker | None = None,
    test: bool = True,
) -> dict[str, float]:
    """The epoch loop every method trains in.

    Per epoch: either the batches of :func:`epoch_batches` through ``step_fn`` (which returns the
    loss to backpropagate, already scaled for this rank's share) and an optimizer step each, or one
    call of ``epoch_fn(model, epoch, generator) -> (mean loss, metrics)`` that runs a custom epoch
    (it owns its optimizer steps); then the scheduler step, ``epoch_end_fn`` extra metrics,
    ``evaluate_fn(model, "val")``, model selection, then ``reporter``. After the last epoch the
    selected weights are loaded and ``evaluate_fn(model, "test")`` scores them.

    ``cfg`` must have ``epochs``, ``batch_size``, ``seed`` and ``select_metric``, and ``lr``,
    ``lr_step``, ``lr_gamma`` unless ``optimizer`` is given (``scheduler`` may then be None).
    Every epoch's metrics also carry ``time/train_s`` and ``time/val_s`` (wall seconds).

    Returns:
        :func:`fit_result`: the selected epoch's metrics plus ``test/...`` of the selected weights.
        On return the model holds the selected weights.
    """
    if (step_fn is None) == (epoch_fn is None):
        raise ValueError("fit_loop needs exactly one of step_fn and epoch_fn")
    rank, world = dist_info()
    train = data["train"]
    if optimizer is None:
        optimizer, scheduler = make_optimizer(model, cfg.lr, cfg.lr_step, cfg.lr_gamma)
    opt, sched = optimizer, scheduler
    gen = torch.Generator().manual_seed(int(cfg.seed))
    best = select or BestTracker(cfg.select_metric, select_mode(cfg.select_metric))
    history: list[dict[str, float]] = []
    start = 0
    if resume_state is not None:
        check_resume_config(resume_state.get("config"), cfg)
        unwrap(model).load_state_dict(resume_state["model"])
        opt.load_state_dict(resume_state["optimizer"])
        if sched is not None:
            sched.load_state_dict(resume_state["scheduler"])
        best.load_state_dict(resume_state["best"])
        history = [dict(h) for h in resume_state.get("history", [])]
        set_rng_state(resume_state["rng"], gen)
        start = int(resume_state["epoch"]) + 1
    ddp = maybe_ddp(model, device) if step_fn is not None else model
    iters = num_batches(len(train), cfg.batch_size)

    def state_fn_for(epoch: int) -> Callable[[], dict]:
        def state_fn() -> dict:
            s = {
                "epoch": epoch,
                "model": unwrap(model).state_dict(),
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict() if sched is not None else {},
                "best": best.state_dict(),
                "history": history,
                "rng": rng_state(gen),
                "config": config_dict(cfg),
            }
            if extra_state_fn is not None:
                s["extra"] = extra_state_fn()
            # A snapshot, not views of live tensors: callers may save it after training went on.
            return copy.deepcopy(s)
        return state_fn

    for epoch in range(start, cfg.epochs):
        t0 = time.perf_counter()
        ddp.train()
        metrics: dict[str, float] = {"epoch": float(epoch)}
        if epoch_fn is not None:
            mean_loss, extra = epoch_fn(ddp, epoch, gen)
            metrics["train/loss"] = float(mean_loss)
            metrics.update(extra)
        else:
            metrics["train/loss"] = _step_epoch(ddp, opt, step_fn, epoch, iters, len(train),
                                                cfg.batch_size, gen, device, rank, world)
        if sched is not None:
            sched.step()
        t1 = time.perf_counter()
        if epoch_end_fn is not None:
            metrics.update(epoch_end_fn(epoch))
        t2 = time.perf_counter()
        metrics.update(evaluate_fn(ddp, "val"))
        metrics["time/train_s"] = t1 - t0
        metrics["time/val_s"] = time.perf_counter() - t2
        best.update(epoch, metrics, model)
        history.append(dict(metrics))
        if reporter is not None:
            reporter(epoch, dict(metrics), state_fn_for(epoch))

    # Leave the selected weights in the model: callers (JoMoLD's estimator) predict with them.
    if best.weights is not None:
        unwrap(model).load_state_dict(best.weights)
    tested: dict[str, float] = {}
    if test and "test" in data and data["test"] is not None and best.weights is not None:
        t0 = time.perf_counter()
        tested = evaluate_fn(model, "test")
        tested["time/test_s"] = time.perf_counter() - t0
    return fit_result(best, history, tested)


def _step_epoch(ddp, opt, step_fn, epoch, iters, n, batch_size, gen, device, rank, world) -> float:
    """One epoch of ``step_fn`` batches; returns the mean global-batch loss."""
    total = torch.zeros((), device=device)
    for it, (gidx, local) in enumerate(epoch_batches(n, batch_size, gen, device, rank, world)):
        loss = step_fn(ddp, StepInfo(epoch, it, iters, gidx, local, rank, world))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += loss.detach()
    if world > 1:
        dist.all_reduce(total)
    # step losses are scaled by world/len... so the all-reduced sum over ranks / world is the
    # mean of the global-batch losses.
    return float(total.item()) / (iters * world)


def fit_result(best: BestTracker, history: list[Mapping[str, float]],
               tested: Mapping[str, float]) -> dict[str, float]:
    """The result every method's ``fit`` returns (one contract, whatever the method).

    Top-level keys are the *selected* epoch's (by ``select_metric``): ``epoch``, ``train/loss``,
    ``val/...`` and the method's extras, plus ``test/...`` of the selected weights. Alongside:
    ``best_epoch`` (the selected epoch, 0-based), ``last_epoch`` and ``last/val/...`` (the last
    epoch's validation metrics, so a last-epoch reading is still available and never confused
    with the selected one).
    """
    out = dict(best.metrics)
    out["best_epoch"] = float(best.epoch)
    last = dict(history[-1]) if history else {}
    out["last_epoch"] = float(last.get("epoch", best.epoch))
    out.update({f"last/{k}": v for k, v in last.items() if k.startswith("val/")})
    out.update(tested)
    return out
