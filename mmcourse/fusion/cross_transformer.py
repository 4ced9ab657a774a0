"""Cross-modal transformer (after MulT, Tsai et al. 2019): tokens of one modality attend to
the tokens of the others.

For every modality ``a`` (tokens projected to ``dim`` ``[B, N_a, dim]``) and the tokens of
all other modalities ``o`` ``[B, N_o, dim]`` (concatenated):

    a' = LN(a + MHA(q=a, k=o, v=o))          cross-attention: a asks, the others answer
    a" = LN(a' + FFN(a'))
    y_a = mean over a's tokens of a"         [B, dim]

The output concatenates ``y_a`` over modalities: ``[B, M * dim]``. ``return_attention=True``
also returns each block's weights ``{a: [B, N_a, N_o]}``.
"""

from __future__ import annotations

import torch
from torch import nn

from mmcourse.fusion.base import Fusion


class CrossBlock(nn.Module):
    """One cross-attention block: ``x [B, N, dim]`` attends to ``ctx [B, N', dim]`` -> ``[B, N, dim]``."""

    def __init__(self, dim: int, heads: int, ff: int):
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, ff), nn.ReLU(), nn.Linear(ff, dim))

    def forward(self, x: torch.Tensor, ctx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, w = self.attn(x, ctx, ctx)  # [B, N, dim], [B, N, N']
        x = self.ln1(x + a)
        return self.ln2(x + self.ff(x)), w


class CrossModalTransformer(Fusion):
    """``{m: [B, N_m, d_m]} -> [B, M * dim]`` (needs at least two modalities)."""

    wants_tokens = True

    def __init__(self, dims: dict[str, int], dim: int = 32, heads: int = 2, ff: int = 64):
        super().__init__(dims)
        if len(dims) < 2:
            raise ValueError("a cross-modal transformer needs at least two modalities")
        self.out_dim = len(dims) * dim
        self.proj = nn.ModuleDict({m: nn.Linear(d, dim) for m, d in dims.items()})
        self.blocks = nn.ModuleDict({m: CrossBlock(dim, heads, ff) for m in dims})

    def forward(self, feats: dict[str, torch.Tensor], return_attention: bool = False):
        self.check(feats, ndim=3)
        t = {m: self.proj[m](feats[m]) for m in self.modalities}  # {m: [B, N_m, dim]}
        ys, att = [], {}
        for m in self.modalities:
            ctx = torch.cat([t[o] for o in self.modalities if o != m], dim=1)  # [B, N_o, dim]
            h, att[m] = self.blocks[m](t[m], ctx)
            ys.append(h.mean(1))  # [B, dim]
        y = torch.cat(ys, -1)  # [B, M * dim]
        return (y, att) if return_attention else y
