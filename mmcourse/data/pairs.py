"""Pair items of two modalities that share a label (e.g. a digit's image and its recording)."""

from __future__ import annotations

import torch


def pair_by_label(labels: torch.Tensor, pool_labels: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """For each ``labels[i]``, the index of a random item of ``pool_labels`` with the same label.

    ``labels [N]``, ``pool_labels [M]`` int64 -> indices ``[N]`` into the pool (seeded; items
    of the pool may be used more than once).
    """
    g = torch.Generator().manual_seed(seed)
    idx = torch.full((len(labels),), -1, dtype=torch.long)
    for c in labels.unique():
        want = (labels == c).nonzero().squeeze(1)
        have = (pool_labels == c).nonzero().squeeze(1)
        if len(have) == 0:
            raise ValueError(f"no item with label {int(c)} in the pool to pair with")
        idx[want] = have[torch.randint(len(have), (len(want),), generator=g)]
    return idx
