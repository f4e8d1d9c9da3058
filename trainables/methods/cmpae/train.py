"""CMPAE (Gao, Chen, Xu, CVPR 2023): cross-modal presence-absence evidence on JoMoLD's denoising.

The paper's body text could not be read (only its abstract); every setting below is the official
code's (MengyuanChen21/CVPR2023-CMPAE, built on JoMoLD's), which is then the fact to match, except
the evaluation protocol: by default CMPAE is decoded and selected like every other method (the AVVP
task's shared decode, ``protocol="han"`` at 0.5 with the global branch as the video probability,
selection by ``val/seg_Type``), so its rows compare with theirs. The official protocol is the preset
``official`` (:data:`PRESETS`); its per-class thresholds chosen on the validation set make such rows
a protocol variant, marked in tables (:func:`mark`).

Pipeline:

1. **Noise ratios** as in JoMoLD's official code (:mod:`trainables.tasks.avvp.label_denoising`): its
   noise estimator (HAN without cross-attention, cached and shared with JoMoLD's official preset),
   the official ratio variant with theta_a 0.6 / theta_v 1.8; or ratios from a file
   (``ratio_mode="file"``, the official ``--noise_ratio_file``), or LLP-sim's true ratios
   (``"oracle"``, a diagnostic).
2. **Training** (20 epochs, Adam 5e-4, x0.25 every 6 epochs, batch 128): per batch, JoMoLD's
   selection on a no-grad probe without cross-attention (dropout on, no removal in epoch 1)
   removes labels from the audio targets ``y`` and the visual targets ``0.9 y + 0.05``; the model
   (:mod:`trainables.methods.cmpae.model`) trains on
   ``2 BCE(a, y_a) + 0.6 BCE(v, y_v) + 0.6 BCE(global, y) + 1 * contrastive + 1 * mutual``
   (:func:`trainables.methods.cmpae.losses.mutual_learning_loss`; the contrastive term is MA's, as
   in JoMoLD's "w/ CL").
3. **Evaluation**: two eval passes (with and without cross-attention) mixed 0.7 / 0.3, then the
   decode (:mod:`trainables.methods.cmpae.evaluate`). With ``visual_thresholds="val"`` the visual
   video-level threshold of each class is searched on val, by default on the snapshot after
   ``early_epoch`` = 8 epochs (``threshold_model="early"``, the official code) and applied to the
   selected model at test.
"""

from __future__ import annotations

import copy
import logging
import os
import time
from dataclasses import dataclass
from typing import Any

import torch

from trainables.core import dist as cd
from trainables.core import loop as tc
from trainables.core.config import check_fields, from_preset
from trainables.core.seed import set_seed
from trainables.methods.cmpae import evaluate as ce
from trainables.methods.cmpae.losses import mutual_learning_loss
from trainables.methods.cmpae.model import CMPAENet
from trainables.tasks.avvp import backbone as bb
from trainables.tasks.avvp import eval as ae
from trainables.tasks.avvp import label_denoising as ld
from trainables.tasks.avvp.classes import LLP_CLASSES
from trainables.tasks.avvp.han import han_loss
from trainables.tasks.avvp.metrics import metric_name
from trainables.tasks.avvp.report import SCORE_KEYS

log = logging.getLogger(__name__)

# The official JoMoLD estimator's model selection (its val event-level audio F).
ESTIMATOR_SELECT_METRIC = "val/event_A"

# The official code's evaluation protocol: its decoding (segment 0.25, audio 0.45, visual 0.45 or
# per class), model selection by the mean of the ten val scores with ties to the later epoch, and
# per-class visual thresholds searched on val with the epoch-8 snapshot. ``official_fixed`` is the
# same without the search (visual 0.45 for every class: no validation-chosen thresholds).
_OFFICIAL_PROTOCOL = dict(decode="cmpae", select_metric=f"val/{ce.MEAN_KEY}", select_ties="last")
PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "official": dict(_OFFICIAL_PROTOCOL, visual_thresholds="val", threshold_model="early"),
    "official_fixed": dict(_OFFICIAL_PROTOCOL),
}

MARK = ("†", "visual thresholds chosen per class on the validation set (CMPAE's protocol); not "
             "comparable with rows decoded at the shared thresholds")


