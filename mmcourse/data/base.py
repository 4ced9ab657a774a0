"""A dataset that is a set of in-memory tensors (everything in this course fits in RAM)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.utils.data import Dataset


class TensorData(Dataset):
    """``x[i], y[i]`` pairs held in memory.

    Args:
        x: inputs, first dimension N (e.g. images ``[N, 1, 28, 28]`` float32).
        y: integer labels ``[N]`` int64.
        classes: names of the classes, ``len(classes) == y.max() + 1``.
        transform: optional callable applied to ``x[i]`` when an item is read.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, classes: Sequence[str], transform=None):
        if len(x) != len(y):
            raise ValueError(f"x has {len(x)} items but y has {len(y)}")
        self.x, self.y, self.classes, self.transform = x, y, list(classes), transform

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        x = self.x[i]
        return (self.transform(x) if self.transform else x), self.y[i]

    def subset(self, n: int | None, seed: int = 0) -> TensorData:
        """A stratified-enough random subset of ``n`` items (all items when ``n`` is None)."""
        if n is None or n >= len(self):
            return self
        idx = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))[:n]
        return TensorData(self.x[idx], self.y[idx], self.classes, self.transform)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(n={len(self)}, x={tuple(self.x.shape)} {self.x.dtype}, "
            f"classes={len(self.classes)})"
        )
