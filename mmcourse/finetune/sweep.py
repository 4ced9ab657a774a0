"""Chapter 08's image experiments: one function per experiment, each result cached on disk.

=====================  ============================================================================
``Config``             one training run: strategy, labels, image size, epochs, learning rate, ...
``run(cfg)``           train and test it -> a small dict (accuracy, curves, time, parameters), cached
                       under ``cache_dir()/finetune/`` keyed by the whole config (and ``MMCOURSE_SEED``)
``plan()``             every run the chapter shows, for the current mode (fast or full)
``measure(...)``       seconds per epoch and peak resident memory of one strategy, in a fresh process
``imagenet_kept(m)``   how much ImageNet knowledge a fine-tuned backbone kept (photo crops whose
                       ImageNet top-1 class is unchanged)
=====================  ============================================================================

``python -m mmcourse.finetune.sweep`` runs the whole plan (the chapter's full build then only
reads the cache); ``python -m mmcourse.finetune.sweep measure STRATEGY`` prints one measurement.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mmcourse.config import cache_dir, is_fast, load_or_compute, offset_seed, pick, seed_offset
from mmcourse.finetune import images as fi
from mmcourse.train import fit

VERSION = 1  # bump when the training code changes: cached results are recomputed
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle")


@dataclass(frozen=True)
class Config:
    """One run. ``k``: trainable blocks for ``partial``; ``r``: LoRA rank; ``patience``: early stopping
    on validation accuracy (None: all epochs, the best epoch's weights are kept either way)."""

    strategy: str
    labels: int
    size: int = 64
    epochs: int = 10
    lr: float = 1e-3
    backbone_factor: float = 0.1
    k: int = 4
    r: int = 8
    augment: bool = True
    patience: int | None = None
    seed: int = 0
    batch_size: int = 64
    val: int = 500
    test: int = 2000
    forgetting: bool = False  # also measure the ImageNet knowledge kept (:func:`imagenet_kept`)

    def key(self) -> str:
        fields = {k: v for k, v in dataclasses.asdict(self).items() if k != "forgetting" or v}  # older keys stay valid
        raw = json.dumps({**fields, "v": VERSION, "offset": seed_offset()}, sort_keys=True)
        return f"{self.strategy}-{self.labels}-{hashlib.sha256(raw.encode()).hexdigest()[:12]}"


# ---- data ----------------------------------------------------------------------------------------


@functools.cache
def _split(n_val: int, n_test: int) -> dict[str, torch.Tensor]:
    """Fixed indices: a class-balanced order of the 60,000 training images (labelled subsets are its
    first n, so 100 of them are inside the 1,000, inside the 10,000), the last ``n_val`` of that order
    for validation, and a fixed random ``n_test`` of the 10,000 test images."""
    from mmcourse.data import fashion_mnist

    y = fashion_mnist("train").y
    g = torch.Generator().manual_seed(0)  # part of the chapter: never change
    per_class = [torch.nonzero(y == c)[:, 0][torch.randperm(int((y == c).sum()), generator=g)] for c in range(10)]
    order = torch.stack([p[:5900] for p in per_class], 1).reshape(-1)  # class 0, 1, ..., 9, 0, 1, ...
    test = torch.randperm(10_000, generator=g)[:n_test]
    return {"order": order[: len(order) - n_val], "val": order[len(order) - n_val:], "test": test}


def data(labels: int, n_val: int = 500, n_test: int = 2000) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """``{"train", "val", "test"}`` -> ``(x [N, 1, 28, 28] in [0, 1], y [N])``; ``labels`` balanced over
    the 10 classes (a multiple of 10)."""
    if labels % 10 or not 10 <= labels <= 59_000 - n_val:
        raise ValueError(f"labels must be a multiple of 10 between 10 and {59_000 - n_val}, got {labels}")
    split = _split(n_val, n_test)
    tr, te = _fashion()
    pick_ = {"train": (tr, split["order"][:labels]), "val": (tr, split["val"]), "test": (te, split["test"])}
    return {s: (d.x[i], d.y[i]) for s, (d, i) in pick_.items()}  # indexing copies: the cache stays intact


@functools.cache
def _fashion():
    from mmcourse.data import fashion_mnist

    return fashion_mnist("train"), fashion_mnist("test")


# ---- one run -------------------------------------------------------------------------------------


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 250) -> float:
    model.eval()
    with torch.no_grad():
        hits = sum(int((model(x[i : i + batch_size]).argmax(1) == y[i : i + batch_size]).sum())
                   for i in range(0, len(y), batch_size))
    return hits / len(y)


