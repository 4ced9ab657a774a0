"""Contrastive alignment (CLIP-style): InfoNCE, similarity matrices, recall@k, prototypes.

Two encoders map paired items ``(a_i, b_i)`` of two modalities to L2-normalised embeddings
``u_i, v_i`` ``[B, D]``. The similarity matrix ``S = u v^T / tau`` ``[B, B]`` has the true pairs on
its diagonal; InfoNCE is the cross-entropy of picking the partner among the batch, both ways:

    L = ( CE(S, diag) + CE(S^T, diag) ) / 2,      tau = exp(-logit_scale) learned

``mask`` marks off-diagonal entries that are *also* true partners (e.g. two images with the same
caption): they are removed from the denominators instead of being pushed apart (false negatives).

:func:`contrastive_batches` feeds pairs to :func:`mmcourse.train.fit` with their group ids as labels.

Retrieval: :func:`recall_at_k` counts how often a query's partner (instance level) or any item of
its class (class level) is among its ``k`` nearest neighbours.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from mmcourse.data.avdigits import DictBatches


def similarity(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Cosine similarities ``[N, M]`` of the rows of ``u [N, D]`` and ``v [M, D]``."""
    if u.ndim != 2 or v.ndim != 2 or u.shape[1] != v.shape[1]:
        raise ValueError(f"similarity expects [N, D] and [M, D], got {tuple(u.shape)} and {tuple(v.shape)}")
    return F.normalize(u, dim=-1) @ F.normalize(v, dim=-1).T


def info_nce(u: torch.Tensor, v: torch.Tensor, temperature: float | torch.Tensor = 0.07,
             mask: torch.Tensor | None = None) -> torch.Tensor:
    """Symmetric InfoNCE of paired embeddings ``u, v [B, D]`` (normalised here) -> scalar.

    ``mask [B, B]`` bool: True where ``j != i`` is also a partner of ``i`` (a false negative);
    those logits are dropped from both cross-entropies. The diagonal must not be masked.
    """
    if u.shape != v.shape or u.ndim != 2:
        raise ValueError(f"info_nce expects two [B, D] batches of the same shape, got {tuple(u.shape)}, {tuple(v.shape)}")
    logits = similarity(u, v) / temperature  # [B, B]
    if mask is not None:
        if mask.shape != logits.shape:
            raise ValueError(f"mask must be [B, B] = {tuple(logits.shape)}, got {tuple(mask.shape)}")
        if mask.diagonal().any():
            raise ValueError("mask must be False on the diagonal (the true pairs)")
        logits = logits.masked_fill(mask, float("-inf"))
    return contrastive_loss(logits)


def same_label_mask(labels: torch.Tensor) -> torch.Tensor:
    """``[B, B]`` bool: True where ``labels[i] == labels[j]`` and ``i != j`` (false negatives)."""
    m = labels[:, None] == labels[None, :]
    return m & ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)


