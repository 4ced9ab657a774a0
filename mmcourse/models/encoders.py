"""Per-modality encoders: image CNN, log-Mel audio CNN, character text encoder.

Each maps its modality to one embedding ``[B, dim]`` (``forward``) or to a sequence of
tokens ``[B, 1 + N, dim]`` (``tokens``, for attention between modalities). Both share the same
convolutional trunk; ``out_dim`` is ``dim``.

Token 0 is a *summary token*: the embedding ``forward(x)`` itself (like BERT's ``[CLS]``, but
computed rather than learned). The ``N`` others are the trunk's local features (grid cells,
frames, letters) plus a learned position embedding. Without the summary, a model that pools
the local tokens loses what the embedding keeps: *where* each stroke or sound is.

=================  ==========================  ==========================
encoder            input                       tokens
=================  ==========================  ==========================
``ImageEncoder``   ``[B, C, 28, 28]``          ``[B, 1 + 49, dim]`` (7x7 grid)
``AudioEncoder``   ``[B, n_mels, T]`` log-Mel   ``[B, 1 + ceil(T/4), dim]``
``TextEncoder``    ``[B, L]`` letter ids        ``[B, 1 + L, dim]`` (letters)
=================  ==========================  ==========================
"""

from __future__ import annotations

import torch
from torch import nn


def _check(x: torch.Tensor, ndim: int, what: str, name: str) -> None:
    if x.ndim != ndim:
        raise ValueError(f"{name} expects {what}, got shape {tuple(x.shape)}")


class ImageEncoder(nn.Module):
    """Two strided convolutions (8, 16 channels) on 28x28 images -> ``[B, dim]`` or tokens ``[B, 1 + 49, dim]``."""

    def __init__(self, in_channels: int = 1, dim: int = 32):
        super().__init__()
        self.in_channels, self.out_dim = in_channels, dim
        self.trunk = nn.Sequential(
            nn.Conv2d(in_channels, 8, 5, stride=2, padding=2), nn.ReLU(),  # [B, 8, 14, 14]
            nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),  # [B, 16, 7, 7]
        )  # fmt: skip
        self.embed = nn.Sequential(nn.Flatten(), nn.Linear(16 * 49, dim), nn.ReLU())
        self.to_tokens = nn.Linear(16, dim)
        self.pos = nn.Parameter(torch.zeros(49, dim))

    def _trunk(self, x: torch.Tensor) -> torch.Tensor:
        _check(x, 4, f"images [B, {self.in_channels}, 28, 28]", "ImageEncoder")
        if tuple(x.shape[1:]) != (self.in_channels, 28, 28):
            raise ValueError(f"ImageEncoder expects [B, {self.in_channels}, 28, 28], got {tuple(x.shape)}")
        return self.trunk(x)  # [B, 16, 7, 7]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(self._trunk(x))  # [B, dim]

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        h = self._trunk(x)  # [B, 16, 7, 7]
        cells = self.to_tokens(h.flatten(2).transpose(1, 2)) + self.pos  # [B, 49, dim]
        return torch.cat([self.embed(h).unsqueeze(1), cells], 1)  # [B, 1 + 49, dim]


class AudioEncoder(nn.Module):
    """Two strided 1-D convolutions over time on log-Mel ``[B, n_mels, T]`` -> ``[B, dim]`` or ``[B, 1 + ceil(T/4), dim]``."""

    def __init__(self, n_mels: int = 40, dim: int = 32, channels: int = 32, max_frames: int = 256):
        super().__init__()
        self.n_mels, self.out_dim = n_mels, dim
        self.trunk = nn.Sequential(
            nn.Conv1d(n_mels, channels, 5, stride=2, padding=2), nn.ReLU(),  # [B, C, ceil(T/2)]
            nn.Conv1d(channels, channels, 5, stride=2, padding=2), nn.ReLU(),  # [B, C, ceil(T/4)]
        )  # fmt: skip
        self.embed = nn.Sequential(nn.AdaptiveAvgPool1d(8), nn.Flatten(), nn.Linear(channels * 8, dim), nn.ReLU())
        self.to_tokens = nn.Linear(channels, dim)
        self.pos = nn.Parameter(torch.zeros(max_frames // 4, dim))

    def _trunk(self, x: torch.Tensor) -> torch.Tensor:
        _check(x, 3, f"log-Mel [B, {self.n_mels}, T]", "AudioEncoder")
        if x.shape[1] != self.n_mels:
            raise ValueError(f"AudioEncoder expects {self.n_mels} Mel bands [B, {self.n_mels}, T], "
                             f"got {tuple(x.shape)}")
        return self.trunk(x)  # [B, C, ceil(T/4)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(self._trunk(x))  # [B, dim]

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        h = self._trunk(x)  # [B, C, ceil(T/4)]
        if h.shape[-1] > len(self.pos):
            raise ValueError(f"AudioEncoder.tokens takes at most {4 * len(self.pos)} frames, got {x.shape[-1]}")
        frames = self.to_tokens(h.transpose(1, 2)) + self.pos[: h.shape[-1]]  # [B, ceil(T/4), dim]
        return torch.cat([self.embed(h).unsqueeze(1), frames], 1)  # [B, 1 + ceil(T/4), dim]


class TextEncoder(nn.Module):
    """Letter embeddings and one convolution over ``[B, L]`` ids (0 = padding) -> ``[B, dim]``."""

    def __init__(self, vocab: int = 27, length: int = 5, dim: int = 32, channels: int = 32):
        super().__init__()
        self.length, self.out_dim = length, dim
        self.emb = nn.Embedding(vocab, channels, padding_idx=0)
        self.conv = nn.Sequential(nn.Conv1d(channels, channels, 3, padding=1), nn.ReLU())
        self.embed = nn.Sequential(nn.Flatten(), nn.Linear(channels * length, dim), nn.ReLU())
        self.to_tokens = nn.Linear(channels, dim)
        self.pos = nn.Parameter(torch.zeros(length, dim))

    def _trunk(self, x: torch.Tensor) -> torch.Tensor:
        _check(x, 2, f"letter ids [B, {self.length}]", "TextEncoder")
        if x.shape[1] != self.length or x.is_floating_point():
            raise ValueError(f"TextEncoder expects int ids [B, {self.length}], got {tuple(x.shape)} {x.dtype}")
        return self.conv(self.emb(x).transpose(1, 2))  # [B, C, L]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(self._trunk(x))  # [B, dim]

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        h = self._trunk(x)  # [B, C, L]
        letters = self.to_tokens(h.transpose(1, 2)) + self.pos  # [B, L, dim]
        return torch.cat([self.embed(h).unsqueeze(1), letters], 1)  # [B, 1 + L, dim]
