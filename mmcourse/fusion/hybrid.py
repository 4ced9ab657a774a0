"""Modular / hybrid fusion: feature-level and decision-level together.

A joint classifier on the concatenated embeddings and one classifier per modality each
produce logits; learned softmax weights combine them:

    s_joint = MLP([h_1; ...; h_M]),  s_m = W_m h_m + b_m          [B, K] each
    s = w_0 s_joint + sum_m w_m s_m,   w = softmax(a)              [B, K]

The joint path captures interactions; the unimodal paths keep each modality's own decision.
"""

from __future__ import annotations

import torch
from torch import nn

from mmcourse.fusion.base import Fusion


class HybridFusion(Fusion):
    """``{m: [B, d_m]} -> [B, K]`` logits (use ``nn.Identity()`` as the model's head)."""

    def __init__(self, dims: dict[str, int], num_classes: int, hidden: int = 64):
        super().__init__(dims)
        self.out_dim = num_classes
        self.joint = nn.Sequential(nn.Linear(sum(dims.values()), hidden), nn.ReLU(), nn.Linear(hidden, num_classes))
        self.heads = nn.ModuleDict({m: nn.Linear(d, num_classes) for m, d in dims.items()})
        self.weight_logits = nn.Parameter(torch.zeros(len(dims) + 1))

    def weights(self) -> torch.Tensor:
        """``[1 + M]``: the joint path's weight first, then each modality's."""
        return torch.softmax(self.weight_logits, 0)

    def forward(self, feats: dict[str, torch.Tensor]) -> torch.Tensor:
        self.check(feats)
        s = [self.joint(torch.cat([feats[m] for m in self.modalities], -1))]
        s += [self.heads[m](feats[m]) for m in self.modalities]
        return torch.einsum("m,mbk->bk", self.weights(), torch.stack(s))  # [B, K]
