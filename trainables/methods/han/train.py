"""The HAN baseline trainable (weak labels, optional label smoothing, or the oracle upper bound).

``fit(cfg, data_path, ...)`` trains :class:`trainables.tasks.avvp.han.HAN` on an AVVP data set
(LLP or LLP-sim) with the loss ``w_video*BCE(video, y) + w_audio*BCE(a, y_a) + w_visual*BCE(v, y_v)``:

* ``label_source="weak"``: ``y_a = s_a*y + (1-s_a)*0.5`` and ``y_v = s_v*y + (1-s_v)*0.5`` (label
  smoothing with ``smooth_a``/``smooth_v``; ``s = 1`` means none; the official HAN code used
  ``s_v = 0.9``).
* ``label_source="oracle"``: ``y_a``/``y_v`` are the hidden true modality labels of LLP-sim's
  train split (``gt_audio``/``gt_visual`` any over segments): the upper bound of label denoising.

Two options come from the official JoMoLD code, which builds on HAN: ``cl_weight > 0`` adds the
audio-visual contrastive term of MA (:func:`trainables.tasks.avvp.han.contrastive_loss`) and
``cls_dropout`` drops visual segment features before the classifier.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch

from trainables.core import dist as cd
from trainables.core import loop as tc
from trainables.tasks.avvp import eval as ae
from trainables.tasks.avvp.han import HAN, contrastive_loss, han_loss
from trainables.core.config import check_fields
from trainables.core.seed import set_seed
from trainables.tasks.avvp.metrics import PROTOCOLS

log = logging.getLogger(__name__)


# ``weak``: the weak labels (optionally smoothed); ``oracle``: the hidden true modality labels
# (LLP-sim); ``vaplan``: VAPLAN's video-level pseudo labels from its CLIP/CLAP teachers.
LABEL_SOURCES = ("weak", "oracle", "vaplan")


@dataclass
class Config:
    """HAN training configuration (defaults: the HAN paper's).

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
        label_source: ``"weak"``, ``"oracle"`` (true modality labels; LLP-sim only) or
            ``"vaplan"`` (VAPLAN's PLG video-level pseudo labels, :func:`vaplan_targets`).
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
    label_source: str = "weak"
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
        check_fields(self, choices={"label_source": LABEL_SOURCES, "protocol": PROTOCOLS,
                                    "feature_dtype": tuple(_DTYPES)},
                     at_least_one=("epochs", "batch_size", "lr_step"), positive=("lr", "cl_temperature"),
                     non_negative=("cl_weight",), unit=("smooth_a", "smooth_v", "cl_smoothing"))
        if not 0.0 <= self.cls_dropout < 1.0:
            raise ValueError(f"cls_dropout must be in [0, 1), got {self.cls_dropout}")

    @property
    def loss_weights(self) -> tuple[float, float, float]:
        return (self.w_video, self.w_audio, self.w_visual)


_DTYPES = {"auto": None, "float32": torch.float32, "float16": torch.float16,
           "bfloat16": torch.bfloat16}


def build_model(cfg: Config, train: Any, device: torch.device) -> HAN:
    """A HAN sized from the data's feature dims, seeded by the caller."""
    da, dv, dm = ae.feature_dims(train)
    return HAN(da, dv, dm, cfg.d_model, train.labels.shape[1], cfg.dropout,
               cfg.cls_dropout).to(device)


def contrastive_term(cfg: Config, out) -> torch.Tensor | float:
    """``cfg.cl_weight`` times the contrastive loss of a forward's segment features (0 when off).

    Per video, so under DDP each rank's term is over its own rows and DDP's gradient average is
    the global batch mean (shards differ in size by at most one row)."""
    if cfg.cl_weight <= 0:
        return 0.0
    return cfg.cl_weight * contrastive_loss(out.a_feat, out.v_feat, cfg.cl_temperature,
                                            cfg.cl_smoothing)


def modality_targets(cfg: Config, train: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``(y_a, y_v)`` targets of the train split for ``cfg.label_source`` (``vaplan``:
    :func:`vaplan_targets`, which needs the data path)."""
    if cfg.label_source == "vaplan":
        raise ValueError("label_source='vaplan': the targets come from vaplan_targets(data_path, data)")
    if cfg.label_source == "oracle":
        if not train.has_truth:
            raise ValueError("label_source='oracle' needs a train split with hidden truth "
                             "(LLP-sim); this data set has none")
        true_a, true_v = train.modality_truth()
        return true_a.float(), true_v.float()
    return ae.smooth(train.labels, cfg.smooth_a), ae.smooth(train.labels, cfg.smooth_v)


def load_data(cfg: Config, data_path, device: torch.device):
    return ae.load_resident(data_path, device, feature_dtype=_DTYPES[cfg.feature_dtype])


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
    data = load_data(cfg, data_path, dev)
    targets = vaplan_targets(data_path, data) if cfg.label_source == "vaplan" else None
    result, _ = train_model(cfg, data, dev, reporter=reporter, resume_state=resume_state,
                            targets=targets)
    return result


def vaplan_targets(data_path, data: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """VAPLAN's video-level pseudo labels of the train split as ``(y_a, y_v)``: PLG with its
    default teachers, thresholds and prompts (``label_source="vaplan"``; the paper's Table 8 trains
    other backbones on them)."""
    from trainables.methods.vaplan import labels as vl
    from trainables.methods.vaplan.train import Config as VaplanConfig

    vcfg = VaplanConfig()
    seg = vl.plg(vcfg, vl.teacher_scores(vcfg, data_path, data)["train"], data["train"].labels)
    return vl.video_targets(seg)


def train_model(cfg: Config, data: dict, dev: torch.device, *, reporter=None, resume_state=None,
                test: bool = True, targets: tuple[torch.Tensor, torch.Tensor] | None = None
                ) -> tuple[dict[str, float], HAN]:
    """Trains HAN on resident ``data`` (from :func:`load_data`); ``targets`` overrides the
    ``(y_a, y_v)`` of :func:`modality_targets`.

    Returns:
        ``(result, model)``: :func:`fit`'s result and the model holding the selected weights.
    """
    seed = set_seed(cfg.seed)
    log.info("han seed=%d", seed)
    train = data["train"]
    model = build_model(cfg, train, dev)
    y_a, y_v = targets if targets is not None else modality_targets(cfg, train)
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
