"""MNIST (the course's 10,000-image pool) and Fashion-MNIST.

Only MNIST's 10,000-image ``t10k`` set is used, online and offline alike: the course
splits it into a fixed, stratified 8,000 / 1,000 / 1,000 train / val / test pool.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from mmcourse.data.base import TensorData
from mmcourse.data.registry import read_verified

DIGITS = [str(d) for d in range(10)]
FASHION_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip
POOL_SPLIT = {"train": 8000, "val": 1000, "test": 1000}
SPLIT_SEED = 0  # the pool's split is part of the course: never change it


def _idx_images(data: bytes) -> np.ndarray:
    """Parse an IDX image file: ``[N, 28, 28]`` uint8."""
    n, rows, cols = np.frombuffer(data, ">i4", count=3, offset=4)
    return np.frombuffer(data, np.uint8, offset=16).reshape(n, rows, cols)


def _idx_labels(data: bytes) -> np.ndarray:
    return np.frombuffer(data, np.uint8, offset=8)


def _to_tensors(images: np.ndarray, labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)  # [N, 1, 28, 28] in [0, 1]
    return x, torch.from_numpy(labels.astype(np.int64))


@functools.cache
def pool_indices() -> dict[str, np.ndarray]:
    """Indices into the 10,000 ``t10k`` images of each split (stratified, fixed seed)."""
    _, labels = _mnist_arrays()
    idx = np.arange(len(labels))
    train, rest = train_test_split(
        idx, train_size=POOL_SPLIT["train"], stratify=labels, random_state=SPLIT_SEED
    )
    val, test = train_test_split(
        rest, train_size=POOL_SPLIT["val"], stratify=labels[rest], random_state=SPLIT_SEED
    )
    return {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test), "all": idx}


@functools.cache
def _mnist_arrays() -> tuple[np.ndarray, np.ndarray]:
    images, labels = read_verified("mnist")
    return _idx_images(images), _idx_labels(labels)


def mnist_pool(split: str = "train", transform=None) -> TensorData:
    """The MNIST pool: ``split`` in ``train`` (8,000), ``val`` (1,000), ``test`` (1,000), ``all``.

    Items: image ``[1, 28, 28]`` float32 in [0, 1], label int64 in 0..9.
    """
    if split not in (*POOL_SPLIT, "all"):
        raise ValueError(f"split must be one of train/val/test/all, got {split!r}")
    images, labels = _mnist_arrays()
    i = pool_indices()[split]
    return TensorData(*_to_tensors(images[i], labels[i]), DIGITS, transform)


@functools.cache
def _fashion_arrays() -> tuple[np.ndarray, ...]:
    tr_x, tr_y, te_x, te_y = read_verified("fashion-mnist")
    return _idx_images(tr_x), _idx_labels(tr_y), _idx_images(te_x), _idx_labels(te_y)


def fashion_mnist(split: str = "train", transform=None) -> TensorData:
    """Fashion-MNIST: ``train`` (60,000) or ``test`` (10,000).

    Items: image ``[1, 28, 28]`` float32 in [0, 1], label int64 in 0..9 (:data:`FASHION_CLASSES`).
    """
    tr_x, tr_y, te_x, te_y = _fashion_arrays()
    if split == "train":
        return TensorData(*_to_tensors(tr_x, tr_y), FASHION_CLASSES, transform)
    if split == "test":
        return TensorData(*_to_tensors(te_x, te_y), FASHION_CLASSES, transform)
    raise ValueError(f"split must be 'train' or 'test', got {split!r}")
