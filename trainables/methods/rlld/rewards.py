"""RLLD's rewards: the soft inter-reward, the all-removed rule, the terminal (validation) reward,
how an episode's rewards are combined, and the REINFORCE surrogate.

Soft inter-reward per video and modality (our reading; the paper gives only the formula):
``alpha1 * exp(-(KL(l_soft||l) + KL(l||l_soft)) / 2) + alpha2 * cos(l_soft, l)``, with ``l_soft``
the original label vector smoothed as ``(1 - s) * y + s / C`` and both vectors normalised to
distributions over classes (``+ eps`` before normalising and inside the logs) for the KL terms;
the cosine uses the unnormalised vectors.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from trainables.methods.rlld.config import Config


def soft_labels(y: torch.Tensor, smoothing: float) -> torch.Tensor:
    """``l_soft = (1 - s) * y + s / C`` for (B, C) 0/1 labels."""
    return (1.0 - smoothing) * y.float() + smoothing / y.shape[-1]


def _as_dist(x: torch.Tensor, eps: float) -> torch.Tensor:
    x = x.float() + eps
    return x / x.sum(dim=-1, keepdim=True)


def inter_reward(y: torch.Tensor, revised: torch.Tensor, *, alpha1: float = 0.6,
                 alpha2: float = 0.4, smoothing: float = 0.1, eps: float = 1e-6) -> torch.Tensor:
    """Soft inter-reward per video: ``alpha1 * R1 + alpha2 * R2`` (see the module docstring).

    Args:
        y: (B, C) original labels.
        revised: (B, C) revised labels of one modality.
        alpha1: Weight of ``R1 = exp(-(KL(l_soft||l) + KL(l||l_soft)) / 2)``.
        alpha2: Weight of ``R2 = cos(l_soft, l)``.
        smoothing: Smoothing of ``l_soft``.
        eps: The KL epsilon: in the logs and the normalisation (also the cosine's).

    Returns:
        (B,) float32 rewards.
    """
    ls = soft_labels(y, smoothing)
    p, q = _as_dist(ls, eps), _as_dist(revised, eps)
    lp, lq = torch.log(p + eps), torch.log(q + eps)
    kl_pq = (p * (lp - lq)).sum(-1)
    kl_qp = (q * (lq - lp)).sum(-1)
    r1 = torch.exp(-(kl_pq + kl_qp) / 2.0)
    r2 = torch.nn.functional.cosine_similarity(ls, revised.float(), dim=-1, eps=eps)
    return alpha1 * r1 + alpha2 * r2


def guard_all_removed(y: torch.Tensor, rev_a: torch.Tensor, rev_v: torch.Tensor,
                      mode: str = "video"
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Undoes actions that removed every label (the all-removed rule).

    Args:
        y: (B, C) original labels.
        rev_a: (B, C) revised audio labels.
        rev_v: (B, C) revised visual labels.
        mode: ``video``: a video is undone (both modalities reset to ``y``) when both revised
            vectors are empty; ``modality``: each modality is undone on its own when its revised
            vector is empty.

    Returns:
        ``(rev_a, rev_v, undone_a, undone_v)``: the labels with undone entries reset to ``y``,
        and the (B,) bool masks of undone videos per modality (they get ``all_removed_reward``).
    """
    had = y.sum(-1) > 0
    empty_a, empty_v = rev_a.sum(-1) == 0, rev_v.sum(-1) == 0
    if mode == "video":
        undone_a = undone_v = had & empty_a & empty_v
    elif mode == "modality":
        undone_a, undone_v = had & empty_a, had & empty_v
    else:
        raise ValueError(f"all_removed must be 'video' or 'modality', got {mode!r}")
    yf = y.float()
    return (torch.where(undone_a.unsqueeze(-1), yf, rev_a),
            torch.where(undone_v.unsqueeze(-1), yf, rev_v), undone_a, undone_v)


def terminal_reward(metrics: Mapping[str, float], cfg: Config) -> tuple[float, float]:
    """``(R_terminal_a, R_terminal_v)`` from a validation result (keys ``val/<score>``, 0..100)."""
    def get(name: str) -> float:
        for k in (f"val/{name}", name):
            if k in metrics:
                return float(metrics[k])
        raise KeyError(f"validation result has no {name!r}; keys: {sorted(metrics)}")
    s = cfg.terminal_scale / 100.0
    return get(cfg.terminal_metric_a) * s, get(cfg.terminal_metric_v) * s


def class_terminal_reward(metrics: Mapping[str, float], cfg: Config, num_classes: int
                          ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-class terminal rewards ``(T_a, T_v)``, each (C,): ``val_cls_<m>/<c> / 100 x scale``."""
    s = cfg.terminal_scale / 100.0
    try:
        return tuple(torch.tensor([float(metrics[f"val_cls_{m}/{c}"]) * s
                                   for c in range(num_classes)]) for m in ("a", "v"))
    except KeyError as e:
        raise KeyError(f"terminal_credit='class' needs per-class validation scores; missing {e} "
                       f"(is the evaluator's config the learner's?)") from None


def known_rewards(y: torch.Tensor, rev: torch.Tensor, undone: torch.Tensor, cfg: Config
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """A step's rewards of one modality that do not wait for validation.

    Returns:
        ``(inter, known)``, each (B,): the weighted soft inter-reward (0 with the inter-reward
        off), and the same with ``all_removed_reward`` for undone videos.
    """
    if cfg.use_inter_reward:
        ri = inter_reward(y, rev, alpha1=cfg.alpha1, alpha2=cfg.alpha2,
                          smoothing=cfg.inter_smoothing, eps=cfg.inter_eps)
        if cfg.inter_weight != 1.0:
            ri = ri * cfg.inter_weight
    else:
        ri = torch.zeros(len(y), device=y.device)
    return ri, torch.where(undone, torch.full_like(ri, cfg.all_removed_reward), ri)


def video_rewards(known: torch.Tensor, undone: torch.Tensor, terminal) -> torch.Tensor:
    """``inter_aggregate="video"``: video i's reward ``R_terminal + R_inter,i`` (undone videos:
    ``all_removed_reward`` alone); (B,)."""
    return known + terminal * (~undone).float()


def episode_reward(knowns: list[torch.Tensor], terminal: float) -> torch.Tensor:
    """``inter_aggregate="episode"``: the episode's one ``R(S) = R_terminal + R_inter`` of a
    branch, ``R_inter`` the mean over the episode's videos of their known rewards (undone videos
    count with ``all_removed_reward``); a 0-d tensor."""
    return torch.cat(knowns).mean() + terminal


def reinforce_loss(log_prob: torch.Tensor, reward: torch.Tensor, baseline=0.0) -> torch.Tensor:
    """REINFORCE surrogate ``-mean((R - b) * log pi)``; minimising it ascends expected reward."""
    return -((reward.detach() - baseline) * log_prob).mean()
