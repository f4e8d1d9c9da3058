"""AVVP (LLP) evaluation: the ten segment- and event-level F-scores, vectorized over videos.

The definitions are the LLP protocol's (as the official LLP evaluation code has them):

* Predictions and truth are binary ``(videos, segments, classes)`` arrays for audio (A) and
  visual (V); audio-visual (AV) is ``A AND V`` for predictions and truth alike.
* Segment level, per video and class: TP/FP/FN over the segments; ``F_c = 2TP / (2TP + FP + FN)``
  only for classes with any predicted or true segment; the video's score is the mean of those
  ``F_c`` and 1.0 when there are none. The reported number is 100 x the mean over videos.
* Event level: runs of consecutive positive segments are events. A predicted event is a TP when
  some true event of the same class has IoU >= 0.5 (intersection >= half the union), else an FP;
  a true event that no predicted event matches that way is an FN. Then the same F rules.
* ``Type`` is the mean of the A, V and AV scores; ``Event`` pools the audio and visual TP/FP/FN of
  each class before computing ``F_c`` (it is not a mean of A and V).

Event matching without per-video loops rests on two facts about disjoint runs on a line. Let P be
a predicted event, T a true one, ``a = |P & T|``. IoU >= 0.5 means ``3a >= |P| + |T|``; with
``a <= |T|`` this gives ``2a >= |P|`` (and symmetrically ``2a >= |T|``). (1) So P can match at most
one true event: two disjoint true events T1, T2 both overlapping P leave at least one gap segment
of P uncovered, so ``a1 + a2 <= |P| - 1``, yet ``2a1 >= |P|`` and ``2a2 >= |P|``. By symmetry a
true event is matched by at most one predicted event, so the number of matched predicted events
equals the number of matched true events. (2) ``P & T`` is a contiguous part of P covering at
least half of it, so it contains one of P's two middle segments ``s + (L-1)//2`` or ``s + L//2``;
checking the true events under those two segments finds every match.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from trainables.tasks.avvp.report import SCORE_KEYS  # noqa: F401  (re-exported: one definition)

# Decoding protocols of the two official codes (see :func:`decode`), and the probability arrays
# each needs; the first is the default.
PROTOCOLS: tuple[str, ...] = ("han", "jomold")
PROTOCOL_KEYS: dict[str, tuple[str, ...]] = {"han": ("frame_prob", "global_prob"),
                                             "jomold": ("frame_prob", "a_prob", "v_prob")}


def _as_numpy(x: Any) -> np.ndarray:
    # torch is optional here so that the scorer CLI stays light; tensors expose .detach().
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _as_binary(x: Any, name: str) -> np.ndarray:
    """Converts a 0/1 or bool array (numpy or torch) to a bool array, rejecting other values."""
    arr = _as_numpy(x)
    if arr.dtype == np.bool_:
        return arr
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name}: expected a bool or 0/1 numeric array, got dtype {arr.dtype}")
    ok = (arr == 0) | (arr == 1)
    if not ok.all():
        bad = np.unique(arr[~ok])[:5]
        raise ValueError(f"{name}: values must be 0 or 1 (binary predictions), found {bad.tolist()}")
    return arr != 0


def _per_video_f(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """Per-video mean F over classes with any TP/FP/FN; 1.0 for videos with none.

    Args:
        tp, fp, fn: Counts shaped ``(..., N, C)``.

    Returns:
        Scores shaped ``(..., N)`` in [0, 1].
    """
    den = 2.0 * tp + fp + fn
    valid = den > 0
    f = np.divide(2.0 * tp, den, out=np.zeros_like(den), where=valid)
    n_valid = valid.sum(axis=-1)
    return np.where(n_valid > 0, f.sum(axis=-1) / np.maximum(n_valid, 1), 1.0)


def _padded(a: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lays out A, V and AV sequences for run detection.

    Returns a flat bool buffer ``[0, seq, 0, seq, 0, ...]`` and a ``(3, N, C, T + 1)`` view of it
    minus the leading 0: every (modality, video, class) sequence is contiguous and followed by a
    0, so runs never cross sequences and a run's flat position maps back to its sequence.
    """
    n, t, c = a.shape
    buf = np.zeros(3 * n * c * (t + 1) + 1, dtype=bool)
    view = buf[1:].reshape(3, n, c, t + 1)
    view[0, :, :, :t] = a.transpose(0, 2, 1)
    view[1, :, :, :t] = v.transpose(0, 2, 1)
    np.logical_and(view[0], view[1], out=view[2])
    return buf, view


