"""The tour's tiny image+audio digit model (chapter 00): two encoders, concatenation, a head."""

from __future__ import annotations

import torch
from torch import nn


class TinyAVNet(nn.Module):
    """Reads a digit from an image and a spoken recording together.

    Inputs: ``{"image": [B, 1, 28, 28], "audio": [B, n_mels, frames]}`` (log-Mel, dB).
    Output: logits ``[B, 10]``.
    """

    def __init__(self, n_mels: int = 40, frames: int = 101, hidden: int = 64, classes: int = 10):
        super().__init__()
        self.image = nn.Sequential(  # [B, 1, 28, 28] -> [B, hidden]
            nn.Conv2d(1, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(4), nn.Flatten(),
            nn.Linear(16 * 7 * 7, hidden), nn.ReLU(),
        )  # fmt: skip
        self.audio = nn.Sequential(  # [B, n_mels, frames] -> [B, hidden]
            nn.Conv1d(n_mels, 32, 5, padding=2), nn.ReLU(), nn.AdaptiveMaxPool1d(8), nn.Flatten(),
            nn.Linear(32 * 8, hidden), nn.ReLU(),
        )  # fmt: skip
        self.norm = nn.BatchNorm1d(n_mels)
        self.head = nn.Linear(2 * hidden, classes)

    def forward(self, x: dict[str, torch.Tensor]) -> torch.Tensor:
        missing = {"image", "audio"} - set(x)
        if missing:
            raise ValueError(f"TinyAVNet needs both modalities; missing: {sorted(missing)}")
        img, aud = x["image"], x["audio"]
        if img.ndim != 4 or img.shape[1:] != (1, 28, 28):
            raise ValueError(f"image must be [B, 1, 28, 28], got {tuple(img.shape)}")
        if aud.ndim != 3 or aud.shape[1] != self.norm.num_features:
            raise ValueError(f"audio must be [B, {self.norm.num_features}, frames], got {tuple(aud.shape)}")
        if len(img) != len(aud):
            raise ValueError(f"batch sizes differ: image {len(img)}, audio {len(aud)}")
        z = torch.cat([self.image(img), self.audio(self.norm(aud))], dim=1)  # [B, 2 * hidden]
        return self.head(z)
