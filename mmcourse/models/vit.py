"""A small Vision Transformer (Dosovitskiy et al. 2021): an image is a sequence of patches.

    image [B, C, H, W] -> patches (a P x P convolution with stride P) -> [B, N, D], N = (H/P)(W/P)
    -> prepend a learned [CLS] token -> + learned positions -> Encoder -> [CLS] -> Linear -> [B, classes]

With ``return_attention=True`` the model also returns every layer's attention
``[B, H, N+1, N+1]``; :func:`cls_attention` and :func:`attention_rollout` turn them
into one map over the patch grid ``[B, H/P, W/P]`` that can be laid over the image.
"""

from __future__ import annotations

import torch
from torch import nn

from mmcourse.models.positional import LearnedPositionalEncoding
from mmcourse.models.transformer import Encoder


class PatchEmbedding(nn.Module):
    """Cut ``[B, C, H, W]`` into P x P patches and project each to D: ``[B, N, D]``."""

    def __init__(self, image_size: int, patch_size: int, in_channels: int, d_model: int):
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"image_size {image_size} is not a multiple of patch_size {patch_size}")
        self.image_size, self.patch_size, self.in_channels = image_size, patch_size, in_channels
        self.grid = image_size // patch_size
        self.proj = nn.Conv2d(in_channels, d_model, patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        expected = (self.in_channels, self.image_size, self.image_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"expected images [B, {', '.join(map(str, expected))}], got {tuple(x.shape)}")
        return self.proj(x).flatten(2).transpose(1, 2)  # [B, D, g, g] -> [B, N, D]


class ViT(nn.Module):
    """Vision Transformer classifier (pre-norm encoder, [CLS] token, learned positions)."""

    def __init__(self, image_size: int = 28, patch_size: int = 4, in_channels: int = 1,
                 n_classes: int = 10, d_model: int = 64, depth: int = 4, n_heads: int = 4,
                 d_ff: int = 128, dropout: float = 0.1):
        super().__init__()
        self.patches = PatchEmbedding(image_size, patch_size, in_channels, d_model)
        self.grid = self.patches.grid
        self.cls = nn.Parameter(torch.zeros(1, 1, d_model))
        self.pos = LearnedPositionalEncoding(d_model, self.grid**2 + 1)
        self.drop = nn.Dropout(dropout)
        self.encoder = Encoder(depth, d_model, n_heads, d_ff, dropout, norm_first=True)
        self.head = nn.Linear(d_model, n_classes)

    def forward(self, x: torch.Tensor, return_attention: bool = False):
        """``x [B, C, H, W]`` -> logits ``[B, n_classes]`` (and a list of ``[B, H, N+1, N+1]``)."""
        t = self.patches(x)  # [B, N, D]
        t = torch.cat([self.cls.expand(len(t), -1, -1), t], dim=1)  # [B, N+1, D]
        t = self.drop(self.pos(t))
        if return_attention:
            t, att = self.encoder(t, return_attention=True)
            return self.head(t[:, 0]), att
        return self.head(self.encoder(t)[:, 0])


def cls_attention(att: torch.Tensor, grid: int, head: int | None = None) -> torch.Tensor:
    """How much [CLS] attends to each patch in one layer: ``[B, H, N+1, N+1]`` -> ``[B, grid, grid]``.

    ``head=None`` averages the heads. Each map sums to at most 1 (the rest goes to [CLS] itself).
    """
    if att.ndim != 4 or att.shape[-1] != grid * grid + 1 or att.shape[-2] != att.shape[-1]:
        raise ValueError(f"expected attention [B, H, {grid * grid + 1}, {grid * grid + 1}], got {tuple(att.shape)}")
    a = att.mean(1) if head is None else att[:, head]  # [B, N+1, N+1]
    return a[:, 0, 1:].reshape(-1, grid, grid)


def attention_rollout(atts: list[torch.Tensor], grid: int) -> torch.Tensor:
    """Attention rollout (Abnar & Zuidema 2020): how much [CLS] at the top draws on each input
    patch through all layers. Heads averaged, the residual path added as ``0.5 I + 0.5 A``,
    rows renormalised, layers multiplied. ``list of [B, H, N+1, N+1]`` -> ``[B, grid, grid]``."""
    if not atts:
        raise ValueError("attention_rollout needs the attention of at least one layer")
    n = atts[0].shape[-1]
    eye = torch.eye(n, device=atts[0].device)
    r = eye.expand(atts[0].shape[0], n, n)
    for a in atts:
        a = 0.5 * a.mean(1) + 0.5 * eye  # [B, N+1, N+1]
        r = (a / a.sum(-1, keepdim=True)) @ r
    return r[:, 0, 1:].reshape(-1, grid, grid)
