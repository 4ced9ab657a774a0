"""Adapting a spoken-digit model to a new speaker (chapter 08, section 3).

FSDD has six speakers. Hold one out: a :class:`~mmcourse.models.cnn.SpectrogramCNN` learns the
digits from the other five (their takes 10-49; takes 5-9 validate) and is tested on

* the **seen speakers**' takes 0-4 (FSDD's official test takes: same voices, other recordings);
* the **new speaker**'s takes 0-39 (a voice it never heard).

Then it adapts with ``k`` recordings per digit of the new speaker, drawn (by a seed) from his takes
40-49, the *adaptation pool*, which never meets his test takes. Three ways, by what trains:

=========  =============================================================================
``head``   the linear head only (the convolutional features stay frozen, BatchNorm too)
``last``   the last convolutional block and the head
``all``    every weight (BatchNorm statistics then follow the new voice as well)
=========  =============================================================================

Each way starts from the trained model and takes the same number of Adam steps; there is no
validation data of the new speaker, so no early stopping (the test takes are never looked at).
:func:`sweep` does this for every held-out speaker and caches its small results on disk.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from mmcourse.config import cache_dir, load_or_compute, offset_seed, seed_everything
from mmcourse.data.fsdd import DIGITS, SPEAKERS
from mmcourse.finetune.freeze import freeze, unfreeze_last

WAYS = ("head", "last", "all")
TEST_TAKES = range(0, 40)  # the new speaker's test takes
POOL_TAKES = range(40, 50)  # his adaptation pool: 10 per digit
SEEN_TEST_TAKES, VAL_TAKES = range(0, 5), range(5, 10)  # the five seen speakers'
RESULTS_VERSION = 1


@dataclass(frozen=True)
class SpeakerConfig:
    """Everything a sweep depends on; it is the cache key."""

    speakers: tuple[str, ...] = tuple(sorted(SPEAKERS))  # each held out in turn
    ks: tuple[int, ...] = (1, 5, 10)  # adaptation recordings per digit
    width: int = 16  # SpectrogramCNN width
    hop_length: int = 160  # log-Mel hop (20 ms at 8 kHz): 51 frames per second
    epochs: int = 12  # training on the five seen speakers
    train_per_speaker: int | None = None  # cap on training recordings per seen speaker (fast mode)
    lr: float = 3e-3
    adapt_steps: int = 40  # Adam steps of every adaptation
    adapt_batch: int = 20
    adapt_lr: float = 1e-3
    base_seed: int = 0


FULL = SpeakerConfig()
FAST = SpeakerConfig(speakers=("theo",), width=8, epochs=5, train_per_speaker=200, adapt_steps=15, ks=(1, 5))


@dataclass
class SpeakerSplit:
    """Indices into FSDD("all") for one held-out speaker (see the module docstring)."""

    speaker: str
    train: torch.Tensor
    val: torch.Tensor
    seen_test: torch.Tensor
    unseen_test: torch.Tensor
    pool: torch.Tensor  # the adaptation pool, [10 digits * 10 takes]
    pool_digits: torch.Tensor = field(repr=False)


def _fsdd():
    from mmcourse.data import FSDD

    return FSDD("all")


def logmel(cfg: SpeakerConfig) -> tuple[torch.Tensor, torch.Tensor, list]:
    """Cached log-Mel of all 3,000 clips ``[3000, 40, frames]`` (dB), labels ``[3000]``, recordings."""
    from mmcourse.audio import FeatureConfig, cached_features

    ds = _fsdd()
    return cached_features("fsdd-all", ds.waves, FeatureConfig("logmel", hop_length=cfg.hop_length)), ds.labels, \
        ds.recordings


def split_for(speaker: str, recordings: list, train_per_speaker: int | None = None) -> SpeakerSplit:
    """The index sets of one held-out ``speaker``; ``train_per_speaker`` keeps the first that many
    training takes of each seen speaker (in a fixed order)."""
    if speaker not in SPEAKERS:
        raise ValueError(f"speaker must be one of {sorted(SPEAKERS)}, got {speaker!r}")
    sets: dict[str, list[int]] = {k: [] for k in ("train", "val", "seen_test", "unseen_test", "pool")}
    for i, r in enumerate(recordings):
        if r.speaker == speaker:
            sets["unseen_test" if r.take in TEST_TAKES else "pool"].append(i)
        elif r.take in SEEN_TEST_TAKES:
            sets["seen_test"].append(i)
        elif r.take in VAL_TAKES:
            sets["val"].append(i)
        else:
            sets["train"].append(i)
    if train_per_speaker is not None:
        per: dict[str, list[int]] = {}
        for i in sorted(sets["train"], key=lambda i: (recordings[i].take, recordings[i].digit)):
            per.setdefault(recordings[i].speaker, []).append(i)
        sets["train"] = sorted(i for v in per.values() for i in v[:train_per_speaker])
    t = {k: torch.tensor(v) for k, v in sets.items()}
    return SpeakerSplit(speaker, t["train"], t["val"], t["seen_test"], t["unseen_test"], t["pool"],
                        torch.tensor([recordings[i].digit for i in sets["pool"]]))


def adaptation_set(split: SpeakerSplit, k: int, seed: int) -> torch.Tensor:
    """``k`` recordings per digit from the pool (a seeded draw, + ``MMCOURSE_SEED``): indices ``[10 k]``."""
    if not 1 <= k <= 10:
        raise ValueError(f"k must be between 1 and 10 recordings per digit (the pool holds 10), got {k}")
    g = torch.Generator().manual_seed(offset_seed(seed))
    out = []
    for d in range(10):
        idx = split.pool[split.pool_digits == d]
        out.append(idx[torch.randperm(len(idx), generator=g)[:k]])
    return torch.cat(out)


class PartlyFrozen(nn.Module):
    """``model`` with the modules in ``frozen`` kept in eval mode (their BatchNorm statistics stay
    as trained) whatever ``train()`` says; their parameters are frozen by the caller."""

    def __init__(self, model: nn.Module, frozen: list[nn.Module]):
        super().__init__()
        self.model, self._frozen = model, frozen

    def train(self, mode: bool = True) -> PartlyFrozen:
        super().train(mode)
        for m in self._frozen:
            m.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def prepare(model: nn.Module, way: str) -> PartlyFrozen:
    """A copy of a trained SpectrogramCNN, set up to adapt by ``way`` (one of :data:`WAYS`)."""
    if way not in WAYS:
        raise ValueError(f"way must be one of {WAYS}, got {way!r}")
    m = copy.deepcopy(model)
    blocks = list(m.features)  # norm, block1, block2, block3
    if way == "all":
        return PartlyFrozen(m.requires_grad_(True), [])
    freeze(m.features)
    m.head.requires_grad_(True)
    trained = unfreeze_last(blocks, 1) if way == "last" else []
    return PartlyFrozen(m, [b for b in blocks if not any(b is t for t in trained)])


def adapt(model: nn.Module, x: torch.Tensor, y: torch.Tensor, way: str, cfg: SpeakerConfig, seed: int) -> PartlyFrozen:
    """Adapt a copy of ``model`` on ``x [n, 40, frames]``, ``y [n]``: ``cfg.adapt_steps`` Adam steps on
    random mini-batches of ``cfg.adapt_batch`` (seeded). Returns the adapted copy."""
    m = prepare(model, way)
    seed_everything(seed)
    opt = torch.optim.Adam([p for p in m.parameters() if p.requires_grad], lr=cfg.adapt_lr)
    m.train()
    for _ in range(cfg.adapt_steps):
        i = torch.randperm(len(y))[: cfg.adapt_batch]
        loss = F.cross_entropy(m(x[i]), y[i])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return m.eval()


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    return float((torch.cat([model(x[i : i + 500]) for i in range(0, len(y), 500)]).argmax(-1) == y).float().mean())


def train_base(feats: torch.Tensor, labels: torch.Tensor, split: SpeakerSplit, cfg: SpeakerConfig) -> nn.Module:
    """A SpectrogramCNN on the five seen speakers (best validation loss of ``cfg.epochs``)."""
    from mmcourse.data import TensorData
    from mmcourse.models.cnn import SpectrogramCNN
    from mmcourse.train import fit, loaders

    seed_everything(cfg.base_seed)
    model = SpectrogramCNN(n_mels=feats.shape[1], width=cfg.width)
    tr, va = loaders(TensorData(feats[split.train], labels[split.train], DIGITS),
                     TensorData(feats[split.val], labels[split.val], DIGITS),
                     batch_size=64, seed=cfg.base_seed)
    fit(model, tr, va, epochs=cfg.epochs, lr=cfg.lr, monitor="val_loss", seed=cfg.base_seed, progress=False,
        device=torch.device("cpu"))
    return model.eval()


def one_speaker(speaker: str, cfg: SpeakerConfig, seeds: tuple[int, ...]) -> dict:
    """Train without ``speaker``, then adapt every way, k and seed: a dict of floats and tensors,
    ``acc[way]`` ``[len(ks), len(seeds)]`` on the unseen test takes, ``seen_after[way]`` the same
    on the seen speakers' test takes (forgetting)."""
    import time

    feats, labels, recs = logmel(cfg)
    split = split_for(speaker, recs, cfg.train_per_speaker)
    t0 = time.perf_counter()
    base = train_base(feats, labels, split, cfg)
    out = {"seconds_base": time.perf_counter() - t0,
           "seen": accuracy(base, feats[split.seen_test], labels[split.seen_test]),
           "unseen": accuracy(base, feats[split.unseen_test], labels[split.unseen_test])}
    t0 = time.perf_counter()
    for way in WAYS:
        acc = torch.zeros(len(cfg.ks), len(seeds))
        seen_after = torch.zeros(len(cfg.ks), len(seeds))
        for a, k in enumerate(cfg.ks):
            for b, seed in enumerate(seeds):
                idx = adaptation_set(split, k, seed)
                m = adapt(base, feats[idx], labels[idx], way, cfg, seed)
                acc[a, b] = accuracy(m, feats[split.unseen_test], labels[split.unseen_test])
                seen_after[a, b] = accuracy(m, feats[split.seen_test], labels[split.seen_test])
        out[f"acc_{way}"], out[f"seen_after_{way}"] = acc, seen_after
    out["seconds_adapt"] = time.perf_counter() - t0
    return out


