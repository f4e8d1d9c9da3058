"""Encoders, classifier and prototype sets of the noise-tolerant AV action recognition model."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from trainables.methods.avar.losses import TiedAutoencoder


def _mlp(d_in: int, hidden: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, d_out))


class AVARNet(nn.Module):
    """Modal-specific encoders ``f_v``, ``f_a`` into a shared space and a late-fusion classifier.

    Args:
        visual_dim, audio_dim: Clip-embedding sizes.
        num_classes: K (also the number of prototypes in each of ``C`` and ``C'``).
        hidden_dim: Hidden width of the encoder MLPs.
        embed_dim: Shared-space size d.
        cls_hidden: Width of the first classifier layer.
        ae_hidden: Width of the tied autoencoder's code.
        ae_input: Input size of the autoencoder: the per-rank batch size (category
            representations are vectors over the batch).
    """

    def __init__(self, visual_dim: int, audio_dim: int, num_classes: int, *, hidden_dim: int = 512,
                 embed_dim: int = 256, cls_hidden: int = 512, ae_hidden: int = 32,
                 ae_input: int = 64) -> None:
        super().__init__()
        self.f_v = _mlp(visual_dim, hidden_dim, embed_dim)
        self.f_a = _mlp(audio_dim, hidden_dim, embed_dim)
        # g: two FC layers on the concatenated features, ReLU after the first.
        self.g = _mlp(2 * embed_dim, cls_hidden, num_classes)
        self.protos = nn.Parameter(F.normalize(torch.randn(num_classes, embed_dim), dim=1))
        self.protos_cat = nn.Parameter(F.normalize(torch.randn(num_classes, embed_dim), dim=1))
        self.ae = TiedAutoencoder(ae_input, ae_hidden)

    @torch.no_grad()
    def normalize_prototypes(self) -> None:
        """Projects both prototype sets back onto the unit sphere (done before every step)."""
        self.protos.copy_(F.normalize(self.protos, dim=1))
        self.protos_cat.copy_(F.normalize(self.protos_cat, dim=1))

    def encode(self, visual: torch.Tensor, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Shared-space features ``(f_v(v), f_a(a))`` (not normalised), shapes (..., d)."""
        return self.f_v(visual), self.f_a(audio)

    def classify(self, h_v: torch.Tensor, h_a: torch.Tensor) -> torch.Tensor:
        """Logits of ``g([f_v; f_a])``."""
        return self.g(torch.cat([h_v, h_a], dim=-1))

    def forward(self, visual: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """Class logits of clips (..., Dv), (..., Da) -> (..., K)."""
        return self.classify(*self.encode(visual, audio))
