"""A fast stand-in trainable for orchestrator tests (same contract as trainables.methods.han.train)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import torch

SCORES = ("seg_A", "seg_V", "seg_AV", "seg_Type", "seg_Event",
          "event_A", "event_V", "event_AV", "event_Type", "event_Event")


@dataclass
class Config:
    epochs: int = 2
    seed: int = 0
    select_metric: str = "val/seg_Type"
    x: float = 0.5
    y: float = 1.0
    sleep_s: float = 0.0
    warm_epochs: int = 10


def score(cfg: Config, epoch: int) -> float:
    """A known optimum at x=0.6, y=1.8, improving with epochs; each seed above 0 adds 0.1."""
    return 50.0 - 100.0 * (cfg.x - 0.6) ** 2 - 10.0 * (cfg.y - 1.8) ** 2 + epoch + 0.1 * cfg.seed


def fit(cfg, data_path, *, reporter=None, resume_state=None, device=None):
    log = os.environ.get("AVTUNE_FAKE_LOG")
    start = int(resume_state["epoch"]) if resume_state else 0
    if log:
        with open(log, "a") as f:
            f.write(f"start x={cfg.x:.6f} y={cfg.y:.6f} from={start} data={os.path.basename(str(data_path))}\n")
    w = resume_state["w"] if resume_state else torch.zeros(3)
    best = float(resume_state["best"]) if resume_state else -1e9
    for epoch in range(start + 1, cfg.epochs + 1):
        time.sleep(cfg.sleep_s)
        fail = os.environ.get("AVTUNE_FAKE_FAIL_ONCE")  # "x,y,epoch": crash once there
        if fail and log:
            fx, fy, fe = (float(v) for v in fail.split(","))
            marker = log + ".failed"
            if (abs(cfg.x - fx) < 1e-9 and abs(cfg.y - fy) < 1e-9 and epoch == int(fe)
                    and not os.path.exists(marker)):
                open(marker, "w").close()
                raise RuntimeError("fake crash (AVTUNE_FAKE_FAIL_ONCE)")
        w = w + 1.0
        val = score(cfg, epoch)
        best = max(best, val)
        metrics = {"epoch": epoch, "train/loss": 1.0 / epoch, "val/seg_Type": val, "val/seg_V": val - 1}
        if reporter is not None:
            reporter(epoch, metrics, lambda e=epoch, w=w, b=best: {"epoch": e, "w": w.clone(), "best": b})
    out = {"val/seg_Type": best}
    out.update({f"test/{k}": best - i for i, k in enumerate(SCORES)})
    return out
