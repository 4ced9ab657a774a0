"""AVDigits: a handwritten digit and a spoken digit of the same class (AV-MNIST, rebuilt).

MultiBench's AV-MNIST pairs MNIST images with spoken digits. AVDigits rebuilds the idea from
licensed sources: images from the course's MNIST pool (``mnist_pool``), recordings from FSDD.

Recipe (all seeded, all deterministic):

* **Splits.** Audio: FSDD's official test takes 0-4 are the test set (300); takes 5-9 are
  validation (300); takes 10-49 train (2,400). Images: the pool's own train / val / test
  split. Each recording is paired with one image of the same digit from the *same* split,
  drawn without replacement (``pair_seed``), so no image and no recording is in two splits,
  and no image is used twice.
* **Image degradation** (in this order): remove the leading principal components that hold
  ``image_pca_removed`` of the variance (PCA fitted on the pool's train images: the mean
  image and the fine detail stay, the coarse shape goes), add Gaussian noise of std
  ``image_noise`` (pixels in [0, 1]; a range ``(low, high)`` draws one std per image), zero a random ``image_occlusion`` x ``image_occlusion``
  square.
* **Audio degradation:** white noise at ``audio_snr_db`` dB SNR (signal power over the whole
  1 s clip; a range ``(low, high)`` draws one SNR per recording, with the noise amplitude
  uniform over the range), then log-Mel features (40 Mel bands, 10 ms hops: ``[40, 101]``) cached on disk.
* **Text** (optional third modality): the digit's English word with each letter replaced by a
  random letter with probability ``text_typo`` (``"seven"`` -> ``"sevqn"``), as letter ids.

>>> train = AVDigits("train", image_pca_removed=0.75, audio_snr_db=-6)
>>> stats = train.stats(); x = train.inputs(stats)   # {"image": [N,1,28,28], "audio": [N,40,101]}
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import numpy as np
import torch

from mmcourse.audio import FeatureConfig, add_noise, cached_features
from mmcourse.config import offset_seed
from mmcourse.data.fsdd import FSDD
from mmcourse.data.images import _mnist_arrays, pool_indices

SPLITS = ("train", "val", "test")
AUDIO_TAKES = {"train": range(10, 50), "val": range(5, 10), "test": range(0, 5)}
WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
TEXT_LEN = 5  # letters per word ("three", "seven" are the longest); shorter words are padded with 0
LOGMEL = FeatureConfig(kind="logmel", n_mels=40)
_SPLIT_OFFSET = {"train": 0, "val": 1, "test": 2}
# chapter 06's recipe: val / test at one degradation; train over a range of noise levels that
# reaches that degradation (the noisiest level seen), so that cleaner input is never out of range
RECIPE = dict(image_pca_removed=0.75, image_noise=0.2, audio_snr_db=-6.0)
TRAIN_RECIPE = dict(RECIPE, image_noise=(0.0, 0.2), audio_snr_db=(-6.0, 40.0))  # noise amplitude uniform


@functools.cache
def _fsdd_all() -> FSDD:
    return FSDD("all")


@functools.cache
def _pca_basis() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """PCA of the pool's train images: mean ``[784]``, components ``[784, 784]``, variance share ``[784]``."""
    images, _ = _mnist_arrays()
    x = torch.from_numpy(images[pool_indices()["train"]].reshape(-1, 784).astype(np.float32) / 255.0)
    mean = x.mean(0)
    var, vecs = torch.linalg.eigh((x - mean).T @ (x - mean) / len(x))  # ascending eigenvalues
    var, vecs = var.flip(0).clamp_min(0), vecs.flip(1)  # largest first
    return mean.float(), vecs.float(), (var / var.sum()).float()


def remove_pca_energy(images: torch.Tensor, share: float) -> torch.Tensor:
    """Remove the leading principal components holding ``share`` of the variance: ``[N,1,28,28]``.

    ``x' = x - P_k P_k^T (x - mean)`` where ``P_k`` are the first ``k`` components and ``k`` is the
    smallest count whose variance share reaches ``share``. ``share=0`` returns ``images``.
    """
    if not 0.0 <= share < 1.0:
        raise ValueError(f"share must be in [0, 1), got {share}")
    if images.ndim != 4 or tuple(images.shape[1:]) != (1, 28, 28):
        raise ValueError(f"expected images [N, 1, 28, 28], got {tuple(images.shape)}")
    if share == 0:
        return images
    mean, comps, var = _pca_basis()
    k = int(torch.searchsorted(var.cumsum(0), torch.tensor(share))) + 1
    p = comps[:, :k]  # [784, k]
    flat = images.reshape(len(images), 784)
    return (flat - (flat - mean) @ p @ p.T).reshape(images.shape)


