"""VAPLAN pseudo-label denoising (PLD).

Zhou et al., "Advancing Weakly-Supervised Audio-Visual Video Parsing via Segment-wise Pseudo
Labeling". After training with the PLE objective, the model's segment probabilities P are compared
with the segment pseudo labels Y, per video and modality:

* ``M = BCE(P, Y)`` elementwise, a (T, C) matrix;
* only the columns of classes in the video-level pseudo label (any segment of the class is 1) are
  considered; the others are all-zero labels of classes the video does not have and stay as they are;
* ``mu_c`` is the mean of the K smallest entries of column c: the loss level at which the model
  fits the class's labels well in this video;
* ``Y[t, c]`` is flipped where ``M[t, c] > alpha * mu_c``: a label the model disagrees with far
  more than with the class's best-fitted segments is taken to be wrong.

The inequality is strict, so a tie never flips. The paper's settings: visual K = 5, alpha = 30;
audio K = 6, alpha = 400 (its final setup refines the visual labels only; the audio values come
from its ablation). K larger than T is clipped to T (mu_c is then the column mean).

**mu_c = 0.** For a sigmoid output the K smallest losses are positive in exact arithmetic; they
are all 0 only when float rounding puts P exactly on its labels (a bf16 forward rounds P >= 0.998
to 1.0; float32 does so only past a logit of about 17). The rule as stated would then flip every
entry of the column with any positive loss, including labels the model agrees with (P = 0.99 on
a 1). At ``mu_c = 0`` the threshold ``alpha * mu_c`` is therefore replaced by ``ln 2``
(:data:`MU_ZERO_LOSS`), the loss at P = 0.5: only labels the model contradicts (P on the other side
of 0.5) flip. ``P`` should come from a float32 forward (the caller's job: VAPLAN's first stage
predicts with autocast off), and the losses are computed here in float32 with autocast off.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

# The paper's PLD settings per modality.
K_VISUAL = 5
ALPHA_VISUAL = 30.0
K_AUDIO = 6
ALPHA_AUDIO = 400.0
# The flip threshold where the K smallest losses are all 0: the loss of P = 0.5 (module docstring).
MU_ZERO_LOSS = math.log(2.0)


def _tensor3(x: Any, name: str) -> torch.Tensor:
    t = x if isinstance(x, torch.Tensor) else torch.as_tensor(x)
    if t.ndim != 3:
        raise ValueError(f"{name}: expected (videos, segments, classes), got shape {tuple(t.shape)}")
    return t


def pseudo_label_losses(seg_prob: Any, seg_labels: Any) -> torch.Tensor:
    """``M = BCE(P, Y)`` elementwise, ``(N, T, C)`` float32.

    Logs are floored at -100 (as in ``torch.nn.functional.binary_cross_entropy``), so a confident
    wrong probability of exactly 0 or 1 gives a large finite loss, and ``P = Y`` gives exactly 0.
    """
    p = _tensor3(seg_prob, "seg_prob").float()
    y = _tensor3(seg_labels, "seg_labels").to(p.device)
    if p.shape != y.shape:
        raise ValueError(f"seg_prob {tuple(p.shape)} and seg_labels {tuple(y.shape)} differ")
    with torch.autocast(device_type=p.device.type, enabled=False):  # BCE refuses CUDA autocast
        return F.binary_cross_entropy(p.clamp(0.0, 1.0), (y != 0).float(), reduction="none")


def flip_mask(seg_prob: Any, seg_labels: Any, k: int, alpha: float) -> torch.Tensor:
    """``(N, T, C)`` bool: the entries PLD flips (see the module docstring).

    Args:
        seg_prob: ``(N, T, C)`` segment probabilities P of one modality.
        seg_labels: ``(N, T, C)`` segment pseudo labels Y of that modality.
        k: Number of smallest losses per column averaged into mu_c (clipped to T; >= 1).
        alpha: Multiple of mu_c above which a label flips (>= 0); where mu_c = 0 the threshold is
            :data:`MU_ZERO_LOSS` instead.
    """
    if int(k) < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if alpha < 0:
        raise ValueError(f"alpha must be >= 0, got {alpha}")
    m = pseudo_label_losses(seg_prob, seg_labels)
    y = _tensor3(seg_labels, "seg_labels").to(m.device) != 0
    kk = min(int(k), m.shape[1])
    mu = m.topk(kk, dim=1, largest=False).values.mean(dim=1, keepdim=True)  # (N, 1, C)
    threshold = torch.where(mu > 0, alpha * mu, torch.full_like(mu, MU_ZERO_LOSS))
    considered = y.any(dim=1, keepdim=True)  # classes of the video-level pseudo label
    return considered & (m > threshold)


def denoise_pseudo_labels(seg_prob: Any, seg_labels: Any, k: int, alpha: float) -> torch.Tensor:
    """Refined segment pseudo labels: ``Y`` with the entries of :func:`flip_mask` flipped.

    Args:
        seg_prob: ``(N, T, C)`` segment probabilities of the model trained with the PLE objective.
        seg_labels: ``(N, T, C)`` segment pseudo labels (bool or 0/1) of the same modality.
        k: K (:data:`K_VISUAL`, :data:`K_AUDIO`).
        alpha: alpha (:data:`ALPHA_VISUAL`, :data:`ALPHA_AUDIO`).

    Returns:
        ``(N, T, C)`` bool tensor on ``seg_prob``'s device.
    """
    flip = flip_mask(seg_prob, seg_labels, k, alpha)
    y = _tensor3(seg_labels, "seg_labels").to(flip.device) != 0
    return y ^ flip
