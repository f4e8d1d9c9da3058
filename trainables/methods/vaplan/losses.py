"""VAPLAN's pseudo-label exploitation (PLE): the richness-aware loss and the training objective.

Zhou et al., "Advancing Weakly-Supervised Audio-Visual Video Parsing via Segment-wise Pseudo
Labeling". Notation per video and modality: ``y`` (C,) the weak video label, ``Y`` (T, C) the
segment pseudo labels (PLG or PLD), ``P`` (T, C) the model's segment probabilities.

* **Category richness** of segment t: ``cr_t = sum_c Y_tc / sum_c y_c``, the share of the video's
  labelled classes present at t. **Segment richness** of class c: ``sr_c = (1/T) sum_t Y_tc``, the
  share of segments where c is present. ``pcr`` and ``psr`` are the same quantities computed from P.
* ``L_S = sum over modalities of BCE(pcr, cr) + BCE(psr, sr)`` and the objective
  ``L = L_V + lambda L_S`` (lambda = 0.5), with
  ``L_V = BCE(p_video, y) + BCE(p_a, yhat_a) + BCE(p_v, yhat_v)`` where ``yhat`` are the video-level
  pseudo labels (a class is 1 where any of its segment pseudo labels is 1).

**Reading of pcr** (the text does not mask P by the video label, so ``sum_c P_tc`` runs over all C
classes while ``sum_c y_c`` counts only the labelled ones, and pcr can exceed 1, outside BCE's domain).
Default ``mask="label"``: P is multiplied by ``y`` before the class sum, ``pcr_t = sum_c y_c P_tc /
sum_c y_c``, in [0, 1] and the exact analogue of cr (``Y_tc`` is 0 wherever ``y_c`` is 0, so cr's
numerator is also a sum over labelled classes only). Unlabelled classes are still pushed down by
``BCE(p_video, y)`` and by the segment-richness term. ``mask="none"`` is the literal reading: the
unmasked sum, clamped to [0, 1] for the BCE (no gradient where it exceeds 1). psr needs no mask (a
mean of probabilities is in [0, 1]) and covers all C classes in both readings (``sr_c = 0`` for an
unlabelled class, so psr pushes its probabilities down, consistent with the weak label).

**Reduction.** ``BCE(pcr, cr)`` is the mean over the N x T (video, segment) entries and
``BCE(psr, sr)`` the mean over the N x C (video, class) entries; the richness loss of a modality is
their sum (``num_videos`` replaces N in both denominators, for one rank's shard of a global batch).
The parts of :func:`ple_loss` are means over their entries the same way. A video whose label sum is 0 (none in LLP) has ``cr = 0`` and uses the denominator 1, so
nothing divides by zero: with ``mask="label"`` its pcr is 0 and it adds exactly 0 to the cr term.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

MASKS = ("label", "none")
LAMBDA = 0.5  # the paper's weight of L_S

# The paper's ablation rows as flags of :func:`ple_loss` (Table 5 rows 2-4, Table 6's SR / CR only).
# Row (4) follows the text's objective L = L_V + lambda L_S: it has no naive segment BCE term.
VARIANTS: dict[str, dict[str, object]] = {
    "video": {"segment_bce": False, "richness": False},            # (2) PLG video-level labels only
    "segment_bce": {"segment_bce": True, "richness": False},       # (3) + naive BCE(P, Y)
    "richness": {"segment_bce": False, "richness": True},          # (4) + L_S (cr and sr)
    "sr_only": {"segment_bce": False, "richness": True, "terms": ("sr",)},  # Table 6
    "cr_only": {"segment_bce": False, "richness": True, "terms": ("cr",)},  # Table 6
}


def _bce(p: torch.Tensor, target: torch.Tensor, per: int | None = None) -> torch.Tensor:
    """Mean BCE: the sum over all entries divided by ``per`` (default: their number).

    In float32 with autocast off (``binary_cross_entropy`` refuses to run under CUDA autocast).
    Clamped: rounding can put a ratio of sums a hair outside [0, 1], which the BCE rejects; its log
    is floored at -100, so BCE(0, 0) = BCE(1, 1) = 0 exactly.
    """
    with torch.autocast(device_type=p.device.type, enabled=False):
        p = p.float().clamp(0.0, 1.0)
        t = target.to(p.device).float().clamp(0.0, 1.0)
        total = F.binary_cross_entropy(p, t, reduction="sum")
    return total / (p.numel() if per is None else per)


def richness_ratios(
    seg: torch.Tensor, video_labels: torch.Tensor, *, mask: str = "label"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Category and segment richness of segment labels or probabilities.

    Args:
        seg: ``(N, T, C)`` segment pseudo labels Y (0/1) or probabilities P.
        video_labels: ``(N, C)`` weak video labels y.
        mask: ``"label"`` multiplies ``seg`` by y before the class sum (no effect on Y, which is
            already 0 outside the label); ``"none"`` sums all classes (the literal text).

    Returns:
        ``cr`` ``(N, T)`` and ``sr`` ``(N, C)``; ``cr`` is not clamped here.
    """
    if mask not in MASKS:
        raise ValueError(f"mask must be one of {MASKS}, got {mask!r}")
    seg = seg.float()
    y = video_labels.to(seg.device).float()
    if seg.ndim != 3 or tuple(y.shape) != (seg.shape[0], seg.shape[2]):
        raise ValueError(f"expected seg (N, T, C) and video_labels (N, C), got {tuple(seg.shape)}, {tuple(y.shape)}")
    num = (seg * y[:, None, :] if mask == "label" else seg).sum(-1)
    cr = num / y.sum(-1, keepdim=True).clamp_min(1.0)  # a video with no label: denominator 1
    sr = seg.mean(1)
    return cr, sr


