"""The one seeding helper used everywhere in avtune."""

from __future__ import annotations

import os
import random

import numpy as np
import torch


def set_seed(seed: int | None) -> int:
    """Seeds Python's ``random``, NumPy and torch (CPU and all CUDA devices).

    Args:
        seed: The seed; ``None`` draws a fresh one from the OS so that it can still be logged.

    Returns:
        The seed actually used (log it with the run).
    """
    if seed is None:
        seed = int.from_bytes(os.urandom(4), "little") & 0x7FFFFFFF
    seed = int(seed)
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed must be in [0, 2**32), got {seed}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return seed
