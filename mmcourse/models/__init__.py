"""The course's models, one concept per file: import them directly, e.g.
``from mmcourse.models.mlp import MLP`` or ``from mmcourse.models.cnn import ...``.

:func:`count_parameters` (here) counts any model's trainable parameters."""

from torch import nn


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters (those with ``requires_grad``) of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