def richness_loss(
    seg_prob: torch.Tensor, seg_labels: torch.Tensor, video_labels: torch.Tensor, *,
    mask: str = "label", terms: tuple[str, ...] = ("cr", "sr"), num_videos: int | None = None,
) -> torch.Tensor:
    """The richness-aware loss of ONE modality: ``BCE(pcr, cr) + BCE(psr, sr)``.

    Args:
        seg_prob: ``(N, T, C)`` segment probabilities P of the modality.
        seg_labels: ``(N, T, C)`` segment pseudo labels Y of the modality (bool or 0/1).
        video_labels: ``(N, C)`` weak video labels y.
        mask: How pcr is read (module docstring): ``"label"`` (default) or ``"none"``.
        terms: Which terms to include: ``("cr", "sr")`` (default), ``("sr",)`` or ``("cr",)``
            (the paper's Table 6 SR-only / CR-only).
        num_videos: Divide by this many videos instead of N: pass the global batch size when
            ``seg_prob`` is one rank's shard of it, so that the shards' losses sum to the global
            mean (the project's DDP convention; default: the mean over this batch).

    Returns:
        A scalar: mean BCE over (video, segment) for cr plus mean BCE over (video, class) for sr.
    """
    bad = set(terms) - {"cr", "sr"}
    if bad or not terms:
        raise ValueError(f"terms must be a non-empty subset of ('cr', 'sr'), got {terms}")
    if tuple(seg_prob.shape) != tuple(seg_labels.shape):
        raise ValueError(f"seg_prob {tuple(seg_prob.shape)} and seg_labels {tuple(seg_labels.shape)} differ")
    pcr, psr = richness_ratios(seg_prob, video_labels, mask=mask)
    with torch.no_grad():
        cr, sr = richness_ratios(seg_labels.to(seg_prob.device).float(), video_labels, mask=mask)
    n, t, c = seg_prob.shape
    n = n if num_videos is None else int(num_videos)
    loss = seg_prob.new_zeros((), dtype=torch.float32)
    if "cr" in terms:
        loss = loss + _bce(pcr, cr, n * t)
    if "sr" in terms:
        loss = loss + _bce(psr, sr, n * c)
    return loss


