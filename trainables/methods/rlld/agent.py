"""RLLD's label-denoising agent (policy network), in two architectures.

For each video and modality the agent sees a *state*: the pre-extracted features of every segment
concatenated with the video's original weak label vector (Eq. 1 of the RLLD paper; the
``use_labels=False`` ablation drops the label part). Both architectures project the audio and the
visual state sequences to ``d_model``, let each attend to itself and to the other, average the
hidden states over the segments and give, per class, the probability of *keeping* the label in
that modality through a sigmoid. Actions are Bernoulli draws per class and modality (Eq. 4) and the
revised labels are ``action AND original label`` (Eq. 5).

* :class:`RLLDAgent` (``agent_arch="avtune"``): HAN's hybrid attention layer
  (:class:`trainables.tasks.avvp.han.HybridAttentionLayer`: residual self- and cross-attention,
  LayerNorm, a feed-forward block with residual and LayerNorm) and separate audio and visual heads.
* :class:`PaperAgent` (``agent_arch="paper"``, Eq. 2-4): ``h = x + SelfAttn(x) + CrossAttn(x,
  other)`` on the projected states, nothing else, and one fully connected layer shared by both
  modalities before the sigmoid.

Pooling over time (our choice; the paper does not say): the hidden states are averaged over the
segments before the FC layer, so the keep decision is a video-level one, as the labels are. The mean
(rather than max or attention) is permutation-invariant and lets every segment receive gradient,
which keeps the high-variance REINFORCE signal from concentrating on one segment.

Initial keep probability (our choice): the FC bias starts at ``logit(keep_init)`` (avtune's
default 0.9) so the untrained policy removes few labels and the jointly trained task network does
not start from labels halved at random; ``keep_init=0`` keeps the layer's default initialisation
(keep probabilities about 0.5: the paper, which states no initialisation).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from trainables.tasks.avvp.han import HybridAttentionLayer


class AgentOutput(NamedTuple):
    """Keep probabilities per video and class.

    Attributes:
        p_a: (B, C) probability of keeping each audio label.
        p_v: (B, C) probability of keeping each visual label.
    """

    p_a: torch.Tensor
    p_v: torch.Tensor


def _init_keep(keep_init: float, *heads: nn.Linear) -> None:
    """Sets the heads' biases to ``logit(keep_init)`` (0: leaves the default initialisation)."""
    if keep_init == 0.0:
        return
    b = math.log(keep_init / (1.0 - keep_init))
    for head in heads:
        nn.init.constant_(head.bias, b)


