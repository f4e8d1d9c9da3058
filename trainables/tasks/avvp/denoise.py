"""Label-denoising quality against the hidden modality truth of LLP-sim.

LLP gives each video weak labels that do not say which modality an event occurs in; label
denoising methods (JoMoLD, RLLD) remove labels from the audio or the visual stream. On LLP-sim the
truth is known, so for each modality we can score the removed labels against the labels truly
absent from that modality, and the estimated per-class noise ratios against the true ones.

Conventions (all counts pooled over every (video, class) pair, i.e. micro-averaged):

* Only positive weak labels can be removed or be noisy: ``removed`` entries where the weak label
  is 0 are ignored.
* A truly noisy label for modality m is a positive weak label absent from m's truth.
* Precision = TP / removed, recall = TP / noisy, F1 = 2TP / (removed + noisy). A ratio whose
  denominator is 0 is 1.0 when the other set is also empty (nothing removed and nothing to
  remove is a perfect result, as in the LLP F rule) and 0.0 otherwise (e.g. precision when
  nothing was removed but noisy labels exist). The counts behind these are reported too
  (``denoise/removed_a``, ``denoise/noisy_a``, ``denoise/tp_a``) so a 0.0 or 1.0 can be read.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _bool2d(x: Any, name: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected (videos, classes), got shape {arr.shape}")
    if shape is not None and arr.shape != shape:
        raise ValueError(f"{name}: shape {arr.shape} differs from labels' {shape}")
    if arr.dtype != np.bool_:
        ok = (arr == 0) | (arr == 1)
        if not ok.all():
            raise ValueError(f"{name}: values must be 0 or 1, found {np.unique(arr[~ok])[:5].tolist()}")
        arr = arr != 0
    return arr


def _ratio(num: int, den: int, other: int) -> float:
    if den > 0:
        return num / den
    return 1.0 if other == 0 else 0.0


def denoise_quality(
    removed_a: Any, removed_v: Any, labels: Any, true_a: Any, true_v: Any
) -> dict[str, float]:
    """Precision, recall and F1 of the labels a method removed, per modality.

    Args:
        removed_a: ``(N, C)`` bool, labels the method removed from the audio stream.
        removed_v: ``(N, C)`` bool, labels removed from the visual stream.
        labels: ``(N, C)`` weak video-level labels (0/1).
        true_a: ``(N, C)`` audio truth at video level (``gt_audio.any(axis=1)``).
        true_v: ``(N, C)`` visual truth at video level.

    Returns:
        ``denoise/precision_a``, ``denoise/recall_a``, ``denoise/f1_a``, the same with ``_v``,
        and the counts ``denoise/removed_a``, ``denoise/noisy_a``, ``denoise/tp_a`` (and ``_v``)
        as floats. See the module docstring for the zero-division convention.

    Raises:
        ValueError: Shapes differ or values are not 0/1.
    """
    lab = _bool2d(labels, "labels")
    out: dict[str, float] = {}
    for m, removed, truth in (("a", removed_a, true_a), ("v", removed_v, true_v)):
        rem = _bool2d(removed, f"removed_{m}", lab.shape) & lab
        noisy = lab & ~_bool2d(truth, f"true_{m}", lab.shape)
        tp = int(np.count_nonzero(rem & noisy))
        n_rem = int(np.count_nonzero(rem))
        n_noisy = int(np.count_nonzero(noisy))
        out[f"denoise/precision_{m}"] = _ratio(tp, n_rem, n_noisy)
        out[f"denoise/recall_{m}"] = _ratio(tp, n_noisy, n_rem)
        out[f"denoise/f1_{m}"] = _ratio(2 * tp, n_rem + n_noisy, 0)
        out[f"denoise/removed_{m}"] = float(n_rem)
        out[f"denoise/noisy_{m}"] = float(n_noisy)
        out[f"denoise/tp_{m}"] = float(tp)
    return out


def true_noise_ratio(labels: Any, truth: Any) -> np.ndarray:
    """Per-class share of positive weak labels absent from a modality's truth.

    Args:
        labels: ``(N, C)`` weak labels (0/1).
        truth: ``(N, C)`` video-level truth of one modality.

    Returns:
        ``(C,)`` float64 ratios; NaN for classes without any positive weak label.
    """
    lab = _bool2d(labels, "labels")
    tr = _bool2d(truth, "truth", lab.shape)
    pos = lab.sum(axis=0)
    noisy = (lab & ~tr).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pos > 0, noisy / np.maximum(pos, 1), np.nan)


def noise_ratio_mae(
    est_a: Any, est_v: Any, labels: Any, true_a: Any, true_v: Any
) -> dict[str, float]:
    """Mean absolute error of estimated per-class noise ratios, per modality.

    The true ratio of class c for modality m is the share of the positive weak labels of class c
    that are absent from m's truth. Classes with no positive weak label have no true ratio and
    are left out of the mean; if no class has one, the MAE is NaN.

    Args:
        est_a: ``(C,)`` estimated audio noise ratios.
        est_v: ``(C,)`` estimated visual noise ratios.
        labels: ``(N, C)`` weak labels (0/1).
        true_a: ``(N, C)`` audio truth at video level.
        true_v: ``(N, C)`` visual truth at video level.

    Returns:
        ``{"noise_ratio/mae_a": float, "noise_ratio/mae_v": float}``.

    Raises:
        ValueError: Shapes differ, values are not 0/1, or estimates are not finite.
    """
    lab = _bool2d(labels, "labels")
    out: dict[str, float] = {}
    for m, est, truth in (("a", est_a, true_a), ("v", est_v, true_v)):
        if hasattr(est, "detach") and hasattr(est, "cpu"):
            est = est.detach().cpu().numpy()
        e = np.asarray(est, dtype=np.float64)
        if e.shape != (lab.shape[1],):
            raise ValueError(f"est_{m}: expected shape ({lab.shape[1]},), got {e.shape}")
        if not np.isfinite(e).all():
            raise ValueError(f"est_{m}: estimates must be finite")
        ratio = true_noise_ratio(lab, _bool2d(truth, f"true_{m}", lab.shape))
        ok = ~np.isnan(ratio)
        out[f"noise_ratio/mae_{m}"] = float(np.abs(e[ok] - ratio[ok]).mean()) if ok.any() else float("nan")
    return out
