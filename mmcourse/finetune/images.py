"""ImageNet MobileNetV2 -> Fashion-MNIST: the five strategies of chapter 08 as one model.

=====================  ============================================================================
``mobilenet(...)``     torchvision's MobileNetV2, ImageNet weights (offline, ``$TORCH_HOME``) or random
``FashionNet``         ``[B, 1 or 3, 28, 28]`` in [0, 1] -> logits ``[B, 10]``: grey made 3-channel, the
                       weights' own preprocessing (``MobileNet_V2_Weights.transforms`` at ``size``
                       px), ``features`` (19 blocks), global average pool, dropout, a new linear head
``strategy(...)``      sets what trains: ``scratch``, ``probe``, ``partial`` (last k blocks), ``full``
                       (backbone at a smaller learning rate), ``lora`` (peft adapters on the 1x1 convs)
``Prefix / Suffix``    the frozen first blocks and the trainable rest, so that the frozen part's output
                       is computed once and cached (probe: k = 0 trainable blocks; partial: k)
``Batches``            shuffled mini-batches of 28 px images, optionally augmented (flip + shift)
=====================  ============================================================================
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from mmcourse.finetune.freeze import freeze, param_groups, unfreeze_last
from mmcourse.finetune.lora import add_lora

STRATEGIES = ("scratch", "probe", "partial", "full", "lora")
INPUT_SIZE = 28  # Fashion-MNIST's images: the model checks its input against this


@functools.cache
def _weights():
    from torchvision.models import MobileNet_V2_Weights

    return MobileNet_V2_Weights.IMAGENET1K_V1


def preprocessing(size: int) -> nn.Module:
    """The weights' own transform (``ImageClassification``: resize, centre crop, ImageNet
    normalisation) at ``size`` px instead of 224: ``[B, 3, H, W]`` in [0, 1] -> ``[B, 3, size, size]``."""
    return _weights().transforms(crop_size=size, resize_size=size)


def mobilenet(pretrained: bool = True) -> nn.Module:
    """torchvision's ``mobilenet_v2``: ImageNet weights (loaded as :func:`mmcourse.pretrained.image_encoder`
    does: offline from ``$TORCH_HOME``, a clear error if missing) or a random initialisation."""
    from torchvision.models import mobilenet_v2

    net = mobilenet_v2()  # [B, 3, H, W] -> [B, 1000]
    if pretrained:
        net.load_state_dict(_imagenet_state())
    return net


@functools.cache
def _imagenet_state() -> dict[str, torch.Tensor]:
    from mmcourse.pretrained import image_encoder

    return image_encoder().model.state_dict()  # read (and hash-checked) once per process


def check_images(x: torch.Tensor, name: str = "x", size: int = INPUT_SIZE) -> None:
    """Raise a ``ValueError`` naming ``name`` and the fix unless ``x`` is ``[B, 1 or 3, size, size]`` float."""
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} must be a batch of images [B, C, {size}, {size}], got {shape}; "
                         f"a single image [C, H, W] needs {name}.unsqueeze(0)")
    if x.shape[1] not in (1, 3):
        fix = f"drop the alpha channel with {name}[:, :3]" if x.shape[1] == 4 else \
            f"use grey [B, 1, H, W] or RGB [B, 3, H, W] images, e.g. {name}.mean(1, keepdim=True)"
        raise ValueError(f"{name} has {x.shape[1]} channels (shape {tuple(x.shape)}); expected 1 (grey) or 3 "
                         f"(RGB): {fix}")
    if tuple(x.shape[-2:]) != (size, size):
        raise ValueError(f"{name} is {x.shape[-2]}x{x.shape[-1]} px (shape {tuple(x.shape)}), but this model "
                         f"was built for {size}x{size} inputs: resize with torch.nn.functional.interpolate("
                         f"{name}, size=({size}, {size}), mode='bilinear', antialias=True), or build the model "
                         f"with input_size={x.shape[-1]}")
    if not x.is_floating_point():
        raise ValueError(f"{name} has dtype {x.dtype}; expected floats in [0, 1]: use {name}.float() / 255")


class FashionNet(nn.Module):
    """MobileNetV2 for 28 px grey images: ``[B, 1 or 3, 28, 28]`` in [0, 1] -> logits ``[B, classes]``.

    ``features`` are torchvision's 19 blocks (a stem conv, 17 inverted residuals, a 1x1 conv to 1280);
    ``head`` is new (dropout 0.2, as torchvision's, then ``Linear(1280, classes)``).
    """

    def __init__(self, net: nn.Module, size: int = 64, classes: int = 10, input_size: int = INPUT_SIZE):
        super().__init__()
        self.size, self.input_size = size, input_size
        self.prep = preprocessing(size)
        self.features = net.features.to(memory_format=torch.channels_last)  # 19 blocks; NHWC: 1.7 x faster on CPU
        self.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, classes))

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        check_images(x, "x", self.input_size)
        x = self.prep(x.expand(-1, 3, -1, -1))  # [B, 3, size, size], ImageNet-normalised
        return x.contiguous(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(self.prepare(x))  # [B, 1280, size/32, size/32]
        return self.head(h.mean((2, 3)))  # [B, classes]


def build(pretrained: bool = True, size: int = 64, seed: int = 0) -> FashionNet:
    from mmcourse.config import seed_everything

    seed_everything(seed)  # the new head's (and, from scratch, every layer's) initialisation
    return FashionNet(mobilenet(pretrained), size)


def pointwise_convs(model: nn.Module) -> list[str]:
    """Names of the 1x1, ungrouped convolutions of ``model.features`` (LoRA's targets: 35 layers;
    peft's LoRA has no depthwise-conv form, and the 3x3 depthwise convs hold 2 % of the weights)."""
    return [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d) and n.startswith("features.")
            and m.kernel_size == (1, 1) and m.groups == 1]


def strategy(model: FashionNet, name: str, lr: float, k: int = 4, backbone_factor: float = 0.1,
             r: int = 8) -> tuple[nn.Module, list[dict]]:
    """Set what trains; returns ``(model to train, optimiser parameter groups)``.

    * ``scratch`` / ``full``: everything (``full``: the backbone at ``lr * backbone_factor``);
    * ``probe``: the head only (the backbone frozen, BatchNorm statistics too);
    * ``partial``: the last ``k`` of the 19 blocks and the head (the backbone's part at
      ``lr * backbone_factor``);
    * ``lora``: rank-``r`` adapters on the pointwise convs and the head; the base weights frozen.
    """
    if name not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {name!r}")
    if name == "scratch":
        return model, [{"params": list(model.parameters()), "lr": lr}]
    if name == "full":
        return model, param_groups(model.features, model.head, lr, backbone_factor)
    if name == "lora":
        peft_model = add_lora(model, pointwise_convs(model), r=r, alpha=2 * r, train=["head"])
        return peft_model, [{"params": [p for p in peft_model.parameters() if p.requires_grad], "lr": lr}]
    freeze(model.features)
    unfreeze_last(list(model.features), k if name == "partial" else 0)
    return model, param_groups(model.features, model.head, lr, backbone_factor)


class Prefix(nn.Module):
    """The frozen first ``19 - k`` blocks, in eval mode: ``[B, 1|3, 28, 28] -> [B, C_k, h, w]``."""

    def __init__(self, model: FashionNet, k: int):
        super().__init__()
        self.model, self.cut = model, len(model.features) - k

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.eval()
        return self.model.features[: self.cut](self.model.prepare(x))


class Suffix(nn.Module):
    """The trainable rest: the last ``k`` blocks and the head, ``[B, C_k, h, w] -> [B, classes]``."""

    def __init__(self, model: FashionNet, k: int):
        super().__init__()
        self.blocks = model.features[len(model.features) - k:]  # shared with model: it trains in place
        self.head = model.head

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(h).mean((2, 3)))  # [B, classes]


