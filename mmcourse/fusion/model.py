"""``MultimodalModel``: per-modality encoders -> a fusion module -> a head.

    batch {m: x_m}  --encoders-->  {m: h_m}  --fusion-->  [B, out_dim]  --head-->  [B, K]

Modalities without an encoder pass through unchanged (early fusion takes raw inputs).
Encoders give ``h_m = enc(x_m)`` ``[B, d]``, or ``enc.tokens(x_m)`` ``[B, N, d]`` when the
fusion ``wants_tokens``. Keys the fusion does not use are ignored; a missing key raises
``ValueError`` unless the fusion ``supports_missing``.

Modality dropout (``modality_dropout=p``, training only): each example's input of each
modality is replaced by zeros (the train mean, for standardised inputs) with probability
``p``, never all of an example's modalities at once. At test time, "missing" in the chapter
means the same thing: a zero input.
"""

from __future__ import annotations

import torch
from torch import nn

from mmcourse.fusion.base import Fusion


def drop_modalities(batch: dict[str, torch.Tensor], p: float, generator: torch.Generator | None = None
                    ) -> dict[str, torch.Tensor]:
    """Zero each example's modality with probability ``p``, keeping at least one per example."""
    names = list(batch)
    b = batch[names[0]].shape[0]
    keep = torch.rand(b, len(names), generator=generator) >= p  # [B, M]
    none = ~keep.any(1)
    pick = torch.randint(len(names), (b,), generator=generator)
    keep[none, pick[none]] = True  # an example never loses every modality
    out = {}
    for j, m in enumerate(names):
        mask = keep[:, j].to(batch[m].device).view(b, *([1] * (batch[m].ndim - 1)))
        out[m] = batch[m] * mask.to(batch[m].dtype)
    return out


class MultimodalModel(nn.Module):
    """``forward({m: x_m}) -> [B, K]``; see the module docstring."""

    def __init__(self, encoders: dict[str, nn.Module], fusion: Fusion, head: nn.Module,
                 modality_dropout: float = 0.0):
        super().__init__()
        unknown = set(encoders) - set(fusion.modalities)
        if unknown:
            raise ValueError(f"encoders {sorted(unknown)} are not modalities of the fusion {list(fusion.modalities)}")
        if not 0.0 <= modality_dropout < 1.0:
            raise ValueError(f"modality_dropout must be in [0, 1), got {modality_dropout}")
        self.encoders = nn.ModuleDict(encoders)
        self.fusion, self.head, self.modality_dropout = fusion, head, modality_dropout

    @property
    def modalities(self) -> tuple[str, ...]:
        return self.fusion.modalities

    def encode(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``{m: h_m}``: embeddings ``[B, d]`` (or tokens ``[B, N, d]``) of the modalities present."""
        if not isinstance(batch, dict):
            raise ValueError(f"MultimodalModel expects a dict of modality tensors, got {type(batch).__name__}")
        present = [m for m in self.modalities if m in batch]
        missing = [m for m in self.modalities if m not in batch]
        if missing and not (self.fusion.supports_missing and present):
            raise ValueError(f"missing modalities {missing}: this model needs {list(self.modalities)}, "
                             f"got {sorted(batch)}")
        sizes = {m: batch[m].shape[0] for m in present}
        if len(set(sizes.values())) > 1:
            raise ValueError(f"batch sizes differ between modalities: {sizes}")
        x = {m: batch[m] for m in present}
        if self.training and self.modality_dropout > 0 and len(x) > 1:
            x = drop_modalities(x, self.modality_dropout)
        out = {}
        for m, v in x.items():
            enc = self.encoders[m] if m in self.encoders else None
            if enc is None:
                out[m] = v
            else:
                out[m] = enc.tokens(v) if self.fusion.wants_tokens else enc(v)
        return out

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.head(self.fusion(self.encode(batch)))  # [B, K]
