"""RLLD's states: one epoch of overlapping windows of training videos (the paper: a state is a
batch of 128 videos, consecutive states share a quarter of them), and their grouping into
episodes."""

from __future__ import annotations

import math

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