def result_path(speaker: str, cfg: SpeakerConfig, seeds: tuple[int, ...]):
    fields = {**asdict(cfg), "speaker": speaker, "seeds": [offset_seed(s) for s in seeds], "version": RESULTS_VERSION}
    fields.pop("speakers")
    digest = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:12]
    return cache_dir() / "finetune" / "speaker" / f"{speaker}-{digest}.pt"


def sweep(cfg: SpeakerConfig = FULL, seeds: tuple[int, ...] | list[int] = (0, 1, 2)) -> dict[str, dict]:
    """:func:`one_speaker` for every speaker of ``cfg`` (each cached on disk): ``{speaker: result}``."""
    seeds = tuple(seeds)
    return {s: load_or_compute(result_path(s, cfg, seeds), lambda s=s: one_speaker(s, cfg, seeds)) for s in cfg.speakers}


def recovered(result: dict, way: str, k_index: int) -> torch.Tensor:
    """Share of the seen-unseen gap that adaptation recovers, per seed ``[seeds]``:
    ``(acc_k - unseen) / (seen - unseen)``."""
    gap = result["seen"] - result["unseen"]
    return (result[f"acc_{way}"][k_index] - result["unseen"]) / gap


def summary(res: dict[str, dict], cfg: SpeakerConfig = FULL) -> str:
    """A text table: per held-out speaker, seen / unseen accuracy and the adapted accuracy (seed means)."""
    lines = [f"{'held out':<10} {'seen':>6} {'unseen':>7} " + " ".join(
        f"{w}@k={k:<3}" for w in WAYS for k in cfg.ks)]
    for s, r in res.items():
        lines.append(f"{s:<10} {r['seen']:6.3f} {r['unseen']:7.3f} " + " ".join(
            f"{float(r[f'acc_{w}'][a].mean()):>9.3f}" for w in WAYS for a in range(len(cfg.ks))))
    return "\n".join(lines)