@dataclass
class Config(bb.BackboneConfig):
    """CMPAE configuration (defaults: the official code's, with the task's shared protocol).

    The backbone fields take the official values: ``epochs`` 20, ``smooth_v`` 0.9 (visual targets
    ``0.9 y + 0.05``), loss weights ``w_video`` 0.6 / ``w_audio`` 2.0 / ``w_visual`` 0.6,
    ``cls_dropout`` 0.5, ``cl_weight`` 1 (MA's contrastive term, temperature 0.2, smoothing 0.1).

    Attributes:
        theta_a: Audio noise threshold of the ratios (JoMoLD's; official 0.6).
        theta_v: Visual noise threshold (official 1.8).
        ratio_mode: ``"official"`` (the JoMoLD code's ratios from the estimator), ``"paper"``
            (JoMoLD's Eq. 1), ``"file"`` (``noise_ratio_file``) or ``"oracle"`` (LLP-sim's true
            ratios; a diagnostic).
        noise_ratio_file: ``.npz`` with ``audio`` and ``visual`` (C,) ratios (``ratio_mode="file"``).
        estimator_epochs: Epochs of JoMoLD's noise estimator (its official 25).
        ratio_batch_size: Batch size of the official ratios' per-batch means.
        warmup_mode: ``"official"`` (no removal in epoch 1, full ratios after) or ``"paper"``
            (JoMoLD's linear ramp over ``warmup_epochs``).
        warmup_epochs: Ramp length of ``warmup_mode="paper"``.
        probe_train_mode: The selection probe runs with dropout on (official) or in eval mode.
        w_mutual: Weight of the mutual learning term (official 1).
        mutual_neg_weight: Its weight of the absent classes' term, lambda (official 1).
        uct_floor: Floor of the global uncertainty in it (official 0.9).
        evidence_temp: Evidence temperature (official 0.8).
        evidence_clamp: Evidence logit clamp (official 10).
        cross_dropout: Dropout in the cross-modal maps of the absence branch (official 0.2).
        ca_mix: Share of the cross-attention pass in the attention layer's output (official 0.8).
        fuse_ratio: Share of the cross-attention forward in the evaluation's two-pass mix (0.7).
        decode: ``"task"`` (the shared decode: ``protocol`` at ``threshold``) or ``"cmpae"`` (the
            official: ``seg_threshold``, ``audio_threshold``, ``visual_threshold``).
        seg_threshold: Segment threshold of ``decode="cmpae"`` (official 0.25).
        audio_threshold: Video-level audio threshold of ``decode="cmpae"`` (official 0.45).
        visual_threshold: Video-level visual threshold of ``decode="cmpae"`` (official 0.45), for
            every class, or for the classes not being searched.
        visual_thresholds: ``"fixed"`` (``visual_threshold`` for every class) or ``"val"`` (chosen
            per class on val before the test: a protocol variant, marked in tables).
        threshold_metric: The val score the search maximises (official: event-level visual F).
        threshold_model: The weights the search decodes: ``"early"`` (the official code: the model
            after ``early_epoch`` epochs, or after the last epoch when the run is shorter) or
            ``"selected"`` (ours: the selected model, which the test decodes).
        early_epoch: Epochs before the ``"early"`` snapshot (official 8).
        select_ties: Which of tied validation epochs is selected: ``"first"`` (the task's rule) or
            ``"last"`` (the official code's ``>=``).
    """

    epochs: int = 20
    smooth_v: float = 0.9
    w_video: float = 0.6
    w_audio: float = 2.0
    w_visual: float = 0.6
    cls_dropout: float = 0.5
    cl_weight: float = 1.0
    theta_a: float = 0.6
    theta_v: float = 1.8
    ratio_mode: str = "official"
    noise_ratio_file: str = ""
    estimator_epochs: int = 25
    ratio_batch_size: int = 128
    warmup_mode: str = "official"
    warmup_epochs: float = 0.9
    probe_train_mode: bool = True
    w_mutual: float = 1.0
    mutual_neg_weight: float = 1.0
    uct_floor: float = 0.9
    evidence_temp: float = 0.8
    evidence_clamp: float = 10.0
    cross_dropout: float = 0.2
    ca_mix: float = 0.8
    fuse_ratio: float = 0.7
    decode: str = "task"
    seg_threshold: float = 0.25
    audio_threshold: float = 0.45
    visual_threshold: float = 0.45
    visual_thresholds: str = "fixed"
    threshold_metric: str = "event_V"
    threshold_model: str = "early"
    early_epoch: int = 8
    select_ties: str = "first"

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> "Config":
        """The :data:`PRESETS` bundle ``name`` with ``overrides`` on top."""
        return from_preset(cls, PRESETS, "CMPAE", name, overrides)

    def validate(self) -> None:
        super().validate()
        check_fields(self, choices={"ratio_mode": ("official", "paper", "file", "oracle"),
                                    "warmup_mode": ("official", "paper"),
                                    "decode": ("task", "cmpae"),
                                    "visual_thresholds": ("fixed", "val"),
                                    "threshold_model": ("early", "selected"),
                                    "threshold_metric": tuple(SCORE_KEYS),
                                    "select_ties": ("first", "last")},
                     at_least_one=("estimator_epochs", "ratio_batch_size", "early_epoch"),
                     positive=("evidence_temp", "evidence_clamp"),
                     non_negative=("w_mutual", "mutual_neg_weight", "warmup_epochs"),
                     unit=("uct_floor", "ca_mix", "fuse_ratio", "seg_threshold", "audio_threshold",
                           "visual_threshold"))
        if not 0.0 <= self.cross_dropout < 1.0:
            raise ValueError(f"cross_dropout must be in [0, 1), got {self.cross_dropout}")
        if self.ratio_mode == "file" and not self.noise_ratio_file:
            raise ValueError("ratio_mode='file' needs noise_ratio_file (an .npz with 'audio' and "
                             "'visual' ratios)")
        if self.visual_thresholds == "val" and self.decode != "cmpae":
            raise ValueError("visual_thresholds='val' needs decode='cmpae' (the shared decode has "
                             "no per-class visual threshold)")


