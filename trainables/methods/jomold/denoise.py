"""JoMoLD's label selection and noise ratios (public, vectorised over classes).

* :func:`select_noisy`: per class, the ``ratio`` share of a batch's positive labels with the
  largest normalised loss are noisy (the paper's removal rule).
* :func:`estimate_noise_ratios` (the paper's) and :func:`estimate_noise_ratios_official` (the
  official code's): per-class noise ratios from the estimator's predictions and ``theta``.
* :func:`warmup_factor`: how much of the ratio is applied at a point in training.
"""

from __future__ import annotations

import torch

from trainables.tasks.avvp.eval import smooth

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
    """The official code's ratio variant (``ratio_mode="official"``).

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
        return _ratio(p * smooth(y, s) / (sums / counts).mean(dim=0), pos, theta)

    return one(p_a, smooth_a, theta_a), one(p_v, smooth_v, theta_v)


def warmup_factor(progress: float, warmup_epochs: float, mode: str = "paper") -> float:
    """Scale of the noise ratios after ``progress`` epochs (fractional) of denoising training."""
    if mode == "official":
        return 0.0 if progress < 1.0 else 1.0
    if warmup_epochs <= 0:
        return 1.0
    return min(1.0, progress / warmup_epochs)


