"""Learning across tasks and modalities: a shared encoder with several heads, and distillation.

* **Multi-task:** ``MultiTaskModel(encoder, {"digit": 10, "speaker": 6})`` -> logits of every task,
  concatenated ``[B, sum K_t]``; :func:`multitask_loss` is ``sum_t w_t CE(logits_t, y_t)`` with labels
  ``y [B, T]`` (one column per task), so :func:`mmcourse.train.fit` trains it.
* **Cross-modal distillation:** a student of one modality learns from a teacher of another on
  *paired* data: :func:`distillation_loss` is ``T^2 KL(softmax(t / T) || softmax(s / T))`` against
  the teacher's soft predictions ``softmax(t / T)`` (Hinton et al. 2015); no label of the student's
  modality is used.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


class MultiTaskModel(nn.Module):
    """One shared ``encoder`` (``[B, ...] -> [B, dim]``) and a linear head per task.

    ``forward(x) -> [B, sum K_t]`` (tasks in the order of ``tasks``); ``split(logits)`` gives
    ``{task: [B, K_t]}``.
    """

    def __init__(self, encoder: nn.Module, tasks: dict[str, int], dim: int):
        super().__init__()
        if not tasks:
            raise ValueError("MultiTaskModel needs at least one task, e.g. {'digit': 10}")
        self.encoder, self.tasks = encoder, dict(tasks)
        self.heads = nn.ModuleDict({t: nn.Linear(dim, k) for t, k in tasks.items()})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.encoder(x)  # [B, dim]
        return torch.cat([head(h) for head in self.heads.values()], dim=1)  # [B, sum K_t]

    def split(self, logits: torch.Tensor) -> dict[str, torch.Tensor]:
        return dict(zip(self.tasks, logits.split(list(self.tasks.values()), dim=1), strict=True))


def multitask_loss(sizes: list[int], weights: list[float]) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``loss(logits [B, sum K_t], y [B, T]) = sum_t w_t CE(logits_t, y[:, t])`` (a weight 0 skips a task)."""
    if len(sizes) != len(weights):
        raise ValueError(f"one weight per task: {len(sizes)} tasks, {len(weights)} weights")

    def loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if y.ndim != 2 or y.shape[1] != len(sizes):
            raise ValueError(f"labels must be [B, {len(sizes)}] (one column per task), got {tuple(y.shape)}")
        total = logits.new_zeros(())
        for t, (part, w) in enumerate(zip(logits.split(sizes, dim=1), weights, strict=True)):
            if w:
                total = total + w * F.cross_entropy(part, y[:, t])
        return total

    return loss


def soft_targets(teacher_logits: torch.Tensor, temperature: float = 2.0) -> torch.Tensor:
    """The teacher's soft predictions ``softmax(t / T)`` ``[B, K]``."""
    return F.softmax(teacher_logits / temperature, dim=-1)


def distillation_loss(temperature: float = 2.0) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``loss(student_logits [B, K], teacher_probs [B, K]) = T^2 KL(teacher || softmax(s / T))``."""

    def loss(student_logits: torch.Tensor, teacher_probs: torch.Tensor) -> torch.Tensor:
        if student_logits.shape != teacher_probs.shape:
            raise ValueError(f"student logits {tuple(student_logits.shape)} and teacher probabilities "
                             f"{tuple(teacher_probs.shape)} must have the same shape [B, K]")
        logq = F.log_softmax(student_logits / temperature, dim=-1)
        return F.kl_div(logq, teacher_probs, reduction="batchmean") * temperature**2

    return loss