def mark(cfg: Config) -> tuple[str, str] | None:
    """Tables mark rows whose visual thresholds were chosen on the validation set."""
    return MARK if cfg.visual_thresholds == "val" else None


def check(cfg: Config, data_spec: str) -> None:
    """Plan-time check: a ``noise_ratio_file`` must load (25 ratios per modality in [0, 1])."""
    if cfg.ratio_mode == "file":
        ld.load_noise_ratios(cfg.noise_ratio_file, len(LLP_CLASSES))


# --------------------------------------------------------------------------------------------
# Noise ratios
# --------------------------------------------------------------------------------------------

def estimator_config(cfg: Config) -> bb.BackboneConfig:
    """JoMoLD's official noise estimator for ``cfg``: the shared optimiser, model and smoothing
    fields, equal loss weights, selection by val event-level audio F, ``estimator_epochs`` long.
    The same config as ``jomold``'s official preset builds, so the two methods share its cache."""
    base = bb.BackboneConfig(
        batch_size=cfg.batch_size, lr=cfg.lr, lr_step=cfg.lr_step, lr_gamma=cfg.lr_gamma,
        dropout=cfg.dropout, d_model=cfg.d_model, smooth_a=cfg.smooth_a, smooth_v=cfg.smooth_v,
        select_metric=ESTIMATOR_SELECT_METRIC, seed=cfg.seed, feature_dtype=cfg.feature_dtype,
        cls_dropout=cfg.cls_dropout, cl_weight=cfg.cl_weight, cl_temperature=cfg.cl_temperature,
        cl_smoothing=cfg.cl_smoothing)
    return ld.estimator_config(base, cfg.estimator_epochs, official_weights=True)


def ensure_estimator(cfg: Config, data_path, device: str | torch.device | None = None, *,
                     cache_dir: str | os.PathLike | None = None, data: dict | None = None,
                     reporter: tc.Reporter | None = None) -> ld.EstimatorPreds | None:
    """The ``prepare`` hook: trains (or finds cached) the noise estimator; None when the ratios
    come from a file or the truth."""
    if cfg.ratio_mode in ("file", "oracle"):
        return None
    return ld.ensure_estimator(estimator_config(cfg), data_path, device, cache_dir=cache_dir,
                               data=data, reporter=reporter)


def noise_ratios(cfg: Config, data_path, device, data: dict, *, cache_dir=None, reporter=None
                 ) -> tuple[torch.Tensor, torch.Tensor, str]:
    """``(ratio_a, ratio_v, source)`` for ``cfg.ratio_mode``; ``source`` names where they came
    from (the estimator's cache key, the file, or ``"oracle"``)."""
    train = data["train"]
    if cfg.ratio_mode == "oracle":
        return (*ld.oracle_noise_ratios(train), "oracle")
    if cfg.ratio_mode == "file":
        return (*ld.load_noise_ratios(cfg.noise_ratio_file, train.labels.shape[1]),
                f"file:{cfg.noise_ratio_file}")
    est = ensure_estimator(cfg, data_path, device, cache_dir=cache_dir, data=data, reporter=reporter)
    if est.video_ids != list(train.video_ids):
        raise ValueError(f"{est.path}: estimator predictions are for other train videos")
    ra, rv = ld.estimator_ratios(cfg.ratio_mode, est, train.labels, cfg.theta_a, cfg.theta_v,
                                 smooth_a=cfg.smooth_a, smooth_v=cfg.smooth_v,
                                 batch_size=cfg.ratio_batch_size)
    return ra, rv, est.key


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------

