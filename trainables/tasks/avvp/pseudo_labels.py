"""Segment pseudo labels from teacher scores: the one harvesting rule, and its quality.

Every teacher-based AVVP method turns per-(video, segment, class) teacher scores into segment
pseudo labels the same way: a score passes a threshold, and only classes of the video's weak label
survive,

    Y[n, t, c] = cmp(s[n, t, c], theta[c]) AND y[n, c].

:func:`harvest` is that rule. The methods agree on it and differ in what they feed it:

========================  ==========================================  ==============================
                          VAPLAN's PLG                                VALOR's label elaboration
========================  ==========================================  ==============================
score ``s``               ``softmax_c(cos(e_t, w_c))``, no             ``scale * cos(e_t, w_c)``: each
                          temperature (scores near 1/C)                class on its own, no softmax
threshold ``theta``       one scalar per modality (0.041 / 0.038)      one value per class and
                                                                       modality
comparison                ``>=`` (inclusive)                           ``>`` (strict)
after harvesting          video-level labels (any over segments),      none: segment targets of a
                          richness loss, PLD refinement                BCE-with-logits loss
========================  ==========================================  ==============================

:func:`label_quality` scores harvested labels against a split's hidden truth (segment- and
event-level F per modality, the figure the papers report for their teachers).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

SHORT = {"visual": "v", "audio": "a"}


def harvest(scores: Any, thresholds: float | Sequence[float] | torch.Tensor, labels: Any, *,
            strict: bool = False) -> torch.Tensor:
    """Segment pseudo labels ``cmp(scores, thresholds) AND labels``.

    Args:
        scores: ``(N, T, C)`` teacher scores (tensor or array).
        thresholds: A scalar, or one threshold per class ``(C,)``.
        labels: ``(N, C)`` weak video labels (0/1 or bool).
        strict: ``>`` (VALOR) instead of ``>=`` (VAPLAN).

    Returns:
        ``(N, T, C)`` bool tensor on ``scores``' device.

    Raises:
        ValueError: Shapes that do not fit together.
    """
    s = scores if isinstance(scores, torch.Tensor) else torch.as_tensor(np.asarray(scores))
    if s.ndim != 3:
        raise ValueError(f"scores: expected (N, T, C), got shape {tuple(s.shape)}")
    y = labels if isinstance(labels, torch.Tensor) else torch.as_tensor(np.asarray(labels))
    y = y.to(s.device)
    if tuple(y.shape) != (s.shape[0], s.shape[2]):
        raise ValueError(f"labels: expected shape {(s.shape[0], s.shape[2])}, got {tuple(y.shape)}")
    thr = torch.as_tensor(thresholds, dtype=s.dtype if s.is_floating_point() else torch.float32,
                          device=s.device)
    if thr.ndim > 1 or (thr.ndim == 1 and thr.shape[0] != s.shape[2]):
        raise ValueError(f"thresholds: expected a scalar or {s.shape[2]} values, got shape "
                         f"{tuple(thr.shape)}")
    passed = s > thr if strict else s >= thr
    return passed & (y != 0)[:, None, :]


def label_quality(seg_labels: Mapping[str, torch.Tensor], split: Any, prefix: str) -> dict[str, float]:
    """Quality of segment pseudo labels against a split's hidden truth (``{}`` without truth).

    Args:
        seg_labels: ``{"visual": (N, T, C), "audio": (N, T, C)}`` labels of the split's videos.
        split: The :class:`~trainables.tasks.avvp.data.AVVPSplit` they label.
        prefix: Key prefix (``"pseudo/"``).

    Returns:
        ``{prefix}seg_F_v``/``event_F_v`` (segment- and event-level F of the visual labels against
        the visual truth, the project's LLP metrics), audio likewise (``_a``).
    """
    from trainables.tasks.avvp.teachers import pseudo_label_quality

    if not split.has_truth:
        return {}
    out: dict[str, float] = {}
    for m, gt in (("visual", split.gt_visual), ("audio", split.gt_audio)):
        q = pseudo_label_quality(seg_labels[m].cpu().numpy(), gt.cpu().numpy())
        out[f"{prefix}seg_F_{SHORT[m]}"] = q["seg"]
        out[f"{prefix}event_F_{SHORT[m]}"] = q["event"]
    return out
