"""A deliberately plain, per-video implementation of the LLP F-scores.

It restates the protocol one video, one class and one event at a time, with Python loops and no
cleverness, so that it can be read against the LLP protocol's definitions. It exists to check
:func:`trainables.tasks.avvp.metrics.avvp_scores` (tests) and to time it against (the ``metrics``
benchmark); training code should never call it: it is orders of magnitude slower.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def extract_events(seq: list[int]) -> list[tuple[int, int]]:
    """Runs of consecutive 1s in a 0/1 sequence as ``(start, end)`` with ``end`` exclusive."""
    events = []
    start = None
    for i, x in enumerate(seq):
        if x and start is None:
            start = i
        if not x and start is not None:
            events.append((start, i))
            start = None
    if start is not None:
        events.append((start, len(seq)))
    return events


def iou_at_least_half(p: tuple[int, int], g: tuple[int, int]) -> bool:
    """Whether two events overlap with intersection >= half their union (integer-exact)."""
    inter = max(0, min(p[1], g[1]) - max(p[0], g[0]))
    union = (p[1] - p[0]) + (g[1] - g[0]) - inter
    return 2 * inter >= union


def segment_counts(pred: list[int], gt: list[int]) -> tuple[int, int, int]:
    """Segment-level TP, FP, FN of one class sequence."""
    tp = fp = fn = 0
    for p, g in zip(pred, gt):
        if p and g:
            tp += 1
        elif p and not g:
            fp += 1
        elif g and not p:
            fn += 1
    return tp, fp, fn


def event_counts(pred: list[int], gt: list[int]) -> tuple[int, int, int]:
    """Event-level TP, FP, FN of one class sequence."""
    p_events = extract_events(pred)
    g_events = extract_events(gt)
    tp = fp = fn = 0
    for p in p_events:
        if any(iou_at_least_half(p, g) for g in g_events):
            tp += 1
        else:
            fp += 1
    for g in g_events:
        if not any(iou_at_least_half(p, g) for p in p_events):
            fn += 1
    return tp, fp, fn


def video_f(counts: list[tuple[int, int, int]]) -> float:
    """Mean F over the classes that have any TP, FP or FN; 1.0 when none does."""
    scores = []
    for tp, fp, fn in counts:
        if tp + fp + fn > 0:
            scores.append(2 * tp / (2 * tp + fp + fn))
    if not scores:
        return 1.0
    return sum(scores) / len(scores)


def video_scores(pa, pv, ga, gv) -> dict[str, float]:
    """The per-video scores (0..1) of one video; arguments are (segments, classes) 0/1 arrays."""
    n_seg, n_cls = len(pa), len(pa[0])
    out = {}
    for level, count in (("seg", segment_counts), ("event", event_counts)):
        per_a, per_v, per_av, pooled = [], [], [], []
        for c in range(n_cls):
            sa_p = [int(pa[t][c]) for t in range(n_seg)]
            sv_p = [int(pv[t][c]) for t in range(n_seg)]
            sa_g = [int(ga[t][c]) for t in range(n_seg)]
            sv_g = [int(gv[t][c]) for t in range(n_seg)]
            sav_p = [a and v for a, v in zip(sa_p, sv_p)]
            sav_g = [a and v for a, v in zip(sa_g, sv_g)]
            ca = count(sa_p, sa_g)
            cv = count(sv_p, sv_g)
            per_a.append(ca)
            per_v.append(cv)
            per_av.append(count(sav_p, sav_g))
            pooled.append((ca[0] + cv[0], ca[1] + cv[1], ca[2] + cv[2]))
        out[f"{level}_A"] = video_f(per_a)
        out[f"{level}_V"] = video_f(per_v)
        out[f"{level}_AV"] = video_f(per_av)
        out[f"{level}_Event"] = video_f(pooled)
    return out


def avvp_scores_reference(pred_a: Any, pred_v: Any, gt_a: Any, gt_v: Any) -> dict[str, float]:
    """The ten LLP scores (0..100), one video at a time; same contract as ``avvp_scores``."""
    arrs = [np.asarray(x).astype(int).tolist() for x in (pred_a, pred_v, gt_a, gt_v)]
    sums: dict[str, float] = {}
    n = len(arrs[0])
    for i in range(n):
        for k, v in video_scores(arrs[0][i], arrs[1][i], arrs[2][i], arrs[3][i]).items():
            sums[k] = sums.get(k, 0.0) + v
    out = {k: 100.0 * v / n for k, v in sums.items()}
    for level in ("seg", "event"):
        out[f"{level}_Type"] = (out[f"{level}_A"] + out[f"{level}_V"] + out[f"{level}_AV"]) / 3
    return out
