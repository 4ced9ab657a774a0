"""Data-level (early) fusion: join the raw inputs before any encoder.

Each modality is made a one-channel 2-D map (an image ``[B, 1, H, W]``, a log-Mel
spectrogram ``[B, n_mels, T]`` viewed as ``[B, 1, n_mels, T]``), resized to ``size`` by
bilinear interpolation, and the maps are stacked as channels ``[B, M, H, W]`` for one shared
``backbone`` (e.g. ``ImageEncoder(in_channels=M)``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mmcourse.fusion.base import Fusion


class EarlyFusion(Fusion):
    """Stack resized raw modalities as channels, then one backbone: ``-> [B, backbone.out_dim]``.

    Args:
        modalities: names, in channel order.
        backbone: module ``[B, M, *size] -> [B, out_dim]`` with an ``out_dim`` attribute.
        size: common spatial size ``(H, W)``.
    """

    def __init__(self, modalities: list[str], backbone: nn.Module, size: tuple[int, int] = (28, 28)):
        super().__init__({m: 0 for m in modalities})
        self.backbone, self.size = backbone, tuple(size)
        self.out_dim = backbone.out_dim

    def stack(self, feats: dict[str, torch.Tensor]) -> torch.Tensor:
        """The joined input ``[B, M, H, W]`` (what the backbone sees)."""
        missing = [m for m in self.modalities if m not in feats]
        if missing:
            raise ValueError(f"EarlyFusion is missing modalities {missing}; expected {list(self.modalities)}")
        maps = []
        for m in self.modalities:
            x = feats[m]
            if x.ndim == 3:  # [B, F, T] spectrogram -> [B, 1, F, T]
                x = x.unsqueeze(1)
            if x.ndim != 4 or x.shape[1] != 1:
                raise ValueError(f"EarlyFusion: {m!r} must be [B, 1, H, W] or [B, F, T], got {tuple(feats[m].shape)}")
            maps.append(F.interpolate(x.float(), size=self.size, mode="bilinear", align_corners=False))
        if len({x.shape[0] for x in maps}) > 1:
            raise ValueError(f"EarlyFusion: batch sizes differ: { {m: feats[m].shape[0] for m in self.modalities} }")
        return torch.cat(maps, dim=1)  # [B, M, H, W]

    def forward(self, feats: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.backbone(self.stack(feats))  # [B, out_dim]
