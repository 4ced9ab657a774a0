"""Tensor fusion (TFN, Zadeh et al. 2017) and its low-rank form (LMF, Liu et al. 2018).

Tensor fusion appends a 1 to every embedding and takes their outer product, so the fused
tensor holds every unimodal term, every bimodal product, ... (the 1s keep the lower orders):

    z = [h_1; 1] (x) [h_2; 1] (x) ... (x) [h_M; 1]        prod_m (d_m + 1) numbers
    y = W vec(z) + b                                       W: [out, prod_m (d_m + 1)]

so its size (and W's) grows *exponentially* with the number of modalities M. Low-rank
fusion writes W as a sum of ``rank`` outer products of per-modality factors
``W = sum_r w_1^r (x) ... (x) w_M^r`` (each ``w_m^r: [d_m + 1, out]``), which gives, without
ever building z,

    y = sum_r prod_m ([h_m; 1] @ w_m^r) + b                rank * sum_m (d_m + 1) * out weights

that is, *linear* growth in M. ``LowRankTensorFusion.full_weight()`` rebuilds the W it stands
for, and a ``TensorFusion`` holding that W gives the same output (tested).
"""

from __future__ import annotations

import torch
from torch import nn

from mmcourse.fusion.base import Fusion


def _with_one(h: torch.Tensor) -> torch.Tensor:
    return torch.cat([h, torch.ones_like(h[:, :1])], dim=-1)  # [B, d + 1]


class TensorFusion(Fusion):
    """``{m: [B, d_m]} -> [B, out_dim]`` through the full outer product ``[B, prod (d_m + 1)]``."""

    def __init__(self, dims: dict[str, int], out_dim: int):
        super().__init__(dims)
        self.out_dim = out_dim
        self.linear = nn.Linear(self.fused_size, out_dim)

    @property
    def fused_size(self) -> int:
        n = 1
        for d in self.dims.values():
            n *= d + 1
        return n

    def outer(self, feats: dict[str, torch.Tensor]) -> torch.Tensor:
        """``vec([h_1; 1] (x) ... (x) [h_M; 1])``: ``[B, prod (d_m + 1)]``."""
        self.check(feats)
        z = _with_one(feats[self.modalities[0]])  # [B, d_1 + 1]
        for m in self.modalities[1:]:
            z = torch.einsum("bi,bj->bij", z, _with_one(feats[m])).flatten(1)  # [B, n * (d_m + 1)]
        return z

    def forward(self, feats: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.linear(self.outer(feats))  # [B, out_dim]


class LowRankTensorFusion(Fusion):
    """``{m: [B, d_m]} -> [B, out_dim]`` with a rank-``rank`` weight tensor (no outer product built)."""

    def __init__(self, dims: dict[str, int], out_dim: int, rank: int = 4):
        super().__init__(dims)
        if rank < 1:
            raise ValueError(f"rank must be >= 1, got {rank}")
        self.out_dim, self.rank = out_dim, rank
        self.factors = nn.ParameterDict({
            m: nn.Parameter(torch.randn(rank, d + 1, out_dim) * (d + 1) ** -0.5) for m, d in dims.items()
        })  # fmt: skip
        self.bias = nn.Parameter(torch.zeros(out_dim))

    def forward(self, feats: dict[str, torch.Tensor]) -> torch.Tensor:
        self.check(feats)
        y = None
        for m in self.modalities:
            p = torch.einsum("bi,rio->rbo", _with_one(feats[m]), self.factors[m])  # [R, B, out]
            y = p if y is None else y * p
        return y.sum(0) + self.bias  # [B, out]

    @torch.no_grad()
    def full_weight(self) -> torch.Tensor:
        """The full weight ``[out, prod (d_m + 1)]`` this low-rank form stands for (first modality slowest)."""
        w = None
        for m in self.modalities:
            f = self.factors[m]  # [R, d + 1, out]
            w = f if w is None else torch.einsum("rio,rjo->rijo", w, f).flatten(1, 2)
        return w.sum(0).T  # [out, prod]
