"""The compute device, chosen once per process, and mixed precision.

The course never writes ``.cuda()``: models and tensors go ``.to(get_device())``.
"""

from __future__ import annotations

import contextlib
import functools
import os

import torch


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
    """One line about the device, for a chapter's environment check."""
    d = get_device()
    if d.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(d)})"
    return f"{d.type} ({torch.get_num_threads()} threads)"
