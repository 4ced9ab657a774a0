"""Choosing what trains: the strategies of chapter 08 are settings of ``requires_grad``.

* a linear probe: :func:`freeze` the backbone, train a new head;
* partial fine-tuning: :func:`unfreeze_last` k blocks of the backbone and the head;
* full fine-tuning: everything trains, with :func:`param_groups` giving the backbone a smaller
  learning rate than the new head (discriminative learning rates).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def freeze(module: nn.Module) -> nn.Module:
    """Stop every parameter of ``module`` from training (``requires_grad=False``); returns it."""
    return module.requires_grad_(False)


def unfreeze_last(blocks: Sequence[nn.Module], k: int) -> list[nn.Module]:
    """Let the last ``k`` of ``blocks`` train again (0 <= k <= len(blocks)); returns them.

    ``blocks`` is an ordered list of the backbone's stages, e.g. ``list(mobilenet.features)``.
    """
    if not 0 <= k <= len(blocks):
        raise ValueError(f"unfreeze_last: k must be between 0 and {len(blocks)} (the number of blocks), got {k}")
    last = list(blocks)[len(blocks) - k:]
    for block in last:
        block.requires_grad_(True)
    return last


def param_groups(backbone: nn.Module, head: nn.Module, lr: float, backbone_factor: float = 0.1
                 ) -> list[dict]:
    """Optimiser groups: the head at ``lr``, the backbone's trainable parameters at
    ``lr * backbone_factor`` (frozen parameters are left out, so the optimiser never sees them)."""
    if not 0 <= backbone_factor:
        raise ValueError(f"param_groups: backbone_factor must be >= 0, got {backbone_factor}")
    head_ids = {id(p) for p in head.parameters()}
    body = [p for p in backbone.parameters() if p.requires_grad and id(p) not in head_ids]
    groups = [{"params": [p for p in head.parameters() if p.requires_grad], "lr": lr}]
    if body:
        groups.append({"params": body, "lr": lr * backbone_factor})
    return groups


def trainable_fraction(model: nn.Module) -> float:
    """Trainable parameters / all parameters of ``model`` (0 when it has none)."""
    total = sum(p.numel() for p in model.parameters())
    return sum(p.numel() for p in model.parameters() if p.requires_grad) / total if total else 0.0


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of every parameter, to check later which ones a training step changed."""
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def changed(model: nn.Module, before: dict[str, torch.Tensor]) -> list[str]:
    """Names of the parameters that differ (bitwise) from ``before`` (a :func:`snapshot`)."""
    return [n for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n])]
