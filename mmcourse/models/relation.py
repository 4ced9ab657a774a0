"""Relation Network (Santoro et al., 2017) and the CNN+MLP baseline, for Sort-of-CLEVR.

    image [B, 3, S, S] --CellCNN--> [B, C, G, G] -> objects o_i = [cell features; x, y]  [B, N = G*G, C + 2]
    RN:       RN(O, q) = f( sum_{i, j} g([o_i; o_j; q]) )       (all N^2 ordered pairs)
    CNN+MLP:  MLP([flatten(cells); q])

Summing over all pairs makes the RN invariant to the order of the objects, and the pair is the
unit of reasoning: g sees two objects and the question at once. g's first layer is linear in
``[o_i; o_j; q]``, so it is computed as ``A o_i + B o_j + C q`` broadcast over the ``[N, N]``
grid (N + N + 1 products instead of N^2); the rest of g costs O(N^2) per question, which is why
the grid is kept small. Inputs are the batch dicts of :class:`mmcourse.models.vqa.QuestionBatches`.
"""

from __future__ import annotations

import torch
from torch import nn

from mmcourse.models.vqa import conv_block, per_question_images


class CellCNN(nn.Module):
    """``[B, 3, S, S] -> [B, channels, S/8, S/8]``: three stride-2 convolutions and one stride-1
    (a 32-pixel image gives a 4 x 4 grid of cells, each seeing a 31-pixel window)."""

    def __init__(self, channels: int = 24):
        super().__init__()
        self.net = nn.Sequential(conv_block(3, channels, 2), conv_block(channels, channels, 2),
                                 conv_block(channels, channels, 2), conv_block(channels, channels, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)


def cell_objects(cells: torch.Tensor) -> torch.Tensor:
    """``[B, C, G, G] -> [B, G*G, C + 2]``: each cell's features with its (x, y) centre in [-1, 1]."""
    b, _, g, _ = cells.shape
    ax = torch.linspace(-1, 1, g, device=cells.device, dtype=cells.dtype)
    yy, xx = torch.meshgrid(ax, ax, indexing="ij")
    coords = torch.stack([xx, yy]).expand(b, 2, g, g)
    return torch.cat([cells, coords], 1).flatten(2).transpose(1, 2)  # [B, N, C + 2]


class RelationNetwork(nn.Module):
    """``forward(x) -> [B, K]``; :meth:`relate` on objects directly; :meth:`pair_scores` for pictures."""

    def __init__(self, q_dim: int = 11, n_answers: int = 12, channels: int = 24, g_dim: int = 64,
                 f_dim: int = 64, image_size: int = 32):
        super().__init__()
        self.image_size = image_size
        self.cnn = CellCNN(channels)
        d = channels + 2
        self.g_a, self.g_b = nn.Linear(d, g_dim), nn.Linear(d, g_dim, bias=False)
        self.g_q = nn.Linear(q_dim, g_dim, bias=False)
        self.g_rest = nn.Sequential(nn.ReLU(), nn.Linear(g_dim, g_dim), nn.ReLU(), nn.Linear(g_dim, g_dim), nn.ReLU())
        self.f = nn.Sequential(nn.Linear(g_dim, f_dim), nn.ReLU(), nn.Dropout(0.1), nn.Linear(f_dim, n_answers))

    def objects(self, x: dict) -> torch.Tensor:
        """The objects of each question's image ``[B, N, C + 2]``."""
        images, index = per_question_images(x, self.image_size)
        return cell_objects(self.cnn(images))[index]

    def pairs(self, objects: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """``g([o_i; o_j; q])`` for every ordered pair: ``[B, N, N, g_dim]``."""
        if objects.ndim != 3 or q.ndim != 2 or len(objects) != len(q):
            raise ValueError(f"expected objects [B, N, D] and q [B, Q], got {tuple(objects.shape)} and {tuple(q.shape)}")
        a, b = self.g_a(objects), self.g_b(objects)  # [B, N, g]
        return self.g_rest(a[:, :, None] + b[:, None, :] + self.g_q(q)[:, None, None])  # [B, N, N, g]

    def relate(self, objects: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """``f(sum_ij g(o_i, o_j, q))``: ``[B, N, D], [B, Q] -> [B, K]``."""
        return self.f(self.pairs(objects, q).sum((1, 2)))

    @torch.no_grad()
    def pair_scores(self, x: dict) -> torch.Tensor:
        """How much each pair contributes to the relation vector: ``||g(o_i, o_j, q)||`` ``[B, N, N]``."""
        return self.pairs(self.objects(x), x["question"]).norm(dim=-1)

    def forward(self, x: dict) -> torch.Tensor:
        return self.relate(self.objects(x), x["question"])  # [B, K]


class CNNMLP(nn.Module):
    """The baseline: the same CNN, its cells flattened next to the question, then an MLP. ``[B, K]``."""

    def __init__(self, q_dim: int = 11, n_answers: int = 12, channels: int = 24, hidden: int = 256,
                 image_size: int = 32):
        super().__init__()
        self.image_size = image_size
        self.cnn = CellCNN(channels)
        n_cells = (image_size // 8) ** 2
        self.mlp = nn.Sequential(nn.Linear(channels * n_cells + q_dim, hidden), nn.ReLU(),
                                 nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(0.1), nn.Linear(hidden, n_answers))

    def forward(self, x: dict) -> torch.Tensor:
        images, index = per_question_images(x, self.image_size)
        cells = self.cnn(images).flatten(1)[index]  # [B, C * N]
        return self.mlp(torch.cat([cells, x["question"]], 1))