def _levels(level: float | tuple[float, float], n: int, g: torch.Generator, name: str) -> float | torch.Tensor:
    """``level`` itself, or for a range ``(low, high)`` one level per example, uniform: ``[N, 1]``."""
    if isinstance(level, (int, float)):
        return float(level)
    if len(level) != 2 or not level[0] <= level[1]:
        raise ValueError(f"{name} must be a number or a range (low, high) with low <= high, got {level!r}")
    lo, hi = map(float, level)
    return lo + (hi - lo) * torch.rand(n, 1, generator=g)  # [N, 1]


def snr_levels(snr_db: float | tuple[float, float], n: int, g: torch.Generator) -> float | torch.Tensor:
    """``snr_db`` itself, or for a range ``(low, high)`` dB one SNR per recording ``[N, 1]``, drawn so that
    the noise *amplitude* (relative to the signal's) is uniform between ``10^(-high/20)`` and ``10^(-low/20)``,
    as the image noise's std is uniform: noisy levels are not rare, as they would be uniform in dB."""
    if isinstance(snr_db, (int, float)):
        return float(snr_db)
    if len(snr_db) != 2 or not snr_db[0] <= snr_db[1]:
        raise ValueError(f"audio_snr_db must be a number or a range (low, high) dB with low <= high, got {snr_db!r}")
    lo, hi = map(float, snr_db)
    amp = _levels((10 ** (-hi / 20), 10 ** (-lo / 20)), n, g, "audio_snr_db")  # [N, 1] noise / signal amplitude
    return -20 * torch.log10(amp)


def noisy_images(images: torch.Tensor, std: float | tuple[float, float], seed: int) -> torch.Tensor:
    """Add Gaussian noise of ``std`` (seeded): ``[N, 1, 28, 28]``.

    ``std=(low, high)`` gives each image its own std, drawn uniformly from the range.
    """
    if std == 0:
        return images
    g = torch.Generator().manual_seed(seed)
    s = _levels(std, len(images), g, "image_noise")
    s = s.view(-1, 1, 1, 1) if isinstance(s, torch.Tensor) else s
    return images + s * torch.randn(images.shape, generator=g)


def occlude(images: torch.Tensor, size: int, seed: int) -> torch.Tensor:
    """Zero one random ``size`` x ``size`` square per image (seeded): ``[N, 1, 28, 28]``."""
    if size == 0:
        return images
    if not 0 < size <= 28:
        raise ValueError(f"occlusion size must be in 0..28, got {size}")
    g = torch.Generator().manual_seed(seed)
    out = images.clone()
    corners = torch.randint(0, 28 - size + 1, (len(images), 2), generator=g)
    for i, (r, c) in enumerate(corners.tolist()):
        out[i, :, r : r + size, c : c + size] = 0.0
    return out


def noisy_logmel(waves: torch.Tensor, snr_db: float | tuple[float, float] | None, seed: int) -> torch.Tensor:
    """White noise at ``snr_db`` (None: none), then log-Mel: ``[N, 8000] -> [N, 40, 101]`` (cached).

    ``snr_db=(low, high)`` gives each recording its own SNR in the range (see :func:`snr_levels`).
    """
    if snr_db is not None:
        g = torch.Generator().manual_seed(seed)
        snr = snr_levels(snr_db, len(waves), g)
        waves = add_noise(waves, snr, generator=g)
    return cached_features("avdigits", waves, LOGMEL)


def typo_words(labels: torch.Tensor, typo: float, seed: int) -> torch.Tensor:
    """Each digit's word, each letter replaced with probability ``typo`` by a random letter.

    Returns letter ids ``[N, TEXT_LEN]`` int64: 1..26 for a..z, 0 for padding.
    """
    g = torch.Generator().manual_seed(seed)
    ids = torch.zeros(len(labels), TEXT_LEN, dtype=torch.long)
    for i, y in enumerate(labels.tolist()):
        w = torch.tensor([ord(ch) - 96 for ch in WORDS[y]])
        swap = torch.rand(len(w), generator=g) < typo
        w[swap] = torch.randint(1, 27, (int(swap.sum()),), generator=g)
        ids[i, : len(w)] = w
    return ids


def decode_words(ids: torch.Tensor) -> list[str]:
    """Letter ids ``[N, L]`` back to strings."""
    return ["".join(chr(96 + i) for i in row if i > 0) for row in ids.tolist()]


