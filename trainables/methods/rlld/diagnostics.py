"""RLLD's diagnostics: the epoch's training figures, and how well the agent denoises against the
hidden truth of LLP-sim (greedy and sampled precision/recall, keep probabilities of noisy and
clean labels, noise AUC)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from trainables.core.dist import autocast
from trainables.methods.rlld.agent import revise_labels
from trainables.methods.rlld.rewards import guard_all_removed
from trainables.tasks.avvp.data import AVVPSplit
from trainables.tasks.avvp.eval import batch_inputs


@dataclass
class EpochStats:
    """Per-epoch sums (per-step sums stay 0-d device tensors until the epoch ends: no host sync
    per step)."""

    loss: Any = 0.0
    agent_obj: float = 0.0
    steps: int = 0
    episodes: int = 0
    applied: int = 0
    term_a: float = 0.0
    term_v: float = 0.0
    inter_sum: Any = 0.0
    inter_n: int = 0
    pending_sum: float = 0.0
    staleness_sum: float = 0.0
    max_pending: int = 0
    max_staleness: int = 0
    eval_s: float = 0.0
    duplicates: int = 0
    kept_a: Any = 0.0
    kept_v: Any = 0.0
    positives: Any = 0.0
    undone: Any = 0
    videos: int = 0
    wait_s: float = 0.0


def epoch_metrics(st: EpochStats, wall: float, workers: int, pool: tuple[int, int]
                  ) -> dict[str, float]:
    """The epoch's metrics from its sums (``pool``: the evaluator's resubmits and duplicates in
    this epoch). Timing-derived figures are under ``time/``: they differ between identical runs."""
    steps = max(1, st.steps)
    episodes = max(1, st.episodes)
    applied = max(1, st.applied)
    positives = max(1.0, float(st.positives))
    return {
        "train/loss": float(st.loss) / steps,
        "train/agent_advantage": st.agent_obj / applied,
        "train/kept_a": float(st.kept_a) / positives,
        "train/kept_v": float(st.kept_v) / positives,
        "train/undone": float(st.undone) / max(1, st.videos),
        "reward/terminal_a": st.term_a / applied,
        "reward/terminal_v": st.term_v / applied,
        "reward/inter": float(st.inter_sum) / max(1, st.inter_n),
        "reward/pending": st.pending_sum / episodes,
        "reward/applied": float(st.applied),
        "reward/duplicates": float(st.duplicates),
        "reward/resubmits": float(pool[0]),
        "reward/pool_duplicates": float(pool[1]),
        "rlld/policy_steps": float(st.applied),
        "rlld/task_steps": float(st.steps),
        "rlld/episodes": float(st.episodes),
        "rlld/staleness": st.staleness_sum / applied,
        "rlld/max_staleness": float(st.max_staleness),
        "rlld/max_pending": float(st.max_pending),
        "time/actor_util": min(1.0, st.eval_s / (wall * workers)) if wall > 0 else 0.0,
        "time/wait_s": st.wait_s,
        "time/steps_per_s": st.steps / wall if wall > 0 else 0.0,
        "time/epoch_s": wall,
    }


def noise_auc(keep_p: torch.Tensor, noisy: torch.Tensor) -> float:
    """ROC AUC of ``1 - keep_p`` for telling noisy labels (True) from clean ones (ties count 1/2).

    0.5 is chance, 1.0 means every noisy label has a lower keep probability than every clean one;
    NaN when either group is empty.
    """
    keep_p, noisy = keep_p.float().flatten().cpu(), noisy.bool().flatten().cpu()
    n_pos, n_neg = int(noisy.sum()), int((~noisy).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    score = -keep_p
    order = torch.argsort(score)
    s_sorted = score[order]
    ranks = torch.empty_like(score)
    ranks[order] = torch.arange(1, len(score) + 1, dtype=score.dtype)
    # Average ranks over ties.
    uniq, inv, counts = torch.unique(s_sorted, return_inverse=True, return_counts=True)
    first = torch.cumsum(counts, 0) - counts + 1
    avg = first.to(score.dtype) + (counts.to(score.dtype) - 1) / 2
    ranks[order] = avg[inv]
    u = float(ranks[noisy].sum()) - n_pos * (n_pos + 1) / 2
    return u / (n_pos * n_neg)


@torch.no_grad()
def greedy_removals(agent: nn.Module, split: AVVPSplit, all_removed: str, chunk: int = 1024
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The agent's deterministic decisions (keep iff p >= 0.5) over a split, with the
    all-removed rule ``all_removed`` (the config's).

    Returns:
        ``(removed_a, removed_v, p_a, p_v)``: bool (N, C) removals (after the all-removed
        guard) and the keep probabilities.
    """
    dev = split.labels.device
    agent.eval()
    ra, rv, pa, pv = [], [], [], []
    for s in range(0, len(split), chunk):
        idx = torch.arange(s, min(s + chunk, len(split)), device=dev)
        a, v, m = batch_inputs(split, idx, dev)
        y = split.labels[idx]
        with autocast(dev):
            out = agent(a, v, m, y)
        keep_a = (out.p_a >= 0.5).float()
        keep_v = (out.p_v >= 0.5).float()
        rev_a, rev_v, _, _ = guard_all_removed(y, revise_labels(keep_a, y),
                                               revise_labels(keep_v, y), all_removed)
        ra.append((y > 0.5) & (rev_a < 0.5))
        rv.append((y > 0.5) & (rev_v < 0.5))
        pa.append(out.p_a.float())
        pv.append(out.p_v.float())
    agent.train()
    return torch.cat(ra), torch.cat(rv), torch.cat(pa), torch.cat(pv)


