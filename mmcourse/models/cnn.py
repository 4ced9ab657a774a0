"""Convolutional classifiers: a LeNet-style CNN, a small residual CNN, a CNN for log-Mel spectrograms.

Each model is ``features`` (named stages, ``nn.Sequential``) followed by a ``head``, and
exposes the activation of every stage through :meth:`feature_maps`, which is what the
chapter's widgets draw. All use BatchNorm, so they train in a few epochs with Adam.

    LeNet:          [B, 1, 28, 28] -> conv5-pool -> conv5-pool -> MLP -> [B, 10]
    ResidualCNN:    [B, 1, 28, 28] -> stem -> 3 residual stages -> global average pool -> [B, 10]
    SpectrogramCNN: [B, 1, n_mels, frames] -> 3 conv-pool blocks -> global pool -> [B, 10]
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn


def check_input(x: torch.Tensor, channels: int, model: str, rank: int = 4) -> None:
    """Raise a clear ValueError unless ``x`` is ``[B, channels, ...]`` with ``rank`` dims."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{model} expects a tensor, got {type(x).__name__}")
    if x.ndim != rank:
        raise ValueError(f"{model} expects a {rank}-D batch [B, {channels}, H, W], got shape {tuple(x.shape)}")
    if x.shape[1] != channels:
        raise ValueError(f"{model} expects {channels} input channel(s), got {x.shape[1]} "
                         f"(shape {tuple(x.shape)})")


def conv_bn_relu(c_in: int, c_out: int, k: int = 3, stride: int = 1) -> nn.Sequential:
    """``Conv(k, 'same' padding) -> BatchNorm -> ReLU``: ``[B, c_in, H, W] -> [B, c_out, H/stride, W/stride]``."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, k, stride, padding=k // 2, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class _FeatureModel(nn.Module):
    """``features`` (named stages) then ``head``; ``feature_maps`` returns each stage's output."""

    features: nn.Sequential
    head: nn.Module
    in_channels: int

    def _check(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.in_channels, type(self).__name__)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(self._check(x)))

    def feature_maps(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        """``{stage name: activation [B, C_l, H_l, W_l]}`` for every stage, in order (no grad)."""
        x = self._check(x)
        maps: OrderedDict[str, torch.Tensor] = OrderedDict()
        with torch.no_grad():
            for name, stage in self.features.named_children():
                x = stage(x)
                if x.ndim == 4:
                    maps[name] = x
        return maps

    @property
    def first_conv(self) -> nn.Conv2d:
        """The first convolution: its weights ``[C_out, C_in, k, k]`` are the learned filters."""
        return next(m for m in self.modules() if isinstance(m, nn.Conv2d))


class LeNet(_FeatureModel):
    """LeNet-5's layout (LeCun et al. 1998) with ReLU, max pooling and BatchNorm.

    ``[B, C, 28, 28]`` -> conv1 5x5 ``[B, c1, 28, 28]`` -> pool1 ``[B, c1, 14, 14]``
    -> conv2 5x5 ``[B, c2, 14, 14]`` -> pool2 ``[B, c2, 7, 7]`` -> MLP -> ``[B, num_classes]``.
    Works for any input size divisible by 4.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, widths: tuple[int, int] = (16, 32),
                 hidden: int = 128, image_size: int = 28, dropout: float = 0.25):
        super().__init__()
        if image_size % 4:
            raise ValueError(f"image_size must be divisible by 4, got {image_size}")
        self.in_channels = in_channels
        c1, c2 = widths
        self.features = nn.Sequential(OrderedDict(
            conv1=conv_bn_relu(in_channels, c1, 5), pool1=nn.MaxPool2d(2),
            conv2=conv_bn_relu(c1, c2, 5), pool2=nn.MaxPool2d(2),
        ))  # fmt: skip
        s = image_size // 4
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(c2 * s * s, hidden), nn.ReLU(inplace=True),
                                  nn.Dropout(dropout), nn.Linear(hidden, num_classes))


class ResidualBlock(nn.Module):
    """``y = ReLU(F(x) + shortcut(x))`` with ``F`` = conv-BN-ReLU-conv-BN (He et al. 2016).

    ``[B, c_in, H, W] -> [B, c_out, H/stride, W/stride]``; the shortcut is the identity, or a
    strided 1x1 convolution when the shape changes.
    """

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out),
        )  # fmt: skip
        self.shortcut = (nn.Identity() if stride == 1 and c_in == c_out else
                         nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.shortcut(x))


class ResidualCNN(_FeatureModel):
    """A small ResNet for 28x28 images.

    ``[B, C, 28, 28]`` -> stem conv3 + pool ``[B, w, 14, 14]`` -> stage1 ``[B, w, 14, 14]``
    -> stage2 ``[B, 2w, 7, 7]`` -> stage3 ``[B, 4w, 4, 4]`` -> global average pool -> ``[B, num_classes]``.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, width: int = 16, dropout: float = 0.1):
        super().__init__()
        self.in_channels = in_channels
        w = width
        self.features = nn.Sequential(OrderedDict(
            stem=nn.Sequential(conv_bn_relu(in_channels, w, 3), nn.MaxPool2d(2)),
            stage1=ResidualBlock(w, w),
            stage2=ResidualBlock(w, 2 * w, stride=2),
            stage3=ResidualBlock(2 * w, 4 * w, stride=2),
        ))  # fmt: skip
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout),
                                  nn.Linear(4 * w, num_classes))


class SpectrogramCNN(_FeatureModel):
    """A CNN that reads a log-Mel spectrogram as a one-channel image.

    Input ``[B, n_mels, frames]`` or ``[B, 1, n_mels, frames]`` (dB values; a BatchNorm on the
    input standardises them). Three conv-BN-ReLU-pool blocks halve frequency and time each:
    ``[B, w, n_mels/2, frames/2]`` -> ``[B, 2w, /4, /4]`` -> ``[B, 4w, /8, /8]``, then an average
    pool to a coarse ``4 x 4`` frequency-by-time grid (so the head still knows *which* bands and
    *when*, unlike a global mean) -> ``[B, 4w * 16]`` -> ``[B, num_classes]``.
    """

    def __init__(self, n_mels: int = 40, num_classes: int = 10, width: int = 16, dropout: float = 0.3):
        super().__init__()
        self.in_channels, self.n_mels = 1, n_mels
        w = width
        self.features = nn.Sequential(OrderedDict(
            norm=nn.BatchNorm2d(1),
            block1=nn.Sequential(conv_bn_relu(1, w), nn.MaxPool2d(2)),
            block2=nn.Sequential(conv_bn_relu(w, 2 * w), nn.MaxPool2d(2)),
            block3=nn.Sequential(conv_bn_relu(2 * w, 4 * w), nn.MaxPool2d(2)),
        ))  # fmt: skip
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Dropout(dropout),
                                  nn.Linear(4 * w * 16, num_classes))

    def _check(self, x: torch.Tensor) -> torch.Tensor:
        if isinstance(x, torch.Tensor) and x.ndim == 3:
            x = x.unsqueeze(1)  # [B, n_mels, frames] -> [B, 1, n_mels, frames]
        check_input(x, 1, "SpectrogramCNN")
        if x.shape[2] != self.n_mels:
            raise ValueError(f"SpectrogramCNN expects {self.n_mels} Mel bands, got {x.shape[2]} "
                             f"(shape {tuple(x.shape)})")
        if x.shape[3] < 8:
            raise ValueError(f"SpectrogramCNN needs at least 8 frames, got {x.shape[3]}")
        return x
