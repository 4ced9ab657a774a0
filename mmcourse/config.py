"""Course-wide settings: fast mode, where data and results live, seeding.

Fast mode (``MMCOURSE_FAST=1``, set by CI) shrinks data and epochs so that every
chapter runs in a couple of minutes on two CPU cores. Chapters choose their sizes
with :func:`pick`, so that the same code runs in both modes.

``MMCOURSE_SEED=k`` (an integer, default 0) adds ``k`` to every seed of the training randomness
(:func:`seed_everything`, ``fit``, ``loaders``, ...), so that a chapter reruns with other seeds.
Datasets and their splits keep their own fixed seeds: the test sets stay the same.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

T = TypeVar("T")

_TRUE = {"1", "true", "yes", "on"}


def is_fast() -> bool:
    """True when ``MMCOURSE_FAST`` is set to 1/true/yes/on (read each call)."""
    return os.environ.get("MMCOURSE_FAST", "").strip().lower() in _TRUE


FAST: bool = is_fast()


def mode() -> str:
    """``"fast"`` or ``"full"``."""
    return "fast" if is_fast() else "full"


def pick(fast: T, full: T) -> T:
    """Return ``fast`` in fast mode and ``full`` otherwise.

    >>> epochs = pick(fast=2, full=15)
    """
    return fast if is_fast() else full


def repo_root() -> Path | None:
    """The course repository (the folder holding ``pyproject.toml``), if we run from a checkout."""
    root = Path(__file__).resolve().parents[1]
    return root if (root / "pyproject.toml").is_file() and (root / "notebooks").is_dir() else None


def data_dir() -> Path:
    """Where datasets live: ``$MMCOURSE_DATA``, else the repo's ``data/``, else ``~/.cache/mmcourse``."""
    env = os.environ.get("MMCOURSE_DATA")
    if env:
        return Path(env).expanduser()
    root = repo_root()
    return root / "data" if root else Path.home() / ".cache" / "mmcourse" / "data"


def cache_dir() -> Path:
    """Where computed features are cached: ``$MMCOURSE_CACHE``, else the repo's ``.cache/``."""
    env = os.environ.get("MMCOURSE_CACHE")
    if env:
        return Path(env).expanduser()
    root = repo_root()
    return root / ".cache" if root else Path.home() / ".cache" / "mmcourse" / "features"


def load_or_compute(path: Path, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
    """The tensor cached at ``path`` (a file under :func:`cache_dir`), or ``compute()`` saved there.

    A damaged file is deleted and recomputed, never trusted. The new file is written under a
    temporary name and renamed, so that a crash or a parallel run never leaves half a file.
    """
    if path.is_file():
        try:
            return torch.load(path, weights_only=True)
        except Exception:  # a damaged cache file is recomputed, never trusted
            path.unlink(missing_ok=True)
    value = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(value, tmp)
    os.replace(tmp, path)
    return value


def results_dir() -> Path:
    """Where chapters record their numbers: ``$MMCOURSE_RESULTS``, else the repo's ``results/``."""
    env = os.environ.get("MMCOURSE_RESULTS")
    if env:
        return Path(env).expanduser()
    root = repo_root()
    return root / "results" if root else Path.cwd() / "results"


def seed_offset() -> int:
    """``MMCOURSE_SEED`` as an integer (0 when unset; read each call)."""
    raw = os.environ.get("MMCOURSE_SEED", "").strip()
    try:
        return int(raw or 0)
    except ValueError:
        raise ValueError(f"MMCOURSE_SEED must be an integer (an offset added to every seed), got {raw!r}") from None


def offset_seed(seed: int) -> int:
    """``seed + MMCOURSE_SEED``: what every training seed of the course goes through, once."""
    return seed + seed_offset()


def seed_everything(seed: int = 0) -> int:
    """Seed Python, NumPy and torch (all devices) with ``seed + MMCOURSE_SEED``. Returns the seed used."""
    seed = offset_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return seed
