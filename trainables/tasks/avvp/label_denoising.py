"""JoMoLD's joint-modal label denoising, as the AVVP methods built on it share it (JoMoLD, CMPAE).

* :func:`select_noisy` / :func:`select_batch`: per class, the ``ratio`` share of a batch's positive
  labels with the largest normalised loss are noisy (JoMoLD's Algorithm 1), vectorised over classes.
* :func:`estimate_noise_ratios` (JoMoLD's Eq. 1) and :func:`estimate_noise_ratios_official` (the
  official JoMoLD code's variant): per-class noise ratios from a noise estimator's predictions.
* :func:`oracle_noise_ratios`: the true ratios of LLP-sim (a diagnostic); :func:`load_noise_ratios`:
  ratios from an ``.npz`` file in the official codes' layout (keys ``audio`` and ``visual``).
* :func:`warmup_factor`: how much of the ratio is applied at a point in training.
* The noise estimator: HAN without cross-modal attention, trained once per data set and config and
  cached (:func:`ensure_estimator`, keyed by :func:`estimator_key`); :func:`estimator_config`
  derives its config from a method's backbone settings.
* :func:`denoise_epoch_metrics`: the removed share of labels and, on LLP-sim, the removal quality
  against the hidden truth.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from trainables.core import dist as cd
from trainables.core import loop as tc
from trainables.core.stage_cache import cached_stage, stage_key
from trainables.data.format import fingerprint
from trainables.tasks.avvp import backbone as bb
from trainables.tasks.avvp import eval as ae
from trainables.tasks.avvp.han import per_label_bce

# (video, audio, visual) BCE weights of the official JoMoLD code's noise estimator: equal.
OFFICIAL_ESTIMATOR_WEIGHTS = (1.0, 1.0, 1.0)


# --------------------------------------------------------------------------------------------
# Selection
# --------------------------------------------------------------------------------------------

def _ranks(x: torch.Tensor, mask: torch.Tensor, descending: bool) -> torch.Tensor:
    """Per-column rank (0 = first) of the masked entries of ``x`` (B, C); ties go to the lower
    row index. Unmasked entries rank after every masked one."""
    fill = float("-inf") if descending else float("inf")
    key = torch.where(mask, x, torch.full_like(x, fill))
    order = torch.sort(key, dim=0, descending=descending, stable=True).indices
    ar = torch.arange(x.shape[0], device=x.device).unsqueeze(1).expand_as(order)
    return torch.empty_like(order).scatter_(0, order, ar)


def select_noisy(loss_a: torch.Tensor, loss_v: torch.Tensor, labels: torch.Tensor,
                 ratio_a: torch.Tensor, ratio_v: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """JoMoLD's per-batch noisy-label selection (Algorithm 1), vectorised over classes.

    For class ``c`` with ``B'`` positives in the batch and ``M = floor(r[c] * B')``: the audio
    label of a positive video is noisy if its audio loss is among the ``M_a`` highest audio losses
    *and* its visual loss among the ``M_a`` lowest visual losses of the class's positives
    (``M_a`` from ``ratio_a``); visual labels likewise with the roles swapped (``M_v`` from
    ``ratio_v``). Ties rank the lower batch index first.

    Args:
        loss_a: (B, C) per-label audio BCE.
        loss_v: (B, C) per-label visual BCE.
        labels: (B, C) weak labels (positive where > 0).
        ratio_a: (C,) audio noise ratios.
        ratio_v: (C,) visual noise ratios.

    Returns:
        ``(remove_a, remove_v)``, boolean (B, C).
    """
    if loss_a.shape != loss_v.shape or loss_a.shape != labels.shape or loss_a.dim() != 2:
        raise ValueError(f"loss_a, loss_v and labels must share one (B, C) shape; got "
                         f"{tuple(loss_a.shape)}, {tuple(loss_v.shape)}, {tuple(labels.shape)}")
    pos = labels > 0
    la, lv = loss_a.float(), loss_v.float()
    n_pos = pos.sum(dim=0).double()
    # floor in float64 so M matches int(float(r) * B') exactly.
    m_a = torch.floor(ratio_a.to(la.device).double() * n_pos).long()
    m_v = torch.floor(ratio_v.to(la.device).double() * n_pos).long()
    hi_a, lo_a = _ranks(la, pos, True), _ranks(la, pos, False)
    hi_v, lo_v = _ranks(lv, pos, True), _ranks(lv, pos, False)
    remove_a = pos & (hi_a < m_a) & (lo_v < m_a)
    remove_v = pos & (hi_v < m_v) & (lo_a < m_v)
    return remove_a, remove_v


def select_batch(model: torch.nn.Module, inputs: tuple[torch.Tensor, ...], y_local: torch.Tensor,
                 y_global: torch.Tensor, ratio_a: torch.Tensor, ratio_v: torch.Tensor, *,
                 targets: tuple[torch.Tensor, torch.Tensor] | None = None,
                 train_mode: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Algorithm 1's selection for one global batch.

    A no-grad forward with the cross-attention skipped on this rank's rows gives per-label BCE
    losses of its ``a_prob``/``v_prob`` against the modality targets; they are all-gathered (rank
    order = global batch order) and :func:`select_noisy` ranks them over the *global* batch, so
    every rank gets the same answer whatever the number of ranks. Eval mode (the default) keeps
    dropout out of the selection; ``train_mode`` runs it with dropout on, as the official code does.

    Args:
        model: The model in training (plain or DDP-wrapped); its forward takes ``with_ca`` and
            returns ``a_prob`` and ``v_prob`` (B, C).
        inputs: ``(audio, visual, motion)`` of this rank's rows, which must be its
            :func:`trainables.core.loop.shard_slice` of the global batch.
        y_local: (b, C) weak labels of this rank's rows.
        y_global: (B, C) weak labels of the whole global batch.
        ratio_a: (C,) audio ratios (already scaled by the warm-up factor).
        ratio_v: (C,) visual ratios.
        targets: ``(y_a, y_v)`` of this rank's rows that the losses are taken against (the
            smoothed labels the model trains on; default ``y_local`` for both).
        train_mode: Probe in training mode (dropout on).

    Returns:
        ``(remove_a, remove_v)``, boolean (B, C) over the global batch.
    """
    raw = cd.unwrap(model)
    was_training = raw.training
    raw.train(train_mode)
    try:
        with torch.no_grad(), cd.autocast(y_local.device):
            probe = raw(*inputs, with_ca=False)
    finally:
        raw.train(was_training)
    sizes = cd.shard_sizes(y_global.shape[0], cd.dist_info()[1])
    t_a, t_v = targets if targets is not None else (y_local, y_local)
    la = cd.all_gather_cat(per_label_bce(probe.a_prob, t_a), sizes)
    lv = cd.all_gather_cat(per_label_bce(probe.v_prob, t_v), sizes)
    return select_noisy(la, lv, y_global, ratio_a, ratio_v)


