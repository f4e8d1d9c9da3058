"""Checkpoint pieces: RNG states as plain tensors (``torch.load(..., weights_only=True)``) and the
config a checkpoint was written under.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

import numpy as np
import torch

log = logging.getLogger(__name__)


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


def config_dict(cfg: Any) -> dict[str, Any]:
    """A dataclass config as a plain dict (for checkpoints and logging)."""
    return asdict(cfg)


# Fields a resume may change: more (or fewer) epochs continue the same run.
RESUMABLE_CHANGES = frozenset({"epochs"})


def check_resume_config(saved: Mapping[str, Any] | None, cfg: Any) -> None:
    """Refuses to resume a checkpoint written under a different config.

    A changed ``epochs`` is allowed (and logged): it extends or shortens the same run. Any other
    changed field would silently mix two configurations in one result.

    Raises:
        ValueError: Naming every field whose saved and current values differ.
    """
    if saved is None:
        return
    now = config_dict(cfg)
    changed = sorted(k for k in set(saved) | set(now) if saved.get(k) != now.get(k))
    allowed = [k for k in changed if k in RESUMABLE_CHANGES]
    if allowed:
        log.warning("resuming with changed %s", ", ".join(f"{k}: {saved.get(k)!r} -> {now.get(k)!r}"
                                                          for k in allowed))
    bad = [k for k in changed if k not in RESUMABLE_CHANGES]
    if bad:
        raise ValueError("checkpoint was written under a different config: "
                         + ", ".join(f"{k}: saved {saved.get(k)!r}, now {now.get(k)!r}" for k in bad))
