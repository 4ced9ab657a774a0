"""Attention over modality embeddings: a learned query decides how much each modality counts.

Each embedding is projected to a common width, LayerNormed (so that no modality wins the
softmax by the scale of its features alone) and tagged with a learned modality embedding,
``k_m = LN(P_m h_m) + e_m`` ``[B, M, dim]``; one learned query ``q`` attends over them
(``torch.nn.MultiheadAttention``):

    a = softmax_m(q W_Q (k_m W_K)^T / sqrt(dim / heads))      [B, M], per example
    y = sum_m a_m (k_m W_V) W_O                               [B, dim]

Masking policy (``supports_missing``): absent modalities are masked out of the softmax
(``key_padding_mask``), so the weights renormalise over the modalities present.
"""

from __future__ import annotations

import torch
from torch import nn

from mmcourse.fusion.base import Fusion


class AttentionFusion(Fusion):
    """``{m: [B, d_m]} -> [B, dim]``; ``return_weights=True`` also returns ``a [B, M]``."""

    supports_missing = True

    def __init__(self, dims: dict[str, int], dim: int = 32, heads: int = 1):
        super().__init__(dims)
        self.out_dim = dim
        self.proj = nn.ModuleDict({m: nn.Linear(d, dim) for m, d in dims.items()})
        self.ln = nn.LayerNorm(dim)
        self.modality_emb = nn.Parameter(torch.randn(len(dims), dim) * 0.02)
        self.query = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)

    def forward(self, feats: dict[str, torch.Tensor], return_weights: bool = False):
        present = self.check(feats)
        b = feats[present[0]].shape[0]
        ref = feats[present[0]]
        keys = torch.stack([
            self.ln(self.proj[m](feats[m])) if m in feats else torch.zeros(b, self.out_dim, device=ref.device, dtype=ref.dtype)
            for m in self.modalities
        ], 1) + self.modality_emb  # [B, M, dim]
        mask = torch.tensor([m not in feats for m in self.modalities], device=ref.device).expand(b, -1)  # [B, M]
        y, a = self.attn(self.query.expand(b, -1, -1), keys, keys, key_padding_mask=mask)  # [B, 1, dim], [B, 1, M]
        y = y.squeeze(1)
        return (y, a.squeeze(1)) if return_weights else y
