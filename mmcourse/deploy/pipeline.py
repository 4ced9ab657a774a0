"""The served graph: raw pixels and a power spectrogram in, logits out, preprocessing included.

    image [B, 1, 28, 28] in [0, 1] --standardise--> image encoder -----------------+
                                                                                   +--> concat -> head -> [B, K]
    |STFT(wave)|^2 [B, 129, 101] --Mel -> dB--> standardise --> audio encoder ------+

The service computes ``|STFT|^2`` with NumPy's FFT (``serve.power_spectrogram``); everything after
it (Mel filters, dB, standardisation, the network) is inside the exported file, with the very
buffers of :class:`mmcourse.audio.Features`. So the service (and an edge device) needs only ONNX
Runtime and NumPy, and cannot compute features differently from training.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from mmcourse.audio import Features
from mmcourse.deploy.export import ConcatServing
from mmcourse.fusion import MultimodalModel

META_KEY = "mmcourse"  # key of the JSON metadata stored in the ONNX file


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


def write_metadata(path: str | Path, meta: dict) -> None:
    """Store ``meta`` (JSON) in the ONNX file's ``metadata_props`` under :data:`META_KEY`."""
    import onnx

    m = onnx.load(str(path))
    del m.metadata_props[:]
    m.metadata_props.add(key=META_KEY, value=json.dumps(meta))
    onnx.save(m, str(path))


def read_metadata(sess) -> dict:
    """The :data:`META_KEY` metadata of an ONNX Runtime session's model (``{}`` if none)."""
    raw = sess.get_modelmeta().custom_metadata_map.get(META_KEY)
    return json.loads(raw) if raw else {}


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
