"""What every fusion module shares: its modalities, its output size, input checks.

A fusion module maps ``{name: tensor}`` to one tensor ``[B, out_dim]``. It declares
``modalities`` (ordered names), ``out_dim``, ``wants_tokens`` (inputs are token sequences
``[B, N, d]`` rather than embeddings ``[B, d]``) and ``supports_missing`` (absent keys are
allowed: the strategy combines the modalities present).
"""

from __future__ import annotations

import math

import torch
from torch import nn


class Fusion(nn.Module):
    """Base class: subclasses set ``out_dim`` and implement ``forward(feats) -> [B, out_dim]``."""

    wants_tokens: bool = False
    supports_missing: bool = False

    def __init__(self, dims: dict[str, int]):
        super().__init__()
        if not dims:
            raise ValueError("a fusion needs at least one modality, e.g. dims={'image': 32}")
        self.dims = dict(dims)
        self.modalities = tuple(dims)
        self.out_dim = 0

    def check(self, feats: dict[str, torch.Tensor], ndim: int = 2) -> list[str]:
        """Validate ``feats``; return the names present (in ``self.modalities`` order).

        Raises ``ValueError`` for a missing key (unless ``supports_missing``), a wrong rank or
        last dimension, or batch sizes that differ between modalities.
        """
        if not isinstance(feats, dict):
            raise ValueError(f"{type(self).__name__} expects a dict of modality tensors, got {type(feats).__name__}")
        present = [m for m in self.modalities if m in feats]
        missing = [m for m in self.modalities if m not in feats]
        if missing and not (self.supports_missing and present):
            raise ValueError(f"{type(self).__name__} is missing modalities {missing}; "
                             f"expected keys {list(self.modalities)}, got {sorted(feats)}")
        sizes = set()
        shape = "[B, N, d]" if ndim == 3 else "[B, d]"
        for m in present:
            x = feats[m]
            if x.ndim != ndim or x.shape[-1] != self.dims[m]:
                raise ValueError(f"{type(self).__name__}: {m!r} must be {shape} with d={self.dims[m]}, "
                                 f"got {tuple(x.shape)}")
            sizes.add(x.shape[0])
        if len(sizes) > 1:
            raise ValueError(f"{type(self).__name__}: batch sizes differ between modalities: "
                             f"{ {m: feats[m].shape[0] for m in present} }")
        return present


def tensor_fusion_params(dims: list[int], out_dim: int) -> int:
    """Parameters of :class:`TensorFusion`: ``prod(d_m + 1) * out_dim + out_dim``."""
    return math.prod(d + 1 for d in dims) * out_dim + out_dim


def low_rank_params(dims: list[int], out_dim: int, rank: int) -> int:
    """Parameters of :class:`LowRankTensorFusion`: ``rank * sum(d_m + 1) * out_dim + out_dim``."""
    return rank * sum(d + 1 for d in dims) * out_dim + out_dim
