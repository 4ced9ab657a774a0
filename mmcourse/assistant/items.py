"""The image adapter: which catalogue item is in a customer's picture, or "I don't recognise this".

The catalogue is Fashion-MNIST's ten categories. The model is the course's ``LeNet``
(``mmcourse.models.cnn``) trained on part of Fashion-MNIST's training set (:func:`train_items`,
half a minute to eight minutes on one CPU thread, cached under ``$MMCOURSE_CACHE/assistant/``); chapter 08's fine-tuned
MobileNetV2 can replace it: :class:`ItemRecognizer` takes any module ``[B, 1, 28, 28] -> [B, 10]``.

**Reject option.** The maximum softmax probability (Hendrycks & Gimpel 2017) of a plainly trained LeNet
rejects only about 10 % of MNIST digits at 95 % acceptance (a digit "1" is a confident "Trouser"); the
**Mahalanobis distance** of its penultimate features to the nearest class mean, with one covariance shared
by the classes (Lee et al. 2018, fitted on the training images), rejects 99.8 % of them but only 20 % of
emoji. So the model is trained with **outlier exposure** (Hendrycks, Mazeika & Dietterich 2019): beside
each batch of clothes, a batch of pictures that are *not* clothes (:func:`outliers`: MNIST digits and half
of the Noto emoji), whose loss is the cross-entropy to the uniform distribution (weight ``exposure``):
the network learns to be unsure outside its catalogue. Rejection is measured on *other* pictures
(:func:`ood_images`: the MNIST pool's test digits and the other half of the emoji). A picture is accepted
only when both rules agree: distance at most ``max_distance`` and max softmax at least ``min_confidence``.
Both thresholds are the same quantile ``q`` of their score on a validation set of catalogue images (the
last 5,000 of the training set, never trained on), ``q`` the smallest that accepts ``keep`` (95 %) of
those pictures with both rules together.

Pictures arrive in any size and colour: :func:`prepare` makes them what the model saw (grey,
28 x 28, a light item on a dark background: a picture with a light border is inverted).
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from mmcourse.config import cache_dir, offset_seed, pick, seed_everything
from mmcourse.data.base import TensorData
from mmcourse.data.images import FASHION_CLASSES, fashion_mnist, mnist_pool
from mmcourse.models.cnn import LeNet
from mmcourse.train import load_checkpoint, save_checkpoint

N_VAL = 5000  # the last N_VAL training images: validation (threshold), never trained on


@dataclass(frozen=True)
class Item:
    """``label`` is None when the picture is rejected; ``confidence``: the max softmax probability;
    ``distance``: the Mahalanobis distance to the nearest class."""

    label: str | None
    index: int | None
    confidence: float
    distance: float
    best_guess: str

    @property
    def recognised(self) -> bool:
        return self.label is not None


def prepare(img: Image.Image, size: int = 28) -> torch.Tensor:
    """Any picture -> ``[1, size, size]`` float32 in [0, 1], grey, light item on dark.

    Transparent pixels become the background; the picture is fitted into the square (aspect kept);
    when its border is lighter than mid-grey (a photo on a white table), it is inverted."""
    if img.mode in ("RGBA", "LA", "P"):
        rgba = img.convert("RGBA")
        back = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(back, rgba)
    grey = np.asarray(img.convert("L"), dtype=np.float32) / 255.0  # [H, W]
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    if border.mean() > 0.5:
        grey = 1.0 - grey
    h, w = grey.shape
    side = max(h, w)
    square = np.zeros((side, side), dtype=np.float32)
    square[(side - h) // 2 : (side - h) // 2 + h, (side - w) // 2 : (side - w) // 2 + w] = grey
    if side != size:
        square = np.asarray(Image.fromarray(square).resize((size, size), Image.Resampling.BILINEAR))
    return torch.from_numpy(np.clip(square, 0.0, 1.0)).float()[None]  # [1, size, size]


class Mahalanobis:
    """Class means ``[K, D]`` and a shared precision matrix ``[D, D]`` of features ``[N, D]``."""

    def __init__(self, z: torch.Tensor, y: torch.Tensor, classes: int, ridge: float = 1e-3):
        self.means = torch.stack([z[y == k].mean(0) for k in range(classes)])  # [K, D]
        centred = z - self.means[y]  # [N, D]
        cov = centred.T @ centred / len(z)  # [D, D]
        self.precision = torch.linalg.inv(cov + ridge * cov.diagonal().mean() * torch.eye(z.shape[1]))

    def distance(self, z: torch.Tensor) -> torch.Tensor:
        """Distance to the nearest class mean ``[N]``."""
        d = z[:, None, :] - self.means[None]  # [N, K, D]
        return torch.einsum("nkd,de,nke->nk", d, self.precision, d).min(-1).values.clamp_min(0).sqrt()


def features(model: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Penultimate features ``[B, hidden]`` of a course CNN (``features`` then ``head`` minus its last layer)."""
    return model.head[:-1](model.features(images))


