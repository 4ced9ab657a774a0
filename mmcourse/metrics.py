"""Classification metrics on integer labels: accuracy, precision, recall, F1, confusion matrix.

All functions take ``y_true [N]`` and ``y_pred [N]`` (int tensors or arrays) and agree
with scikit-learn's functions of the same name (``zero_division=0``).
"""

from __future__ import annotations

import numpy as np
import torch

ArrayLike = torch.Tensor | np.ndarray | list


def _as_tensor(y: ArrayLike) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(y.cpu() if isinstance(y, torch.Tensor) else y))
    if t.ndim != 1:
        raise ValueError(f"labels must be 1-D [N], got shape {tuple(t.shape)}")
    return t.long()


def _check(y_true: ArrayLike, y_pred: ArrayLike) -> tuple[torch.Tensor, torch.Tensor]:
    t, p = _as_tensor(y_true), _as_tensor(y_pred)
    if len(t) != len(p):
        raise ValueError(f"y_true has {len(t)} labels but y_pred has {len(p)}")
    return t, p


def accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Share of predictions equal to the label."""
    t, p = _check(y_true, y_pred)
    return float((t == p).float().mean()) if len(t) else 0.0


def confusion_matrix(y_true: ArrayLike, y_pred: ArrayLike, num_classes: int | None = None) -> torch.Tensor:
    """``C[i, j]`` = number of items of true class i predicted as j; ``[K, K]`` int64."""
    t, p = _check(y_true, y_pred)
    k = num_classes or int(max(t.max(), p.max())) + 1 if len(t) else (num_classes or 0)
    return torch.bincount(t * k + p, minlength=k * k).reshape(k, k)


def precision_recall_f1(
    y_true: ArrayLike, y_pred: ArrayLike, average: str | None = "macro", num_classes: int | None = None
) -> tuple:
    """Precision, recall and F1.

    ``average=None`` gives per-class tensors ``[K]``; ``"macro"`` their unweighted mean
    over the classes present in ``y_true`` or ``y_pred`` (as scikit-learn); ``"micro"``
    the global counts.
    """
    cm = confusion_matrix(y_true, y_pred, num_classes).double()
    tp = cm.diag()
    pred_pos, true_pos = cm.sum(0), cm.sum(1)
    if average == "micro":
        p = r = f = float(tp.sum() / cm.sum()) if cm.sum() > 0 else 0.0
        return p, r, f
    precision = torch.where(pred_pos > 0, tp / pred_pos.clamp_min(1), torch.zeros_like(tp))
    recall = torch.where(true_pos > 0, tp / true_pos.clamp_min(1), torch.zeros_like(tp))
    denom = precision + recall
    f1 = torch.where(denom > 0, 2 * precision * recall / denom.clamp_min(1e-12), torch.zeros_like(tp))
    if average is None:
        return precision.float(), recall.float(), f1.float()
    if average != "macro":
        raise ValueError(f"average must be None, 'macro' or 'micro', got {average!r}")
    present = (pred_pos + true_pos) > 0 if num_classes is None else torch.ones_like(tp, dtype=torch.bool)
    return tuple(float(m[present].mean()) for m in (precision, recall, f1))


def f1_score(y_true: ArrayLike, y_pred: ArrayLike, average: str | None = "macro") -> float | torch.Tensor:
    return precision_recall_f1(y_true, y_pred, average)[2]


def report(y_true: ArrayLike, y_pred: ArrayLike, classes: list[str] | None = None) -> str:
    """A small per-class table (precision, recall, F1, support) plus accuracy and macro F1."""
    t, p = _check(y_true, y_pred)
    k = len(classes) if classes else int(max(t.max(), p.max())) + 1
    prec, rec, f1 = precision_recall_f1(t, p, average=None, num_classes=k)
    support = torch.bincount(t, minlength=k)
    names = classes or [str(i) for i in range(k)]
    w = max(8, *(len(n) for n in names))
    lines = [f"{'class':>{w}}  precision  recall     f1  support"]
    for i in range(k):
        lines.append(f"{names[i]:>{w}}  {prec[i]:9.3f}  {rec[i]:6.3f}  {f1[i]:5.3f}  {int(support[i]):7d}")
    mp, mr, mf = precision_recall_f1(t, p, "macro", num_classes=k)
    lines.append(f"{'macro':>{w}}  {mp:9.3f}  {mr:6.3f}  {mf:5.3f}  {len(t):7d}")
    lines.append(f"accuracy {accuracy(t, p):.4f}")
    return "\n".join(lines)
