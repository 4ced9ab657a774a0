"""A tiny one-stage object detector (a grid of cells, as in YOLO v1) and its mAP score.

The image is cut into a ``G x G`` grid of ``stride x stride`` cells. The cell that holds an
object's box centre is responsible for it and predicts, from the backbone's feature vector at
that cell: an **objectness** logit (is there an object centred here?), **class** logits and a
**box** (centre offset inside the cell, log width and height in cells). One convolutional pass
gives every cell's prediction at once; decoding keeps the confident ones and removes duplicates
with non-maximum suppression (``torchvision.ops.batched_nms``: NMS within each class).

    x [B, C, H, W] -> backbone [B, 64, H/8, W/8] -> 1x1 head [B, 5 + K, G, G]
    channels: 0 objectness logit | 1, 2 centre offset logits (x, y) | 3, 4 log(w, h / stride) | 5.. class logits

Scoring: :func:`mean_average_precision` (mAP at an IoU threshold, with ``torchvision.ops.box_iou``).
Boxes are ``(x1, y1, x2, y2)`` in pixels throughout.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import batched_nms, box_iou

from mmcourse.models.cnn import check_input, conv_bn_relu

Detections = dict[str, torch.Tensor]  # {"boxes": [D, 4], "scores": [D], "labels": [D]}


class GridDetector(nn.Module):
    """Backbone of 3x3 conv-BN-ReLU (three stride-2 steps: ``stride = 8``) and a 1x1 prediction head.

    ``[B, in_channels, H, W]`` (H, W divisible by 8) -> ``[B, 5 + num_classes, H/8, W/8]``.
    Class ``k`` of the head is label ``k + 1`` (label 0 is the background, which has no box).
    """

    stride = 8

    def __init__(self, in_channels: int = 1, num_classes: int = 3, width: int = 16):
        super().__init__()
        self.in_channels, self.num_classes = in_channels, num_classes
        w = width
        self.backbone = nn.Sequential(
            conv_bn_relu(in_channels, w),       # [B, w, H, W]
            conv_bn_relu(w, 2 * w, stride=2),   # [B, 2w, H/2, W/2]
            conv_bn_relu(2 * w, 4 * w, stride=2),  # [B, 4w, H/4, W/4]
            conv_bn_relu(4 * w, 4 * w),
            conv_bn_relu(4 * w, 4 * w, stride=2),  # [B, 4w, H/8, W/8]
            conv_bn_relu(4 * w, 4 * w),
        )  # fmt: skip
        self.head = nn.Conv2d(4 * w, 5 + num_classes, 1)
        nn.init.constant_(self.head.bias[0], -2.0)  # start by predicting "few objects" (p = 0.12)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.in_channels, "GridDetector")
        if x.shape[2] % self.stride or x.shape[3] % self.stride:
            raise ValueError(f"GridDetector needs H and W divisible by {self.stride}, got {tuple(x.shape[2:])}")
        return self.head(self.backbone(x))  # [B, 5 + K, G, G]


def encode(boxes: torch.Tensor, labels: torch.Tensor, grid: int, stride: int) -> torch.Tensor:
    """One image's boxes ``[M, 4]`` and labels ``[M]`` (1..K) -> dense target ``[6, grid, grid]``.

    Channels: 0 objectness (1 in the cell holding the box centre), 1 class index (label - 1),
    2, 3 centre offset in the cell (0..1), 4, 5 log(w / stride), log(h / stride). Raises if two
    boxes share a cell (this one-object-per-cell detector could not learn both).
    """
    if boxes.ndim != 2 or boxes.shape[-1] != 4 or len(boxes) != len(labels):
        raise ValueError(f"boxes must be [M, 4] with M labels, got {tuple(boxes.shape)} and {len(labels)} labels")
    t = torch.zeros(6, grid, grid)
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2 / stride, (boxes[:, 1] + boxes[:, 3]) / 2 / stride  # in cells
    w, h = (boxes[:, 2] - boxes[:, 0]) / stride, (boxes[:, 3] - boxes[:, 1]) / stride
    j, i = cx.floor().long().clamp(0, grid - 1), cy.floor().long().clamp(0, grid - 1)
    if len(set(zip(i.tolist(), j.tolist(), strict=True))) < len(boxes):
        raise ValueError("two boxes have their centre in the same grid cell")
    t[0, i, j] = 1.0
    t[1, i, j] = (labels - 1).float()
    t[2, i, j], t[3, i, j] = cx - j, cy - i
    t[4, i, j], t[5, i, j] = w.log(), h.log()
    return t


def encode_all(boxes: Sequence[torch.Tensor], labels: Sequence[torch.Tensor], grid: int,
               stride: int) -> torch.Tensor:
    """:func:`encode` for every image: ``[N, 6, grid, grid]``."""
    return torch.stack([encode(b, lab, grid, stride) for b, lab in zip(boxes, labels, strict=True)])


def decode_boxes(out: torch.Tensor, stride: int) -> torch.Tensor:
    """Raw head output ``[B, 5 + K, G, G]`` -> every cell's box ``[B, G, G, 4]`` (x1, y1, x2, y2) in pixels."""
    g_h, g_w = out.shape[-2:]
    jj, ii = torch.meshgrid(torch.arange(g_w, device=out.device), torch.arange(g_h, device=out.device),
                            indexing="xy")  # [G, G] column and row index of each cell
    cx = (jj + out[:, 1].sigmoid()) * stride  # [B, G, G]
    cy = (ii + out[:, 2].sigmoid()) * stride
    w, h = out[:, 3].exp() * stride, out[:, 4].exp() * stride
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)


