"""Plots for object detection: boxes on images, precision-recall curves.

Takes plain tensors (a detector's decoded ``{"boxes", "scores", "labels"}``), never a model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from matplotlib.axes import Axes
from matplotlib.patches import Rectangle

BOX_COLORS = ["#e45756", "#4c78a8", "#f2cf5b", "#72b7b2", "#b279a2"]  # by label 1, 2, ...


def plot_boxes(ax: Axes, image: torch.Tensor, detections: Mapping[str, torch.Tensor] | None = None,
               gt_boxes: torch.Tensor | None = None, classes: Sequence[str] | None = None,
               min_score: float = 0.3) -> None:
    """One image ``[1, H, W]`` with true boxes (white, dashed) and detections (by class colour, with score).

    Only detections scoring at least ``min_score`` are drawn. Boxes are ``(x1, y1, x2, y2)`` pixels.
    """
    if image.ndim != 3 or image.shape[0] != 1:
        raise ValueError(f"expected one grey image [1, H, W], got {tuple(image.shape)}")
    ax.imshow(image[0].float().cpu().numpy(), cmap="gray", vmin=0, vmax=1,
              extent=(0, image.shape[2], image.shape[1], 0))  # pixel edges: box x1 = 3 is pixel 3's left edge
    if gt_boxes is not None:
        for x1, y1, x2, y2 in gt_boxes.tolist():
            ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec="white", lw=1, ls="--"))
    if detections is not None:
        keep = detections["scores"] >= min_score
        for (x1, y1, x2, y2), s, lab in zip(detections["boxes"][keep].tolist(), detections["scores"][keep].tolist(),
                                            detections["labels"][keep].tolist(), strict=True):
            color = BOX_COLORS[(lab - 1) % len(BOX_COLORS)]
            ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec=color, lw=1.6))
            name = classes[lab] if classes else str(lab)
            ax.text(x1, y1 - 0.5, f"{name} {s:.2f}", color=color, fontsize=7, va="bottom",
                    bbox=dict(fc="black", alpha=0.5, pad=0.5, lw=0))
    ax.set_xlim(0, image.shape[2])
    ax.set_ylim(image.shape[1], 0)
    ax.set_axis_off()


def plot_precision_recall(ax: Axes, curves: Mapping[str, tuple[torch.Tensor, torch.Tensor]],
                          ap: Mapping[str, float] | None = None) -> None:
    """Precision against recall, one line per class: ``{name: (precision [D], recall [D])}``."""
    for i, (name, (precision, recall)) in enumerate(curves.items()):
        label = f"{name} (AP {ap[name]:.3f})" if ap else name
        ax.step(recall.numpy(), precision.numpy(), where="post", color=BOX_COLORS[i % len(BOX_COLORS)], label=label)
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1.02), ylim=(0, 1.02))
    ax.legend(fontsize=8, loc="lower left")
