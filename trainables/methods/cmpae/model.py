"""CMPAE's network: HAN's hybrid attention with presence and absence evidence per class.

The CMPAE paper's body text (CVPR 2023) could not be read; what its abstract names (a
presence-absence evidence collector under Subjective Logic, joint-modal mutual learning) is
implemented as the official code (MengyuanChen21/CVPR2023-CMPAE) has it, which is then the fact
to match. Structure:

* Input projections, each a linear map followed by ELU: audio ``x_a``; visual per frame, then the
  mean over a segment's frames (ELU makes the order matter: features stored frame-averaged give
  ``ELU(W mean)``, which equals the official ``mean ELU(W frame)`` only when a segment's frames are
  equal, as in ``export-llp``'s files); motion; visual and motion fused into ``x_v``.
* A video-level ("global") branch before the attention layer: a shared ``Linear + LeakyReLU(0.2)``
  embeds both streams, their sum is classified per segment, ``global_prob`` is the mean over
  segments of its sigmoid, and its Dirichlet uncertainty ``u_g = C / sum_c alpha_c`` with
  ``alpha_c = evidence(mean_t logit_c) + 1``.
* HAN's one hybrid attention layer (:class:`~trainables.tasks.avvp.han.HybridAttentionLayer`,
  shared by both modalities, each attending to the other's input). With cross-attention on, the
  layer runs with and without it and the outputs are mixed, ``ca_mix * with + (1 - ca_mix) *
  without`` (official: 0.8).
* Presence logits ``fc_prob(x_m)``; absence logits from a cross-modal representation,
  ``x_{v->a} = x_a + g_a(x_a + x_v)`` and ``x_{a->v} = x_v + g_v(x_a + x_v)`` (``g`` a linear map,
  dropout ``cross_dropout``, LeakyReLU 0.2), through one ``fc_prob_beta``. Both pool over
  segments with a temporal softmax attention per class and channel (logits are pooled, not
  probabilities).
* A Beta opinion per (class, modality) and per segment: ``alpha_+ = evidence(l_+) + 1``,
  ``alpha_- = evidence(l_-) + 1``, probability ``alpha_+ / (alpha_+ + alpha_-)``, uncertainty
  ``2 / (alpha_+ + alpha_-)``, with ``evidence(l) = exp(clamp(l, -k, k) / tau)``.
* ``cls_dropout`` on the visual stream before the heads; the contrastive term reads ``a_feat`` /
  ``v_feat`` before it.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from trainables.tasks.avvp.han import HybridAttentionLayer, project_inputs

# Negative slope of the LeakyReLUs of the global branch and the cross-modal maps (official: 0.2).
LEAKY_SLOPE = 0.2


class CMPAEOutput(NamedTuple):
    """What :class:`CMPAENet` returns.

    Attributes:
        global_prob: (B, C) video-level probabilities of the global branch.
        a_prob: (B, C) audio video-level probabilities (Beta opinion of the pooled logits).
        v_prob: (B, C) visual video-level probabilities.
        frame_prob: (B, T, 2, C) segment probabilities, index 0 audio, 1 visual.
        a_feat: (B, T, d) audio features after the attention layer (the contrastive term's input).
        v_feat: (B, T, d) visual features after the attention layer, before ``cls_dropout``.
        global_uct: (B,) uncertainty of the global branch.
        a_uct: (B, C) uncertainty of the audio opinion.
        v_uct: (B, C) uncertainty of the visual opinion.
    """

    global_prob: torch.Tensor
    a_prob: torch.Tensor
    v_prob: torch.Tensor
    frame_prob: torch.Tensor
    a_feat: torch.Tensor
    v_feat: torch.Tensor
    global_uct: torch.Tensor
    a_uct: torch.Tensor
    v_uct: torch.Tensor


def evidence(logit: torch.Tensor, temperature: float = 0.8, clamp: float = 10.0) -> torch.Tensor:
    """Non-negative evidence ``exp(clamp(logit, -clamp, clamp) / temperature)``."""
    return torch.exp(logit.clamp(-clamp, clamp) / temperature)


def beta_opinion(logits: torch.Tensor, temperature: float = 0.8, clamp: float = 10.0
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Probability and uncertainty of the Beta opinion of ``(presence, absence)`` logits.

    Args:
        logits: (..., 2): presence logit at index 0, absence logit at 1.
        temperature: Evidence temperature.
        clamp: Evidence logit clamp.

    Returns:
        ``(p, u)``, each (...): ``p = alpha_+ / S`` and ``u = 2 / S`` with ``S = alpha_+ + alpha_-``.
    """
    alpha = evidence(logits, temperature, clamp) + 1.0
    s = alpha.sum(dim=-1)
    return alpha[..., 0] / s, 2.0 / s


def _proj(d_in: int, d: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, d), nn.ELU())


def _cross(d: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d, d), nn.Dropout(dropout), nn.LeakyReLU(LEAKY_SLOPE))


