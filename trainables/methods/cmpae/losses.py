"""CMPAE's joint-modal mutual learning loss (the calibration of the evidence between the global
branch and the two modalities).

Written from the official code's behaviour (the paper's text could not be read). With ``y`` the weak
labels, ``g`` the global branch's video probability, ``a``/``v`` the modalities' probabilities and
``u_a``/``u_v`` their uncertainties (all (B, C)), and ``u_g`` the global uncertainty floored at
``uct_floor`` ((B, 1)):

* ``m = max(a, v)`` and ``u_m`` the uncertainty of the modality that attains it (audio on ties);
  ``mu = (a + v) / 2`` and ``u_bar = (u_a + u_v) / 2``;
* towards the global branch (odd batches of an epoch): ``u_g (1 - u_m) (g - sg(m))^2 y +
  lambda u_g (1 - u_bar) (g - sg(mu))^2 (1 - y)``;
* towards the modalities (even batches): ``(1 - u_g) (1 - u_m) (sg(g) - m)^2 y +
  lambda (1 - u_g) (1 - u_bar) (sg(g) - mu)^2 (1 - y)``;

``sg`` the stop-gradient; the uncertainty weights are *not* detached (gradient reaches the
uncertainties in both directions, and ``u_g`` where it is above the floor). The loss is the mean
over B x C (``reduction="sum"`` gives the sum, for callers that scale by a global batch).
"""

from __future__ import annotations

import torch


def mutual_learning_loss(y: torch.Tensor, global_prob: torch.Tensor, a_prob: torch.Tensor,
                         v_prob: torch.Tensor, a_uct: torch.Tensor, v_uct: torch.Tensor,
                         global_uct: torch.Tensor, *, to_global: bool, uct_floor: float = 0.9,
                         neg_weight: float = 1.0, reduction: str = "mean") -> torch.Tensor:
    """The mutual learning term (see the module docstring).

    Args:
        y: (B, C) weak labels.
        global_prob: (B, C) global-branch probabilities.
        a_prob: (B, C) audio probabilities.
        v_prob: (B, C) visual probabilities.
        a_uct: (B, C) audio uncertainties.
        v_uct: (B, C) visual uncertainties.
        global_uct: (B,) global uncertainty.
        to_global: True: the global branch learns from the modalities (official: odd batch
            indices); False: the modalities learn from the global branch.
        uct_floor: Floor of the global uncertainty (official: 0.9).
        neg_weight: ``lambda``, the weight of the absent classes' term (official: 1).
        reduction: ``"mean"`` or ``"sum"`` over the B x C entries.

    Returns:
        The scalar loss (float32).
    """
    u_g = global_uct.float().clamp(min=uct_floor).unsqueeze(-1)
    g, a, v = global_prob.float(), a_prob.float(), v_prob.float()
    ua, uv, yf = a_uct.float(), v_uct.float(), y.float()
    audio_max = a >= v
    m, u_m = torch.where(audio_max, a, v), torch.where(audio_max, ua, uv)
    mu, u_bar = (a + v) / 2.0, (ua + uv) / 2.0
    if to_global:
        w, pos, neg = u_g, (g - m.detach()) ** 2, (g - mu.detach()) ** 2
    else:
        w, pos, neg = 1.0 - u_g, (g.detach() - m) ** 2, (g.detach() - mu) ** 2
    terms = w * ((1.0 - u_m) * pos * yf + neg_weight * (1.0 - u_bar) * neg * (1.0 - yf))
    if reduction == "mean":
        return terms.mean()
    if reduction == "sum":
        return terms.sum()
    raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