def warmup_factor(progress: float, warmup_epochs: float, mode: str = "paper") -> float:
    """Scale of the noise ratios after ``progress`` epochs (fractional) of denoising training:
    a linear ramp over ``warmup_epochs`` (``"paper"``) or none in the first epoch and full after
    (``"official"``: the official code's ramp compounds from 0 at the first batch)."""
    if mode == "official":
        return 0.0 if progress < 1.0 else 1.0
    if warmup_epochs <= 0:
        return 1.0
    return min(1.0, progress / warmup_epochs)


# --------------------------------------------------------------------------------------------
# Noise ratios
# --------------------------------------------------------------------------------------------

def _ratio(normalised: torch.Tensor, pos: torch.Tensor, theta: float) -> torch.Tensor:
    noisy = (pos & (normalised < theta)).sum(dim=0).double()
    return noisy / pos.sum(dim=0).clamp(min=1).double()


def estimate_noise_ratios(p_a: torch.Tensor, p_v: torch.Tensor, labels: torch.Tensor,
                          theta_a: float, theta_v: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Class-wise noise ratios, JoMoLD Eq. 1 (paper mode).

    ``r[c]`` is the share of the positive training labels of class ``c`` whose estimator
    probability divided by the class mean probability (mean over *all* training videos) is below
    ``theta``. Classes without positives get 0. Computed in float64.

    Args:
        p_a: (N, C) estimator audio probabilities on the train split.
        p_v: (N, C) visual probabilities.
        labels: (N, C) weak labels.
        theta_a: Audio threshold.
        theta_v: Visual threshold.

    Returns:
        ``(ratio_a, ratio_v)``, float64 (C,).
    """
    pos = labels > 0
    pa, pv = p_a.double(), p_v.double()
    return (_ratio(pa / pa.mean(dim=0), pos, theta_a), _ratio(pv / pv.mean(dim=0), pos, theta_v))


def estimate_noise_ratios_official(p_a: torch.Tensor, p_v: torch.Tensor, labels: torch.Tensor,
                                   theta_a: float, theta_v: float, *, smooth_a: float = 1.0,
                                   smooth_v: float = 0.9, batch_size: int = 128
                                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """The official JoMoLD code's ratio variant (``ratio_mode="official"``).

    For class ``c`` the compared quantity is ``p * y_s / m_c``: ``y_s = s*y + (1-s)*0.5`` the
    smoothed label and ``m_c`` the mean over consecutive batches of ``batch_size`` videos (in
    stored order; the last batch may be smaller) of each batch's mean of the *raw* ``p``. The
    ratio is the share of the positive labels of ``c`` below ``theta``. Float64.

    Args:
        p_a: (N, C) estimator audio probabilities on the train split, in stored order.
        p_v: (N, C) visual probabilities.
        labels: (N, C) weak labels.
        theta_a: Audio threshold.
        theta_v: Visual threshold.
        smooth_a: Audio label smoothing of the numerator (official: 1.0).
        smooth_v: Visual label smoothing of the numerator (official: 0.9).
        batch_size: Batch size of the per-batch means (official: the training batch, 128).

    Returns:
        ``(ratio_a, ratio_v)``, float64 (C,).
    """
    pos = labels > 0
    y = labels.double()
    batch = torch.arange(y.shape[0], device=y.device) // batch_size
    nb = int(batch[-1].item()) + 1 if len(batch) else 0
    counts = torch.bincount(batch, minlength=nb).double().unsqueeze(1)

    def one(p: torch.Tensor, s: float, theta: float) -> torch.Tensor:
        p = p.double()
        sums = torch.zeros(nb, p.shape[1], dtype=p.dtype, device=p.device).index_add_(0, batch, p)
        return _ratio(p * ae.smooth(y, s) / (sums / counts).mean(dim=0), pos, theta)

    return one(p_a, smooth_a, theta_a), one(p_v, smooth_v, theta_v)


def oracle_noise_ratios(train: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """True per-class noise ratios of a split with hidden truth (``ratio_mode="oracle"``).

    Classes without a positive weak label get ratio 0 (nothing to remove).

    Raises:
        ValueError: The split has no hidden truth (real LLP).
    """
    if not train.has_truth:
        raise ValueError("ratio_mode='oracle' needs a data set with hidden truth (LLP-sim)")
    from trainables.tasks.avvp.denoise import true_noise_ratio

    lab = (train.labels > 0).cpu().numpy()
    out = []
    for true in train.modality_truth():
        r = true_noise_ratio(lab, true.cpu().numpy())
        out.append(torch.from_numpy(r).nan_to_num(0.0).double())
    return out[0], out[1]


def load_noise_ratios(path: str | os.PathLike, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ratio_a, ratio_v)`` float64 (C,) from an ``.npz`` with keys ``audio`` and ``visual`` (the
    official JoMoLD/CMPAE codes' ``--noise_ratio_file``).

    Raises:
        ValueError: The file is missing, lacks a key, or holds values of another shape or outside
            [0, 1] (the message names the file and the key).
    """
    import numpy as np

    p = Path(path)
    if not p.is_file():
        raise ValueError(f"noise ratio file {p} does not exist")
    with np.load(p) as z:
        out = []
        for key in ("audio", "visual"):
            if key not in z:
                raise ValueError(f"{p}: no key {key!r} (has {sorted(z.files)})")
            r = torch.from_numpy(np.asarray(z[key], dtype=np.float64)).reshape(-1)
            if r.numel() != num_classes or not bool(((r >= 0) & (r <= 1)).all()):
                raise ValueError(f"{p}: {key!r} must hold {num_classes} ratios in [0, 1], got "
                                 f"shape {tuple(z[key].shape)}, range [{float(r.min())}, {float(r.max())}]")
            out.append(r)
    return out[0], out[1]


# --------------------------------------------------------------------------------------------
# The cached noise estimator
# --------------------------------------------------------------------------------------------

@dataclass
class EstimatorPreds:
    """Cached train-split predictions of the noise estimator.

    Attributes:
        path: Cache file.
        key: Cache key (data fingerprint + estimator config + seed).
        p_a: (N, C) audio probabilities (float32, CPU).
        p_v: (N, C) visual probabilities.
        video_ids: Train video ids, in the stored order.
        metrics: The estimator's own selected-epoch metrics.
    """

    path: Path
    key: str
    p_a: torch.Tensor
    p_v: torch.Tensor
    video_ids: list[str]
    metrics: dict[str, float]


def estimator_config(cfg: bb.BackboneConfig, epochs: int, *, official_weights: bool = False
                     ) -> bb.BackboneConfig:
    """The HAN config of the noise estimator: ``cfg``'s backbone fields, cross-attention off,
    trained for ``epochs``; ``official_weights`` sets the official code's equal loss weights."""
    base = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(bb.BackboneConfig)}
    base.update(epochs=epochs, with_ca=False)
    est = bb.BackboneConfig(**base)
    if official_weights:
        est.w_video, est.w_audio, est.w_visual = OFFICIAL_ESTIMATOR_WEIGHTS
    return est


