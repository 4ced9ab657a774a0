"""The served graph: raw pixels and a power spectrogram in, logits out, preprocessing included.

    image [B, 1, 28, 28] in [0, 1] --standardise--> image encoder -----------------+
                                                                                   +--> concat -> head -> [B, K]
    |STFT(wave)|^2 [B, 129, 101] --Mel -> dB--> standardise --> audio encoder ------+

The service computes ``|STFT|^2`` with NumPy's FFT (``serve.power_spectrogram``); everything after
it (Mel filters, dB, standardisation, the network) is inside the exported file, with the very
buffers of :class:`mmcourse.audio.Features`. So the graph itself runs on ONNX Runtime with NumPy
beside it, and the service cannot compute features differently from training. (The service
process needs more: FastAPI, Pillow and soundfile for HTTP and decoding, and PyTorch, which
``import mmcourse`` loads.)

:func:`service_meta` is the metadata the service reads (classes, sizes, FFT parameters, derived
from the feature config); :func:`export_service` writes the ONNX file with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from mmcourse.audio import FeatureConfig, Features
from mmcourse.deploy.export import ConcatServing, export_onnx, write_metadata
from mmcourse.fusion import MultimodalModel


class MelDB(nn.Module):
    """Power spectrogram ``[B, F, frames]`` -> log-Mel dB ``[B, n_mels, frames]``, as ``Features(config)``.

    The power spectrogram itself (``|STFT|^2``) is computed by the caller, with NumPy's FFT
    (:func:`mmcourse.deploy.serve.power_spectrogram`): ONNX Runtime's STFT kernel is several
    times slower than an FFT, and the Mel filters, dB and everything after stay in the graph.
    """

    def __init__(self, features: Features):
        super().__init__()
        if features.config.kind != "logmel":
            raise ValueError(f"MelDB needs a logmel Features, got kind={features.config.kind!r}")
        self.features = features

    def forward(self, power: torch.Tensor) -> torch.Tensor:
        mel = (power.transpose(-1, -2) @ self.features.mel_fb).transpose(-1, -2)  # [B, n_mels, frames]
        return self.features.power_to_db(mel)


class AVPipeline(nn.Module):
    """``forward(image [B,1,28,28] in [0,1], power [B,F,frames]) -> logits [B, K]`` of a concat-fusion model.

    ``stats``: ``{"image": (mean, std), "audio": (mean, std)}`` of the training inputs (the
    standardisation the model was trained with).
    """

    def __init__(self, model: MultimodalModel, features: Features, stats: dict[str, tuple[float, float]]):
        super().__init__()
        self.model, self.meldb = ConcatServing(model), MelDB(features)
        if self.model.names != ("image", "audio"):
            raise ValueError(f"AVPipeline needs modalities ('image', 'audio'), got {self.model.names}")
        self.register_buffer("norm", torch.tensor([*stats["image"], *stats["audio"]], dtype=torch.float32))

    def forward(self, image: torch.Tensor, power: torch.Tensor) -> torch.Tensor:
        x_img = (image - self.norm[0]) / self.norm[1]  # [B, 1, 28, 28]
        x_aud = (self.meldb(power) - self.norm[2]) / self.norm[3]  # [B, 40, 101]
        return self.model(x_img, x_aud)  # [B, K]


def service_meta(name: str, config: FeatureConfig, seconds: float = 1.0, image_size: int = 28,
                 classes: Sequence[str] = tuple(str(d) for d in range(10))) -> dict:
    """The metadata the service needs (stored in the ONNX file): names and sizes, and the FFT of ``config``.

    ``seconds``: the clip length the model was trained on (AVDigits: 1 s); the service pads or
    crops every WAV to ``seconds * config.sample_rate`` samples.
    """
    return {"name": name, "classes": list(classes), "image_size": image_size, "sample_rate": config.sample_rate,
            "samples": round(seconds * config.sample_rate), "n_fft": config.n_fft, "hop_length": config.hop_length}


def export_service(pipeline: AVPipeline, path: str | Path, meta: dict) -> Path:
    """Export ``pipeline`` to ONNX at ``path`` (dynamic batch, inputs ``image``, ``power``) with ``meta`` inside."""
    size, frames = meta["image_size"], meta["samples"] // meta["hop_length"] + 1
    g = torch.Generator().manual_seed(0)  # the values do not matter, only the shapes (the global RNG is left alone)
    example = (torch.rand(4, 1, size, size, generator=g), torch.rand(4, meta["n_fft"] // 2 + 1, frames, generator=g))
    path = export_onnx(pipeline.eval(), example, path, ["image", "power"])
    write_metadata(path, meta)
    return path


def save_pipeline(pipeline: AVPipeline, method: str, meta: dict, path: str | Path) -> Path:
    """A checkpoint of ``pipeline`` that :func:`load_pipeline` rebuilds (tensors, str, numbers only)."""
    from mmcourse.train import save_checkpoint

    return save_checkpoint({"model": pipeline.state_dict(), "method": method, "meta": meta,
                            "stats": pipeline.norm.tolist()}, path)


def load_pipeline(path: str | Path) -> tuple[AVPipeline, dict]:
    """``(AVPipeline in eval mode, metadata)`` from a :func:`save_pipeline` checkpoint (``weights_only=True``)."""
    from mmcourse.data.avdigits import LOGMEL
    from mmcourse.fusion.zoo import build
    from mmcourse.train import load_checkpoint

    state = load_checkpoint(path)
    n = state["stats"]
    pipe = AVPipeline(build(state["method"]), Features(LOGMEL), {"image": (n[0], n[1]), "audio": (n[2], n[3])})
    pipe.load_state_dict(state["model"])
    return pipe.eval(), state["meta"]