def contrastive_loss(logits: torch.Tensor, groups: torch.Tensor | None = None) -> torch.Tensor:
    """Symmetric InfoNCE from a batch's logits ``[B, B]`` (``S / tau``), for :func:`mmcourse.train.fit`.

    ``groups [B]`` or ``[B, 1]``: items with the same group id are each other's partners too
    (e.g. the same caption), so those off-diagonal logits are masked; all-distinct ids mask nothing.
    """
    if logits.ndim != 2 or logits.shape[0] != logits.shape[1]:
        raise ValueError(f"contrastive_loss expects square logits [B, B], got {tuple(logits.shape)}")
    if groups is not None:
        logits = logits.masked_fill(same_label_mask(groups.reshape(-1)), float("-inf"))
    target = torch.arange(len(logits), device=logits.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


def contrastive_batches(inputs: dict[str, torch.Tensor], groups: torch.Tensor | None = None, batch_size: int = 64,
                        shuffle: bool = False, seed: int = 0) -> DictBatches:
    """Batches of pairs ``inputs`` (``{modality: [N, ...]}``) for ``fit(..., loss_fn=contrastive_loss)``.

    The "labels" are each pair's group id as a column ``[N, 1]``: ``contrastive_loss`` masks pairs
    of the same group (``groups [N]``, e.g. a caption id; None: ``arange(N)``, every pair its own
    group, nothing masked). The column shape is on purpose: ``fit`` computes an accuracy only for
    labels ``[B]``, and ``argmax`` of ``[B, B]`` logits against group ids would mean nothing.
    """
    n = len(next(iter(inputs.values())))
    groups = torch.arange(n) if groups is None else groups
    if groups.shape != (n,):
        raise ValueError(f"groups must be [N] = [{n}] (one id per pair), got {tuple(groups.shape)}")
    return DictBatches(inputs, groups[:, None], batch_size, shuffle=shuffle, seed=seed)


class ContrastiveModel(nn.Module):
    """Two encoders -> linear projections -> unit vectors, and a learnable temperature (CLIP).

    ``encoders``: ``{name_a: enc_a, name_b: enc_b}`` mapping each modality to ``[B, d_m]`` (``dims``).
    ``forward({name_a: x_a, name_b: x_b}) -> logits [B, B] = u v^T / tau``, so that
    ``fit(model, loader, loss_fn=contrastive_loss)`` trains it; ``embed(name, x) -> [N, dim]``
    unit vectors. ``tau = exp(-logit_scale)``, initialised to ``init_temperature``, kept >= 0.01
    as in CLIP; ``learn_temperature=False`` keeps it fixed.
    """

    def __init__(self, encoders: dict[str, nn.Module], dims: dict[str, int], dim: int = 64,
                 init_temperature: float = 0.07, learn_temperature: bool = True):
        super().__init__()
        if len(encoders) != 2 or set(dims) != set(encoders):
            raise ValueError(f"ContrastiveModel needs two encoders and their dims, got {list(encoders)}, {list(dims)}")
        self.names = tuple(encoders)
        self.encoders = nn.ModuleDict(encoders)
        self.proj = nn.ModuleDict({m: nn.Linear(dims[m], dim) for m in self.names})
        scale = torch.tensor(math.log(1 / init_temperature))
        if learn_temperature:
            self.logit_scale = nn.Parameter(scale)
        else:
            self.register_buffer("logit_scale", scale)

    def _log_scale(self) -> torch.Tensor:
        return self.logit_scale.clamp(max=math.log(100))  # tau >= 0.01, as in CLIP

    @property
    def temperature(self) -> torch.Tensor:
        return torch.exp(-self._log_scale()).detach()

    def embed(self, name: str, x: torch.Tensor) -> torch.Tensor:
        if name not in self.proj:
            raise ValueError(f"unknown modality {name!r}; this model embeds {self.names}")
        return F.normalize(self.proj[name](self.encoders[name](x)), dim=-1)  # [B, dim]

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        missing = [m for m in self.names if m not in batch]
        if missing:
            raise ValueError(f"missing modalities {missing}: this model pairs {self.names}")
        u, v = (self.embed(m, batch[m]) for m in self.names)  # [B, dim] each
        return self._log_scale().exp() * u @ v.T  # [B, B]

    @torch.no_grad()
    def embed_all(self, name: str, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
        """Embeddings ``[N, dim]`` of a whole set, in eval mode."""
        self.eval()
        return torch.cat([self.embed(name, x[i : i + batch_size]) for i in range(0, len(x), batch_size)])


def recall_at_k(sim: torch.Tensor, ks: tuple[int, ...] = (1, 5, 10), query_labels: torch.Tensor | None = None,
                item_labels: torch.Tensor | None = None) -> dict[int, float]:
    """Recall@k of retrieval with similarities ``sim [N queries, M items]``.

    Instance level (no labels): query ``i``'s partner is item ``i`` (needs ``N <= M``). Class level
    (``query_labels [N]``, ``item_labels [M]``): a hit is any item of the query's class in the top k.
    Ties are broken by item order (``torch.topk``).
    """
    if sim.ndim != 2:
        raise ValueError(f"sim must be [N, M], got {tuple(sim.shape)}")
    n, m = sim.shape
    top = sim.topk(min(max(ks), m), dim=1).indices  # [N, kmax]
    if query_labels is None:
        if n > m:
            raise ValueError(f"instance-level recall needs N <= M, got {n} queries and {m} items")
        hits = top == torch.arange(n, device=sim.device)[:, None]  # [N, kmax]
    else:
        if item_labels is None or len(query_labels) != n or len(item_labels) != m:
            raise ValueError("class-level recall needs query_labels [N] and item_labels [M]")
        hits = item_labels[top] == query_labels[:, None]  # [N, kmax]
    return {k: float(hits[:, :k].any(1).float().mean()) for k in ks}


def prototypes(emb: torch.Tensor, labels: torch.Tensor, num_classes: int | None = None) -> torch.Tensor:
    """Unit-length class means ``[K, D]`` of embeddings ``emb [N, D]`` with ``labels [N]``."""
    k = num_classes or int(labels.max()) + 1
    sums = torch.zeros(k, emb.shape[1], dtype=emb.dtype, device=emb.device).index_add_(0, labels, emb)
    counts = torch.bincount(labels, minlength=k)
    if (counts == 0).any():
        raise ValueError(f"classes {torch.nonzero(counts == 0).flatten().tolist()} have no examples")
    return F.normalize(sums / counts[:, None], dim=-1)


def classify(emb: torch.Tensor, protos: torch.Tensor) -> torch.Tensor:
    """Nearest prototype (cosine) of each row of ``emb [N, D]`` -> class ids ``[N]``."""
    return similarity(emb, protos).argmax(1)
