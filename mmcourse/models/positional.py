"""Positional encodings: attention alone ignores order, so position is added to each token.

* sinusoidal (Vaswani et al. 2017): fixed, ``PE[p, 2i] = sin(p / 10000^(2i/D))``,
  ``PE[p, 2i+1] = cos(p / 10000^(2i/D))``;
* learned (BERT, ViT): one trained vector per position.

Both take ``x [B, T, D]`` and return ``x + PE[:T]`` (``[B, T, D]``).
"""

from __future__ import annotations

import math

import torch
from torch import nn


def sinusoidal_table(max_len: int, d_model: int) -> torch.Tensor:
    """The sinusoidal table ``[max_len, d_model]`` (``d_model`` even)."""
    if d_model % 2 or d_model < 2 or max_len < 1:
        raise ValueError(f"need an even d_model >= 2 and max_len >= 1, got {d_model}, {max_len}")
    pos = torch.arange(max_len, dtype=torch.float32)[:, None]  # [T, 1]
    freq = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
    pe = torch.zeros(max_len, d_model)
    pe[:, 0::2] = torch.sin(pos * freq)  # [T, D/2]
    pe[:, 1::2] = torch.cos(pos * freq)
    return pe


class _Positional(nn.Module):
    d_model: int
    max_len: int

    def table(self) -> torch.Tensor:  # [max_len, D]
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [B, T, D]`` -> ``x + PE[:T]`` ``[B, T, D]``."""
        if x.ndim != 3 or x.shape[-1] != self.d_model:
            raise ValueError(f"expected [B, T, {self.d_model}], got {tuple(x.shape)}")
        if x.shape[1] > self.max_len:
            raise ValueError(f"sequence of length {x.shape[1]} is longer than the positional "
                             f"table ({self.max_len} positions)")
        return x + self.table()[: x.shape[1]]


class SinusoidalPositionalEncoding(_Positional):
    """Fixed sinusoidal positions (no parameters)."""

    def __init__(self, d_model: int, max_len: int = 512):
        super().__init__()
        self.d_model, self.max_len = d_model, max_len
        self.register_buffer("pe", sinusoidal_table(max_len, d_model), persistent=False)

    def table(self) -> torch.Tensor:
        return self.pe


class LearnedPositionalEncoding(_Positional):
    """One trained vector per position (initialised small and random)."""

    def __init__(self, d_model: int, max_len: int = 512):
        super().__init__()
        self.d_model, self.max_len = d_model, max_len
        self.pe = nn.Parameter(torch.randn(max_len, d_model) * 0.02)

    def table(self) -> torch.Tensor:
        return self.pe
