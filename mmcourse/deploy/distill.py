"""Knowledge distillation (Hinton, Vinyals and Dean 2015): a small student learns a teacher's soft targets.

The teacher's logits ``z_t``, softened by a temperature ``T``, tell the student which wrong classes
are *almost* right ("this 7 looks a bit like a 1"): far more information per example than one label.

    L = alpha * T^2 * KL( softmax(z_t / T) || softmax(z_s / T) ) + (1 - alpha) * CE(z_s, y)

The ``T^2`` keeps the soft term's gradients on the same scale as the hard term's when ``T``
changes (the gradient of the softened KL shrinks as ``1 / T^2``). The soft term is chapter 07's
(:func:`mmcourse.transfer.distillation_loss` on :func:`mmcourse.transfer.soft_targets`); this
module adds the label term and the packing of both targets for ``fit``.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from mmcourse import transfer


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor,
                      temperature: float = 4.0, alpha: float = 0.9) -> torch.Tensor:
    """Hinton's loss; ``student``, ``teacher`` logits ``[B, K]``, ``labels [B]`` -> scalar."""
    if student.shape != teacher.shape:
        raise ValueError(f"student logits {tuple(student.shape)} and teacher logits {tuple(teacher.shape)} differ")
    if temperature <= 0 or not 0.0 <= alpha <= 1.0:
        raise ValueError(f"need temperature > 0 and alpha in [0, 1], got T={temperature}, alpha={alpha}")
    soft = transfer.distillation_loss(temperature)(student, transfer.soft_targets(teacher, temperature))  # T^2 KL
    return alpha * soft + (1 - alpha) * F.cross_entropy(student, labels)


def pack_targets(labels: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """``[B]`` labels and ``[B, K]`` teacher logits as one float target ``[B, 1 + K]`` (for ``fit``)."""
    return torch.cat([labels.float().unsqueeze(1), teacher_logits.float()], dim=1)


class DistillLoss:
    """``loss_fn(out, target)`` for :func:`mmcourse.train.fit`.

    ``target`` is either labels ``[B]`` (validation: plain cross-entropy) or the packed
    ``[B, 1 + K]`` of :func:`pack_targets` (training: :func:`distillation_loss`).
    """

    def __init__(self, temperature: float = 4.0, alpha: float = 0.9):
        self.temperature, self.alpha = temperature, alpha

    def __call__(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if target.ndim == 1:
            return F.cross_entropy(out, target)
        labels, teacher = target[:, 0].long(), target[:, 1:]
        return distillation_loss(out, teacher, labels, self.temperature, self.alpha)
