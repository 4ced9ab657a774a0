"""Feature-level fusion by concatenation: ``[h_1; h_2; ...; h_M]`` -> ``[B, sum d_m]``."""

from __future__ import annotations

import torch

from mmcourse.fusion.base import Fusion


class ConcatFusion(Fusion):
    """Concatenate the modality embeddings ``{m: [B, d_m]}`` in ``dims`` order: ``[B, sum d_m]``."""

    def __init__(self, dims: dict[str, int]):
        super().__init__(dims)
        self.out_dim = sum(dims.values())

    def forward(self, feats: dict[str, torch.Tensor]) -> torch.Tensor:
        self.check(feats)
        return torch.cat([feats[m] for m in self.modalities], dim=-1)  # [B, sum d_m]