def encode(prefix: Prefix, x: torch.Tensor, batch_size: int = 250) -> torch.Tensor:
    """``prefix(x)`` in batches: ``[N, 1, 28, 28] -> [N, C_k, h, w]`` (what gets cached)."""
    return torch.cat([prefix(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])


def augment(x: torch.Tensor, generator: torch.Generator, shift: int = 2) -> torch.Tensor:
    """Random horizontal flip and a shift of up to ``shift`` px (zero padding): ``[B, C, H, W]``."""
    flip = torch.rand(len(x), generator=generator) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    h, w = x.shape[-2:]
    padded = F.pad(x, (shift,) * 4)
    i, j = torch.randint(0, 2 * shift + 1, (2,), generator=generator).tolist()  # one shift per batch
    return padded[..., i : i + h, j : j + w]


class Batches:
    """Shuffled ``(x, y)`` mini-batches of in-memory tensors, optionally augmented; ``len`` = batches
    per epoch (the last, partial batch is kept). Seeded with ``seed + MMCOURSE_SEED``."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int = 64, shuffle: bool = True,
                 augment: bool = False, seed: int = 0):
        from mmcourse.config import offset_seed

        if len(x) != len(y):
            raise ValueError(f"x has {len(x)} items but y has {len(y)}")
        self.x, self.y, self.batch_size, self.shuffle, self.augment = x, y, batch_size, shuffle, augment
        self.generator = torch.Generator().manual_seed(offset_seed(seed))

    def __len__(self) -> int:
        return -(-len(self.y) // self.batch_size)

    def __iter__(self):
        order = torch.randperm(len(self.y), generator=self.generator) if self.shuffle else torch.arange(len(self.y))
        for i in range(0, len(order), self.batch_size):
            idx = order[i : i + self.batch_size]
            xb = self.x[idx]
            yield (augment(xb, self.generator) if self.augment else xb), self.y[idx]