def _frozen_features(model: fi.FashionNet, k: int, size: int, x: torch.Tensor, name: str) -> torch.Tensor:
    """The frozen prefix's output for ``x``, cached by :func:`mmcourse.pretrained.cached`."""
    from mmcourse.pretrained import cached

    prefix = fi.Prefix(model, k)
    return cached(f"mobilenet_v2-imagenet1k_v1-blocks0-{prefix.cut - 1}", name,
                  f"fashion-grey3-weights-transforms-{size}px", x, prefix, batch_size=250)  # [N, C, h, w]


def train_model(cfg: Config, progress: bool = False) -> tuple[nn.Module, dict, dict]:
    """Train ``cfg`` (not cached): returns ``(trained model, data, metrics)``. The model is the
    :class:`~mmcourse.finetune.images.FashionNet` (or its peft wrapper) that takes images."""
    if cfg.strategy not in fi.STRATEGIES:
        raise ValueError(f"strategy must be one of {fi.STRATEGIES}, got {cfg.strategy!r}")
    d = data(cfg.labels, cfg.val, cfg.test)
    model = fi.build(pretrained=cfg.strategy != "scratch", size=cfg.size, seed=cfg.seed)
    total = sum(p.numel() for p in model.parameters())
    net, groups = fi.strategy(model, cfg.strategy, cfg.lr, k=cfg.k, backbone_factor=cfg.backbone_factor, r=cfg.r)
    cached_prefix = cfg.strategy in ("probe", "partial")
    if cached_prefix:  # train the trainable rest on the frozen part's cached output
        k = cfg.k if cfg.strategy == "partial" else 0
        feats = {s: _frozen_features(model, k, cfg.size, x, f"fashion-{s}{len(x)}") for s, (x, _) in d.items()}
        net = fi.Suffix(model, k)
        xs = {s: feats[s] for s in d}
    else:
        xs = {s: x for s, (x, _) in d.items()}
    ys = {s: y for s, (_, y) in d.items()}
    augment = cfg.augment and not cached_prefix  # cached features cannot be augmented
    train = fi.Batches(xs["train"], ys["train"], cfg.batch_size, augment=augment, seed=cfg.seed)
    val = fi.Batches(xs["val"], ys["val"], 250, shuffle=False)
    opt = torch.optim.AdamW(groups, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[g["lr"] for g in groups],
                                                total_steps=cfg.epochs * len(train), pct_start=0.2)
    t0 = time.perf_counter()
    hist = fit(net, train, val, epochs=cfg.epochs, optimizer=opt, scheduler=sched, seed=cfg.seed,
               patience=cfg.patience, progress=progress, device=torch.device("cpu"))
    seconds = time.perf_counter() - t0
    trainable = sum(p.numel() for p in net.parameters() if p.requires_grad)
    metrics = {
        "test_acc": _accuracy(net, xs["test"], ys["test"]),
        "val_acc": hist["val_acc"], "train_loss": hist["train_loss"], "train_acc": hist["train_acc"],
        "best_epoch": hist.best_epoch, "epochs_run": len(hist),
        "seconds": seconds, "seconds_per_epoch": seconds / len(hist),
        "trainable": trainable, "total": total, "trainable_pct": 100 * trainable / total,
        "augmented": augment, "threads": torch.get_num_threads(), "seed": offset_seed(cfg.seed),
    }
    if cfg.forgetting:  # the learning-rate sweep's forgetting measure
        metrics["imagenet_kept"] = imagenet_kept(model)
    return (model if cached_prefix else net), d, metrics


