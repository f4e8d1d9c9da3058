"""VALOR's optimiser and learning-rate schedule (the official training scripts').

AdamW (betas (0.5, 0.999), eps 1e-8, weight decay 1e-3) with the gradients' total norm clipped
at 1.0 before every step, and a per-epoch schedule: for epoch ``e = 1..E`` (set before the epoch
runs), a linear warm-up ``e / W * lr`` while ``e < W`` (so epoch 1 already trains at ``lr / W``),
then a cosine from ``lr`` at ``e = W`` down to ``lr_min`` at ``e = E``. When ``E == W`` (a run
shortened to its warm-up) the last epoch is at ``lr`` (the official formula divides by zero there).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

OPTIMIZERS = ("adamw", "adam")


def lr_at(epoch: int, *, epochs: int, warmup_epochs: int, lr: float, lr_min: float) -> float:
    """The learning rate of 0-based ``epoch`` (module docstring; official epoch ``epoch + 1``)."""
    e = epoch + 1
    if e < warmup_epochs:
        return e / warmup_epochs * lr
    progress = (e - warmup_epochs) / max(epochs - warmup_epochs, 1)
    return lr_min + 0.5 * (lr - lr_min) * (1.0 + math.cos(math.pi * min(progress, 1.0)))


def make_optimizer(cfg: Any, model: nn.Module
                   ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """The optimiser (``cfg.optimizer``: AdamW, or Adam with L2 weight decay), gradient clipping at
    ``cfg.grad_clip`` (0 = off) as a step pre-hook, and the per-epoch schedule as a LambdaLR that
    :func:`trainables.core.loop.fit_loop` steps after each epoch."""
    params = [p for p in model.parameters() if p.requires_grad]
    fused = all(p.device.type in ("cpu", "cuda") for p in params)
    cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    opt = cls(params, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps,
              weight_decay=cfg.weight_decay, fused=fused)
    if cfg.grad_clip > 0:
        # Under DDP the gradients are already averaged when the optimiser steps: the norm is global.
        def clip(*_: Any) -> None:
            nn.utils.clip_grad_norm_(params, cfg.grad_clip)

        opt.register_step_pre_hook(clip)

    def rate(epoch: int) -> float:
        return lr_at(epoch, epochs=cfg.epochs, warmup_epochs=cfg.warmup_epochs, lr=cfg.lr,
                     lr_min=cfg.lr_min) / cfg.lr

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, rate)
