"""JoMoLD: joint-modal label denoising for weakly supervised audio-visual video parsing.

Pipeline (from the paper; paper first, official-code behaviour as named options):

1. **Noise estimator**: HAN trained on the weak labels with the cross-modal attention off. Its
   train-set audio/visual probabilities are cached on disk, keyed by the data fingerprint, the
   estimator config and the seed (:func:`ensure_estimator`), so a sweep over ``theta`` trains it
   once.
2. **Noise ratios** (Eq. 1, ``estimate_noise_ratios``): for class ``c``,
   ``r[c] = #{i : y[i,c] = 1 and p[i,c] / mean_j p[j,c] < theta} / #{i : y[i,c] = 1}`` with the
   mean over all training videos (``theta_a`` audio, ``theta_v`` visual).
   ``ratio_mode="official"`` (``estimate_noise_ratios_official``) multiplies the probability
   by the smoothed label before dividing, and divides by the mean over batches of each batch's
   mean of the raw probability.
3. **Denoising training** (Algorithm 1): per batch, a no-grad forward with the cross-attention
   skipped gives per-label BCE losses ``L_a``, ``L_v``; ``select_noisy`` marks labels to
   remove from ``y_a``/``y_v``; the full model (cross-attention on) trains on ``y, y_a, y_v``.
   The probe runs in eval mode (ours: no dropout noise in the ranking) or, with
   ``probe_train_mode`` (official code), in training mode. Under torch.distributed the losses
   are all-gathered so the selection ranks over the global batch.
4. **Warm-up**: ratios ramp linearly from 0 over ``warmup_epochs`` (``warmup_mode="paper"``), or
   no denoising in the first epoch and full ratios after (``"official"``).
5. "w/ CL": the audio-visual contrastive term of MA (:func:`contrastive_loss`, ``cl_weight``),
   in the estimator and in the denoising stage, as the official code does.

The estimator, the ratios and the selection are :mod:`trainables.tasks.avvp.label_denoising`'s
(CMPAE denoises the same way); this module keeps JoMoLD's config and its use of them.

``Config.from_preset("official")`` sets every official-code behaviour at once; see
:data:`PRESETS` for which settings the paper states and which only the official code has.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import Any

import torch

from trainables.tasks.avvp import backbone as bb
from trainables.core import dist as cd
from trainables.core import loop as tc
from trainables.tasks.avvp import eval as ae
from trainables.tasks.avvp import label_denoising as ld
from trainables.tasks.avvp.han import han_loss
from trainables.core.config import check_fields, from_preset
from trainables.core.seed import set_seed
# The denoising pieces live in the AVVP task (CMPAE shares them); these names stay importable here.
from trainables.tasks.avvp.label_denoising import (OFFICIAL_ESTIMATOR_WEIGHTS, EstimatorPreds,
                                                   estimate_noise_ratios_official,
                                                   oracle_noise_ratios, select_batch, warmup_factor)

log = logging.getLogger(__name__)

# (video, audio, visual) BCE weights of the official code's denoising stage: it doubles the audio
# term (its estimator weighs the three equally: ``ld.OFFICIAL_ESTIMATOR_WEIGHTS``).
OFFICIAL_LOSS_WEIGHTS = (1.0, 2.0, 1.0)

# Named bundles of settings (Config.from_preset). The paper states theta, the warm-up, the
# estimator (HAN without cross-attention) and the "w/ CL" rows; everything in "official" beyond
# cl_weight is found only in the official code: visual label smoothing 0.9 in both stages, the
# loss weights, dropout 0.5 before the classifier, the selection probe in training mode, the
# ratio variant, the epoch-1 warm-up and model selection by validation event-level audio F.
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    "official": dict(loss_preset="official", ratio_mode="official", warmup_mode="official",
                     smooth_v=0.9, cls_dropout=0.5, cl_weight=1.0, probe_train_mode=True,
                     select_metric="val/event_A", estimator_cl="official"),
}

# The official estimator step always adds the contrastive term at weight 1 with smoothing 0.1,
# whatever weight and smoothing the denoising stage is given (``estimator_cl="official"``).
OFFICIAL_ESTIMATOR_CL = (1.0, 0.1)


@dataclass
class Config(bb.BackboneConfig):
    """JoMoLD configuration: the HAN backbone's fields plus the denoising ones (defaults: the paper's).

    Attributes:
        theta_a: Audio noise threshold of Eq. 1.
        theta_v: Visual noise threshold of Eq. 1 (>1 is normal: probabilities are normalised by
            the class mean).
        warmup_epochs: Epochs over which the ratios ramp linearly from 0 (``warmup_mode="paper"``).
        warmup_mode: ``"paper"`` (linear ramp) or ``"official"`` (none in epoch 1, full after).
        ratio_mode: ``"paper"`` (Eq. 1), ``"official"`` (smoothed-label product, batch means) or
            ``"oracle"`` (ours, a diagnostic: the true per-class noise ratios from LLP-sim's hidden
            truth, which separates errors of Eq. 1 from errors of the selection; needs truth).
        loss_preset: ``"paper"`` (the ``w_*`` fields in both stages) or ``"official"``
            (estimator video 1 / audio 1 / visual 1, denoising video 1 / audio 2 / visual 1).
        estimator_epochs: Epochs of the noise estimator.
        ratio_batch_size: Batch size of the per-batch means in ``ratio_mode="official"``.
        probe_train_mode: Run the selection probe in training mode, dropout on (official code);
            default eval mode (ours).
        estimator_cl: The estimator's contrastive term: ``"inherit"`` (ours: the same
            ``cl_weight`` / ``cl_smoothing`` as the denoising stage, so "w/o CL" has none) or
            ``"official"`` (weight 1, smoothing 0.1 whatever the denoising stage uses, as the
            official code's estimator step; the two agree for "w/ CL" at the defaults).

    The contrastive term (``cl_weight``, ``cl_temperature``, ``cl_smoothing``) and
    ``cls_dropout`` are HAN fields, so the estimator takes them from this config.
    """

    theta_a: float = 0.6
    theta_v: float = 1.8
    warmup_epochs: float = 0.9
    warmup_mode: str = "paper"
    ratio_mode: str = "paper"
    loss_preset: str = "paper"
    estimator_epochs: int = 25
    ratio_batch_size: int = 128
    probe_train_mode: bool = False
    estimator_cl: str = "inherit"

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> "Config":
        """The :data:`PRESETS` bundle ``name`` with ``overrides`` on top."""
        return from_preset(cls, PRESETS, "JoMoLD", name, overrides)

    def validate(self) -> None:
        super().validate()
        check_fields(self, choices={"warmup_mode": ("paper", "official"),
                                    "ratio_mode": ("paper", "official", "oracle"),
                                    "loss_preset": ("paper", "official"),
                                    "estimator_cl": ("inherit", "official")},
                     at_least_one=("ratio_batch_size", "estimator_epochs"), non_negative=("warmup_epochs",))

    @property
    def loss_weights(self) -> tuple[float, float, float]:
        if self.loss_preset == "official":
            return OFFICIAL_LOSS_WEIGHTS
        return (self.w_video, self.w_audio, self.w_visual)


# --------------------------------------------------------------------------------------------
# The cached noise estimator (trainables.tasks.avvp.label_denoising) for a JoMoLD config
# --------------------------------------------------------------------------------------------

def estimator_config(cfg: Config) -> bb.BackboneConfig:
    """The HAN config of the noise estimator: ``cfg``'s HAN fields, cross-attention off, trained
    for ``estimator_epochs`` (with the official code's equal loss weights under
    ``loss_preset="official"`` and its contrastive term under ``estimator_cl="official"``)."""
    est = ld.estimator_config(cfg, cfg.estimator_epochs,
                              official_weights=cfg.loss_preset == "official")
    if cfg.estimator_cl == "official":
        est.cl_weight, est.cl_smoothing = OFFICIAL_ESTIMATOR_CL
    return est


def estimator_key(cfg: Config, data_path) -> str:
    """Cache key: data fingerprint, estimator config (seed included)."""
    return ld.estimator_key(estimator_config(cfg), data_path)


def ensure_estimator(cfg: Config, data_path, device: str | torch.device | None = None, *,
                     cache_dir: str | os.PathLike | None = None, data: dict | None = None,
                     reporter: tc.Reporter | None = None) -> ld.EstimatorPreds:
    """The noise estimator's train-split predictions for ``cfg`` (:func:`ld.ensure_estimator`:
    trained only if not cached); JoMoLD's ``prepare`` hook."""
    return ld.ensure_estimator(estimator_config(cfg), data_path, device, cache_dir=cache_dir,
                               data=data, reporter=reporter)


