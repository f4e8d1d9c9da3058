"""The HAN backbone as every AVVP method trains it: the shared settings, resident data, the model,
the contrastive term and one training run on given modality targets.

HAN, JoMoLD, RLLD, VAPLAN (and any later HAN-based method) compose these pieces, so none of them
imports another method's package. :class:`BackboneConfig` holds the HAN paper's backbone, optimiser
and run settings; a method's ``Config`` subclasses it and adds its own fields.

The training objective of :func:`train_backbone` is HAN's
``w_video*BCE(video, y) + w_audio*BCE(a, y_a) + w_visual*BCE(v, y_v)`` (plus ``cl_weight`` times the
contrastive term), with the targets ``(y_a, y_v)`` supplied by the caller: the smoothed weak labels
(:func:`weak_targets`), the hidden truth, or any method's refined labels.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch

from trainables.core import dist as cd
from trainables.core import loop as tc
from trainables.core.config import check_fields
from trainables.core.seed import set_seed
from trainables.tasks.avvp import eval as ae
from trainables.tasks.avvp.han import HAN, contrastive_loss, han_loss
from trainables.tasks.avvp.metrics import PROTOCOLS

log = logging.getLogger(__name__)

# Feature storage dtypes; ``auto`` is bf16 on CUDA, fp32 on CPU (``eval.default_feature_dtype``).
DTYPES = {"auto": None, "float32": torch.float32, "float16": torch.float16,
          "bfloat16": torch.bfloat16}


@dataclass
class BackboneConfig:
    """The HAN backbone's training settings (defaults: the HAN paper's).

    Attributes:
        epochs: Training epochs.
        batch_size: Global batch size.
        lr: Adam learning rate.
        lr_step: StepLR period in epochs.
        lr_gamma: StepLR factor.
        dropout: Dropout of the hybrid attention layer.
        d_model: Hidden size.
        smooth_a: Audio label smoothing ``s``: target ``s*y + (1-s)*0.5`` (1 = none).
        smooth_v: Visual label smoothing ``s`` (the official HAN code used 0.9).
        w_video: Weight of the video-level BCE.
        w_audio: Weight of the audio-level BCE.
        w_visual: Weight of the visual-level BCE.
        with_ca: Train with the cross-modal attention term.
        protocol: Decoding protocol of ``trainables.tasks.avvp.metrics.decode`` (``han``/``jomold``).
        threshold: Decoding threshold.
        select_metric: Validation metric that selects the reported epoch.
        seed: Seed (logged; ``set_seed``).
        feature_dtype: ``auto`` (bf16 on CUDA, fp32 on CPU), ``float32``, ``float16``, ``bfloat16``.
        cls_dropout: Dropout on the visual segment features before the classifier (official
            JoMoLD code: 0.5; the HAN paper has none).
        cl_weight: Weight of the audio-visual contrastive term (0 = off; JoMoLD's "w/ CL": 1).
        cl_temperature: Its similarity temperature (official: 0.2).
        cl_smoothing: Its target smoothing over the other segments (official: 0.1).
    """

    epochs: int = 25
    batch_size: int = 128
    lr: float = 5e-4
    lr_step: int = 6
    lr_gamma: float = 0.25
    dropout: float = 0.1
    d_model: int = 512
    smooth_a: float = 1.0
    smooth_v: float = 1.0
    w_video: float = 1.0
    w_audio: float = 1.0
    w_visual: float = 1.0
    with_ca: bool = True
    protocol: str = "han"
    threshold: float = 0.5
    select_metric: str = "val/seg_Type"
    seed: int = 0
    feature_dtype: str = "auto"
    cls_dropout: float = 0.0
    cl_weight: float = 0.0
    cl_temperature: float = 0.2
    cl_smoothing: float = 0.1

    def validate(self) -> None:
        """Raises ValueError naming the bad key."""
        check_fields(self, choices={"protocol": PROTOCOLS, "feature_dtype": tuple(DTYPES)},
                     at_least_one=("epochs", "batch_size", "lr_step"), positive=("lr", "cl_temperature"),
                     non_negative=("cl_weight",), unit=("smooth_a", "smooth_v", "cl_smoothing"))
        if not 0.0 <= self.cls_dropout < 1.0:
            raise ValueError(f"cls_dropout must be in [0, 1), got {self.cls_dropout}")

    @property
    def loss_weights(self) -> tuple[float, float, float]:
        return (self.w_video, self.w_audio, self.w_visual)


def load_data(cfg: BackboneConfig, data_path, device: torch.device) -> dict[str, Any]:
    """Every split of an AVVP data set resident on ``device`` in ``cfg.feature_dtype``."""
    return ae.load_resident(data_path, device, feature_dtype=DTYPES[cfg.feature_dtype])


def build_model(cfg: BackboneConfig, train: Any, device: torch.device) -> HAN:
    """A HAN sized from the data's feature dims, seeded by the caller."""
    da, dv, dm = ae.feature_dims(train)
    return HAN(da, dv, dm, cfg.d_model, train.labels.shape[1], cfg.dropout,
               cfg.cls_dropout).to(device)


def contrastive_term(cfg: BackboneConfig, out) -> torch.Tensor | float:
    """``cfg.cl_weight`` times the contrastive loss of a forward's segment features (0 when off).

    Per video, so under DDP each rank's term is over its own rows and DDP's gradient average is
    the global batch mean (shards differ in size by at most one row)."""
    if cfg.cl_weight <= 0:
        return 0.0
    return cfg.cl_weight * contrastive_loss(out.a_feat, out.v_feat, cfg.cl_temperature,
                                            cfg.cl_smoothing)


def weak_targets(cfg: BackboneConfig, train: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """``(y_a, y_v)``: the weak labels, smoothed by ``smooth_a``/``smooth_v``."""
    return ae.smooth(train.labels, cfg.smooth_a), ae.smooth(train.labels, cfg.smooth_v)


def train_backbone(cfg: BackboneConfig, data: dict, dev: torch.device,
                   targets: tuple[torch.Tensor, torch.Tensor], *, reporter=None, resume_state=None,
                   test: bool = True) -> tuple[dict[str, float], HAN]:
    """Trains HAN on resident ``data`` (from :func:`load_data`) against the train split's
    modality targets ``(y_a, y_v)`` (N, C).

    Returns:
        ``(result, model)``: :func:`trainables.core.loop.fit_result` plus ``seed``, and the model
        holding the selected weights.
    """
    seed = set_seed(cfg.seed)
    log.info("han backbone seed=%d", seed)
    train = data["train"]
    model = build_model(cfg, train, dev)
    y_a, y_v = targets
    weights = cfg.loss_weights
    n_cls = train.labels.shape[1]

    def step(net, info: tc.StepInfo) -> torch.Tensor:
        idx = info.local_idx
        with cd.autocast(dev):
            out = net(*ae.batch_inputs(train, idx, dev), with_ca=cfg.with_ca)
        loss = han_loss(out, train.labels[idx], y_a[idx], y_v[idx], weights, reduction="sum")
        # Per-element mean over the *global* batch, times world because DDP averages gradients.
        return loss * (info.world / (len(info.global_idx) * n_cls)) + contrastive_term(cfg, out)

    result = tc.fit_loop(cfg=cfg, model=model, data=data, device=dev, step_fn=step,
                         evaluate_fn=ae.evaluator(cfg, data, with_ca=cfg.with_ca),
                         reporter=reporter, resume_state=resume_state, test=test)
    result["seed"] = float(seed)
    return result, model