def detection_loss(out: torch.Tensor, target: torch.Tensor, box_weight: float = 5.0) -> torch.Tensor:
    """Objectness BCE over all cells + class cross-entropy and box L1 over the cells with an object.

    ``out [B, 5 + K, G, G]``, ``target [B, 6, G, G]`` from :func:`encode`.
    """
    obj = target[:, 0]  # [B, G, G]
    loss = F.binary_cross_entropy_with_logits(out[:, 0], obj)
    pos = obj > 0.5
    if pos.any():
        cls_logits = out[:, 5:].permute(0, 2, 3, 1)[pos]  # [P, K]
        loss = loss + F.cross_entropy(cls_logits, target[:, 1][pos].long())
        pred_box = torch.cat([out[:, 1:3].sigmoid(), out[:, 3:5]], 1).permute(0, 2, 3, 1)[pos]  # [P, 4]
        loss = loss + box_weight * F.l1_loss(pred_box, target[:, 2:6].permute(0, 2, 3, 1)[pos])
    return loss


@torch.no_grad()
def decode(out: torch.Tensor, stride: int, score_threshold: float = 0.05, iou_threshold: float = 0.5,
           nms: bool = True, image_size: int | None = None) -> list[Detections]:
    """Head output ``[B, 5 + K, G, G]`` -> one ``{"boxes", "scores", "labels"}`` per image.

    score = sigmoid(objectness) x the best class probability; cells below ``score_threshold``
    are dropped, then (if ``nms``) ``batched_nms`` removes every box that overlaps a higher-scoring
    box of the same class by IoU > ``iou_threshold``. Labels are 1..K, sorted by falling score.
    """
    out = out.float()
    boxes = decode_boxes(out, stride).flatten(1, 2)  # [B, G*G, 4]
    if image_size is not None:
        boxes = boxes.clamp(0, image_size)
    prob, cls = out[:, 5:].softmax(1).max(1)  # [B, G, G]
    scores = (out[:, 0].sigmoid() * prob).flatten(1)  # [B, G*G]
    labels = (cls + 1).flatten(1)
    result = []
    for b, s, lab in zip(boxes, scores, labels, strict=True):
        keep = (s > score_threshold).nonzero()[:, 0]
        if nms:
            keep = keep[batched_nms(b[keep], s[keep], lab[keep], iou_threshold)]
        else:
            keep = keep[s[keep].argsort(descending=True)]
        result.append({"boxes": b[keep].cpu(), "scores": s[keep].cpu(), "labels": lab[keep].cpu()})
    return result


def match(pred_boxes: torch.Tensor, pred_scores: torch.Tensor, gt_boxes: torch.Tensor,
          iou_threshold: float = 0.5) -> torch.Tensor:
    """Greedy matching of one image's detections of one class: ``[D]`` bool, True = true positive.

    In order of falling score, a detection is a true positive if its IoU with the best
    still-unmatched ground-truth box is >= ``iou_threshold`` (that box is then used up); a second
    detection of an object already found is a false positive.
    """
    tp = torch.zeros(len(pred_boxes), dtype=torch.bool)
    if len(pred_boxes) == 0 or len(gt_boxes) == 0:
        return tp
    iou = box_iou(pred_boxes, gt_boxes)  # [D, M]
    used = torch.zeros(len(gt_boxes), dtype=torch.bool)
    for d in pred_scores.argsort(descending=True).tolist():
        cand = iou[d].masked_fill(used, -1.0)
        m = int(cand.argmax())
        if cand[m] >= iou_threshold:
            tp[d], used[m] = True, True
    return tp


