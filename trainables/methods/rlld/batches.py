"""RLLD's states: one epoch of overlapping windows of training videos (the paper: a state is a
batch of 128 videos, consecutive states share a quarter of them), their grouping into episodes,
and the records an episode keeps until its reward arrives."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch


def stride_of(batch_size: int, overlap: float) -> int:
    """Distance between the starts of consecutive states (128, 1/4 -> 96)."""
    return max(1, batch_size - int(round(batch_size * overlap)))


def overlapping_batches(n: int, batch_size: int, overlap: float,
                        generator: torch.Generator | None = None) -> list[torch.Tensor]:
    """One epoch of states: a shuffled order cut into windows of ``batch_size`` every stride.

    Window k covers positions ``[k * stride, k * stride + batch_size)`` of the permutation, wrapping
    around at the end, so consecutive windows share ``batch_size - stride`` videos and every video
    is in at least one window. ``ceil(n / stride)`` windows; with ``n <= batch_size`` one window.
    """
    perm = torch.randperm(n, generator=generator)
    if n <= batch_size:
        return [perm]
    stride = stride_of(batch_size, overlap)
    steps = math.ceil(n / stride)
    ar = torch.arange(batch_size)
    return [perm[(k * stride + ar) % n] for k in range(steps)]


def episodes(states: list[torch.Tensor], steps: int) -> list[list[torch.Tensor]]:
    """Consecutive states grouped into episodes of ``steps`` (the last one of an epoch may be
    shorter: an episode does not cross an epoch's end, so a checkpoint never holds half of one)."""
    return [states[i:i + steps] for i in range(0, len(states), steps)]


@dataclass
class StepRecord:
    """One state of an episode: everything that defines its log pi(a | s) and known rewards."""

    idx: torch.Tensor  # (B,) rows of the train split (the state)
    act_a: torch.Tensor  # (B, C) actions
    act_v: torch.Tensor
    undone_a: torch.Tensor  # (B,) bool: the all-removed rule undid this modality's actions
    undone_v: torch.Tensor
    r_known_a: torch.Tensor  # (B,) inter-rewards, or all_removed_reward for undone videos
    r_known_v: torch.Tensor
    rng: tuple[torch.Tensor, torch.Tensor | None]  # CPU / CUDA RNG before the acting forward
    p_a: torch.Tensor  # (B, C) acting keep probabilities (for checks)
    p_v: torch.Tensor


@dataclass
class EpisodeRecord:
    """What episode t keeps until its reward arrives."""

    episode: int
    steps: list[StepRecord]
    base_a: Any  # baselines at acting time: float, or (C,)/(1,) tensors for element-wise credit
    base_v: Any
    version: int  # agent updates applied before acting
    params: dict[str, torch.Tensor] | None  # acting parameters (None: reuse the live agent)
    submitted_at: float
