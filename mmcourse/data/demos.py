"""Small real data that ships with scikit-learn and scikit-image, for quick demos."""

from __future__ import annotations

import numpy as np
import torch

from mmcourse.data.base import TensorData


def sklearn_digits() -> TensorData:
    """scikit-learn's 1,797 handwritten digits: image ``[1, 8, 8]`` float32 in [0, 1], label 0..9."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.from_numpy(d.images.astype(np.float32) / 16.0).unsqueeze(1)
    return TensorData(x, torch.from_numpy(d.target.astype(np.int64)), [str(i) for i in range(10)])


PHOTOS = ("astronaut", "chelsea", "coffee", "camera")


def photo(name: str = "chelsea") -> torch.Tensor:
    """A real photo from scikit-image: ``[3, H, W]`` (or ``[1, H, W]`` for 'camera') float32 in [0, 1]."""
    from skimage import data

    if name not in PHOTOS:
        raise ValueError(f"photo must be one of {PHOTOS}, got {name!r}")
    img = getattr(data, name)().astype(np.float32) / 255.0
    t = torch.from_numpy(img)
    return t.unsqueeze(0) if t.ndim == 2 else t.permute(2, 0, 1).contiguous()