def _runs(buf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Starts and exclusive ends of the runs of 1s in a padded buffer (see ``_padded``).

    Positions are indices into ``buf[1:]``, sorted; run k spans ``[starts[k], ends[k])``.
    """
    cur, prev = buf[1:], buf[:-1]
    return np.flatnonzero(cur & ~prev), np.flatnonzero(prev & ~cur)


def _event_counts(
    pred_buf: np.ndarray, gt_buf: np.ndarray, n_seq: int, width: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Event-level TP, FP, FN per sequence of two padded buffers (``n_seq`` sequences)."""
    p_s, p_e = _runs(pred_buf)
    g_s, g_e = _runs(gt_buf)
    p_len = p_e - p_s
    matched = np.zeros(p_s.shape[0], dtype=bool)
    if g_s.size:
        # Fact (2) in the module docstring: a matching true event covers a middle segment of P,
        # so it is the last true event starting at or before that segment. Any candidate that
        # passes the IoU test is a real match: events of other sequences never overlap P.
        for mid in (p_s + (p_len - 1) // 2, p_s + p_len // 2):
            k = np.searchsorted(g_s, mid, side="right") - 1
            np.maximum(k, 0, out=k)
            gs, ge = g_s[k], g_e[k]
            inter = np.minimum(p_e, ge) - np.maximum(p_s, gs)
            matched |= 2 * inter >= p_len + (ge - gs) - inter
    p_seq = p_s // width
    n_pred = np.bincount(p_seq, minlength=n_seq)
    n_gt = np.bincount(g_s // width, minlength=n_seq)
    # Fact (1): matches are one-to-one, so matched predictions also count the matched truths.
    tp = np.bincount(p_seq[matched], minlength=n_seq)
    return tp, n_pred - tp, n_gt - tp


def avvp_scores(pred_a: Any, pred_v: Any, gt_a: Any, gt_v: Any) -> dict[str, float]:
    """The ten LLP F-scores (0..100) of binary audio/visual predictions against dense truth.

    Args:
        pred_a: Audio predictions ``(N, T, C)`` (segments axis 1, classes axis 2; LLP: T=10,
            C=25), bool or 0/1, numpy array or torch tensor.
        pred_v: Visual predictions, same shape.
        gt_a: Audio truth, same shape.
        gt_v: Visual truth, same shape.

    Returns:
        ``{"seg_A", "seg_V", "seg_AV", "seg_Type", "seg_Event", "event_A", "event_V",
        "event_AV", "event_Type", "event_Event"}`` as Python floats in [0, 100].

    Raises:
        ValueError: On shape mismatch, non-3-D input, no videos, or values other than 0/1.
    """
    arrs = {
        name: _as_binary(x, name)
        for name, x in (("pred_a", pred_a), ("pred_v", pred_v), ("gt_a", gt_a), ("gt_v", gt_v))
    }
    shape = arrs["pred_a"].shape
    for name, a in arrs.items():
        if a.ndim != 3:
            raise ValueError(f"{name}: expected (videos, segments, classes), got shape {a.shape}")
        if a.shape != shape:
            raise ValueError(f"{name}: shape {a.shape} differs from pred_a's {shape}")
    n, t, c = shape
    if n == 0:
        raise ValueError("no videos to score")
    p_buf, pred = _padded(arrs["pred_a"], arrs["pred_v"])  # (3, N, C, T+1): A, V, AV
    g_buf, gt = _padded(arrs["gt_a"], arrs["gt_v"])

    # Row sums as a matrix-vector product: numpy's reductions over a short last axis are ~5x
    # slower. Counts <= T are exact in float32; the padding column is 0 and adds nothing.
    ones = np.ones(t + 1, dtype=np.float32)
    seg_tp = (pred & gt).astype(np.float32) @ ones
    seg_fp = pred.astype(np.float32) @ ones - seg_tp
    seg_fn = gt.astype(np.float32) @ ones - seg_tp
    ev = _event_counts(p_buf, g_buf, 3 * n * c, t + 1)
    ev_tp, ev_fp, ev_fn = (x.reshape(3, n, c) for x in ev)

    out: dict[str, float] = {}
    for level, (tp, fp, fn) in (("seg", (seg_tp, seg_fp, seg_fn)), ("event", (ev_tp, ev_fp, ev_fn))):
        tp, fp, fn = (x.astype(np.float64) for x in (tp, fp, fn))
        per_mod = _per_video_f(tp, fp, fn)  # (3, N)
        pooled = _per_video_f(tp[0] + tp[1], fp[0] + fp[1], fn[0] + fn[1])  # (N,)
        a, v, av = (100.0 * float(per_mod[i].mean()) for i in range(3))
        out[f"{level}_A"] = a
        out[f"{level}_V"] = v
        out[f"{level}_AV"] = av
        out[f"{level}_Type"] = (a + v + av) / 3.0
        out[f"{level}_Event"] = 100.0 * float(pooled.mean())
    return {k: out[k] for k in SCORE_KEYS}


def metric_name(name: str) -> str:
    """A class name as an MLflow metric-name part (``Frying_(food)`` -> ``Frying_food``)."""
    import re

    return re.sub(r"[^A-Za-z0-9_\-. :/]", "", name)


def class_scores(pred_a: Any, pred_v: Any, gt_a: Any, gt_v: Any,
                 names: tuple[str, ...] | list[str] | None = None) -> dict[str, float]:
    """Per-class segment-level F-scores (0..100) of audio and visual predictions, each pooled
    over all videos and segments: ``F = 2TP / (2TP + FP + FN)`` of class c in modality m.

    Args:
        pred_a, pred_v, gt_a, gt_v: Binary ``(N, T, C)`` arrays, as for :func:`avvp_scores`.
        names: The C class names (default ``LLP_CLASSES`` for 25 classes, else ``c0``, ``c1``...).

    Returns:
        ``{"class_A/<name>": F, "class_V/<name>": F, ...}`` with names made metric-safe
        (:func:`metric_name`); a class with no predicted and no true segment in a modality is left
        out of that modality.
    """
    arrs = [_as_binary(x, n) for x, n in ((pred_a, "pred_a"), (pred_v, "pred_v"), (gt_a, "gt_a"), (gt_v, "gt_v"))]
    c = arrs[0].shape[-1]
    if names is None:
        from trainables.tasks.avvp.classes import LLP_CLASSES

        names = LLP_CLASSES if c == len(LLP_CLASSES) else [f"c{i}" for i in range(c)]
    out: dict[str, float] = {}
    for mod, p, g in (("A", arrs[0], arrs[2]), ("V", arrs[1], arrs[3])):
        tp = (p & g).sum(axis=(0, 1)).astype(np.float64)
        fp = (p & ~g).sum(axis=(0, 1)).astype(np.float64)
        fn = (~p & g).sum(axis=(0, 1)).astype(np.float64)
        denom = 2 * tp + fp + fn
        for i, name in enumerate(names):
            if denom[i] > 0:
                out[f"class_{mod}/{metric_name(name)}"] = float(100.0 * 2 * tp[i] / denom[i])
    return out


def decode(
    frame_prob: Any,
    a_prob: Any,
    v_prob: Any,
    global_prob: Any,
    protocol: str = "han",
    threshold: float = 0.5,
) -> tuple[Any, Any]:
    """Turns model probabilities into binary audio and visual segment predictions.

    Protocols:
        * ``han``: ``frame_prob >= threshold`` masked by ``global_prob >= threshold`` for both
          modalities (the HAN evaluation).
        * ``jomold``: audio masked by ``a_prob >= threshold``, visual by ``v_prob >= threshold``.

    Args:
        frame_prob: ``(N, T, 2, C)`` segment probabilities, index 0 audio, 1 visual.
        a_prob: ``(N, C)`` audio video-level probabilities (unused by ``han``; may be None).
        v_prob: ``(N, C)`` visual video-level probabilities (unused by ``han``; may be None).
        global_prob: ``(N, C)`` video-level probabilities (unused by ``jomold``; may be None).
        protocol: ``"han"`` or ``"jomold"``.
        threshold: Decision threshold for all probabilities.

    Returns:
        ``(pred_a, pred_v)`` bool ``(N, T, C)``: torch tensors on ``frame_prob``'s device when
        ``frame_prob`` is a tensor, numpy arrays otherwise.

    Raises:
        ValueError: Unknown protocol, a needed input missing, or mismatched shapes.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; expected one of {PROTOCOLS}")
    if protocol == "han":
        masks = {"global_prob": global_prob}
    else:
        masks = {"a_prob": a_prob, "v_prob": v_prob}
    shape = tuple(frame_prob.shape)
    if len(shape) != 4 or shape[2] != 2:
        raise ValueError(f"frame_prob: expected (videos, segments, 2, classes), got {shape}")
    for name, m in masks.items():
        if m is None:
            raise ValueError(f"protocol {protocol!r} needs {name}")
        if tuple(m.shape) != (shape[0], shape[3]):
            raise ValueError(f"{name}: expected shape {(shape[0], shape[3])}, got {tuple(m.shape)}")
    is_torch = hasattr(frame_prob, "detach")
    if not is_torch:
        frame_prob = np.asarray(frame_prob)
        masks = {k: np.asarray(v) for k, v in masks.items()}
    seg = frame_prob >= threshold  # (N, T, 2, C)
    if protocol == "han":
        g = (masks["global_prob"] >= threshold)[:, None, :]
        return seg[:, :, 0, :] & g, seg[:, :, 1, :] & g
    ma = (masks["a_prob"] >= threshold)[:, None, :]
    mv = (masks["v_prob"] >= threshold)[:, None, :]
    return seg[:, :, 0, :] & ma, seg[:, :, 1, :] & mv