class _StateProjection(nn.Module):
    """What both agents share: the states of Eq. 1 projected to ``d_model`` per modality.

    The state of a segment is its features plus (``use_labels``) the video's label vector; audio
    and visual states differ in size, so each has its own projection before attention.
    """

    def __init__(self, audio_dim: int, visual_dim: int, motion_dim: int, num_classes: int, d_model: int,
                 use_labels: bool, keep_init: float):
        super().__init__()
        if not (keep_init == 0.0 or 0.0 < keep_init < 1.0):
            raise ValueError(f"keep_init must be in (0, 1), or 0 for the layer's default "
                             f"initialisation; got {keep_init}")
        self.use_labels = use_labels
        self.num_classes = num_classes
        extra = num_classes if use_labels else 0
        self.fc_a = nn.Linear(audio_dim + extra, d_model)
        self.fc_v = nn.Linear(visual_dim + motion_dim + extra, d_model)

    def project(self, audio, visual, motion, labels) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x_a, x_v)``, (B, T, d_model): the projected audio and visual state sequences."""
        w = self.fc_a.weight
        audio, visual, motion = audio.to(w.dtype), visual.to(w.dtype), motion.to(w.dtype)
        if visual.dim() == 4:
            visual = visual.mean(dim=2)
        sv = torch.cat([visual, motion], dim=-1)
        sa = audio
        if self.use_labels:
            lab = labels.to(w.dtype).unsqueeze(1).expand(-1, audio.shape[1], -1)
            sa = torch.cat([sa, lab], dim=-1)
            sv = torch.cat([sv, lab], dim=-1)
        return self.fc_a(sa), self.fc_v(sv)


class RLLDAgent(_StateProjection):
    """The label-denoising policy network.

    Args:
        audio_dim: Audio feature size per segment.
        visual_dim: Visual (appearance) feature size per segment (or per frame, averaged).
        motion_dim: Motion feature size per segment.
        num_classes: Number of event classes C.
        d_model: Hidden size of the hybrid attention layer.
        dropout: Dropout inside the attention layer.
        use_labels: Concatenate the original label vector to every segment's features (Eq. 1);
            ``False`` is the paper's "w/o label input" ablation.
        keep_init: Initial keep probability (bias of the FC layer; see the module docstring);
            0 keeps the layer's default initialisation.
    """

    def __init__(
        self,
        audio_dim: int = 128,
        visual_dim: int = 2048,
        motion_dim: int = 512,
        num_classes: int = 25,
        d_model: int = 512,
        dropout: float = 0.1,
        use_labels: bool = True,
        keep_init: float = 0.9,
    ):
        super().__init__(audio_dim, visual_dim, motion_dim, num_classes, d_model, use_labels, keep_init)
        # HAN's layer, with its feed-forward block as wide as the model (RLLD gives no size).
        self.hat = HybridAttentionLayer(d_model, nhead=1, dim_feedforward=d_model, dropout=dropout)
        # Separate heads: keeping a label means different things for each modality.
        self.head_a = nn.Linear(d_model, num_classes)
        self.head_v = nn.Linear(d_model, num_classes)
        _init_keep(keep_init, self.head_a, self.head_v)

    def forward(
        self,
        audio: torch.Tensor,
        visual: torch.Tensor,
        motion: torch.Tensor,
        labels: torch.Tensor,
    ) -> AgentOutput:
        """Keep probabilities for every (video, class) pair in both modalities.

        Args:
            audio: (B, T, Da).
            visual: (B, T, Dv) or (B, T, F, Dv) (frames are averaged).
            motion: (B, T, Dm).
            labels: (B, C) original weak labels, 0/1.

        Returns:
            :class:`AgentOutput` with (B, C) float32 probabilities.
        """
        xa, xv = self.project(audio, visual, motion, labels)
        ha, hv = self.hat(xa, xv), self.hat(xv, xa)
        p_a = torch.sigmoid(self.head_a(ha.mean(dim=1)).float())
        p_v = torch.sigmoid(self.head_v(hv.mean(dim=1)).float())
        return AgentOutput(p_a, p_v)


class PaperAgent(_StateProjection):
    """The agent of Eq. 2-4: residual self- and cross-attention on the states, one shared FC layer.

    ``x_m = W_m s_m`` projects each modality's states to ``d_model`` (the state sizes differ, so
    the residual sums need one size; HAN projects the same way); ``h_m = x_m + SA(x_m) +
    CA(x_m, x_other)`` (single-head attention, scaled by sqrt(d), dropout on each branch);
    ``p_m = sigmoid(FC(mean_t h_m))`` with the same FC for both modalities.

    Args: as :class:`RLLDAgent`.
    """

    def __init__(self, audio_dim: int = 128, visual_dim: int = 2048, motion_dim: int = 512,
                 num_classes: int = 25, d_model: int = 512, dropout: float = 0.1,
                 use_labels: bool = True, keep_init: float = 0.0):
        super().__init__(audio_dim, visual_dim, motion_dim, num_classes, d_model, use_labels, keep_init)
        self.self_attn = nn.MultiheadAttention(d_model, 1, dropout=dropout, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(d_model, 1, dropout=dropout, batch_first=True)
        self.drop_sa = nn.Dropout(dropout)
        self.drop_ca = nn.Dropout(dropout)
        self.head = nn.Linear(d_model, num_classes)
        _init_keep(keep_init, self.head)

    def _hidden(self, x: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        sa = self.self_attn(x, x, x, need_weights=False)[0]
        ca = self.cross_attn(x, other, other, need_weights=False)[0]
        return x + self.drop_sa(sa) + self.drop_ca(ca)

    def forward(self, audio: torch.Tensor, visual: torch.Tensor, motion: torch.Tensor,
                labels: torch.Tensor) -> AgentOutput:
        """As :meth:`RLLDAgent.forward`."""
        xa, xv = self.project(audio, visual, motion, labels)
        ha, hv = self._hidden(xa, xv), self._hidden(xv, xa)
        p_a = torch.sigmoid(self.head(ha.mean(dim=1)).float())
        p_v = torch.sigmoid(self.head(hv.mean(dim=1)).float())
        return AgentOutput(p_a, p_v)


AGENTS = {"avtune": RLLDAgent, "paper": PaperAgent}


def build_agent(arch: str, dims: tuple[int, int, int], num_classes: int, *, d_model: int,
                dropout: float, use_labels: bool, keep_init: float) -> nn.Module:
    """The agent of ``arch`` (``avtune`` or ``paper``) sized for the data."""
    if arch not in AGENTS:
        raise ValueError(f"agent_arch must be one of {sorted(AGENTS)}, got {arch!r}")
    return AGENTS[arch](*dims, num_classes=num_classes, d_model=d_model, dropout=dropout,
                        use_labels=use_labels, keep_init=keep_init)


def sample_actions(p: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Bernoulli actions (Eq. 4): 1 keeps the label, 0 removes it; same shape as ``p``, float 0/1."""
    u = torch.rand(p.shape, generator=generator, device=p.device, dtype=p.dtype)
    return (u < p).to(p.dtype)


def revise_labels(actions: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Revised labels (Eq. 5): ``action AND original label`` as float 0/1."""
    return ((actions > 0.5) & (labels > 0.5)).to(torch.float32)


def action_log_prob(p: torch.Tensor, actions: torch.Tensor, labels: torch.Tensor,
                    eps: float = 1e-6, reduce: bool = True) -> torch.Tensor:
    """Log-probability of the actions per video, (B,), or per (video, class), (B, C), with
    ``reduce=False``.

    Only classes whose original label is positive are counted (the others are 0): by Eq. 5 an
    action on an absent label changes nothing, so its log-probability would only add variance to
    the gradient.
    """
    p = p.clamp(eps, 1.0 - eps)
    lp = actions * torch.log(p) + (1.0 - actions) * torch.log1p(-p)
    lp = lp * (labels > 0.5).to(lp.dtype)
    return lp.sum(dim=-1) if reduce else lp
