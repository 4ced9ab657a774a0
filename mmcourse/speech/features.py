"""The recogniser's front end: 40 log-Mel bands every 10 ms (``mmcourse.audio.Features``),
normalised per utterance, and SpecAugment (time and frequency masks) for training."""

from __future__ import annotations

import torch

from mmcourse.audio import FeatureConfig, Features

CONFIG = FeatureConfig("logmel", sample_rate=8000, n_fft=256, hop_length=80, n_mels=40)
_FEATURES = Features(CONFIG)


def logmel(wave: torch.Tensor) -> torch.Tensor:
    """``[T]`` samples at 8 kHz -> ``[frames, 40]``, each band's mean removed and scaled by the
    utterance's standard deviation (so a louder or quieter recording gives the same features)."""
    x = _FEATURES(wave).T  # [frames, 40]
    x = x - x.mean(0, keepdim=True)
    return x / x.std().clamp_min(1e-3)


def spec_augment(x: torch.Tensor, generator: torch.Generator | None = None, freq_masks: int = 2,
                 max_freq: int = 6, time_masks_per_s: float = 1.0, max_time: int = 5) -> torch.Tensor:
    """SpecAugment on one utterance ``[frames, bands]``: ``freq_masks`` bands of up to ``max_freq``
    Mel bins and about ``time_masks_per_s`` stretches per second of up to ``max_time`` frames are
    set to 0 (the mean, after normalisation). Returns a new tensor."""
    x = x.clone()
    T, Fb = x.shape
    rand = lambda hi: int(torch.randint(0, max(hi, 1), (1,), generator=generator))  # noqa: E731
    for _ in range(freq_masks):
        w = rand(max_freq + 1)
        f0 = rand(Fb - w + 1)
        x[:, f0 : f0 + w] = 0
    for _ in range(round(time_masks_per_s * T / 100)):
        w = rand(max_time + 1)
        t0 = rand(T - w + 1)
        x[t0 : t0 + w] = 0
    return x
