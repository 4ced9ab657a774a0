"""Shared by the deployment tests: a small exported service model (random weights), inputs, BatchNorm warm-up."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import numpy as np
import torch

from mmcourse.audio import Features, to_wav_bytes
from mmcourse.data.avdigits import LOGMEL


def trained_bn(model: torch.nn.Module, batch: int = 16, passes: int = 3) -> torch.nn.Module:
    """Give an image model's BatchNorm non-trivial running statistics (``passes`` batches of noise), then eval mode."""
    model.train()
    with torch.no_grad():
        for _ in range(passes):
            model(torch.randn(batch, 1, 28, 28))
    return model.eval()


@functools.cache
def service_model() -> Path:
    """An ``AVPipeline`` ONNX file with metadata (random concat model), exported once per process."""
    from mmcourse.deploy.pipeline import AVPipeline, export_service, service_meta
    from mmcourse.fusion.zoo import build

    torch.manual_seed(0)
    pipe = AVPipeline(build("concat"), Features(LOGMEL), {"image": (0.13, 0.3), "audio": (-30.0, 20.0)})
    path = Path(tempfile.mkdtemp(prefix="mmcourse-deploy-")) / "service.onnx"
    return export_service(pipe, path, service_meta("test-model", LOGMEL))


def png(size: tuple[int, int] = (28, 28), seed: int = 0, mode: str = "L") -> bytes:
    """A random ``size = (width, height)`` PNG, grey (``"L"``) or colour (``"RGB"``)."""
    from mmcourse.deploy.serve import encode_png

    rng = np.random.default_rng(seed)
    shape = (size[1], size[0]) + ((3,) if mode == "RGB" else ())
    return encode_png(rng.integers(0, 256, shape, dtype=np.uint8))


def wav(seconds: float = 0.8, sample_rate: int = 8000, seed: int = 0) -> bytes:
    g = torch.Generator().manual_seed(seed)
    return to_wav_bytes(0.1 * torch.randn(int(seconds * sample_rate), generator=g), sample_rate)


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


def loopback_only(page, prefix: str = "http://127.0.0.1") -> list[str]:
    """Let a Playwright ``page`` load only URLs under ``prefix`` (and ``data:`` / ``blob:``); every other
    request is aborted and its URL collected in the returned list (which a test asserts empty)."""
    outside: list[str] = []

    def route(r):
        if r.request.url.startswith((prefix, "data:", "blob:")):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    return outside
