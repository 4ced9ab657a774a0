"""Gated multimodal unit (GMU, Arevalo et al. 2017).

Each modality gets its own candidate ``c_m = tanh(W_m h_m)`` ``[B, out]``; gates computed from
*all* modalities decide, per output unit, how much of each candidate to keep:

    g = softmax_m(W_g [h_1; ...; h_M])       [B, M, out], sums to 1 over m
    y = sum_m g_m * c_m                      [B, out]

For two modalities this is the paper's ``z * c_1 + (1 - z) * c_2`` with ``z = sigmoid(.)``.
"""

from __future__ import annotations

import torch
from torch import nn

from mmcourse.fusion.base import Fusion


class GatedMultimodalUnit(Fusion):
    """``{m: [B, d_m]} -> [B, out_dim]``; ``return_gates=True`` also returns ``g [B, M, out_dim]``."""

    def __init__(self, dims: dict[str, int], out_dim: int):
        super().__init__(dims)
        self.out_dim = out_dim
        self.candidates = nn.ModuleDict({m: nn.Linear(d, out_dim) for m, d in dims.items()})
        self.gate = nn.Linear(sum(dims.values()), len(dims) * out_dim)

    def forward(self, feats: dict[str, torch.Tensor], return_gates: bool = False):
        self.check(feats)
        c = torch.stack([torch.tanh(self.candidates[m](feats[m])) for m in self.modalities], 1)  # [B, M, out]
        g = self.gate(torch.cat([feats[m] for m in self.modalities], -1))  # [B, M * out]
        g = torch.softmax(g.view(-1, len(self.modalities), self.out_dim), dim=1)  # [B, M, out]
        y = (g * c).sum(1)  # [B, out]
        return (y, g) if return_gates else y
