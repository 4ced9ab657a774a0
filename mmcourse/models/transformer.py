"""The Transformer, built from its parts: multi-head attention, a feed-forward network,
residual connections and layer norm.

    EncoderBlock:  x -> x + MHA(x) -> x + FFN(x)                 (each with LayerNorm)
    DecoderBlock:  y -> y + causal MHA(y) -> y + MHA(y, memory) -> y + FFN(y)

``norm_first=True`` (pre-norm, as in GPT-2 and ViT) puts LayerNorm before each
sub-layer and trains more easily; ``norm_first=False`` is the original post-norm.
:meth:`EncoderBlock.load_torch` / :meth:`DecoderBlock.load_torch` copy the weights of
``nn.TransformerEncoderLayer`` / ``nn.TransformerDecoderLayer``, and the blocks then
compute the same function (the tests check it).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mmcourse.models.attention import MultiHeadAttention, causal_mask

ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu}


class FeedForward(nn.Module):
    """Position-wise MLP ``[B, T, D] -> [B, T, D]``: Linear(D, d_ff), activation, dropout, Linear(d_ff, D)."""

    def __init__(self, d_model: int, d_ff: int, dropout: float = 0.0, activation: str = "gelu"):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {list(ACTIVATIONS)}, got {activation!r}")
        self.linear1, self.linear2 = nn.Linear(d_model, d_ff), nn.Linear(d_ff, d_model)
        self.act, self.drop = ACTIVATIONS[activation], nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear2(self.drop(self.act(self.linear1(x))))


def _copy_linear(dst: nn.Linear | nn.LayerNorm, src: nn.Linear | nn.LayerNorm) -> None:
    dst.weight.copy_(src.weight)
    dst.bias.copy_(src.bias)
    if isinstance(dst, nn.LayerNorm):
        dst.eps = src.eps


def _check_activation(block, layer) -> None:
    act = layer.activation if not isinstance(layer.activation, str) else getattr(F, layer.activation)
    if act is not block.ff.act:
        raise ValueError(f"activations differ: torch layer uses {act}, this block {block.ff.act}")
    if layer.norm_first != block.norm_first:
        raise ValueError(f"norm_first differs: torch layer {layer.norm_first}, this block {block.norm_first}")


class EncoderBlock(nn.Module):
    """Self-attention + feed-forward, each in a residual branch with LayerNorm. ``[B, T, D] -> [B, T, D]``."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float = 0.1,
                 norm_first: bool = True, activation: str = "gelu"):
        super().__init__()
        self.norm_first = norm_first
        self.attn = MultiHeadAttention(d_model, n_heads, dropout)
        self.ff = FeedForward(d_model, d_ff, dropout, activation)
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.drop1, self.drop2 = nn.Dropout(dropout), nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None,
                key_mask: torch.Tensor | None = None, return_attention: bool = False):
        """``x [B, T, D]``; masks as in :class:`MultiHeadAttention`. Returns ``y [B, T, D]``
        (and the attention weights ``[B, H, T, T]`` with ``return_attention=True``)."""
        h = self.norm1(x) if self.norm_first else x
        a, w = self.attn(h, attn_mask=attn_mask, key_mask=key_mask, return_attention=True) \
            if return_attention else (self.attn(h, attn_mask=attn_mask, key_mask=key_mask), None)
        if self.norm_first:
            x = x + self.drop1(a)
            x = x + self.drop2(self.ff(self.norm2(x)))
        else:
            x = self.norm1(x + self.drop1(a))
            x = self.norm2(x + self.drop2(self.ff(x)))
        return (x, w) if return_attention else x

    @torch.no_grad()
    def load_torch(self, layer: nn.TransformerEncoderLayer) -> EncoderBlock:
        """Copy the weights of a ``nn.TransformerEncoderLayer(batch_first=True)`` of the same shape."""
        _check_activation(self, layer)
        self.attn.load_torch(layer.self_attn)
        for dst, src in ((self.ff.linear1, layer.linear1), (self.ff.linear2, layer.linear2),
                         (self.norm1, layer.norm1), (self.norm2, layer.norm2)):
            _copy_linear(dst, src)
        return self


