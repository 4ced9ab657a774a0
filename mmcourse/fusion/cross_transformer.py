"""Cross-modal transformer (after MulT, Tsai et al. 2019): tokens of one modality attend to
the tokens of the others.

For every modality ``a`` (tokens projected to ``dim`` ``[B, N_a, dim]``) and the tokens of
all other modalities ``o`` ``[B, N_o, dim]`` (concatenated), one pre-LN block (the form that
trains without warm-up, as in GPT-2 and ViT; LayerNorm on the query tokens and on the context):

    a' = a + MHA(q=LN(a), k=LN(o), v=LN(o))   cross-attention: a asks, the others answer
    a" = a' + FFN(LN(a'))
    y_a = LN(a"[:, 0])                        [B, dim], the output at a's summary token

Token 0 of each modality is its encoder's summary token (``mmcourse.models.encoders``): the
block refines the modality's own embedding with what the other modality's tokens answer.
The output concatenates ``y_a`` over modalities: ``[B, M * dim]``. ``return_attention=True``
also returns each block's weights ``{a: [B, N_a, N_o]}``.

``norm="post", readout="mean"`` gives the naive variant that chapter 06 compares against:
post-LN blocks (``a' = LN(a + MHA(a, o, o))``, ``a" = LN(a' + FFN(a'))``, no LayerNorm on the
context) read out by the mean over the local tokens (token 0 left out).
"""

from __future__ import annotations

import torch
from torch import nn

from mmcourse.fusion.base import Fusion


class CrossBlock(nn.Module):
    """One pre-LN cross-attention block: ``x [B, N, dim]`` attends to ``ctx [B, N', dim]`` -> ``[B, N, dim]``."""

    def __init__(self, dim: int, heads: int, ff: int, norm: str = "pre"):
        super().__init__()
        if norm not in ("pre", "post"):
            raise ValueError(f"norm must be 'pre' or 'post', got {norm!r}")
        self.norm = norm
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.ln_q, self.ln_ctx, self.ln_ff = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, ff), nn.GELU(), nn.Linear(ff, dim))

    def forward(self, x: torch.Tensor, ctx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.norm == "post":
            a, w = self.attn(x, ctx, ctx)  # [B, N, dim], [B, N, N']
            x = self.ln_q(x + a)
            return self.ln_ff(x + self.ff(x)), w
        c = self.ln_ctx(ctx)  # [B, N', dim]
        a, w = self.attn(self.ln_q(x), c, c)  # [B, N, dim], [B, N, N']
        x = x + a
        return x + self.ff(self.ln_ff(x)), w


class CrossModalTransformer(Fusion):
    """``{m: [B, N_m, d_m]} -> [B, M * dim]`` (needs at least two modalities; token 0 is read out)."""

    wants_tokens = True

    def __init__(self, dims: dict[str, int], dim: int = 32, heads: int = 2, ff: int = 64,
                 norm: str = "pre", readout: str = "summary"):
        super().__init__(dims)
        if len(dims) < 2:
            raise ValueError("a cross-modal transformer needs at least two modalities")
        if readout not in ("summary", "mean"):
            raise ValueError(f"readout must be 'summary' (token 0) or 'mean' (of the others), got {readout!r}")
        self.out_dim, self.readout = len(dims) * dim, readout
        self.proj = nn.ModuleDict({m: nn.Linear(d, dim) for m, d in dims.items()})
        self.blocks = nn.ModuleDict({m: CrossBlock(dim, heads, ff, norm) for m in dims})
        self.ln_out = nn.LayerNorm(dim) if norm == "pre" else nn.Identity()

    def forward(self, feats: dict[str, torch.Tensor], return_attention: bool = False):
        self.check(feats, ndim=3)
        t = {m: self.proj[m](feats[m]) for m in self.modalities}  # {m: [B, N_m, dim]}
        ys, att = [], {}
        for m in self.modalities:
            ctx = torch.cat([t[o] for o in self.modalities if o != m], dim=1)  # [B, N_o, dim]
            h, att[m] = self.blocks[m](t[m], ctx)
            ys.append(self.ln_out(h[:, 0] if self.readout == "summary" else h[:, 1:].mean(1)))  # [B, dim]
        y = torch.cat(ys, -1)  # [B, M * dim]
        return (y, att) if return_attention else y
