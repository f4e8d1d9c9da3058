"""Shared fast-path pieces of the HAN-based trainables (HAN, JoMoLD, RLLD).

What lives here and why:

* :func:`load_resident`: every split as tensors resident on the device (one copy, optionally
  float16/bfloat16 features), so a training step is an index into tensors, not a data loader.
* :func:`epoch_batches`: index-based batching from a seeded ``torch.Generator`` (its state is
  checkpointed, so a resumed run draws the same batches); under ``torch.distributed`` every rank
  draws the same global order and takes its contiguous shard of each global batch.
* :func:`predict` / :func:`evaluate`: a whole split in a few large no-grad forwards, decoded and
  scored with ``trainables.metrics.avvp`` into ``val/...``/``test/...`` keys.
* :func:`make_optimizer`: Adam + StepLR (HAN defaults lr 5e-4, step 6, gamma 0.25).
* :func:`autocast`: bf16 autocast on CUDA, a no-op elsewhere.
* :func:`rng_state` / :func:`set_rng_state`: torch/CUDA/NumPy/Python RNG states as plain tensors,
  lists and numbers, so checkpoints load with ``torch.load(..., weights_only=True)``.
* :func:`dist_info`, :func:`all_gather_cat`, :func:`maybe_ddp`: ``torch.distributed`` awareness.
* :class:`BestTracker` and :func:`fit_loop`: the epoch loop (reporter after every epoch, model
  selection by ``select_metric``, resume, test of the selected model at the end).

Nothing here imports ray or mlflow.
"""

from __future__ import annotations

import contextlib
import copy
import math
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from trainables.data.avvp import AVVPSplit, load_avvp

Reporter = Callable[[int, dict[str, float], Callable[[], dict]], None]


# --------------------------------------------------------------------------------------------
# Device, data, batching
# --------------------------------------------------------------------------------------------