def noise_ratios(cfg: Config, est: ld.EstimatorPreds, labels: torch.Tensor, train: Any = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Ratios for ``cfg.ratio_mode`` from the estimator's predictions (or, for ``"oracle"``, from
    ``train``'s hidden truth)."""
    if cfg.ratio_mode == "oracle":
        return oracle_noise_ratios(train)
    return ld.estimator_ratios(cfg.ratio_mode, est, labels, cfg.theta_a, cfg.theta_v,
                               smooth_a=cfg.smooth_a, smooth_v=cfg.smooth_v,
                               batch_size=cfg.ratio_batch_size)


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------

def fit(cfg: Config, data_path, *, reporter: tc.Reporter | None = None,
        resume_state: dict | None = None, device: str | torch.device | None = None,
        estimator_cache_dir: str | os.PathLike | None = None,
        estimator_reporter: tc.Reporter | None = None) -> dict[str, float]:
    """Runs JoMoLD: (cached) estimator, noise ratios, denoising training, test.

    Args:
        cfg: Configuration.
        data_path: AVVP data set.
        reporter: ``reporter(epoch, metrics, state_fn)`` after every denoising epoch; on LLP-sim
            the metrics include ``denoise/...`` (removed labels vs the hidden truth, over the
            epoch) and ``noise_ratio/mae_*``.
        resume_state: A dict from ``state_fn()``; its refined-label state (ratios, estimator key)
            is reused.
        device: Torch device.
        estimator_cache_dir: Override of the estimator cache directory.
        estimator_reporter: Reporter for the estimator's epochs (only when it is trained).

    Returns:
        The selected epoch's metrics, ``test/...``, ``best_epoch``, ``time/ratios_s``.
    """
    cfg.validate()
    dev = cd.resolve_device(device)
    data = bb.load_data(cfg, data_path, dev)
    train = data["train"]
    y = train.labels
    n_cls = y.shape[1]

    if resume_state is not None and "extra" in resume_state:
        extra = resume_state["extra"]
        key = extra["estimator_key"]
        ratio_a, ratio_v = extra["ratio_a"].double(), extra["ratio_v"].double()
        t_ratio = 0.0
    elif cfg.ratio_mode == "oracle":
        # The true ratios need no estimator.
        key = "oracle"
        t0 = time.perf_counter()
        ratio_a, ratio_v = oracle_noise_ratios(train)
        t_ratio = time.perf_counter() - t0
    else:
        est = ensure_estimator(cfg, data_path, dev, cache_dir=estimator_cache_dir, data=data,
                               reporter=estimator_reporter)
        if est.video_ids != list(train.video_ids):
            raise ValueError(f"{est.path}: estimator predictions are for other train videos")
        key = est.key
        t0 = time.perf_counter()
        ratio_a, ratio_v = noise_ratios(cfg, est, y, train)
        t_ratio = time.perf_counter() - t0
    ratio_a_dev, ratio_v_dev = ratio_a.to(dev), ratio_v.to(dev)

    seed = set_seed(cfg.seed)
    log.info("jomold seed=%d estimator=%s", seed, key)
    model = bb.build_model(cfg, train, dev)
    y_a_full, y_v_full = ae.smooth(y, cfg.smooth_a), ae.smooth(y, cfg.smooth_v)
    weights = cfg.loss_weights
    removed = {"a": torch.zeros_like(y, dtype=torch.bool), "v": torch.zeros_like(y, dtype=torch.bool)}

    def step(net, info: tc.StepInfo) -> torch.Tensor:
        gidx, idx = info.global_idx, info.local_idx
        inputs = ae.batch_inputs(train, idx, dev)
        f = warmup_factor(info.progress, cfg.warmup_epochs, cfg.warmup_mode)
        rem_a, rem_v = select_batch(net, inputs, y[idx], y[gidx], ratio_a_dev * f,
                                    ratio_v_dev * f, targets=(y_a_full[idx], y_v_full[idx]),
                                    train_mode=cfg.probe_train_mode)
        removed["a"][gidx] = rem_a
        removed["v"][gidx] = rem_v
        ya = y_a_full[idx] * (~rem_a[info.local]).float()
        yv = y_v_full[idx] * (~rem_v[info.local]).float()
        with cd.autocast(dev):
            out = net(*inputs, with_ca=True)
        loss = han_loss(out, y[idx], ya, yv, weights, reduction="sum")
        return loss * (info.world / (len(gidx) * n_cls)) + bb.contrastive_term(cfg, out)

    def epoch_end(epoch: int) -> dict[str, float]:
        m = ld.denoise_epoch_metrics(removed, ratio_a, ratio_v, train)
        removed["a"].zero_()
        removed["v"].zero_()
        return m

    def extra_state() -> dict[str, Any]:
        return {"estimator_key": key, "ratio_a": ratio_a.cpu(), "ratio_v": ratio_v.cpu()}

    result = tc.fit_loop(cfg=cfg, model=model, data=data, device=dev, step_fn=step,
                         evaluate_fn=ae.evaluator(cfg, data), reporter=reporter,
                         resume_state=resume_state, epoch_end_fn=epoch_end,
                         extra_state_fn=extra_state)
    result["time/ratios_s"] = t_ratio
    result["seed"] = float(seed)
    return result