class CMPAENet(nn.Module):
    """CMPAE's network (see the module docstring).

    Args:
        audio_dim: Audio feature size (VGGish: 128).
        visual_dim: Per-frame visual feature size (ResNet-152: 2048).
        motion_dim: Motion feature size (R(2+1)D-18: 512).
        d_model: Hidden size.
        num_classes: Event classes.
        dropout: Dropout of the hybrid attention layer.
        cls_dropout: Dropout on the visual stream before the heads (official: 0.5).
        cross_dropout: Dropout inside the cross-modal maps ``g_a``/``g_v`` (official: 0.2).
        ca_mix: Share of the cross-attention pass in the mixed features (official: 0.8).
        evidence_temp: Evidence temperature ``tau`` (official: 0.8).
        evidence_clamp: Evidence logit clamp ``k`` (official: 10).
    """

    def __init__(self, audio_dim: int = 128, visual_dim: int = 2048, motion_dim: int = 512,
                 d_model: int = 512, num_classes: int = 25, dropout: float = 0.1,
                 cls_dropout: float = 0.5, cross_dropout: float = 0.2, ca_mix: float = 0.8,
                 evidence_temp: float = 0.8, evidence_clamp: float = 10.0) -> None:
        super().__init__()
        self.audio_dim, self.visual_dim, self.motion_dim = audio_dim, visual_dim, motion_dim
        self.num_classes, self.ca_mix = num_classes, ca_mix
        self.evidence_temp, self.evidence_clamp = evidence_temp, evidence_clamp
        self.fc_a = _proj(audio_dim, d_model)
        self.fc_v = _proj(visual_dim, d_model)
        self.fc_st = _proj(motion_dim, d_model)
        self.fc_fusion = _proj(2 * d_model, d_model)
        self.global_embed = nn.Sequential(nn.Linear(d_model, d_model), nn.LeakyReLU(LEAKY_SLOPE))
        self.global_cls = nn.Linear(d_model, num_classes)
        self.hat = HybridAttentionLayer(d_model, 1, d_model, dropout)
        self.v2a = _cross(d_model, cross_dropout)
        self.a2v = _cross(d_model, cross_dropout)
        self.fc_prob = nn.Linear(d_model, num_classes)
        self.fc_prob_beta = nn.Linear(d_model, num_classes)
        # (class, channel) pairs class-major, so the weights line up with the official layout.
        self.fc_frame_att = nn.Linear(d_model, 2 * num_classes)
        self.cls_drop = nn.Dropout(cls_dropout) if cls_dropout > 0 else nn.Identity()

    def _opinion(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return beta_opinion(logits, self.evidence_temp, self.evidence_clamp)

    def _encode(self, x_a: torch.Tensor, x_v: torch.Tensor, with_ca: bool
                ) -> tuple[torch.Tensor, torch.Tensor]:
        a0, v0 = self.hat(x_a, x_v, False), self.hat(x_v, x_a, False)
        if not with_ca:
            return a0, v0
        a1, v1 = self.hat(x_a, x_v, True), self.hat(x_v, x_a, True)
        r = self.ca_mix
        return r * a1 + (1.0 - r) * a0, r * v1 + (1.0 - r) * v0

    def forward(self, audio: torch.Tensor, visual: torch.Tensor, motion: torch.Tensor,
                with_ca: bool = True) -> CMPAEOutput:
        """Runs the model.

        Args:
            audio: (B, T, Da).
            visual: (B, T, Dv) frame-averaged, or (B, T, F, Dv) per frame.
            motion: (B, T, Dm).
            with_ca: Mix in the cross-attention pass (training forward and evaluation); False runs
                the attention layer once without it (the selection probe, the second eval pass).

        Returns:
            A :class:`CMPAEOutput`.
        """
        x_a, x_v = project_inputs(self, audio, visual, motion)

        g_logit = self.global_cls(self.global_embed(x_a) + self.global_embed(x_v))  # (B, T, C)
        g_alpha = evidence(g_logit.mean(dim=1), self.evidence_temp, self.evidence_clamp) + 1.0
        global_uct = self.num_classes / g_alpha.sum(dim=-1)
        global_prob = torch.sigmoid(g_logit).mean(dim=1)

        a_feat, v_feat = self._encode(x_a, x_v, with_ca)
        h_a, h_v = a_feat, self.cls_drop(v_feat)
        x = torch.stack([h_a, h_v], dim=2)  # (B, T, 2, d)
        presence = self.fc_prob(x)
        absence = torch.stack([self.fc_prob_beta(h_a + self.v2a(h_a + h_v)),
                               self.fc_prob_beta(h_v + self.a2v(h_a + h_v))], dim=2)
        logits = torch.stack([presence, absence], dim=-1)  # (B, T, 2, C, 2)
        b, t = x.shape[:2]
        att = torch.softmax(self.fc_frame_att(x).view(b, t, 2, self.num_classes, 2), dim=1)
        pooled = (att * logits).sum(dim=1)  # (B, 2, C, 2)
        a_prob, a_uct = self._opinion(pooled[:, 0])
        v_prob, v_uct = self._opinion(pooled[:, 1])
        frame_prob = self._opinion(logits)[0]
        return CMPAEOutput(global_prob, a_prob, v_prob, frame_prob, a_feat, v_feat, global_uct,
                           a_uct, v_uct)

