"""VALOR's training objective on the harvested segment labels.

    L = w_video * BCE(p, y) + w_seg_a * BCE_logits(z_a, Y_a) + w_seg_v * BCE_logits(z_v, Y_v)

``p`` is HAN's video-level (MMIL) probability against the weak labels ``y`` (clamped to
[1e-7, 1 - 1e-7] as everywhere in avtune), ``z_a``/``z_v`` the student's audio and visual segment
logits against the harvested labels ``Y_a`` (CLAP) and ``Y_v`` (CLIP); each term is a mean over its
entries (videos x classes, videos x segments x classes), all weights 1 (the official code). There is
no term on the video-level modality probabilities in the official code; ``w_audio``/``w_visual``
add one against the harvested labels' video-level union (ours, off by default), the objective of
VAPLAN's row (2) on VALOR's labels.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from trainables.tasks.avvp.han import HANOutput, per_label_bce


class ValorWeights(NamedTuple):
    """Weights of the terms: video BCE, audio / visual segment BCE, audio / visual video-level BCE."""

    video: float = 1.0
    seg_a: float = 1.0
    seg_v: float = 1.0
    audio: float = 0.0
    visual: float = 0.0


def valor_loss(out: HANOutput, y: torch.Tensor, seg_a: torch.Tensor, seg_v: torch.Tensor,
               weights: ValorWeights | None = None, *, num_videos: int | None = None
               ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The objective on one batch (module docstring).

    Args:
        out: The student's output (needs ``frame_logits``).
        y: (B, C) weak labels.
        seg_a: (B, T, C) harvested audio segment labels (0/1).
        seg_v: (B, T, C) harvested visual segment labels.
        weights: Term weights (default :class:`ValorWeights`: the official objective).
        num_videos: Videos of the *global* batch the means are over (default ``B``): under
            data parallelism each rank passes the global count, so the ranks' losses sum to the
            global-batch mean.

    Returns:
        ``(total, parts)``: the scalar loss (float32) and its unweighted terms (``video``,
        ``seg_a``, ``seg_v``, ``audio``, ``visual``), each a share of its global-batch mean.
    """
    if out.frame_logits is None:
        raise ValueError("valor_loss needs the model's frame_logits")
    weights = ValorWeights() if weights is None else weights
    n = y.shape[0] if num_videos is None else num_videos
    _, t, c = seg_a.shape
    logits = out.frame_logits.float()
    seg = {m: F.binary_cross_entropy_with_logits(logits[:, :, i], target.float(), reduction="sum")
           for m, i, target in (("seg_a", 0, seg_a), ("seg_v", 1, seg_v))}
    parts = {"video": per_label_bce(out.global_prob, y).sum() / (n * c),
             **{m: v / (n * t * c) for m, v in seg.items()}}
    total = weights.video * parts["video"] + weights.seg_a * parts["seg_a"] + weights.seg_v * parts["seg_v"]
    for key, prob, seg, w in (("audio", out.a_prob, seg_a, weights.audio),
                              ("visual", out.v_prob, seg_v, weights.visual)):
        if w > 0:
            parts[key] = per_label_bce(prob, seg.amax(dim=1).float()).sum() / (n * c)
            total = total + w * parts[key]
    return total, parts
