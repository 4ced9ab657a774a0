"""The chapter's line-up: every method built from the same encoders and the same head.

``build(method)`` returns a :class:`MultimodalModel` whose encoders are ``ImageEncoder``,
``AudioEncoder`` (and ``TextEncoder``), each ``dim`` wide; feature-level methods end in the
same MLP head ``out_dim -> hidden -> K``; decision-level methods produce logits themselves.
``train(model, ...)`` runs :func:`mmcourse.train.fit` on in-memory dict tensors.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from mmcourse.config import offset_seed
from mmcourse.data.avdigits import DictBatches
from mmcourse.fusion.attention import AttentionFusion
from mmcourse.fusion.concat import ConcatFusion
from mmcourse.fusion.cross_transformer import CrossModalTransformer
from mmcourse.fusion.early import EarlyFusion
from mmcourse.fusion.gmu import GatedMultimodalUnit
from mmcourse.fusion.hybrid import HybridFusion
from mmcourse.fusion.late import LateFusion
from mmcourse.fusion.model import MultimodalModel
from mmcourse.fusion.tensor import LowRankTensorFusion, TensorFusion
from mmcourse.models.encoders import AudioEncoder, ImageEncoder, TextEncoder
from mmcourse.train import fit

UNIMODAL = ("image only", "audio only")
FUSION = ("early", "concat", "late mean", "late learned", "late PoE", "tensor", "low-rank tensor",
          "GMU", "attention", "cross transformer", "hybrid")
LEVEL = {"image only": "unimodal", "audio only": "unimodal", "text only": "unimodal", "early": "data",
         "concat": "feature", "late mean": "decision", "late learned": "decision", "late PoE": "decision",
         "tensor": "feature", "low-rank tensor": "feature", "GMU": "feature", "attention": "feature",
         "cross transformer": "feature", "hybrid": "feature + decision"}


def encoders(modalities: tuple[str, ...], dim: int = 32) -> dict[str, nn.Module]:
    make = {"image": lambda: ImageEncoder(1, dim), "audio": lambda: AudioEncoder(40, dim),
            "text": lambda: TextEncoder(dim=dim)}
    unknown = set(modalities) - set(make)
    if unknown:
        raise ValueError(f"no encoder for modalities {sorted(unknown)}; known: {sorted(make)}")
    return {m: make[m]() for m in modalities}


def mlp_head(in_dim: int, num_classes: int, hidden: int = 64) -> nn.Module:
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))


def build(method: str, modalities: tuple[str, ...] = ("image", "audio"), dim: int = 32,
          num_classes: int = 10, modality_dropout: float = 0.0, rank: int = 4) -> MultimodalModel:
    """A fresh model for ``method`` (one of ``UNIMODAL + FUSION``, or ``"<modality> only"``)."""
    if method.endswith(" only"):
        m = method.removesuffix(" only")
        enc = encoders((m,), dim)
        return MultimodalModel(enc, ConcatFusion({m: dim}), mlp_head(dim, num_classes))
    dims = {m: dim for m in modalities}
    if method == "early":
        if "text" in modalities:
            raise ValueError("early fusion here stacks 2-D maps; text has none")
        fusion = EarlyFusion(list(modalities), ImageEncoder(len(modalities), dim))
        return MultimodalModel({}, fusion, mlp_head(dim, num_classes), modality_dropout)
    enc = encoders(modalities, dim)
    decision = {"late mean": "mean", "late learned": "learned", "late PoE": "poe"}
    if method in decision:
        return MultimodalModel(enc, LateFusion(dims, num_classes, decision[method]), nn.Identity(), modality_dropout)
    if method == "hybrid":
        return MultimodalModel(enc, HybridFusion(dims, num_classes), nn.Identity(), modality_dropout)
    fusions = {
        "concat": lambda: ConcatFusion(dims),
        "tensor": lambda: TensorFusion(dims, dim),
        "low-rank tensor": lambda: LowRankTensorFusion(dims, dim, rank),
        "GMU": lambda: GatedMultimodalUnit(dims, dim),
        "attention": lambda: AttentionFusion(dims, dim),
        "cross transformer": lambda: CrossModalTransformer(dims, dim),
    }
    if method not in fusions:
        raise ValueError(f"unknown method {method!r}; choose from {UNIMODAL + FUSION}")
    fusion = fusions[method]()
    return MultimodalModel(enc, fusion, mlp_head(fusion.out_dim, num_classes), modality_dropout)


@torch.no_grad()
def predict(model: nn.Module, inputs: dict[str, torch.Tensor], batch_size: int = 512) -> torch.Tensor:
    """Logits ``[N, K]`` of ``model`` over in-memory ``inputs`` (eval mode, CPU)."""
    model.eval()
    n = len(next(iter(inputs.values())))
    return torch.cat([model({k: v[i : i + batch_size] for k, v in inputs.items()}) for i in range(0, n, batch_size)])


def train(model: nn.Module, train_x: dict, train_y: torch.Tensor, val_x: dict, val_y: torch.Tensor, *,
          epochs: int, lr: float = 2e-3, batch_size: int = 64, seed: int = 0) -> dict:
    """Train with Adam (best val accuracy kept); returns ``{"seconds", "val_acc", "history"}``."""
    t0 = time.perf_counter()
    torch.manual_seed(offset_seed(seed))  # + MMCOURSE_SEED, as fit and DictBatches do
    tr = DictBatches(train_x, train_y, batch_size, shuffle=True, seed=seed)
    va = DictBatches(val_x, val_y, 512)
    hist = fit(model, tr, va, epochs=epochs, lr=lr, seed=seed, progress=False, device=torch.device("cpu"))
    return {"seconds": time.perf_counter() - t0, "val_acc": hist.best["val_acc"], "history": hist}