def estimator_key(est_cfg: bb.BackboneConfig, data_path) -> str:
    """Cache key of an estimator: the data fingerprint and its config (seed included)."""
    est = dataclasses.asdict(est_cfg)
    # feature storage does not change what is learned enough to retrain; keep it out of the key.
    est.pop("feature_dtype", None)
    return stage_key({"data": fingerprint(data_path), "estimator": est})


def ensure_estimator(est_cfg: bb.BackboneConfig, data_path, device: str | torch.device | None = None,
                     *, cache_dir: str | os.PathLike | None = None, data: dict | None = None,
                     reporter: tc.Reporter | None = None) -> EstimatorPreds:
    """Returns the noise estimator's train-split predictions, training it only if not cached.

    The cache is :func:`trainables.core.stage_cache.cached_stage` (``estimators/<key>.pt``), so
    every method and trial asking for the same estimator config on the same data shares one.

    Args:
        est_cfg: The estimator's config (from :func:`estimator_config`).
        data_path: AVVP data set.
        device: Torch device.
        cache_dir: Override of the cache directory.
        data: Already-resident splits (from ``bb.load_data``), to avoid reloading.
        reporter: Optional reporter for the estimator's epochs.

    Returns:
        The :class:`EstimatorPreds`.
    """
    def train() -> dict[str, Any]:
        dev = cd.resolve_device(device)
        splits = data if data is not None else bb.load_data(est_cfg, data_path, dev)
        # The estimator's test scores are not needed: skip the test pass.
        metrics, model = bb.train_backbone(est_cfg, splits, dev, bb.weak_targets(est_cfg, splits["train"]),
                                            reporter=reporter, test=False)
        probs = ae.predict(model, splits["train"], with_ca=False)
        return {"p_a": probs["a_prob"].float().cpu(), "p_v": probs["v_prob"].float().cpu(),
                "video_ids": list(splits["train"].video_ids), "metrics": dict(metrics),
                "config": dataclasses.asdict(est_cfg)}

    key = estimator_key(est_cfg, data_path)
    d, path = cached_stage("estimators", key, train, cache_dir=cache_dir)
    return EstimatorPreds(path, key, d["p_a"], d["p_v"], list(d["video_ids"]), dict(d["metrics"]))


