"""Generated shapes with pixel masks, for semantic segmentation.

Each image holds 1-3 filled shapes (circle, square, triangle) of random size, position and
brightness on a noisy background with a brightness gradient. Brightness says nothing about
the class (all shapes draw it from the same range), so a model must look at *shape*: the
pixels' neighbourhood, which is what convolutions see. Later shapes are drawn over earlier ones.

    x: [N, 1, size, size] float32, y: [N, size, size] int64 in 0..3 (0 = background)
"""

from __future__ import annotations

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


def shapes(n: int, size: int = 32, max_shapes: int = 3, noise: float = 0.1, seed: int = 0) -> TensorData:
    """``n`` generated images and masks (deterministic for a given ``seed``).

    Returns a :class:`TensorData` with ``x [n, 1, size, size]`` in about [0, 1], ``y [n, size, size]``
    int64 class per pixel (:data:`SHAPE_CLASSES`).
    """
    if n < 1 or size < 16 or max_shapes < 1:
        raise ValueError(f"need n >= 1, size >= 16, max_shapes >= 1; got n={n}, size={size}, "
                         f"max_shapes={max_shapes}")
    g = torch.Generator().manual_seed(seed)

    def u(lo: float, hi: float) -> float:
        return float(lo + (hi - lo) * torch.rand((), generator=g))

    yy, xx = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32),
                            indexing="ij")  # [H, W] pixel coordinates
    images = torch.empty(n, 1, size, size)
    masks = torch.zeros(n, size, size, dtype=torch.long)
    for i in range(n):
        gy, gx = u(-0.15, 0.15), u(-0.15, 0.15)  # background brightness gradient
        img = 0.2 + gy * (yy / size - 0.5) + gx * (xx / size - 0.5)
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
