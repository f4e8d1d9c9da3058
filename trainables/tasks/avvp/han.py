"""The Hybrid Attention Network (HAN) for audio-visual video parsing, in plain PyTorch.

Structure (from the HAN paper):

* audio: ``Linear(Da -> d)``; visual: ``Linear(Dv -> d)`` per frame, averaged over the frames of
  each segment (inputs may come pre-averaged: averaging commutes with the linear map, so the two
  are the same function); motion: ``Linear(Dm -> d)``; visual and motion concatenated and fused
  by ``Linear(2d -> d)``.
* one hybrid attention layer *shared by both modalities*:
  ``x + dropout(cross_attn(x, other)) + dropout(self_attn(x))``, LayerNorm, then a feed-forward
  block with residual and LayerNorm. ``with_ca=False`` drops the cross-attention term and keeps
  every weight (JoMoLD's noise estimator and its per-batch loss pass use it).
* attentive MMIL pooling over segments (temporal softmax) and modalities (modality softmax).
* ``cls_dropout`` (official JoMoLD code: 0.5; HAN paper: none): dropout on the visual segment
  features between the hybrid attention layer and the classifier. ``a_feat``/``v_feat`` are the
  features before it, which is where the contrastive term of :func:`contrastive_loss` reads them.
* Options for HAN-style students of later methods (defaults: HAN's): ``nhead``,
  ``dim_feedforward``, ``num_layers`` (a stack of hybrid attention layers with their own weights),
  and ``cross_input``: ``"input"`` (HAN: each modality attends to the other's input of the layer)
  or ``"updated"`` (the audio stream is updated first and the visual stream attends to the updated
  audio, as VALOR's official code runs its layers). ``frame_logits`` are the segment logits before
  the sigmoid (for BCE-with-logits on segment targets).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn


# How the visual stream's cross-attention reads the audio stream within a layer (HAN: "input").
CROSS_INPUTS = ("input", "updated")


class HANOutput(NamedTuple):
    """What :class:`HAN` returns.

    Attributes:
        global_prob: (B, C) video-level probabilities.
        a_prob: (B, C) audio-level (video-level, audio track) probabilities.
        v_prob: (B, C) visual-level probabilities.
        frame_prob: (B, T, 2, C) segment probabilities, index 0 audio, 1 visual.
        a_feat: (B, T, d) audio segment features after the hybrid attention layer.
        v_feat: (B, T, d) visual segment features after the hybrid attention layer.
        frame_logits: (B, T, 2, C) segment logits (``frame_prob`` is their sigmoid).
    """

    global_prob: torch.Tensor
    a_prob: torch.Tensor
    v_prob: torch.Tensor
    frame_prob: torch.Tensor
    a_feat: torch.Tensor
    v_feat: torch.Tensor
    frame_logits: torch.Tensor | None = None


class HybridAttentionLayer(nn.Module):
    """One hybrid attention layer: self- plus cross-modal attention, then a feed-forward block.

    Args:
        d_model: Feature size.
        nhead: Attention heads (HAN uses 1).
        dim_feedforward: Hidden size of the feed-forward block (HAN uses 512).
        dropout: Dropout on attention weights, on each attention branch and in the FF block.
    """

    def __init__(self, d_model: int = 512, nhead: int = 1, dim_feedforward: int = 512,
                 dropout: float = 0.1) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout, batch_first=True)
        self.cm_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout, batch_first=True)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.drop_cm = nn.Dropout(dropout)
        self.drop_self = nn.Dropout(dropout)
        self.drop_ff = nn.Dropout(dropout)
        self.drop_out = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, other: torch.Tensor, with_ca: bool = True) -> torch.Tensor:
        """Updates ``x`` (B, T, d) attending to itself and, if ``with_ca``, to ``other``."""
        # need_weights=False lets PyTorch use its fused attention kernels.
        s = self.self_attn(x, x, x, need_weights=False)[0]
        y = x + self.drop_self(s)
        if with_ca:
            y = y + self.drop_cm(self.cm_attn(x, other, other, need_weights=False)[0])
        y = self.norm1(y)
        ff = self.linear2(self.drop_ff(F.relu(self.linear1(y))))
        return self.norm2(y + self.drop_out(ff))


def project_inputs(net: nn.Module, audio: torch.Tensor, visual: torch.Tensor, motion: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """HAN's input stage, shared by the models built on it: the audio projection ``fc_a`` and the
    visual one, ``fc_fusion([fc_v(visual), fc_st(motion)])`` with per-frame visual features
    averaged over each segment's frames after ``fc_v``. ``net`` holds those four layers and its
    ``audio_dim``/``visual_dim``/``motion_dim``; a wrong feature size is an error naming them.

    Returns:
        ``(x_a, x_v)``, each (B, T, d).
    """
    if audio.shape[-1] != net.audio_dim or visual.shape[-1] != net.visual_dim \
            or motion.shape[-1] != net.motion_dim:
        raise ValueError(
            f"{type(net).__name__} expects feature sizes audio {net.audio_dim}, visual {net.visual_dim}, "
            f"motion {net.motion_dim}; got {audio.shape[-1]}, {visual.shape[-1]}, {motion.shape[-1]}")
    x_a = net.fc_a(audio)
    v = net.fc_v(visual)
    if v.dim() == 4:
        v = v.mean(dim=2)
    return x_a, net.fc_fusion(torch.cat([v, net.fc_st(motion)], dim=-1))


class HAN(nn.Module):
    """HAN with attentive MMIL pooling.

    Args:
        audio_dim: Audio feature size (VGGish: 128).
        visual_dim: Per-frame visual feature size (ResNet-152: 2048).
        motion_dim: Motion feature size (R(2+1)D-18: 512).
        d_model: Hidden size.
        num_classes: Event classes.
        dropout: Dropout of the hybrid attention layer.
        cls_dropout: Dropout on the visual segment features before the classifier (0 = none).
        nhead: Attention heads of the hybrid attention layers (HAN: 1).
        dim_feedforward: Their feed-forward width (default ``d_model``, HAN's).
        num_layers: Hybrid attention layers, each with its own weights (HAN: 1).
        cross_input: ``"input"`` (HAN) or ``"updated"`` (visual attends to the updated audio).
    """

    def __init__(self, audio_dim: int = 128, visual_dim: int = 2048, motion_dim: int = 512,
                 d_model: int = 512, num_classes: int = 25, dropout: float = 0.1,
                 cls_dropout: float = 0.0, *, nhead: int = 1, dim_feedforward: int | None = None,
                 num_layers: int = 1, cross_input: str = "input") -> None:
        super().__init__()
        if cross_input not in CROSS_INPUTS:
            raise ValueError(f"cross_input must be one of {CROSS_INPUTS}, got {cross_input!r}")
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.cross_input = cross_input
        self.cls_drop = nn.Dropout(cls_dropout) if cls_dropout > 0 else nn.Identity()
        self.audio_dim, self.visual_dim, self.motion_dim = audio_dim, visual_dim, motion_dim
        self.fc_a = nn.Linear(audio_dim, d_model)
        self.fc_v = nn.Linear(visual_dim, d_model)
        self.fc_st = nn.Linear(motion_dim, d_model)
        self.fc_fusion = nn.Linear(2 * d_model, d_model)
        ff = d_model if dim_feedforward is None else dim_feedforward
        self.hat = HybridAttentionLayer(d_model, nhead, ff, dropout)
        # Layers after the first (none for HAN, so its parameter names stay ``hat.*``).
        self.hat_more = nn.ModuleList(HybridAttentionLayer(d_model, nhead, ff, dropout)
                                      for _ in range(num_layers - 1))
        self.fc_prob = nn.Linear(d_model, num_classes)
        self.fc_frame_att = nn.Linear(d_model, num_classes)
        self.fc_av_att = nn.Linear(d_model, num_classes)

    def forward(self, audio: torch.Tensor, visual: torch.Tensor, motion: torch.Tensor,
                with_ca: bool = True) -> HANOutput:
        """Runs the model.

        Args:
            audio: (B, T, Da).
            visual: (B, T, Dv) frame-averaged, or (B, T, F, Dv) per frame.
            motion: (B, T, Dm).
            with_ca: Whether the hybrid attention layer uses its cross-modal term.

        Returns:
            A :class:`HANOutput`.
        """
        x_a, x_v = project_inputs(self, audio, visual, motion)
        # Each layer serves both modalities, each attending to the *input* of the other (HAN), or
        # the visual stream to the audio stream this layer has just updated ("updated").
        a_feat, v_feat = x_a, x_v
        for layer in (self.hat, *self.hat_more):
            a_new = layer(a_feat, v_feat, with_ca)
            v_feat = layer(v_feat, a_new if self.cross_input == "updated" else a_feat, with_ca)
            a_feat = a_new
        x = torch.stack([a_feat, self.cls_drop(v_feat)], dim=2)  # (B, T, 2, d)
        frame_logits = self.fc_prob(x)
        frame_prob = torch.sigmoid(frame_logits)
        frame_att = torch.softmax(self.fc_frame_att(x), dim=1)
        av_att = torch.softmax(self.fc_av_att(x), dim=2)
        temporal_prob = frame_att * frame_prob
        a_prob = temporal_prob[:, :, 0].sum(dim=1)
        v_prob = temporal_prob[:, :, 1].sum(dim=1)
        global_prob = (temporal_prob * av_att).sum(dim=2).sum(dim=1)
        return HANOutput(global_prob, a_prob, v_prob, frame_prob, a_feat, v_feat, frame_logits)


def _bce(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    # Attention-pooled probabilities can reach exactly 0/1 in low precision; clamp like the
    # official code (BCE on probabilities, not logits) so the loss stays finite.
    p = p.float().clamp(1e-7, 1 - 1e-7)
    return F.binary_cross_entropy(p, y.float(), reduction="none")


def han_loss(out: HANOutput, y: torch.Tensor, y_a: torch.Tensor, y_v: torch.Tensor,
             weights: tuple[float, float, float] = (1.0, 1.0, 1.0),
             reduction: str = "mean") -> torch.Tensor:
    """HAN's loss: ``w_video*BCE(video, y) + w_audio*BCE(a, y_a) + w_visual*BCE(v, y_v)``.

    Args:
        out: Model output.
        y: (B, C) weak video labels.
        y_a: (B, C) audio targets (smoothed or refined weak labels).
        y_v: (B, C) visual targets.
        weights: ``(w_video, w_audio, w_visual)``.
        reduction: ``"mean"`` (over all B*C entries of each term) or ``"sum"``.

    Returns:
        The scalar loss (float32).
    """
    w_g, w_a, w_v = weights
    terms = (w_g * _bce(out.global_prob, y) + w_a * _bce(out.a_prob, y_a)
             + w_v * _bce(out.v_prob, y_v))
    if reduction == "mean":
        return terms.mean()
    if reduction == "sum":
        return terms.sum()
    raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")


def contrastive_loss(h_a: torch.Tensor, h_v: torch.Tensor, temperature: float = 0.2,
                     smoothing: float = 0.1) -> torch.Tensor:
    """The audio-visual contrastive term of JoMoLD's "w/ CL" (the contrastive learning of MA).

    Per video, each audio segment ``t`` is a T-way classification over the visual segments of the
    *same* video, whose answer is segment ``t``: with L2-normalised features,
    ``S[t, s] = a_t . v_s / temperature`` and ``q[t] = 1 - smoothing`` at ``s = t`` and
    ``smoothing / (T - 1)`` elsewhere, the loss is ``-mean_{video, t} log sum_s q[t, s]
    softmax(S[t])_s``: the log of the expected probability under ``q``, which is not
    label-smoothed cross-entropy (that would be ``-sum_s q log softmax``).

    Args:
        h_a: (B, T, D) audio segment features (after the hybrid attention layer).
        h_v: (B, T, D) visual segment features.
        temperature: Similarity temperature (official: 0.2).
        smoothing: Probability mass spread over the other segments (official: 0.1).

    Returns:
        The scalar loss (float32).
    """
    if h_a.shape != h_v.shape or h_a.dim() != 3:
        raise ValueError(f"h_a and h_v must share one (B, T, D) shape; got {tuple(h_a.shape)}, "
                         f"{tuple(h_v.shape)}")
    t = h_a.shape[1]
    if t < 2:
        raise ValueError(f"contrastive_loss needs at least 2 segments, got {t}")
    a = F.normalize(h_a.float(), dim=-1)
    v = F.normalize(h_v.float(), dim=-1)
    prob = torch.softmax(a @ v.transpose(1, 2) / temperature, dim=-1)  # (B, T, T)
    eye = torch.eye(t, device=prob.device, dtype=prob.dtype)
    q = eye * (1.0 - smoothing) + (1.0 - eye) * (smoothing / (t - 1))
    return -torch.log((q * prob).sum(dim=-1)).mean()


def per_label_bce(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Element-wise BCE ``(B, C)`` of probabilities ``p`` against targets ``y`` (float32)."""
    return _bce(p, y)