class DecoderBlock(nn.Module):
    """Causal self-attention, cross-attention to the encoder's ``memory``, feed-forward.
    ``y [B, T, D], memory [B, S, D] -> [B, T, D]``."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float = 0.1,
                 norm_first: bool = True, activation: str = "gelu"):
        super().__init__()
        self.norm_first = norm_first
        self.self_attn = MultiHeadAttention(d_model, n_heads, dropout)
        self.cross_attn = MultiHeadAttention(d_model, n_heads, dropout)
        self.ff = FeedForward(d_model, d_ff, dropout, activation)
        self.norm1, self.norm2, self.norm3 = (nn.LayerNorm(d_model) for _ in range(3))
        self.drop1, self.drop2, self.drop3 = (nn.Dropout(dropout) for _ in range(3))

    def forward(self, y: torch.Tensor, memory: torch.Tensor, tgt_key_mask: torch.Tensor | None = None,
                memory_key_mask: torch.Tensor | None = None, return_attention: bool = False):
        """``y [B, T, D]`` (targets so far), ``memory [B, S, D]``; ``tgt_key_mask [B, T]`` and
        ``memory_key_mask [B, S]`` are True on real tokens. The causal mask is built in.
        Returns ``y [B, T, D]`` (and ``(self [B, H, T, T], cross [B, H, T, S])`` weights)."""
        causal = causal_mask(y.shape[1], y.device)
        ra = return_attention

        def sub(attn, h, ctx, **masks):  # one attention sub-layer, with or without weights
            return attn(h, ctx, **masks, return_attention=True) if ra else (attn(h, ctx, **masks), None)

        h = self.norm1(y) if self.norm_first else y
        a, w_self = sub(self.self_attn, h, None, attn_mask=causal, key_mask=tgt_key_mask)
        y = y + self.drop1(a) if self.norm_first else self.norm1(y + self.drop1(a))
        h = self.norm2(y) if self.norm_first else y
        a, w_cross = sub(self.cross_attn, h, memory, key_mask=memory_key_mask)
        y = y + self.drop2(a) if self.norm_first else self.norm2(y + self.drop2(a))
        h = self.norm3(y) if self.norm_first else y
        y = y + self.drop3(self.ff(h)) if self.norm_first else self.norm3(y + self.drop3(self.ff(h)))
        return (y, (w_self, w_cross)) if ra else y

    @torch.no_grad()
    def load_torch(self, layer: nn.TransformerDecoderLayer) -> DecoderBlock:
        """Copy the weights of a ``nn.TransformerDecoderLayer(batch_first=True)`` of the same shape."""
        _check_activation(self, layer)
        self.self_attn.load_torch(layer.self_attn)
        self.cross_attn.load_torch(layer.multihead_attn)
        for dst, src in ((self.ff.linear1, layer.linear1), (self.ff.linear2, layer.linear2),
                         (self.norm1, layer.norm1), (self.norm2, layer.norm2), (self.norm3, layer.norm3)):
            _copy_linear(dst, src)
        return self


class Encoder(nn.Module):
    """A stack of :class:`EncoderBlock` (plus a final LayerNorm when pre-norm). ``[B, T, D] -> [B, T, D]``."""

    def __init__(self, n_layers: int, d_model: int, n_heads: int, d_ff: int, dropout: float = 0.1,
                 norm_first: bool = True, activation: str = "gelu"):
        super().__init__()
        self.layers = nn.ModuleList(
            EncoderBlock(d_model, n_heads, d_ff, dropout, norm_first, activation) for _ in range(n_layers)
        )
        self.norm = nn.LayerNorm(d_model) if norm_first else nn.Identity()

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None,
                key_mask: torch.Tensor | None = None, return_attention: bool = False):
        """Returns ``y [B, T, D]`` (and a list, one ``[B, H, T, T]`` per layer)."""
        weights = []
        for layer in self.layers:
            if return_attention:
                x, w = layer(x, attn_mask, key_mask, return_attention=True)
                weights.append(w)
            else:
                x = layer(x, attn_mask, key_mask)
        x = self.norm(x)
        return (x, weights) if return_attention else x


class Decoder(nn.Module):
    """A stack of :class:`DecoderBlock` (plus a final LayerNorm when pre-norm)."""

    def __init__(self, n_layers: int, d_model: int, n_heads: int, d_ff: int, dropout: float = 0.1,
                 norm_first: bool = True, activation: str = "gelu"):
        super().__init__()
        self.layers = nn.ModuleList(
            DecoderBlock(d_model, n_heads, d_ff, dropout, norm_first, activation) for _ in range(n_layers)
        )
        self.norm = nn.LayerNorm(d_model) if norm_first else nn.Identity()

    def forward(self, y: torch.Tensor, memory: torch.Tensor, tgt_key_mask: torch.Tensor | None = None,
                memory_key_mask: torch.Tensor | None = None, return_attention: bool = False):
        """Returns ``y [B, T, D]`` (and two lists per layer: self ``[B, H, T, T]``, cross ``[B, H, T, S]``)."""
        selfs, crosses = [], []
        for layer in self.layers:
            if return_attention:
                y, (ws, wc) = layer(y, memory, tgt_key_mask, memory_key_mask, return_attention=True)
                selfs.append(ws)
                crosses.append(wc)
            else:
                y = layer(y, memory, tgt_key_mask, memory_key_mask)
        y = self.norm(y)
        return (y, selfs, crosses) if return_attention else y