def pairing(split: str, pair_seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(recording rows into FSDD('all'), image indices into the 10,000 t10k images)`` of a split.

    Recordings: the takes in ``AUDIO_TAKES[split]``. Images: drawn per digit, without
    replacement, from the pool split of the same name.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    fsdd = _fsdd_all()
    takes = set(AUDIO_TAKES[split])
    rec = np.array([i for i, r in enumerate(fsdd.recordings) if r.take in takes])
    digits = fsdd.labels.numpy()[rec]
    _, img_labels = _mnist_arrays()
    pool = pool_indices()[split]
    rng = np.random.default_rng(pair_seed + 1000 * _SPLIT_OFFSET[split])
    img = np.empty(len(rec), dtype=np.int64)
    for d in range(10):
        slots = np.flatnonzero(digits == d)
        candidates = pool[img_labels[pool] == d]
        if len(candidates) < len(slots):
            raise ValueError(f"not enough images of digit {d} in the pool's {split} split")
        img[slots] = rng.choice(candidates, size=len(slots), replace=False)
    return rec, img


class AVDigits:
    """One split of AVDigits, as in-memory tensors (see the module docstring for the recipe).

    Attributes: ``image [N, 1, 28, 28]`` (degraded, float32), ``wave [N, 8000]`` (clean),
    ``audio [N, 40, 101]`` (log-Mel dB of the noisy wave), ``text [N, 5]`` int64 (if
    ``text_typo`` is given), ``labels [N]`` int64, ``image_index [N]`` (into the 10,000 t10k
    images), ``recording`` (FSDD file stems like ``"3_theo_12"``).
    """

    def __init__(self, split: str = "train", *, pair_seed: int = 0, image_pca_removed: float = 0.0,
                 image_noise: float | tuple[float, float] = 0.0, image_occlusion: int = 0,
                 audio_snr_db: float | tuple[float, float] | None = None,
                 text_typo: float | None = None, noise_seed: int = 0):
        rec, img = pairing(split, pair_seed)
        fsdd = _fsdd_all()
        images, _ = _mnist_arrays()
        seed = 10_000 * noise_seed + 100 * _SPLIT_OFFSET[split]  # different noise per split
        self.split = split
        self.labels = fsdd.labels[rec].clone()
        self.image_index = torch.from_numpy(img)
        self.recording = [fsdd.recordings[i].path.stem for i in rec]
        clean = torch.from_numpy(images[img].astype(np.float32) / 255.0).unsqueeze(1)
        x = remove_pca_energy(clean, image_pca_removed)
        x = noisy_images(x, image_noise, seed + 1)
        self.image = occlude(x, image_occlusion, seed + 2)
        self.wave = fsdd.waves[rec].clone()
        self.audio = noisy_logmel(self.wave, audio_snr_db, seed + 3)
        self.text = None if text_typo is None else typo_words(self.labels, text_typo, seed + 4)

    @property
    def modalities(self) -> tuple[str, ...]:
        return ("image", "audio") + (() if self.text is None else ("text",))

    def __len__(self) -> int:
        return len(self.labels)

    def stats(self) -> dict[str, tuple[float, float]]:
        """Mean and std of each continuous modality (compute them on the train split)."""
        return {"image": (float(self.image.mean()), float(self.image.std())),
                "audio": (float(self.audio.mean()), float(self.audio.std()))}

    def inputs(self, stats: dict[str, tuple[float, float]] | None = None) -> dict[str, torch.Tensor]:
        """The modalities as a dict; ``stats`` (from the train split) standardises image and audio."""
        out = {"image": self.image, "audio": self.audio}
        if stats is not None:
            out = {k: (v - stats[k][0]) / stats[k][1] for k, v in out.items()}
        if self.text is not None:
            out["text"] = self.text
        return out

    def __repr__(self) -> str:
        return f"AVDigits({self.split!r}, n={len(self)}, modalities={self.modalities})"


class DictBatches:
    """Mini-batches ``(x: dict of [B, ...] tensors, y [B])`` from in-memory tensors, for ``fit``.

    ``shuffle=True`` reshuffles every epoch with its own seeded generator.
    """

    def __init__(self, inputs: dict[str, torch.Tensor], labels: torch.Tensor, batch_size: int = 64,
                 shuffle: bool = False, seed: int = 0):
        for k, v in inputs.items():
            if len(v) != len(labels):
                raise ValueError(f"modality {k!r} has {len(v)} items but there are {len(labels)} labels")
        self.inputs, self.labels, self.batch_size, self.shuffle = inputs, labels, batch_size, shuffle
        self.generator = torch.Generator().manual_seed(offset_seed(seed))  # + MMCOURSE_SEED

    def __len__(self) -> int:
        return -(-len(self.labels) // self.batch_size)

    def __iter__(self) -> Iterator[tuple[dict[str, torch.Tensor], torch.Tensor]]:
        n = len(self.labels)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        for s in range(0, n, self.batch_size):
            i = order[s : s + self.batch_size]
            yield {k: v[i] for k, v in self.inputs.items()}, self.labels[i]
