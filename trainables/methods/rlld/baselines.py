"""RLLD's reward baselines (ours; the paper has none): a moving average per modality, and a
moving average with a running advantage variance per (class, modality)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch


class MovingAverageBaseline:
    """Exponential moving average of rewards (ours); the first update sets it directly."""

    def __init__(self, momentum: float = 0.9, enabled: bool = True):
        self.momentum = momentum
        self.enabled = enabled
        self.value = 0.0
        self.initialised = False

    def __call__(self) -> float:
        return self.value if (self.enabled and self.initialised) else 0.0

    def update(self, mean_reward: float) -> None:
        if not self.initialised:
            self.value, self.initialised = float(mean_reward), True
        else:
            self.value = self.momentum * self.value + (1.0 - self.momentum) * float(mean_reward)

    def state_dict(self) -> dict[str, Any]:
        return {"value": self.value, "initialised": self.initialised}

    def load_state_dict(self, s: Mapping[str, Any]) -> None:
        self.value, self.initialised = float(s["value"]), bool(s["initialised"])


class VectorBaseline:
    """Moving-average reward baseline and running advantage variance per entry (ours).

    One entry per modality (size 1) or per (class, modality) (size C). An entry is set directly by
    its first update and only updated when present in a batch, so rare classes keep their own
    statistics instead of drifting toward the frequent classes'.

    Args:
        size: Number of entries.
        momentum: EMA momentum of both the mean and the variance.
        enabled: When False the baseline is 0 (variances are still tracked for ``adv_norm``).
    """

    def __init__(self, size: int, momentum: float = 0.9, enabled: bool = True):
        self.momentum = momentum
        self.enabled = enabled
        self.value = torch.zeros(size)
        self.var = torch.ones(size)
        self.seen = torch.zeros(size, dtype=torch.bool)
        # The variance starts at its first *non-zero* observation: with terminal_delta the first
        # step's credit is exactly 0, and a variance of 0 would blow up every later advantage.
        self.var_seen = torch.zeros(size, dtype=torch.bool)

    def __call__(self) -> torch.Tensor:
        """The baseline per entry, (size,) (0 where disabled or never updated)."""
        if not self.enabled:
            return torch.zeros_like(self.value)
        return torch.where(self.seen, self.value, torch.zeros_like(self.value))

    def std(self) -> torch.Tensor:
        """Running standard deviation of the advantage per entry (1 before the first non-zero
        observation)."""
        return self.var.clamp_min(1e-12).sqrt()

    def update(self, mean_reward: torch.Tensor, mean_sq_adv: torch.Tensor,
               present: torch.Tensor) -> None:
        """EMA step of the entries in ``present`` (bool); ``mean_sq_adv``: mean of ``(R - b)^2``."""
        m = self.momentum
        mean_reward, mean_sq_adv = mean_reward.float().cpu(), mean_sq_adv.float().cpu()
        present = present.cpu()
        first = present & ~self.seen
        ema_v = m * self.value + (1.0 - m) * mean_reward
        self.value = torch.where(first, mean_reward, torch.where(present, ema_v, self.value))
        self.seen = self.seen | present
        has_var = present & (mean_sq_adv > 0)
        first_var = has_var & ~self.var_seen
        ema_s = m * self.var + (1.0 - m) * mean_sq_adv
        self.var = torch.where(first_var, mean_sq_adv,
                               torch.where(present & self.var_seen, ema_s, self.var))
        self.var_seen = self.var_seen | has_var

    def state_dict(self) -> dict[str, Any]:
        return {"value": self.value.clone(), "var": self.var.clone(), "seen": self.seen.clone(),
                "var_seen": self.var_seen.clone()}

    def load_state_dict(self, s: Mapping[str, Any]) -> None:
        self.value, self.var = s["value"].float().cpu(), s["var"].float().cpu()
        self.seen, self.var_seen = s["seen"].bool().cpu(), s["var_seen"].bool().cpu()

