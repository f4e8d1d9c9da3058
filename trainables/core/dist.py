"""torch.distributed awareness and device choice, shared by every method.

Nothing here imports ray or mlflow.
"""

from __future__ import annotations

import contextlib

import torch
import torch.distributed as dist
from torch import nn


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` if given, else the local CUDA device when available (rank-aware), else CPU."""
    if device is not None:
        return torch.device(device)
    if torch.cuda.is_available():
        if dist.is_available() and dist.is_initialized():
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cuda")
    return torch.device("cpu")


def autocast(device: torch.device, enabled: bool = True):
    """bf16 autocast on CUDA; a null context elsewhere."""
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def shard_slice(b: int, rank: int, world: int) -> slice:
    """Rank ``rank``'s contiguous part of a batch of ``b`` rows (sizes differ by at most one)."""
    base, extra = divmod(b, world)
    start = rank * base + min(rank, extra)
    return slice(start, start + base + (1 if rank < extra else 0))



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