def precision_recall(scores: torch.Tensor, tp: torch.Tensor, n_gt: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rank detections by score: precision ``[D]`` = TP / rank and recall ``[D]`` = TP / n_gt after each."""
    order = scores.argsort(descending=True, stable=True)
    hits = tp[order].double().cumsum(0)  # [D]
    return hits / torch.arange(1, len(hits) + 1, dtype=torch.float64), hits / max(n_gt, 1)


def average_precision(scores: torch.Tensor, tp: torch.Tensor, n_gt: int, interpolation: str = "all") -> float:
    """Area under the precision-recall curve of detections ``scores [D]`` with flags ``tp [D]``.

    Precision is first made non-increasing (the "envelope": the best precision at this recall or
    any higher one). ``interpolation="all"`` (Pascal VOC 2010+) integrates the envelope exactly;
    ``"coco"`` averages it at 101 recall points 0, 0.01, ..., 1 (COCO, torchmetrics).
    0.0 without detections; NaN when there is no ground truth.
    """
    if interpolation not in ("all", "coco"):
        raise ValueError(f"interpolation must be 'all' or 'coco', got {interpolation!r}")
    if n_gt == 0:
        return float("nan")
    if len(scores) == 0:
        return 0.0
    precision, recall = precision_recall(scores, tp, n_gt)
    envelope = precision.flip(0).cummax(0).values.flip(0)  # max precision at this rank or later
    if interpolation == "coco":
        points = torch.linspace(0, 1, 101, dtype=torch.float64)
        idx = torch.searchsorted(recall, points, side="left")  # first rank reaching each recall
        return float(torch.where(idx < len(recall), envelope[idx.clamp(max=len(recall) - 1)], 0.0).mean())
    steps = torch.diff(recall, prepend=torch.zeros(1, dtype=torch.float64))  # recall gained at each rank
    return float((steps * envelope).sum())


def class_matches(preds: Sequence[Detections], gt_boxes: Sequence[torch.Tensor],
                  gt_labels: Sequence[torch.Tensor], label: int,
                  iou_threshold: float = 0.5) -> tuple[torch.Tensor, torch.Tensor, int]:
    """All images' detections of class ``label``: ``(scores [D], true-positive flags [D], number of true objects)``."""
    if not (len(preds) == len(gt_boxes) == len(gt_labels)):
        raise ValueError(f"need one prediction per image: {len(preds)} predictions, {len(gt_boxes)} images")
    scores, flags, n_gt = [], [], 0
    for p, gb, gl in zip(preds, gt_boxes, gt_labels, strict=True):
        pm, gm = p["labels"] == label, gl == label
        n_gt += int(gm.sum())
        scores.append(p["scores"][pm])
        flags.append(match(p["boxes"][pm], p["scores"][pm], gb[gm], iou_threshold))
    return torch.cat(scores), torch.cat(flags), n_gt


def mean_average_precision(preds: Sequence[Detections], gt_boxes: Sequence[torch.Tensor],
                           gt_labels: Sequence[torch.Tensor], num_classes: int, iou_threshold: float = 0.5,
                           interpolation: str = "all") -> tuple[float, dict[int, float]]:
    """mAP at ``iou_threshold`` over images: ``(mean over classes, {label: AP})`` for labels 1..num_classes.

    ``preds[i]`` is :func:`decode`'s output for image i; ``gt_boxes[i] [M_i, 4]``, ``gt_labels[i] [M_i]``.
    Every class's detections of all images are ranked together; classes without ground truth are
    left out of the mean.
    """
    ap = {c: average_precision(*class_matches(preds, gt_boxes, gt_labels, c, iou_threshold), interpolation)
          for c in range(1, num_classes + 1)}
    present = [v for v in ap.values() if v == v]  # NaN != NaN: classes with ground truth
    return (sum(present) / len(present) if present else float("nan")), ap
