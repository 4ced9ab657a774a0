"""Generated shapes with pixel masks (segmentation) or boxes (detection).

Each image holds 1-3 filled shapes (circle, square, triangle) of random size, position and
brightness on a noisy background with a brightness gradient. Brightness says nothing about
the class (all shapes draw it from the same range), so a model must look at *shape*: the
pixels' neighbourhood, which is what convolutions see. Later shapes are drawn over earlier ones.

    shapes:       x [N, 1, size, size] float32, y [N, size, size] int64 in 0..3 (0 = background)
    shape_scenes: x [N, 1, size, size] float32, boxes[i] [M_i, 4] (x1, y1, x2, y2) pixels, labels[i] [M_i]
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mmcourse.data.base import TensorData

SHAPE_CLASSES = ["background", "circle", "square", "triangle"]


def _mask(kind: int, yy: torch.Tensor, xx: torch.Tensor, cy: float, cx: float, r: float,
          angle: float) -> torch.Tensor:
    """Boolean mask ``[H, W]`` of one shape centred at (cy, cx) with 'radius' r."""
    if kind == 1:  # circle
        return (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2
    if kind == 2:  # axis-aligned square of half-side r * 0.85
        h = 0.85 * r
        return ((yy - cy).abs() <= h) & ((xx - cx).abs() <= h)
    # triangle: inside all three half-planes of an equilateral triangle, rotated by `angle`
    inside = torch.ones_like(yy, dtype=torch.bool)
    for i in range(3):
        a = angle + 2 * torch.pi * i / 3
        nx, ny = torch.cos(torch.tensor(a)), torch.sin(torch.tensor(a))
        inside &= (xx - cx) * nx + (yy - cy) * ny <= 0.6 * r  # inradius 0.6 r
    return inside


def _uniform(g: torch.Generator):
    """``u(lo, hi)``: one float drawn uniformly from [lo, hi) with generator ``g``."""
    def u(lo: float, hi: float) -> float:
        return float(lo + (hi - lo) * torch.rand((), generator=g))
    return u


def _canvas(size: int, u) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pixel coordinates ``yy, xx [H, W]`` and a background ``[H, W]`` with a random brightness gradient."""
    yy, xx = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32),
                            indexing="ij")  # [H, W] pixel coordinates
    gy, gx = u(-0.15, 0.15), u(-0.15, 0.15)  # background brightness gradient
    return yy, xx, 0.2 + gy * (yy / size - 0.5) + gx * (xx / size - 0.5)


def shapes(n: int, size: int = 32, max_shapes: int = 3, noise: float = 0.1, seed: int = 0) -> TensorData:
    """``n`` generated images and masks (deterministic for a given ``seed``).

    Returns a :class:`TensorData` with ``x [n, 1, size, size]`` in about [0, 1], ``y [n, size, size]``
    int64 class per pixel (:data:`SHAPE_CLASSES`).
    """
    if n < 1 or size < 16 or max_shapes < 1:
        raise ValueError(f"need n >= 1, size >= 16, max_shapes >= 1; got n={n}, size={size}, "
                         f"max_shapes={max_shapes}")
    g = torch.Generator().manual_seed(seed)
    u = _uniform(g)
    images = torch.empty(n, 1, size, size)
    masks = torch.zeros(n, size, size, dtype=torch.long)
    for i in range(n):
        yy, xx, img = _canvas(size, u)  # [H, W] each
        mask = torch.zeros(size, size, dtype=torch.long)
        for _ in range(int(torch.randint(1, max_shapes + 1, (), generator=g))):
            kind = int(torch.randint(1, 4, (), generator=g))
            r = u(0.12, 0.25) * size
            cy, cx = u(r, size - 1 - r), u(r, size - 1 - r)
            m = _mask(kind, yy, xx, cy, cx, r, u(0, 2 * torch.pi))
            img = torch.where(m, torch.full_like(img, u(0.55, 1.0)), img)
            mask[m] = kind
        images[i, 0] = img + noise * torch.randn(size, size, generator=g)
        masks[i] = mask
    return TensorData(images, masks, SHAPE_CLASSES)