class _TiesToLast(tc.BestTracker):
    """Model selection whose ties go to the later epoch (the official code's ``>=``)."""

    def update(self, epoch: int, metrics, model) -> bool:
        if self.epoch >= 0 and self.metric in metrics and float(metrics[self.metric]) == self.value:
            self.epoch = -1  # an equal value is recorded like a better one
        return super().update(epoch, metrics, model)


def build_model(cfg: Config, train: Any, device: torch.device) -> CMPAENet:
    """A :class:`CMPAENet` sized from the data's feature dims, seeded by the caller."""
    da, dv, dm = ae.feature_dims(train)
    return CMPAENet(da, dv, dm, cfg.d_model, train.labels.shape[1], cfg.dropout, cfg.cls_dropout,
                    cfg.cross_dropout, cfg.ca_mix, cfg.evidence_temp, cfg.evidence_clamp).to(device)


def cmpae_loss(cfg: Config, out, y: torch.Tensor, y_a: torch.Tensor, y_v: torch.Tensor, *,
               to_global: bool, scale: float) -> torch.Tensor:
    """The training objective of one batch: the three BCE terms and the mutual term, summed over
    the rows and times ``scale`` (1 / (B C) for the mean over a global batch), plus the contrastive
    term (a per-video mean)."""
    weights = (cfg.w_video, cfg.w_audio, cfg.w_visual)
    # The mutual term reads the probabilities clamped as the BCE terms read them.
    g, a, v = (p.float().clamp(1e-7, 1 - 1e-7) for p in (out.global_prob, out.a_prob, out.v_prob))
    mutual = mutual_learning_loss(y, g, a, v, out.a_uct, out.v_uct, out.global_uct,
                                  to_global=to_global, uct_floor=cfg.uct_floor,
                                  neg_weight=cfg.mutual_neg_weight, reduction="sum")
    sums = han_loss(out, y, y_a, y_v, weights, reduction="sum") + cfg.w_mutual * mutual
    return sums * scale + bb.contrastive_term(cfg, out)


def _snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: t.detach().clone() for k, t in cd.unwrap(model).state_dict().items()}


def visual_thresholds(cfg: Config, model: CMPAENet, early: dict[str, torch.Tensor] | None,
                      val: Any) -> torch.Tensor:
    """The (C,) visual thresholds the test decodes with: fixed, or searched on ``val`` with the
    selected weights or the early snapshot."""
    n_cls = val.labels.shape[1]
    if cfg.visual_thresholds == "fixed":
        return ce.visual_vector(cfg, n_cls)
    net = model
    if cfg.threshold_model == "early":
        net = copy.deepcopy(cd.unwrap(model))
        net.load_state_dict(early)
    return ce.search_visual_thresholds(cfg, ce.predict_fused(net, val, cfg.fuse_ratio), val)