def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` if given, else the local CUDA device when available (rank-aware), else CPU."""
    if device is not None:
        return torch.device(device)
    if torch.cuda.is_available():
        if dist.is_available() and dist.is_initialized():
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cuda")
    return torch.device("cpu")


def default_feature_dtype(device: torch.device) -> torch.dtype:
    """bf16 feature storage on CUDA (halves memory and bandwidth; the matmuls run in bf16 under
    autocast anyway), float32 on CPU (bf16 matmuls are slow on most CPUs)."""
    return torch.bfloat16 if device.type == "cuda" else torch.float32


def load_resident(data_path, device: torch.device, splits=("train", "val", "test"),
                  feature_dtype: torch.dtype | None = None) -> dict[str, AVVPSplit]:
    """Loads the splits of an AVVP data set onto ``device``.

    Args:
        data_path: Data set directory or file.
        device: Target device.
        splits: Splits to load.
        feature_dtype: Feature storage dtype (default :func:`default_feature_dtype`).

    Returns:
        ``{split: AVVPSplit}`` with every tensor on ``device``.
    """
    fd = feature_dtype or default_feature_dtype(device)
    return {s: load_avvp(data_path, s).to(device, fd) for s in splits}


def feature_dims(split: AVVPSplit) -> tuple[int, int, int]:
    """``(audio_dim, visual_dim, motion_dim)`` of a loaded split."""
    return split.audio.shape[-1], split.visual.shape[-1], split.motion.shape[-1]


def smooth(y: torch.Tensor, s: float) -> torch.Tensor:
    """Label smoothing as in HAN: ``s * y + (1 - s) * 0.5`` (``s = 1`` leaves ``y`` unchanged)."""
    return y if s == 1.0 else s * y + (1.0 - s) * 0.5


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


def shard_slice(b: int, rank: int, world: int) -> slice:
    """Rank ``rank``'s contiguous part of a batch of ``b`` rows (sizes differ by at most one)."""
    base, extra = divmod(b, world)
    start = rank * base + min(rank, extra)
    return slice(start, start + base + (1 if rank < extra else 0))


def num_batches(n: int, batch_size: int) -> int:
    return math.ceil(n / batch_size)


# --------------------------------------------------------------------------------------------
# Mixed precision
# --------------------------------------------------------------------------------------------

def autocast(device: torch.device, enabled: bool = True):
    """bf16 autocast on CUDA; a null context elsewhere."""
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _model_features(split: AVVPSplit, idx, dtype: torch.dtype | None):
    a, v, m = split.audio[idx], split.visual[idx], split.motion[idx]
    if dtype is not None:
        a, v, m = a.to(dtype), v.to(dtype), m.to(dtype)
    return a, v, m


def batch_inputs(split: AVVPSplit, idx, device: torch.device):
    """Features of rows ``idx`` in the dtype the model should see (float32 outside autocast)."""
    return _model_features(split, idx, None if device.type == "cuda" else torch.float32)


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------

@torch.no_grad()
def predict(model: nn.Module, split: AVVPSplit, *, batch_size: int = 2048, with_ca: bool = True,
            device: torch.device | None = None) -> dict[str, torch.Tensor]:
    """Probabilities for a whole split in a few large eval-mode forwards.

    Returns:
        ``global_prob`` (N, C), ``a_prob`` (N, C), ``v_prob`` (N, C), ``frame_prob`` (N, T, 2, C),
        float32 on the split's device.
    """
    net = unwrap(model)
    device = device or split.audio.device
    was_training = net.training
    net.eval()
    outs: dict[str, list[torch.Tensor]] = {k: [] for k in ("global_prob", "a_prob", "v_prob",
                                                          "frame_prob")}
    try:
        for start in range(0, len(split), batch_size):
            idx = slice(start, start + batch_size)
            with autocast(device):
                out = net(*batch_inputs(split, idx, device), with_ca=with_ca)
            for k in outs:
                outs[k].append(getattr(out, k).float())
    finally:
        net.train(was_training)
    return {k: torch.cat(v) for k, v in outs.items()}


def score(probs: Mapping[str, torch.Tensor], split: AVVPSplit, *, prefix: str,
          protocol: str = "han", threshold: float = 0.5) -> dict[str, float]:
    """Decodes probabilities and scores them against the split's dense truth.

    Returns:
        ``{f"{prefix}/{key}": value}`` for the ten AVVP F-scores (0..100).
    """
    from trainables.metrics.avvp import avvp_scores, decode

    if not split.has_truth:
        raise ValueError(f"split has no dense truth; cannot compute {prefix}/ scores")
    pred_a, pred_v = decode(probs["frame_prob"], probs["a_prob"], probs["v_prob"],
                            probs["global_prob"], protocol=protocol, threshold=threshold)
    s = avvp_scores(pred_a, pred_v, split.gt_audio, split.gt_visual)
    return {f"{prefix}/{k}": float(v) for k, v in s.items()}


def evaluate(model: nn.Module, split: AVVPSplit, *, prefix: str, protocol: str = "han",
             threshold: float = 0.5, with_ca: bool = True) -> dict[str, float]:
    """:func:`predict` then :func:`score`."""
    return score(predict(model, split, with_ca=with_ca), split, prefix=prefix,
                 protocol=protocol, threshold=threshold)


# --------------------------------------------------------------------------------------------
# Optimisation
# --------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------
# RNG state (weights_only-loadable)
# --------------------------------------------------------------------------------------------

def rng_state(generator: torch.Generator | None = None) -> dict[str, Any]:
    """Torch (CPU, CUDA), NumPy, Python and (optionally) a batching generator's states as
    tensors, lists and numbers only."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    py = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": {"version": py[0], "state": list(py[1]), "gauss": py[2]},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    if generator is not None:
        state["batches"] = generator.get_state()
    return state


def set_rng_state(state: Mapping[str, Any], generator: torch.Generator | None = None) -> None:
    """Restores what :func:`rng_state` captured."""
    torch.set_rng_state(state["torch"].cpu())
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["cached"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
    if generator is not None and "batches" in state:
        generator.set_state(state["batches"].cpu())


# --------------------------------------------------------------------------------------------
# torch.distributed
# --------------------------------------------------------------------------------------------

def dist_info() -> tuple[int, int]:
    """``(rank, world_size)``; ``(0, 1)`` when torch.distributed is not initialised."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def all_gather_cat(t: torch.Tensor, sizes: list[int] | None = None) -> torch.Tensor:
    """Concatenates ``t`` from every rank along dim 0, in rank order (identity without dist).

    Ranks may hold different numbers of rows (the last global batch of an epoch): rows are padded
    to the largest count for the collective and trimmed afterwards. No gradient flows through.

    Args:
        t: This rank's rows.
        sizes: Every rank's row count when the caller knows them (e.g. from
            :func:`shard_sizes`); saves a collective and a host sync.
    """
    rank, world = dist_info()
    if world == 1:
        return t
    if sizes is None:
        n = torch.tensor([t.shape[0]], device=t.device, dtype=torch.long)
        counts = [torch.zeros_like(n) for _ in range(world)]
        dist.all_gather(counts, n)
        sizes = [int(c.item()) for c in counts]
    if len(sizes) != world or sizes[rank] != t.shape[0]:
        raise ValueError(f"all_gather_cat: sizes {sizes} do not match world {world} / "
                         f"rank {rank} rows {t.shape[0]}")
    m = max(sizes)
    pad = t.new_zeros((m - t.shape[0], *t.shape[1:]))
    buf = [t.new_empty((m, *t.shape[1:])) for _ in range(world)]
    dist.all_gather(buf, torch.cat([t.detach(), pad]).contiguous())
    return torch.cat([b[:s] for b, s in zip(buf, sizes)])


def shard_sizes(b: int, world: int) -> list[int]:
    """Row counts of every rank's :func:`shard_slice` of a batch of ``b`` rows."""
    return [len(range(b)[shard_slice(b, r, world)]) for r in range(world)]


def maybe_ddp(model: nn.Module, device: torch.device) -> nn.Module:
    """Wraps ``model`` in DistributedDataParallel when torch.distributed is initialised."""
    if dist_info()[1] == 1:
        return model
    ids = [device.index] if device.type == "cuda" else None
    # The cross-attention weights sit idle in with_ca=False passes; those are no-grad here, but
    # find_unused_parameters keeps trainables that train with_ca=False (estimators) legal.
    return nn.parallel.DistributedDataParallel(model, device_ids=ids, find_unused_parameters=True)


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module inside a DDP wrapper (or the module itself)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


# --------------------------------------------------------------------------------------------
# Model selection and the epoch loop
# --------------------------------------------------------------------------------------------

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


def config_dict(cfg: Any) -> dict[str, Any]:
    """A dataclass config as a plain dict (for checkpoints and logging)."""
    return asdict(cfg)


def fit_loop(
    *,
    cfg: Any,
    model: nn.Module,
    data: Mapping[str, AVVPSplit],
    device: torch.device,
    step_fn: Callable[[nn.Module, StepInfo], torch.Tensor],
    reporter: Reporter | None = None,
    resume_state: Mapping[str, Any] | None = None,
    epoch_end_fn: Callable[[int], dict[str, float]] | None = None,
    extra_state_fn: Callable[[], dict[str, Any]] | None = None,
    eval_with_ca: bool = True,
    select: BestTracker | None = None,
    test: bool = True,
) -> dict[str, float]:
    """The epoch loop shared by HAN-based trainables.

    Per epoch: batches from :func:`epoch_batches` through ``step_fn`` (which returns the loss to
    backpropagate, already scaled for this rank's share), optimizer step, scheduler step,
    ``epoch_end_fn`` extra metrics, validation, model selection, then ``reporter``. After the last
    epoch the selected weights are loaded and the test split is scored.

    ``cfg`` must have ``epochs``, ``batch_size``, ``lr``, ``lr_step``, ``lr_gamma``, ``seed``,
    ``select_metric``, ``protocol``, ``threshold``.

    Every epoch's metrics also carry ``time/train_s`` and ``time/val_s`` (wall seconds).

    Returns:
        The selected epoch's metrics (``epoch``, ``train/loss``, ``val/...``, extras) plus
        ``test/...`` of the selected weights, ``time/test_s`` and ``best_epoch``. On return the
        model holds the selected weights.
    """
    rank, world = dist_info()
    train = data["train"]
    opt, sched = make_optimizer(model, cfg.lr, cfg.lr_step, cfg.lr_gamma)
    gen = torch.Generator().manual_seed(int(cfg.seed))
    best = select or BestTracker(cfg.select_metric, select_mode(cfg.select_metric))
    history: list[dict[str, float]] = []
    start = 0
    if resume_state is not None:
        unwrap(model).load_state_dict(resume_state["model"])
        opt.load_state_dict(resume_state["optimizer"])
        sched.load_state_dict(resume_state["scheduler"])
        best.load_state_dict(resume_state["best"])
        history = [dict(h) for h in resume_state.get("history", [])]
        set_rng_state(resume_state["rng"], gen)
        start = int(resume_state["epoch"]) + 1
    ddp = maybe_ddp(model, device)
    iters = num_batches(len(train), cfg.batch_size)

    def state_fn_for(epoch: int) -> Callable[[], dict]:
        def state_fn() -> dict:
            s = {
                "epoch": epoch,
                "model": unwrap(model).state_dict(),
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(),
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
        total = torch.zeros((), device=device)
        for it, (gidx, local) in enumerate(
                epoch_batches(len(train), cfg.batch_size, gen, device, rank, world)):
            info = StepInfo(epoch, it, iters, gidx, local, rank, world)
            loss = step_fn(ddp, info)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach()
        sched.step()
        metrics: dict[str, float] = {"epoch": float(epoch)}
        loss_sum = total
        if world > 1:
            dist.all_reduce(loss_sum)
        # step losses are scaled by world/len... so the all-reduced sum over ranks / world is the
        # mean of the global-batch losses.
        metrics["train/loss"] = float(loss_sum.item()) / (iters * world)
        t1 = time.perf_counter()
        if epoch_end_fn is not None:
            metrics.update(epoch_end_fn(epoch))
        t2 = time.perf_counter()
        metrics.update(evaluate(ddp, data["val"], prefix="val", protocol=cfg.protocol,
                                threshold=cfg.threshold, with_ca=eval_with_ca))
        metrics["time/train_s"] = t1 - t0
        metrics["time/val_s"] = time.perf_counter() - t2
        best.update(epoch, metrics, model)
        history.append(dict(metrics))
        if reporter is not None:
            reporter(epoch, dict(metrics), state_fn_for(epoch))

    result = dict(best.metrics)
    result["best_epoch"] = float(best.epoch)
    # Leave the selected weights in the model: callers (JoMoLD's estimator) predict with them.
    if best.weights is not None:
        unwrap(model).load_state_dict(best.weights)
    if test and "test" in data and best.weights is not None:
        t0 = time.perf_counter()
        result.update(evaluate(model, data["test"], prefix="test", protocol=cfg.protocol,
                               threshold=cfg.threshold, with_ca=eval_with_ca))
        result["time/test_s"] = time.perf_counter() - t0
    return result
