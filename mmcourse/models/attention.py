"""Scaled dot-product attention, its masks, and multi-head attention.

Masks in this course are boolean and ``True`` where attention is *allowed*
(the convention of ``torch.nn.functional.scaled_dot_product_attention``; note that
``nn.MultiheadAttention``'s ``attn_mask`` / ``key_padding_mask`` use the opposite one).

    attention(Q, K, V) = softmax(Q K^T / sqrt(d)) V
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def causal_mask(t: int, device: torch.device | None = None) -> torch.Tensor:
    """``[t, t]`` bool, True on and below the diagonal: position i may attend to positions <= i."""
    if t < 1:
        raise ValueError(f"a causal mask needs a length >= 1, got {t}")
    return torch.ones(t, t, dtype=torch.bool, device=device).tril()


def padding_mask(lengths: torch.Tensor, max_len: int | None = None) -> torch.Tensor:
    """``[B, T]`` bool, True on the real tokens of each sequence (``lengths`` ``[B]``)."""
    if lengths.ndim != 1:
        raise ValueError(f"lengths must be 1-D [B], got shape {tuple(lengths.shape)}")
    max_len = int(lengths.max()) if max_len is None else max_len
    if int(lengths.max()) > max_len:
        raise ValueError(f"a length {int(lengths.max())} exceeds max_len {max_len}")
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def scaled_dot_product_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention written out: returns ``(out [..., Tq, dv], weights [..., Tq, Tk])``.

    Args:
        q: queries ``[..., Tq, d]``; k: keys ``[..., Tk, d]``; v: values ``[..., Tk, dv]``
            (the same leading dimensions, e.g. ``[B, H]``).
        mask: bool, broadcastable to ``[..., Tq, Tk]``, True where attention is allowed.
            Each row of ``weights`` sums to 1 over the allowed keys (a row with no allowed
            key is all zeros).
        dropout_p: dropout on the weights (pass 0 in eval mode); ``weights`` are returned
            before dropout.
    """
    if q.ndim < 2 or k.ndim != q.ndim or v.ndim != q.ndim:
        raise ValueError(f"q, k, v must have the same rank >= 2, got {q.ndim}, {k.ndim}, {v.ndim}")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q and k need the same feature size, got {q.shape[-1]} and {k.shape[-1]}")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"k and v need the same length, got {k.shape[-2]} and {v.shape[-2]}")
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # [..., Tq, Tk]
    if mask is not None:
        _check_mask(mask, scores.shape)
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    if mask is not None:
        weights = weights.nan_to_num(0.0)  # rows with every key masked
    dropped = F.dropout(weights, dropout_p) if dropout_p > 0 else weights
    return dropped @ v, weights


def _check_mask(mask: torch.Tensor, shape: torch.Size) -> None:
    if mask.dtype != torch.bool:
        raise ValueError(f"masks must be bool (True = may attend), got {mask.dtype}")
    try:
        ok = torch.broadcast_shapes(mask.shape, shape) == shape
    except RuntimeError:
        ok = False
    if not ok:
        raise ValueError(f"mask of shape {tuple(mask.shape)} does not broadcast to scores {tuple(shape)}")


def combine_masks(attn_mask: torch.Tensor | None, key_mask: torch.Tensor | None,
                  b: int, tq: int, tk: int) -> torch.Tensor | None:
    """One bool mask ``[B or 1, 1, Tq or 1, Tk]`` for per-head scores ``[B, H, Tq, Tk]``.

    ``attn_mask``: ``[Tq, Tk]`` or ``[B, Tq, Tk]`` (e.g. :func:`causal_mask`);
    ``key_mask``: ``[B, Tk]``, True on real (non-padding) keys (e.g. :func:`padding_mask`).
    """
    mask = None
    if attn_mask is not None:
        if attn_mask.dtype != torch.bool:
            raise ValueError(f"attn_mask must be bool (True = may attend), got {attn_mask.dtype}")
        if attn_mask.shape not in ((tq, tk), (b, tq, tk)):
            raise ValueError(f"attn_mask must be [{tq}, {tk}] or [{b}, {tq}, {tk}], "
                             f"got {tuple(attn_mask.shape)}")
        mask = attn_mask[None, None] if attn_mask.ndim == 2 else attn_mask[:, None]
    if key_mask is not None:
        if key_mask.dtype != torch.bool:
            raise ValueError(f"key_mask must be bool (True = real token), got {key_mask.dtype}")
        if key_mask.shape != (b, tk):
            raise ValueError(f"key_mask must be [B, Tk] = [{b}, {tk}], got {tuple(key_mask.shape)}")
        km = key_mask[:, None, None, :]  # [B, 1, 1, Tk]
        mask = km if mask is None else mask & km
    return mask


