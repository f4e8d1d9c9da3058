"""CMPAE's evaluation: the two-pass fused prediction, its decodings and the per-class visual
threshold search on the validation split.

* :func:`predict_fused`: two eval-mode forwards, with and without cross-attention, mixed
  ``fuse_ratio * with + (1 - fuse_ratio) * without`` (official: 0.7) for every probability.
* Decoding: ``decode="task"`` is the AVVP task's shared decode
  (:func:`trainables.tasks.avvp.metrics.decode`, ``protocol`` at ``threshold``: the rows every method
  reports); ``decode="cmpae"`` is the official code's: audio ``frame >= seg_threshold`` and
  ``a_prob >= audio_threshold``, visual ``frame >= seg_threshold`` and ``v_prob >= theta_v[c]``
  (:func:`decode_cmpae`).
* :func:`search_visual_thresholds`: the official code's search. For each class on its own, the
  others at ``visual_threshold``, every candidate of :data:`THRESHOLD_CANDIDATES` decodes the
  validation split; the candidate with the best ``threshold_metric`` (official: event-level visual
  F) wins, the largest of tied ones. One pass, classes independent (a class does not see the
  values chosen for the others). The probabilities do not depend on the thresholds, so one
  prediction serves all 10 x C decodes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from trainables.tasks.avvp import eval as ae
from trainables.tasks.avvp.data import AVVPSplit
from trainables.tasks.avvp.metrics import avvp_scores, class_scores, decode
from trainables.tasks.avvp.report import SCORE_KEYS

# The official code's candidate visual thresholds, 0.25 to 0.70 in steps of 0.05.
THRESHOLD_CANDIDATES = (0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7)

# The mean of the ten scores: the official code's model selection metric.
MEAN_KEY = "mean_ten"


def predict_fused(model: nn.Module, split: AVVPSplit, fuse_ratio: float) -> dict[str, torch.Tensor]:
    """Eval-mode probabilities of a whole split, the passes with and without cross-attention mixed
    ``fuse_ratio : 1 - fuse_ratio`` (``global_prob``, ``a_prob``, ``v_prob``, ``frame_prob``)."""
    with_ca = ae.predict(model, split, with_ca=True)
    if fuse_ratio == 1.0:
        return with_ca
    without = ae.predict(model, split, with_ca=False)
    return {k: with_ca[k] * fuse_ratio + without[k] * (1.0 - fuse_ratio) for k in with_ca}


def decode_cmpae(probs: Mapping[str, torch.Tensor], seg_threshold: float, audio_threshold: float,
                 visual_thresholds: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The official code's decoding.

    Args:
        probs: ``frame_prob`` (N, T, 2, C), ``a_prob`` and ``v_prob`` (N, C).
        seg_threshold: Segment threshold of both modalities (official: 0.25).
        audio_threshold: Video-level audio threshold (official: 0.45).
        visual_thresholds: (C,) video-level visual thresholds (official: 0.45 each, or the searched
            ones at test).

    Returns:
        ``(pred_a, pred_v)``, bool (N, T, C).
    """
    seg = probs["frame_prob"] >= seg_threshold
    ma = (probs["a_prob"] >= audio_threshold)[:, None, :]
    # Per-class thresholds compare in float64 (the official code's threshold array is float64).
    thr = visual_thresholds.to(probs["v_prob"].device, torch.float64)
    mv = (probs["v_prob"].double() >= thr)[:, None, :]
    return seg[:, :, 0] & ma, seg[:, :, 1] & mv


def visual_vector(cfg: Any, num_classes: int) -> torch.Tensor:
    """``cfg.visual_threshold`` for every class, (C,) float64."""
    return torch.full((num_classes,), float(cfg.visual_threshold), dtype=torch.float64)


def decode_probs(cfg: Any, probs: Mapping[str, torch.Tensor],
                 visual_thresholds: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Binary predictions by ``cfg.decode`` (``visual_thresholds`` default: ``visual_threshold``
    for every class; ``decode="task"`` ignores it)."""
    if cfg.decode == "task":
        return decode(probs["frame_prob"], probs["a_prob"], probs["v_prob"], probs["global_prob"],
                      protocol=cfg.protocol, threshold=cfg.threshold)
    if visual_thresholds is None:
        visual_thresholds = visual_vector(cfg, probs["v_prob"].shape[1])
    return decode_cmpae(probs, cfg.seg_threshold, cfg.audio_threshold, visual_thresholds)


def score_preds(pred_a: torch.Tensor, pred_v: torch.Tensor, split: AVVPSplit, prefix: str
                ) -> dict[str, float]:
    """The ten scores and their mean (``<prefix>/mean_ten``); for ``test`` also the per-class F."""
    if not split.has_truth:
        raise ValueError(f"split has no dense truth; cannot compute {prefix}/ scores")
    s = avvp_scores(pred_a, pred_v, split.gt_audio, split.gt_visual)
    s[MEAN_KEY] = sum(s[k] for k in SCORE_KEYS) / len(SCORE_KEYS)
    if prefix == "test":
        s.update(class_scores(pred_a, pred_v, split.gt_audio, split.gt_visual))
    return {f"{prefix}/{k}": float(v) for k, v in s.items()}


def evaluator(cfg: Any, data: Mapping[str, AVVPSplit]
              ) -> Callable[..., dict[str, float]]:
    """``evaluate_fn(model, split, visual_thresholds=None)`` for ``fit_loop``: fused prediction,
    ``cfg.decode``, the ten scores and their mean."""
    def evaluate_fn(model: nn.Module, split: str,
                    visual_thresholds: torch.Tensor | None = None) -> dict[str, float]:
        probs = predict_fused(model, data[split], cfg.fuse_ratio)
        return score_preds(*decode_probs(cfg, probs, visual_thresholds), data[split], split)
    return evaluate_fn


def search_visual_thresholds(cfg: Any, probs: Mapping[str, torch.Tensor], split: AVVPSplit,
                             candidates: tuple[float, ...] = THRESHOLD_CANDIDATES) -> torch.Tensor:
    """Per-class visual video-level thresholds chosen on ``split`` (see the module docstring).

    Args:
        cfg: CMPAE config (``seg_threshold``, ``audio_threshold``, ``visual_threshold`` for the
            classes not being searched, ``threshold_metric``).
        probs: Fused probabilities of ``split`` (:func:`predict_fused`).
        split: The validation split (with dense truth).
        candidates: Candidate thresholds, ascending.

    Returns:
        (C,) float64 thresholds.
    """
    n_cls = probs["v_prob"].shape[1]
    base = visual_vector(cfg, n_cls)
    pred_a = decode_cmpae(probs, cfg.seg_threshold, cfg.audio_threshold, base)[0]
    chosen = base.clone()
    for c in range(n_cls):
        best = float("-inf")
        for t in candidates:
            thr = base.clone()
            thr[c] = t
            pred_v = decode_cmpae(probs, cfg.seg_threshold, cfg.audio_threshold, thr)[1]
            value = avvp_scores(pred_a, pred_v, split.gt_audio, split.gt_visual)[cfg.threshold_metric]
            if value >= best:  # ties go to the larger threshold, as in the official code
                best, chosen[c] = value, t
    return chosen