def fit(cfg: Config, data_path, *, reporter: tc.Reporter | None = None,
        resume_state: dict | None = None, device: str | torch.device | None = None,
        estimator_cache_dir: str | os.PathLike | None = None,
        estimator_reporter: tc.Reporter | None = None) -> dict[str, float]:
    """Runs CMPAE: noise ratios, denoising training, (optionally) the threshold search, test.

    Args:
        cfg: Configuration.
        data_path: AVVP data set.
        reporter: ``reporter(epoch, metrics, state_fn)`` after every epoch (``val/...`` at the
            fixed thresholds, ``val/mean_ten``; on LLP-sim ``denoise/...``, ``noise_ratio/mae_*``).
        resume_state: A dict from ``state_fn()``; its ratios and early snapshot are reused.
        device: Torch device.
        estimator_cache_dir: Override of the estimator cache directory.
        estimator_reporter: Reporter for the estimator's epochs (only when it is trained).

    Returns:
        :func:`trainables.core.loop.fit_result`'s keys, ``time/ratios_s``, ``time/thresholds_s``
        and, with ``visual_thresholds="val"``, the chosen ``threshold_v/<class>``.
    """
    cfg.validate()
    dev = cd.resolve_device(device)
    data = bb.load_data(cfg, data_path, dev)
    train = data["train"]
    y = train.labels
    t0 = time.perf_counter()
    if resume_state is not None and "extra" in resume_state:
        extra = resume_state["extra"]
        ratio_a, ratio_v, source = extra["ratio_a"].double(), extra["ratio_v"].double(), extra["ratios"]
    else:
        ratio_a, ratio_v, source = noise_ratios(cfg, data_path, dev, data,
                                                cache_dir=estimator_cache_dir,
                                                reporter=estimator_reporter)
    t_ratio = time.perf_counter() - t0
    ratio_a_dev, ratio_v_dev = ratio_a.to(dev), ratio_v.to(dev)

    seed = set_seed(cfg.seed)
    log.info("cmpae seed=%d ratios=%s", seed, source)
    model = build_model(cfg, train, dev)
    y_a_full, y_v_full = ae.smooth(y, cfg.smooth_a), ae.smooth(y, cfg.smooth_v)
    removed = {"a": torch.zeros_like(y, dtype=torch.bool), "v": torch.zeros_like(y, dtype=torch.bool)}
    keep_early = cfg.visual_thresholds == "val" and cfg.threshold_model == "early"
    early_epoch = min(cfg.early_epoch, cfg.epochs)
    if keep_early and cfg.epochs < cfg.early_epoch:
        log.warning("cmpae: %d epochs < early_epoch %d: the threshold search uses the last epoch's "
                    "weights", cfg.epochs, cfg.early_epoch)
    early: dict[str, Any] = {"weights": None}
    if resume_state is not None and resume_state.get("extra", {}).get("early"):
        early["weights"] = resume_state["extra"]["early"]

    def step(net, info: tc.StepInfo) -> torch.Tensor:
        gidx, idx = info.global_idx, info.local_idx
        inputs = ae.batch_inputs(train, idx, dev)
        f = ld.warmup_factor(info.progress, cfg.warmup_epochs, cfg.warmup_mode)
        rem_a, rem_v = ld.select_batch(net, inputs, y[idx], y[gidx], ratio_a_dev * f,
                                       ratio_v_dev * f, targets=(y_a_full[idx], y_v_full[idx]),
                                       train_mode=cfg.probe_train_mode)
        removed["a"][gidx] = rem_a
        removed["v"][gidx] = rem_v
        ya = y_a_full[idx] * (~rem_a[info.local]).float()
        yv = y_v_full[idx] * (~rem_v[info.local]).float()
        with cd.autocast(dev):
            out = net(*inputs, with_ca=True)
        # The official code alternates the mutual term's direction by the batch's index in its epoch.
        return cmpae_loss(cfg, out, y[idx], ya, yv, to_global=info.it % 2 == 1,
                          scale=info.world / (len(gidx) * y.shape[1]))

    def epoch_end(epoch: int) -> dict[str, float]:
        m = ld.denoise_epoch_metrics(removed, ratio_a, ratio_v, train)
        removed["a"].zero_()
        removed["v"].zero_()
        if keep_early and epoch + 1 == early_epoch:
            early["weights"] = _snapshot(model)
        return m

    def extra_state() -> dict[str, Any]:
        return {"ratios": source, "ratio_a": ratio_a.cpu(), "ratio_v": ratio_v.cpu(),
                "early": early["weights"] or {}}

    evaluate_fn = ce.evaluator(cfg, data)
    select = _TiesToLast(cfg.select_metric, tc.select_mode(cfg.select_metric)) \
        if cfg.select_ties == "last" else None
    result = tc.fit_loop(cfg=cfg, model=model, data=data, device=dev, step_fn=step,
                         evaluate_fn=evaluate_fn, reporter=reporter, resume_state=resume_state,
                         epoch_end_fn=epoch_end, extra_state_fn=extra_state, select=select,
                         test=False)
    t0 = time.perf_counter()
    thr_v = visual_thresholds(cfg, model, early["weights"], data["val"])
    result["time/thresholds_s"] = time.perf_counter() - t0
    if cfg.visual_thresholds == "val":
        names = LLP_CLASSES if len(thr_v) == len(LLP_CLASSES) else [f"c{i}" for i in range(len(thr_v))]
        result.update({f"threshold_v/{metric_name(n)}": float(t) for n, t in zip(names, thr_v)})
    if data.get("test") is not None:
        t0 = time.perf_counter()
        result.update(evaluate_fn(model, "test", thr_v))
        result["time/test_s"] = time.perf_counter() - t0
    result["time/ratios_s"] = t_ratio
    result["seed"] = float(seed)
    return result