class MultiHeadAttention(nn.Module):
    """Multi-head attention: H heads of size ``d_model // H`` in parallel, then one projection.

    Numerically the same as ``nn.MultiheadAttention(batch_first=True)`` once its weights
    are copied with :meth:`load_torch`.
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0, bias: bool = True):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model {d_model} is not divisible by n_heads {n_heads}")
        self.d_model, self.n_heads, self.dropout = d_model, n_heads, dropout
        self.q_proj = nn.Linear(d_model, d_model, bias=bias)
        self.k_proj = nn.Linear(d_model, d_model, bias=bias)
        self.v_proj = nn.Linear(d_model, d_model, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:  # [B, T, D] -> [B, H, T, D/H]
        b, t, _ = x.shape
        return x.view(b, t, self.n_heads, self.d_model // self.n_heads).transpose(1, 2)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None,
                attn_mask: torch.Tensor | None = None, key_mask: torch.Tensor | None = None,
                return_attention: bool = False):
        """Queries from ``x [B, Tq, D]``, keys and values from ``context [B, Tk, D]`` (default ``x``).

        Masks as in :func:`combine_masks`. Returns ``y [B, Tq, D]``, and with
        ``return_attention=True`` also the weights of every head ``[B, H, Tq, Tk]``.
        """
        context = x if context is None else context
        for name, t in (("x", x), ("context", context)):
            if t.ndim != 3 or t.shape[-1] != self.d_model:
                raise ValueError(f"{name} must be [B, T, {self.d_model}], got {tuple(t.shape)}")
        if context.shape[0] != x.shape[0]:
            raise ValueError(f"x and context have batch sizes {x.shape[0]} and {context.shape[0]}")
        b, tq, tk = x.shape[0], x.shape[1], context.shape[1]
        mask = combine_masks(attn_mask, key_mask, b, tq, tk)
        q, k, v = self._heads(self.q_proj(x)), self._heads(self.k_proj(context)), self._heads(self.v_proj(context))
        p = self.dropout if self.training else 0.0
        if return_attention:
            y, w = scaled_dot_product_attention(q, k, v, mask, p)  # [B, H, Tq, D/H], [B, H, Tq, Tk]
        else:  # the same computation, fused by PyTorch (faster, no weights kept)
            y, w = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p), None
        y = self.out_proj(y.transpose(1, 2).reshape(b, tq, self.d_model))  # [B, Tq, D]
        return (y, w) if return_attention else y

    @torch.no_grad()
    def load_torch(self, mha: nn.MultiheadAttention) -> MultiHeadAttention:
        """Copy the weights of a ``nn.MultiheadAttention`` of the same size (same D, H, bias)."""
        if mha.embed_dim != self.d_model or mha.num_heads != self.n_heads:
            raise ValueError(f"nn.MultiheadAttention has D={mha.embed_dim}, H={mha.num_heads}; "
                             f"this module has D={self.d_model}, H={self.n_heads}")
        if mha.in_proj_weight is None:
            raise ValueError("only nn.MultiheadAttention with kdim == vdim == embed_dim is supported")
        if (mha.in_proj_bias is None) != (self.q_proj.bias is None):
            raise ValueError("nn.MultiheadAttention and this module disagree on bias")
        for i, lin in enumerate((self.q_proj, self.k_proj, self.v_proj)):
            lin.weight.copy_(mha.in_proj_weight.chunk(3)[i])
            if lin.bias is not None:
                lin.bias.copy_(mha.in_proj_bias.chunk(3)[i])
        self.out_proj.weight.copy_(mha.out_proj.weight)
        if self.out_proj.bias is not None:
            self.out_proj.bias.copy_(mha.out_proj.bias)
        return self
