"""The HAN baseline trainable (weak labels, optional label smoothing, or the oracle upper bound).

``fit(cfg, data_path, ...)`` trains :class:`trainables.tasks.avvp.han.HAN` on an AVVP data set
(LLP or LLP-sim) with the loss ``w_video*BCE(video, y) + w_audio*BCE(a, y_a) + w_visual*BCE(v, y_v)``
(:func:`trainables.tasks.avvp.backbone.train_backbone`):

* ``label_source="weak"``: ``y_a = s_a*y + (1-s_a)*0.5`` and ``y_v = s_v*y + (1-s_v)*0.5`` (label
  smoothing with ``smooth_a``/``smooth_v``; ``s = 1`` means none; the official HAN code used
  ``s_v = 0.9``).
* ``label_source="oracle"``: ``y_a``/``y_v`` are the hidden true modality labels of LLP-sim's
  train split (``gt_audio``/``gt_visual`` any over segments): the upper bound of label denoising.

Two options come from the official JoMoLD code, which builds on HAN: ``cl_weight > 0`` adds the
audio-visual contrastive term of MA (:func:`trainables.tasks.avvp.han.contrastive_loss`) and
``cls_dropout`` drops visual segment features before the classifier. HAN trained on another
method's labels is that method's option (VAPLAN's video-level pseudo labels: ``vaplan`` with
``variant="video"``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from trainables.core import dist as cd
from trainables.core import loop as tc
from trainables.core.config import check_fields
from trainables.tasks.avvp import backbone as bb

# ``weak``: the weak labels (optionally smoothed); ``oracle``: the hidden true modality labels
# (LLP-sim).
LABEL_SOURCES = ("weak", "oracle")


@dataclass
class Config(bb.BackboneConfig):
    """HAN training configuration: the backbone's settings (the HAN paper's defaults) plus

    Attributes:
        label_source: ``"weak"`` or ``"oracle"`` (true modality labels; LLP-sim only).
    """

    label_source: str = "weak"

    def validate(self) -> None:
        """Raises ValueError naming the bad key."""
        super().validate()
        check_fields(self, choices={"label_source": LABEL_SOURCES})


def modality_targets(cfg: Config, train: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``(y_a, y_v)`` targets of the train split for ``cfg.label_source``."""
    if cfg.label_source == "oracle":
        if not train.has_truth:
            raise ValueError("label_source='oracle' needs a train split with hidden truth "
                             "(LLP-sim); this data set has none")
        true_a, true_v = train.modality_truth()
        return true_a.float(), true_v.float()
    return bb.weak_targets(cfg, train)


def fit(cfg: Config, data_path, *, reporter: tc.Reporter | None = None,
        resume_state: dict | None = None, device: str | torch.device | None = None
        ) -> dict[str, float]:
    """Trains HAN and returns the selected epoch's metrics plus its ``test/...`` scores.

    Args:
        cfg: Configuration.
        data_path: AVVP data set (directory or file).
        reporter: ``reporter(epoch, metrics, state_fn)`` after every epoch.
        resume_state: A dict from ``state_fn()`` to continue from.
        device: Torch device (default: CUDA if available).

    Returns:
        Metrics of the epoch selected by ``cfg.select_metric`` (``val/...``, ``train/loss``,
        ``epoch``), ``best_epoch``, and ``test/...`` of the selected weights.
    """
    cfg.validate()
    dev = cd.resolve_device(device)
    data = bb.load_data(cfg, data_path, dev)
    result, _ = bb.train_backbone(cfg, data, dev, modality_targets(cfg, data["train"]),
                                  reporter=reporter, resume_state=resume_state)
    return result