@dataclass
class ShapeScenes:
    """Images with several shapes each, and one box and label per shape (for detection).

    ``x [N, 1, size, size]``; ``boxes[i] [M_i, 4]`` float (x1, y1, x2, y2) in pixels, the tight box
    of the shape's pixels (x2, y2 exclusive: a box covering pixel columns 3..7 is x1=3, x2=8);
    ``labels[i] [M_i]`` int64 in 1..3 (:data:`SHAPE_CLASSES`). ``masks [N, size, size]`` as in :func:`shapes`.
    """

    x: torch.Tensor
    boxes: list[torch.Tensor]
    labels: list[torch.Tensor]
    masks: torch.Tensor
    classes: list[str]

    def __len__(self) -> int:
        return len(self.x)

    def __repr__(self) -> str:
        n_obj = sum(len(b) for b in self.boxes)
        return f"ShapeScenes(n={len(self)}, x={tuple(self.x.shape)}, objects={n_obj}, classes={self.classes[1:]})"


def shape_scenes(n: int, size: int = 48, max_objects: int = 4, cell: int = 8, noise: float = 0.1,
                 seed: int = 0) -> ShapeScenes:
    """``n`` images with 1..``max_objects`` non-overlapping shapes each, with their boxes (deterministic).

    The shapes are drawn as in :func:`shapes` (radius 0.09-0.18 of ``size``). Boxes never overlap
    (1-pixel gap), and no two shape centres fall in the same ``cell x cell`` grid cell, so a grid
    detector with that cell size has one object per cell at most. A shape that cannot be placed
    after 50 tries is left out (rare).
    """
    if n < 1 or size < 16 or max_objects < 1 or size % cell:
        raise ValueError(f"need n >= 1, size >= 16 and divisible by cell, max_objects >= 1; got n={n}, "
                         f"size={size}, cell={cell}, max_objects={max_objects}")
    g = torch.Generator().manual_seed(seed)
    u = _uniform(g)
    images = torch.empty(n, 1, size, size)
    masks = torch.zeros(n, size, size, dtype=torch.long)
    all_boxes, all_labels = [], []
    for i in range(n):
        yy, xx, img = _canvas(size, u)  # [H, W] each
        boxes: list[list[float]] = []
        labels: list[int] = []
        cells: set[tuple[int, int]] = set()
        for _ in range(int(torch.randint(1, max_objects + 1, (), generator=g))):
            kind = int(torch.randint(1, 4, (), generator=g))
            for _try in range(50):
                r = u(0.09, 0.18) * size
                cy, cx = u(r, size - 1 - r), u(r, size - 1 - r)
                m = _mask(kind, yy, xx, cy, cx, r, u(0, 2 * torch.pi))
                rows, cols = m.any(1).nonzero()[:, 0], m.any(0).nonzero()[:, 0]
                if len(rows) == 0:
                    continue
                box = [float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1)]
                ccell = (int((box[1] + box[3]) / 2 // cell), int((box[0] + box[2]) / 2 // cell))
                apart = all(box[0] > b[2] or b[0] > box[2] or box[1] > b[3] or b[1] > box[3] for b in boxes)
                if apart and ccell not in cells:
                    img = torch.where(m, torch.full_like(img, u(0.55, 1.0)), img)
                    masks[i][m] = kind
                    boxes.append(box)
                    labels.append(kind)
                    cells.add(ccell)
                    break
        images[i, 0] = img + noise * torch.randn(size, size, generator=g)
        all_boxes.append(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4))
        all_labels.append(torch.tensor(labels, dtype=torch.long))
    return ShapeScenes(images, all_boxes, all_labels, masks, SHAPE_CLASSES)
