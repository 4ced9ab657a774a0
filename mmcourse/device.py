"""The compute device, chosen once per process, the CPU thread policy, and mixed precision.

The course never writes ``.cuda()``: models and tensors go ``.to(get_device())``.

Thread policy (:func:`configure_threads`, applied when ``mmcourse`` is imported): torch's
intra-op CPU threads are ``MMCOURSE_THREADS`` if set, else ``OMP_NUM_THREADS`` if set, else what
a chapter prefers (``configure_threads(preferred=1)`` for tiny models, where threads mostly wait
for each other), else torch's default (one per core). A chapter never calls
``torch.set_num_threads`` itself; :func:`describe` prints the count and where it came from.
"""

from __future__ import annotations

import contextlib
import functools
import os

import torch

_threads_source = "torch default"


def _env_threads(name: str) -> int | None:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{name} must be a whole number of threads >= 1, got {raw!r}")
    return int(raw)


def configure_threads(preferred: int | None = None) -> int:
    """Apply the thread policy (see the module docstring) and return torch's thread count.

    ``preferred``: the chapter's choice when neither ``MMCOURSE_THREADS`` nor ``OMP_NUM_THREADS``
    is set (they always win, so that anyone can rerun a chapter with another count)."""
    global _threads_source
    for name in ("MMCOURSE_THREADS", "OMP_NUM_THREADS"):
        n = _env_threads(name)
        if n is not None:
            source = name
            break
    else:
        n, source = preferred, "chapter's choice"
    if n is not None:
        if n < 1:
            raise ValueError(f"preferred must be >= 1 thread, got {n}")
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)
        _threads_source = source
    return torch.get_num_threads()


@functools.cache
def get_device() -> torch.device:
    """cuda if available, else mps, else cpu. ``MMCOURSE_DEVICE`` overrides (e.g. ``cpu``)."""
    forced = os.environ.get("MMCOURSE_DEVICE")
    if forced:
        return torch.device(forced)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def autocast(device: torch.device, enabled: bool = True) -> contextlib.AbstractContextManager:
    """Mixed precision on CUDA (float16 autocast); a no-op elsewhere."""
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


def to_device(batch, device: torch.device):
    """Move a tensor, or a (nested) dict / list / tuple of tensors, to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def describe() -> str:
    """One line about the device, the CPU threads (and who set them) and a non-zero ``MMCOURSE_SEED``,
    for a chapter's environment check, e.g. ``cpu (1 thread, OMP_NUM_THREADS)``."""
    from mmcourse.config import seed_offset

    d = get_device()
    name = f"cuda ({torch.cuda.get_device_name(d)}), " if d.type == "cuda" else f"{d.type} ("
    n = torch.get_num_threads()
    line = f"{name}{n} thread{'s' if n != 1 else ''}, {_threads_source})"
    return line + (f", MMCOURSE_SEED={seed_offset()}" if seed_offset() else "")