class PLELoss(NamedTuple):
    """The objective and its parts (all scalars; unused parts are 0)."""

    total: torch.Tensor
    video: torch.Tensor        # BCE(p_video, y)
    audio: torch.Tensor        # BCE(p_a, yhat_a)
    visual: torch.Tensor       # BCE(p_v, yhat_v)
    segment_bce: torch.Tensor  # sum over modalities of BCE(P, Y), unweighted
    richness: torch.Tensor     # L_S: sum over modalities of the richness loss, unweighted


def ple_loss(
    video_prob: torch.Tensor, a_prob: torch.Tensor, v_prob: torch.Tensor,
    seg_prob_a: torch.Tensor, seg_prob_v: torch.Tensor,
    seg_labels_a: torch.Tensor, seg_labels_v: torch.Tensor, video_labels: torch.Tensor, *,
    lam: float = LAMBDA, richness: bool = True, segment_bce: bool = False,
    segment_bce_weight: float = 1.0, terms: tuple[str, ...] = ("cr", "sr"), mask: str = "label",
    num_videos: int | None = None,
) -> PLELoss:
    """VAPLAN's training objective ``L = L_V + lam * L_S`` (and the ablations' variants).

    Args:
        video_prob: ``(N, C)`` video-level probabilities p (HAN's global output).
        a_prob: ``(N, C)`` audio video-level probabilities p_a.
        v_prob: ``(N, C)`` visual video-level probabilities p_v.
        seg_prob_a: ``(N, T, C)`` audio segment probabilities. ``seg_prob_v``: visual.
        seg_labels_a: ``(N, T, C)`` audio segment pseudo labels. ``seg_labels_v``: visual.
        video_labels: ``(N, C)`` weak labels y.
        lam: Weight of L_S (paper: 0.5).
        richness: Include ``lam * L_S`` (Table 5 row 4); off gives row 2 (video-level only).
        segment_bce: Include ``segment_bce_weight * sum_m BCE(P_m, Y_m)`` (row 3, the naive
            segment-level use of the pseudo labels; mean over (video, segment, class)).
        segment_bce_weight: Its weight (the paper gives none; 1).
        terms: Richness terms, ``("sr",)`` / ``("cr",)`` for Table 6's SR-only / CR-only.
        mask: pcr reading, see :func:`richness_loss`.
        num_videos: Global batch size when the inputs are one rank's shard (see
            :func:`richness_loss`); every mean then divides by it instead of N.

    Returns:
        :class:`PLELoss` (``total`` is what to back-propagate). :data:`VARIANTS` names the flags
        of each ablation row.
    """
    y = video_labels.float()
    n, t, c = seg_prob_a.shape
    n = n if num_videos is None else int(num_videos)
    yhat_a = (seg_labels_a != 0).any(1).float()  # video-level pseudo labels
    yhat_v = (seg_labels_v != 0).any(1).float()
    video = _bce(video_prob, y, n * c)
    audio = _bce(a_prob, yhat_a, n * c)
    visual = _bce(v_prob, yhat_v, n * c)
    zero = video.new_zeros(())
    seg = zero
    if segment_bce:
        seg = (_bce(seg_prob_a, seg_labels_a, n * t * c) + _bce(seg_prob_v, seg_labels_v, n * t * c))
    rich = zero
    if richness:
        rich = (richness_loss(seg_prob_a, seg_labels_a, y, mask=mask, terms=terms, num_videos=n)
                + richness_loss(seg_prob_v, seg_labels_v, y, mask=mask, terms=terms, num_videos=n))
    total = video + audio + visual + segment_bce_weight * seg + lam * rich
    return PLELoss(total, video, audio, visual, seg, rich)