def denoise_scores(agent: nn.Module, tr: AVVPSplit, all_removed: str, removals=None) -> dict[str, float]:
    """``denoise/...`` and ``noise_ratio/...`` of the agent's greedy policy on the train split
    ``tr`` against its truth, and the ``rlld/`` keep-probability figures (``removals``: a
    :func:`greedy_removals` result to score instead, for tests)."""
    from trainables.tasks.avvp.denoise import denoise_quality, noise_ratio_mae

    ra, rv, pa, pv = removals if removals is not None else greedy_removals(agent, tr, all_removed)
    labels = tr.labels > 0.5
    true_a = tr.gt_audio.bool().any(dim=1)
    true_v = tr.gt_visual.bool().any(dim=1)
    pos = labels.float().sum(0).clamp_min(1.0)
    est_a = (ra.float().sum(0) / pos)
    est_v = (rv.float().sum(0) / pos)
    args = [t.cpu().numpy() for t in (ra, rv, labels, true_a, true_v)]
    out = {k: float(x) for k, x in denoise_quality(*args).items()}
    out.update({k: float(x) for k, x in noise_ratio_mae(
        est_a.cpu().numpy(), est_v.cpu().numpy(), *[t.cpu().numpy() for t in
                                                   (labels, true_a, true_v)]).items()})
    # Threshold-free view: does the agent rank noisy labels below clean ones at all, even while
    # no keep probability has crossed 0.5 yet?
    for mod, p, truth in (("a", pa, true_a), ("v", pv, true_v)):
        out.update(keep_figures(mod, p, labels, truth))
    return out


def keep_figures(mod: str, p: torch.Tensor, labels: torch.Tensor, truth: torch.Tensor
                 ) -> dict[str, float]:
    """One modality's keep-probability figures over the present labels (``rlld/...``): noise AUC
    (overall and within a class), mean keep probability of noisy and clean labels, and the expected
    precision/recall of the sampled removals."""
    nan = float("nan")
    out = {f"rlld/noise_auc_{mod}": noise_auc(p[labels], ~truth[labels]),
           f"rlld/keep_p_{mod}": float(p[labels].mean()) if labels.any() else nan}
    # Mean keep probability of truly noisy vs clean labels, and the AUC within each class
    # (averaged, weighted by the class's labels): above 0.5 only if the agent tells noisy from
    # clean labels *of the same class*, not just noisy classes.
    noisy = labels & ~truth
    clean = labels & truth
    out[f"rlld/keep_p_noisy_{mod}"] = float(p[noisy].mean()) if noisy.any() else nan
    out[f"rlld/keep_p_clean_{mod}"] = float(p[clean].mean()) if clean.any() else nan
    num = den = 0.0
    for c in range(labels.shape[1]):
        lc = labels[:, c]
        auc = noise_auc(p[lc, c], ~truth[lc, c])
        if not math.isnan(auc):
            w = float(lc.sum())
            num, den = num + w * auc, den + w
    out[f"rlld/noise_auc_within_{mod}"] = num / den if den else nan
    # Precision/recall of the removals the *sampling* policy makes in expectation (what the task
    # network trains on), next to the greedy (p < 0.5) ones in denoise/...
    rem = (1.0 - p) * labels.float()
    tp = float(rem[noisy].sum())
    out[f"rlld/sampled_precision_{mod}"] = tp / float(rem.sum()) if rem.sum() > 0 else nan
    out[f"rlld/sampled_recall_{mod}"] = tp / float(noisy.sum()) if noisy.any() else nan
    return out
