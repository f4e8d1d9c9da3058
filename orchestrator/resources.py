"""What a run occupies: this machine's resources, one trial's demand, how many trials fit at once."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any


def local_resources() -> dict[str, float]:
    """This machine's CPUs and CUDA GPUs."""
    import torch

    return {"CPU": float(os.cpu_count() or 1), "GPU": float(torch.cuda.device_count())}


def per_trial_demand(plan: Any, extra_bundles: list[dict] | None = None) -> dict[str, float]:
    """Total resources one running trial occupies (its workers and extra bundles included);
    ``plan`` has ``cpus``, ``gpus`` and ``workers``."""
    workers = int(plan.workers)
    demand = {"CPU": float(plan.cpus) * workers, "GPU": float(plan.gpus) * workers}
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
