"""Course-wide settings: fast mode, where data and results live, seeding.

Fast mode (``MMCOURSE_FAST=1``, set by CI) shrinks data and epochs so that every
chapter runs in a couple of minutes on two CPU cores. Chapters choose their sizes
with :func:`pick`, so that the same code runs in both modes.
"""

from __future__ import annotations

import os
import random
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


def results_dir() -> Path:
    """Where chapters record their numbers: ``$MMCOURSE_RESULTS``, else the repo's ``results/``."""
    env = os.environ.get("MMCOURSE_RESULTS")
    if env:
        return Path(env).expanduser()
    root = repo_root()
    return root / "results" if root else Path.cwd() / "results"


def seed_everything(seed: int = 0) -> int:
    """Seed Python, NumPy and torch (all devices). Returns the seed."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return seed