class ItemRecognizer:
    """``recognize(image [1, 28, 28]) -> Item``: accepted when the Mahalanobis distance of its features is
    at most ``max_distance`` and its max softmax at least ``min_confidence`` (see the module docstring)."""

    name = "items"

    def __init__(self, model: torch.nn.Module, density: Mahalanobis, max_distance: float, min_confidence: float,
                 classes: list[str] | None = None):
        if max_distance <= 0 or not 0.0 <= min_confidence < 1.0:
            raise ValueError(f"max_distance > 0 and min_confidence in [0, 1) are needed, got {max_distance}, "
                             f"{min_confidence}")
        self.model, self.density = model.eval(), density
        self.max_distance, self.min_confidence = max_distance, min_confidence
        self.classes = list(classes or FASHION_CLASSES)

    @torch.no_grad()
    def scores(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(max softmax [B], class [B], distance [B])`` for ``images [B, 1, 28, 28]`` in [0, 1]."""
        if images.ndim != 4 or images.shape[1:] != (1, 28, 28):
            raise ValueError(f"images must be [B, 1, 28, 28], got shape {tuple(images.shape)}; use prepare()")
        z = features(self.model, images.float())  # [B, D]
        conf, k = self.model.head[-1](z).softmax(-1).max(-1)  # [B], [B]
        return conf, k, self.density.distance(z)

    def accepted(self, conf: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
        return (dist <= self.max_distance) & (conf >= self.min_confidence)  # [B] bool

    def recognize(self, image: torch.Tensor) -> Item:
        conf, k, dist = self.scores(image[None])
        i, ok = int(k[0]), bool(self.accepted(conf, dist)[0])
        return Item(self.classes[i] if ok else None, i if ok else None, float(conf[0]), float(dist[0]), self.classes[i])

    def evaluate(self, n_ood: int = 1000) -> dict[str, float]:
        """Accuracy on Fashion-MNIST's test set (all pictures, and the accepted ones), its acceptance
        rate, and the share of out-of-distribution pictures rejected (MNIST digits, emoji)."""
        te = fashion_mnist("test")
        conf, pred, dist = self.scores(te.x)
        keep = self.accepted(conf, dist)
        out = {"item_accuracy": float((pred == te.y).float().mean()),
               "item_accepted": float(keep.float().mean()),
               "item_accuracy_accepted": float((pred == te.y)[keep].float().mean())}
        for name, x in ood_images(n_ood).items():
            c, _, d = self.scores(x)
            out[f"ood_rejected_{name}"] = float((~self.accepted(c, d)).float().mean())
        return out


def _emoji_half(held_out: bool) -> list[Image.Image]:
    """One half of the Noto emoji, split by a CRC-32 of the code point (fixed, whatever the file order);
    empty when the Noto files are not available (``MMCOURSE_DATA``'s ``noto-emoji``, or a download)."""
    try:
        from mmcourse.data.posts import emoji_pictures

        pics = emoji_pictures()
    except (OSError, ValueError, RuntimeError):  # not downloaded and no network
        return []
    return [p for code, p in pics.items() if zlib.crc32(code.encode()) % 2 == int(held_out)]


def outliers() -> dict[str, torch.Tensor]:
    """Pictures that are not clothing, for outlier exposure while training, by kind ``{kind: [N, 1, 28, 28]}``:
    ``mnist`` (the MNIST pool's 8,000 training digits) and ``emoji`` (one half of the Noto emoji; never
    those of :func:`ood_images`), when available."""
    emoji = [prepare(p) for p in _emoji_half(held_out=False)]
    return {"mnist": mnist_pool("train").x, **({"emoji": torch.stack(emoji)} if emoji else {})}


def ood_images(n: int = 1000) -> dict[str, torch.Tensor]:
    """Pictures that are not in the catalogue and were never trained on, each ``[N, 1, 28, 28]``: ``mnist``
    (the MNIST pool's test digits) and ``emoji`` (the held-out half of the Noto emoji, through
    :func:`prepare`, when the Noto files are available)."""
    out = {"mnist": mnist_pool("test").x[:n]}
    pics = _emoji_half(held_out=True)[:n]
    if pics:
        out["emoji"] = torch.stack([prepare(p) for p in pics])
    return out


def _train(model: torch.nn.Module, pool: TensorData, extra: dict[str, torch.Tensor], epochs: int, exposure: float,
           seed: int, batch_size: int = 128, extra_batch: int = 64) -> None:
    """Adam over ``pool`` with a one-cycle schedule (peak lr 3e-3); each step adds ``extra_batch`` outliers,
    as many of each kind of ``extra``, whose loss is the cross-entropy to the uniform distribution, weighted
    by ``exposure`` (0: plain training)."""
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)  # OneCycleLR below sets the rate of every step
    steps = epochs * -(-len(pool) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps, pct_start=0.15)
    kinds = list(extra.values()) if exposure > 0 else []
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(pool), generator=g)
        for i in range(0, len(pool), batch_size):
            idx = order[i : i + batch_size]
            x = torch.cat([pool.x[idx], *(k[torch.randint(len(k), (extra_batch // len(kinds),), generator=g)]
                                          for k in kinds)])  # [b + extra, 1, 28, 28]
            out = model(x)  # [b + extra, 10]
            loss = F.cross_entropy(out[: len(idx)], pool.y[idx])
            if len(out) > len(idx):
                loss = loss - exposure * out[len(idx):].log_softmax(-1).mean(-1).mean()  # CE to uniform
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    model.eval()


def training_size() -> dict[str, int]:
    """The app's item model: 12,000 images for 3 epochs in fast mode (CI: 31 s on one thread);
    all 55,000 for 10 epochs otherwise (458 s on one thread, measured 2026-12-03; once: the model is cached)."""
    return pick(fast={"n_train": 12_000, "epochs": 3}, full={"n_train": 55_000, "epochs": 10})


def train_items(n_train: int = 12_000, epochs: int = 3, keep: float = 0.95, seed: int = 0,
                cache: bool = True, exposure: float = 0.5) -> ItemRecognizer:
    """A LeNet trained on ``n_train`` Fashion-MNIST training images (seeded subset of the first 55,000),
    with outlier exposure of weight ``exposure`` (:func:`outliers`; 0 turns it off), its two thresholds
    set on the last 5,000 to accept ``keep`` of them; cached by its settings."""
    if not 0.5 <= keep < 1.0:
        raise ValueError(f"keep is the share of catalogue pictures to accept, in [0.5, 1), got {keep}")
    if exposure < 0:
        raise ValueError(f"exposure is the weight of the outlier loss, >= 0, got {exposure}")
    path = cache_dir() / "assistant" / f"items-lenet-1cycle-{n_train}-{epochs}-{offset_seed(seed)}-oe{exposure:g}.pt"  # + MMCOURSE_SEED
    seed_everything(seed)
    model = LeNet(widths=(16, 32), hidden=128)
    full = fashion_mnist("train")
    val_x = full.x[-N_VAL:]  # [5000, 1, 28, 28]
    pool = TensorData(full.x[:-N_VAL], full.y[:-N_VAL], full.classes).subset(n_train, seed=seed)
    if cache and path.is_file():
        load_checkpoint(path, model)
    else:
        t0 = time.perf_counter()
        _train(model, pool, outliers() if exposure > 0 else {}, epochs, exposure, seed)
        if cache:
            save_checkpoint({"model": model.state_dict(), "seconds": time.perf_counter() - t0}, path)
    model.eval()
    with torch.no_grad():
        z_train = torch.cat([features(model, pool.x[s : s + 2000]) for s in range(0, len(pool), 2000)])  # [n, D]
        density = Mahalanobis(z_train, pool.y, len(FASHION_CLASSES))
        z_val = features(model, val_x)  # [5000, D]
        conf_val = model.head[-1](z_val).softmax(-1).max(-1).values  # [5000]
        dist_val = density.distance(z_val)  # [5000]
    for q in np.arange(keep, 1.0, 0.001):  # the smallest quantile whose two rules together accept `keep`
        max_d, min_c = float(torch.quantile(dist_val, q)), float(torch.quantile(conf_val, 1.0 - q))
        if float(((dist_val <= max_d) & (conf_val >= min_c)).float().mean()) >= keep:
            break
    return ItemRecognizer(model, density, max_d, min_c)