def run(cfg: Config, progress: bool = False) -> dict:
    """:func:`train_model`'s metrics, cached on disk by the whole config (a second call reads them)."""
    path = cache_dir() / "finetune" / f"{cfg.key()}.pt"
    return load_or_compute(path, lambda: {**train_model(cfg, progress)[2], "config": dataclasses.asdict(cfg)})


# ---- forgetting -----------------------------------------------------------------------------------


@functools.cache
def photo_crops(size: int = 224) -> torch.Tensor:
    """10 views of each of 5 scikit-image photos (the whole photo and a 3 x 3 grid of crops of 60 %
    of its side): ``[50, 3, size, size]`` in [0, 1]."""
    from skimage import data as skd

    out = []
    for name in PHOTOS:
        img = skd.stereo_motorcycle()[0] if name == "motorcycle" else getattr(skd, name)()
        t = torch.from_numpy(img[..., :3].copy()).permute(2, 0, 1).float() / 255  # [3, H, W]
        h, w = t.shape[1:]
        ch, cw = int(0.6 * h), int(0.6 * w)
        views = [t] + [t[:, i : i + ch, j : j + cw] for i in (0, (h - ch) // 2, h - ch) for j in (0, (w - cw) // 2, w - cw)]
        out += [F.interpolate(v[None], size=(size, size), mode="bilinear", antialias=True)[0] for v in views]
    return torch.stack(out)


@functools.cache
def _imagenet_reference() -> tuple[nn.Module, torch.Tensor]:
    net = fi.mobilenet(pretrained=True).eval()
    with torch.no_grad():
        top1 = net(fi.preprocessing(224)(photo_crops())).argmax(1)  # [50] the original predictions
    return net.classifier, top1


def imagenet_kept(model: fi.FashionNet) -> float:
    """Share of the 50 photo crops whose ImageNet top-1 class, read by the *original* ImageNet
    classifier from ``model``'s (fine-tuned) backbone at 224 px, is the one the original network gives.

    The backbone's BatchNorm statistics are first set back to ImageNet's (on a copy): fine-tuning in
    train mode re-estimates them on grey clothes, which alone ruins photos (every run would score 0);
    what is measured is how far the *weights* moved."""
    classifier, top1 = _imagenet_reference()
    features = copy.deepcopy(model.features).eval()
    stats = {k[len("features."):]: v for k, v in fi._imagenet_state().items()
             if k.startswith("features.") and ("running_" in k or "num_batches" in k)}
    missing = features.load_state_dict(stats, strict=False).unexpected_keys
    assert not missing, missing
    with torch.no_grad():
        h = features(fi.preprocessing(224)(photo_crops())).mean((2, 3))  # [50, 1280]
        return float((classifier(h).argmax(1) == top1).float().mean())


# ---- the plan -------------------------------------------------------------------------------------


def settings() -> dict:
    """Sizes, epochs (per strategy and label count) and learning rates of the current mode."""
    return pick(
        fast={"size": 32, "labels": [100, 300], "sweep_labels": 100, "sweep_lrs": [1e-3, 1e-1], "seeds": [0],
              "batch": 32, "val": 100, "test": 500,
              "epochs": {"scratch": {100: 30, 300: 15}, "probe": {100: 30, 300: 20}, "partial": {100: 15, 300: 10},
                         "full": {100: 12, 300: 6}, "lora": {100: 20, 300: 6}},
              "sweep_epochs": 6},
        full={"size": 64, "labels": [100, 1000, 10000], "sweep_labels": 1000, "sweep_lrs": [3e-4, 3e-3, 3e-2],
              "seeds": [0, 1, 2], "batch": 64, "val": 500, "test": 2000,
              "epochs": {"scratch": {100: 40, 1000: 15, 10000: 2}, "probe": {100: 100, 1000: 60, 10000: 30},
                         "partial": {100: 60, 1000: 30, 10000: 6}, "full": {100: 30, 1000: 10, 10000: 14},
                         "lora": {100: 30, 1000: 10, 10000: 4}},
              "sweep_epochs": 5})


LR = {"scratch": 3e-3, "probe": 1e-2, "partial": 3e-3, "full": 3e-3, "lora": 1e-2}  # the head's peak rate
BACKBONE_FACTOR = 0.3  # full and partial fine-tuning: the backbone at 0.3 x the head's rate
LORA_LRS = (1e-2, 3e-3)  # LoRA at the middle label count: the grid's rate, and one chosen on validation against it
LORA_RANK = 2  # r = 2 on the 34 pointwise convs: 2.2 % of the parameters train (with the head)
SEED_STRATEGIES = ("scratch", "full")  # rerun with seeds 1, 2 at the middle label count: the +5 target's spread
PATIENCE = 10  # early stopping of the cheap runs: 10 epochs without a better validation accuracy
PARTIAL_K = 3  # partial fine-tuning: the last 3 of the 19 blocks (55 % of the weights)


def config(strategy: str, labels: int, **kw) -> Config:
    s = settings()
    base = {"size": s["size"], "epochs": s["epochs"][strategy][labels], "lr": LR[strategy], "k": PARTIAL_K,
            "r": LORA_RANK, "backbone_factor": BACKBONE_FACTOR, "val": s["val"], "test": s["test"],
            "batch_size": s["batch"]}
    if strategy in ("probe", "partial"):  # trained on cached features: no augmentation; cheap epochs, so
        base.update(augment=False, patience=PATIENCE)  # many of them, stopped early on validation
    return Config(strategy, labels, **{**base, **kw})


def plan() -> dict[str, list[Config]]:
    """Every run of the chapter: the grid (5 strategies x label counts), the learning-rate sweep
    (full fine-tuning, backbone at the head's rate), augmentation at the smallest size, other seeds
    (:data:`SEED_STRATEGIES` at the middle label count, and full fine-tuning at the largest when that is
    another count), LoRA's other learning rate (:data:`LORA_LRS`)."""
    s = settings()
    small, top = s["labels"][0], s["labels"][-1]
    mid = s["labels"][min(1, len(s["labels"]) - 1)]
    return {
        "grid": [config(st, n) for n in s["labels"] for st in fi.STRATEGIES],
        "lr_sweep": [config("full", s["sweep_labels"], lr=lr, backbone_factor=1.0, epochs=s["sweep_epochs"],
                            forgetting=True) for lr in s["sweep_lrs"]],
        "augment": [config(st, small, augment=False) for st in ("scratch", "full", "lora")],
        "seeds": [config(st, mid, seed=seed) for seed in s["seeds"][1:] for st in SEED_STRATEGIES],
        "top_seeds": [config("full", top, seed=seed) for seed in s["seeds"][1:]] if top != mid else [],
        "lora_lr": [config("lora", mid, lr=lr) for lr in LORA_LRS[1:]],
    }


# ---- cost: seconds per epoch and peak memory, in a fresh process ----------------------------------


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _measure(strategy: str, labels: int, size: int, epochs: int) -> dict:
    """In this process: one strategy's training epochs at ``labels``, timed, with a thread sampling the
    resident memory every 5 ms. For the cached strategies also the time to recompute the frozen part."""
    cfg = Config(strategy, labels, size=size, epochs=epochs, lr=LR[strategy], k=PARTIAL_K, r=LORA_RANK,
                 backbone_factor=BACKBONE_FACTOR)
    d = data(labels)
    model = fi.build(pretrained=strategy != "scratch", size=size)
    net, groups = fi.strategy(model, strategy, cfg.lr, k=cfg.k, backbone_factor=cfg.backbone_factor, r=cfg.r)
    x, y = d["train"]
    extra = {}
    if strategy in ("probe", "partial"):
        k = cfg.k if strategy == "partial" else 0
        t0 = time.perf_counter()
        feats = fi.encode(fi.Prefix(model, k), x)  # what caching saves, every epoch
        extra["frozen_part_seconds"] = time.perf_counter() - t0
        net, x = fi.Suffix(model, k), feats
    batches = fi.Batches(x, y, cfg.batch_size, augment=cfg.augment and strategy not in ("probe", "partial"))
    opt = torch.optim.AdamW(groups)
    peak, stop = [_rss_mb()], threading.Event()
    start_rss = peak[0]

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], _rss_mb())
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.perf_counter()
    net.train()
    for _ in range(epochs):
        for xb, yb in batches:
            loss = F.cross_entropy(net(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    seconds = (time.perf_counter() - t0) / epochs
    stop.set()
    sampler.join()
    out = {"strategy": strategy, "labels": labels, "size": size, "threads": torch.get_num_threads(),
           "seconds_per_epoch": seconds, "peak_rss_mb": peak[0], "training_rss_mb": peak[0] - start_rss,
           "trainable": sum(p.numel() for p in net.parameters() if p.requires_grad), **extra}
    if "frozen_part_seconds" in extra:
        out["cache_speedup"] = (extra["frozen_part_seconds"] + seconds) / seconds
    return out


def measure(strategy: str, labels: int = 1000, size: int = 64, epochs: int = 1, threads: int = 1,
            cache: bool = True) -> dict:
    """:func:`_measure` in a fresh Python process with ``threads`` torch threads (so that peak memory is
    this strategy's alone); cached by its arguments unless ``cache=False``."""
    args = [strategy, str(labels), str(size), str(epochs)]

    def compute() -> dict:
        env = {**os.environ, "MMCOURSE_THREADS": str(threads), "OMP_NUM_THREADS": str(threads)}
        out = subprocess.run([sys.executable, "-m", "mmcourse.finetune.sweep", "measure", *args], env=env,
                             capture_output=True, text=True, check=False)
        if out.returncode:
            raise RuntimeError(f"measuring {strategy} failed:\n{out.stderr[-2000:]}")
        return json.loads(out.stdout.strip().splitlines()[-1])

    if is_fast():  # fast mode (CI): in this process, to save the start of five Pythons
        compute = functools.partial(_measure, strategy, labels, size, epochs)
    if not cache:
        return compute()
    key = hashlib.sha256(json.dumps([*args, threads, VERSION, is_fast()]).encode()).hexdigest()[:12]
    return load_or_compute(cache_dir() / "finetune" / f"measure-{strategy}-{key}.pt", compute)


def main(argv: list[str]) -> None:
    if argv[:1] == ["measure"]:
        strategy, labels, size, epochs = argv[1], int(argv[2]), int(argv[3]), int(argv[4])
        print(json.dumps(_measure(strategy, labels, size, epochs)))
        return
    t0 = time.perf_counter()
    p = plan()
    labels = settings()["labels"]
    mid = labels[min(1, len(labels) - 1)]
    cheap_first = ("probe", "partial", "full", "lora", "scratch")
    order = sorted(p["grid"], key=lambda c: (c.labels != mid, c.labels, cheap_first.index(c.strategy)))  # 1,000 first
    todo = [("grid", c) for c in order] + [(part, c) for part in p if part != "grid" for c in p[part]]
    if argv[:1] == ["list"]:
        print("\n".join(f"{part}: {c}" for part, c in todo))
        return
    if argv[:1] == ["first"]:  # the grid at the two smaller label counts (a first look)
        todo = [(part, c) for part, c in todo if part == "grid" and c.labels != labels[-1]]
    elif argv[:1] == ["rest"]:
        todo = [(part, c) for part, c in todo if not (part == "grid" and c.labels != labels[-1])]
    for part, cfg in todo:
        if True:
            t1 = time.perf_counter()
            m = run(cfg)
            print(f"{part:9s} {cfg.strategy:8s} {cfg.labels:6d} lr {cfg.lr:g} aug {cfg.augment} seed {cfg.seed}: "
                  f"test {m['test_acc']:.4f} ({m['epochs_run']} epochs, {time.perf_counter() - t1:.0f} s)", flush=True)
    for st in fi.STRATEGIES if argv[:1] != ["first"] else ():
        m = measure(st, size=settings()["size"])
        print(f"measure {st}: {m}", flush=True)
    print(f"sweep: {time.perf_counter() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
