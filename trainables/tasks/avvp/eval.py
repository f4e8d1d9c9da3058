"""AVVP evaluation and resident data: every split on the device, whole-split forwards, scores.

* :func:`load_resident`: every split as tensors resident on the device (one copy, optionally
  float16/bfloat16 features), so a training step is an index into tensors, not a data loader.
* :func:`predict` / :func:`evaluate`: a whole split in a few large no-grad forwards, decoded and
  scored with :mod:`trainables.tasks.avvp.metrics` into ``val/...``/``test/...`` keys.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from trainables.core.dist import autocast, unwrap
from trainables.tasks.avvp.data import AVVPSplit, load_avvp


def default_feature_dtype(device: torch.device) -> torch.dtype:
    """bf16 feature storage on CUDA (halves memory and bandwidth; the matmuls run in bf16 under
    autocast anyway), float32 on CPU (bf16 matmuls are slow on most CPUs)."""
    return torch.bfloat16 if device.type == "cuda" else torch.float32


def load_resident(data_path, device: torch.device, splits=("train", "val", "test"),
                  feature_dtype: torch.dtype | None = None) -> dict[str, AVVPSplit]:
    """Loads the splits of an AVVP data set onto ``device``.

    Args:
        data_path: Data set directory or file.
        device: Target device.
        splits: Splits to load.
        feature_dtype: Feature storage dtype (default :func:`default_feature_dtype`).

    Returns:
        ``{split: AVVPSplit}`` with every tensor on ``device``.
    """
    fd = feature_dtype or default_feature_dtype(device)
    return {s: load_avvp(data_path, s).to(device, fd) for s in splits}


def feature_dims(split: AVVPSplit) -> tuple[int, int, int]:
    """``(audio_dim, visual_dim, motion_dim)`` of a loaded split."""
    return split.audio.shape[-1], split.visual.shape[-1], split.motion.shape[-1]


def smooth(y: torch.Tensor, s: float) -> torch.Tensor:
    """Label smoothing as in HAN: ``s * y + (1 - s) * 0.5`` (``s = 1`` leaves ``y`` unchanged)."""
    return y if s == 1.0 else s * y + (1.0 - s) * 0.5


def _model_features(split: AVVPSplit, idx, dtype: torch.dtype | None):
    a, v, m = split.audio[idx], split.visual[idx], split.motion[idx]
    if dtype is not None:
        a, v, m = a.to(dtype), v.to(dtype), m.to(dtype)
    return a, v, m


def batch_inputs(split: AVVPSplit, idx, device: torch.device):
    """Features of rows ``idx`` in the dtype the model should see (float32 outside autocast)."""
    return _model_features(split, idx, None if device.type == "cuda" else torch.float32)


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------

@torch.no_grad()
def predict(model: nn.Module, split: AVVPSplit, *, batch_size: int = 2048, with_ca: bool = True,
            device: torch.device | None = None) -> dict[str, torch.Tensor]:
    """Probabilities for a whole split in a few large eval-mode forwards.

    Returns:
        ``global_prob`` (N, C), ``a_prob`` (N, C), ``v_prob`` (N, C), ``frame_prob`` (N, T, 2, C),
        float32 on the split's device.
    """
    net = unwrap(model)
    device = device or split.audio.device
    was_training = net.training
    net.eval()
    outs: dict[str, list[torch.Tensor]] = {k: [] for k in ("global_prob", "a_prob", "v_prob",
                                                          "frame_prob")}
    try:
        for start in range(0, len(split), batch_size):
            idx = slice(start, start + batch_size)
            with autocast(device):
                out = net(*batch_inputs(split, idx, device), with_ca=with_ca)
            for k in outs:
                outs[k].append(getattr(out, k).float())
    finally:
        net.train(was_training)
    return {k: torch.cat(v) for k, v in outs.items()}


def score(probs: Mapping[str, torch.Tensor], split: AVVPSplit, *, prefix: str,
          protocol: str = "han", threshold: float = 0.5) -> dict[str, float]:
    """Decodes probabilities and scores them against the split's dense truth.

    Returns:
        ``{f"{prefix}/{key}": value}`` for the ten AVVP F-scores (0..100); for the ``test``
        split also the per-class audio and visual segment F (``test/class_A/<class>``,
        ``test/class_V/<class>``; :func:`~trainables.tasks.avvp.metrics.class_scores`).
    """
    from trainables.tasks.avvp.metrics import avvp_scores, class_scores, decode

    if not split.has_truth:
        raise ValueError(f"split has no dense truth; cannot compute {prefix}/ scores")
    pred_a, pred_v = decode(probs["frame_prob"], probs["a_prob"], probs["v_prob"],
                            probs["global_prob"], protocol=protocol, threshold=threshold)
    s = avvp_scores(pred_a, pred_v, split.gt_audio, split.gt_visual)
    if prefix == "test":
        # Per-class audio and visual F of the selected weights, once per run (comparisons plot them).
        s.update(class_scores(pred_a, pred_v, split.gt_audio, split.gt_visual))
    return {f"{prefix}/{k}": float(v) for k, v in s.items()}


def evaluate(model: nn.Module, split: AVVPSplit, *, prefix: str, protocol: str = "han",
             threshold: float = 0.5, with_ca: bool = True) -> dict[str, float]:
    """:func:`predict` then :func:`score`."""
    return score(predict(model, split, with_ca=with_ca), split, prefix=prefix,
                 protocol=protocol, threshold=threshold)


def evaluator(cfg: Any, data: Mapping[str, AVVPSplit], *, with_ca: bool = True
              ) -> Callable[[nn.Module, str], dict[str, float]]:
    """The ``evaluate_fn`` of :func:`trainables.core.loop.fit_loop` for an AVVP config.

    ``cfg`` supplies the decoding ``protocol`` and ``threshold``; ``with_ca`` whether the forward
    uses the cross-modal attention term.
    """
    def evaluate_fn(model: nn.Module, split: str) -> dict[str, float]:
        return evaluate(model, data[split], prefix=split, protocol=cfg.protocol,
                        threshold=cfg.threshold, with_ca=with_ca)
    return evaluate_fn
