"""Decision-level (late) fusion: one classifier per modality, then combine their decisions.

With per-modality logits ``s_m = W_m h_m + b_m`` ``[B, K]``:

* ``"mean"``:    ``s = (1/M) sum_m s_m``
* ``"learned"``: ``s = sum_m w_m s_m`` with ``w = softmax(a)``, ``a`` learned ``[M]``
* ``"poe"``:     product of experts, ``log p(y) = sum_m log p_m(y) + const``
  (returned as ``sum_m log_softmax(s_m)``; cross-entropy renormalises it)

Masking policy (``supports_missing``): absent modalities are left out of the combination
(the mean and the softmax weights run over the modalities present).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mmcourse.fusion.base import Fusion

COMBINE = ("mean", "learned", "poe")


class LateFusion(Fusion):
    """Per-modality linear classifiers ``{m: [B, d_m]} -> [B, K]`` combined by ``combine``."""

    supports_missing = True

    def __init__(self, dims: dict[str, int], num_classes: int, combine: str = "mean"):
        super().__init__(dims)
        if combine not in COMBINE:
            raise ValueError(f"combine must be one of {COMBINE}, got {combine!r}")
        self.combine, self.out_dim = combine, num_classes
        self.heads = nn.ModuleDict({m: nn.Linear(d, num_classes) for m, d in dims.items()})
        self.weight_logits = nn.Parameter(torch.zeros(len(dims)))  # used by "learned"

    def unimodal_logits(self, feats: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Each present modality's own logits ``{m: [B, K]}``."""
        return {m: self.heads[m](feats[m]) for m in self.check(feats)}

    def weights(self, present: list[str] | None = None) -> torch.Tensor:
        """The combination weights over ``present`` modalities ``[M']`` (sum to 1)."""
        present = present or list(self.modalities)
        idx = torch.tensor([self.modalities.index(m) for m in present])
        if self.combine == "learned":
            return torch.softmax(self.weight_logits[idx], 0)
        return torch.full((len(present),), 1.0 / len(present))

    def forward(self, feats: dict[str, torch.Tensor]) -> torch.Tensor:
        logits = self.unimodal_logits(feats)
        s = torch.stack(list(logits.values()))  # [M', B, K]
        if self.combine == "poe":
            return F.log_softmax(s, dim=-1).sum(0)  # [B, K]
        w = self.weights(list(logits)).to(s)
        return torch.einsum("m,mbk->bk", w, s)  # [B, K]