def estimator_ratios(mode: str, est: EstimatorPreds, labels: torch.Tensor, theta_a: float,
                     theta_v: float, *, smooth_a: float = 1.0, smooth_v: float = 0.9,
                     batch_size: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    """Ratios from the estimator's predictions: Eq. 1 (``mode="paper"``) or the official code's
    variant (``"official"``, with the smoothing and batch size of its numerator and means)."""
    p_a, p_v, y = est.p_a, est.p_v, labels.cpu()
    if mode == "official":
        return estimate_noise_ratios_official(p_a, p_v, y, theta_a, theta_v, smooth_a=smooth_a,
                                              smooth_v=smooth_v, batch_size=batch_size)
    if mode == "paper":
        return estimate_noise_ratios(p_a, p_v, y, theta_a, theta_v)
    raise ValueError(f"estimator ratio mode must be 'paper' or 'official', got {mode!r}")


def denoise_epoch_metrics(removed: dict[str, torch.Tensor], ratio_a: torch.Tensor,
                          ratio_v: torch.Tensor, train: Any) -> dict[str, float]:
    """One epoch's removals as metrics: ``denoise/removed_frac_*`` and, on a split with hidden
    truth, the removal quality and the ratios' error (``denoise/...``, ``noise_ratio/mae_*``).

    Args:
        removed: ``{"a": (N, C) bool, "v": (N, C) bool}``, the labels removed in the epoch.
        ratio_a: (C,) audio noise ratios in use.
        ratio_v: (C,) visual noise ratios.
        train: The train split.
    """
    y = train.labels
    m: dict[str, float] = {
        "denoise/removed_frac_a": float(removed["a"].sum() / y.sum().clamp(min=1)),
        "denoise/removed_frac_v": float(removed["v"].sum() / y.sum().clamp(min=1)),
    }
    if train.has_truth:
        from trainables.tasks.avvp.denoise import denoise_quality, noise_ratio_mae

        lab = (y > 0).cpu().numpy()
        true_a, true_v = (t.cpu().numpy() for t in train.modality_truth())
        m.update({k: float(v) for k, v in denoise_quality(
            removed["a"].cpu().numpy(), removed["v"].cpu().numpy(), lab, true_a, true_v).items()})
        m.update({k: float(v) for k, v in noise_ratio_mae(
            ratio_a.cpu().numpy(), ratio_v.cpu().numpy(), lab, true_a, true_v).items()})
    return m
