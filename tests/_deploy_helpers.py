"""Shared by the deployment tests: a small exported service model (random weights) and inputs."""

from __future__ import annotations

import functools
import io
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from mmcourse.audio import Features, to_wav_bytes
from mmcourse.data.avdigits import LOGMEL

META = {"name": "test-model", "classes": [str(d) for d in range(10)], "image_size": 28, "sample_rate": 8000,
        "samples": 8000, "n_fft": LOGMEL.n_fft, "hop_length": LOGMEL.hop_length}


@functools.cache
def service_model() -> Path:
    """An ``AVPipeline`` ONNX file with metadata (random concat model), exported once per process."""
    from mmcourse.deploy.export import export_onnx
    from mmcourse.deploy.pipeline import AVPipeline, write_metadata
    from mmcourse.fusion.zoo import build

    torch.manual_seed(0)
    pipe = AVPipeline(build("concat"), Features(LOGMEL), {"image": (0.13, 0.3), "audio": (-30.0, 20.0)}).eval()
    path = Path(tempfile.mkdtemp(prefix="mmcourse-deploy-")) / "service.onnx"
    export_onnx(pipe, (torch.rand(4, 1, 28, 28), torch.rand(4, 129, 101)), path, ["image", "power"])
    write_metadata(path, META)
    return path


def png(size: tuple[int, int] = (28, 28), seed: int = 0, mode: str = "L") -> bytes:
    rng = np.random.default_rng(seed)
    shape = (size[1], size[0]) + ((3,) if mode == "RGB" else ())
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(buf, "PNG")
    return buf.getvalue()


def wav(seconds: float = 0.8, sample_rate: int = 8000, seed: int = 0) -> bytes:
    g = torch.Generator().manual_seed(seed)
    return to_wav_bytes(0.1 * torch.randn(int(seconds * sample_rate), generator=g), sample_rate)
