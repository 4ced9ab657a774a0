"""Solutions to the exercises of chapter 09 (image + text sentiment). Each ``exercise_N`` asserts its answer.

They use the chapter's posts (fast mode: the chapter's small subsets) and its TF-IDF baseline, which
trains in seconds; no MiniLM embedding is needed.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from mmcourse.config import pick
from mmcourse.data.posts import Recipe, bayes_posterior, draw_emoji, emoji_ranking, posts
from mmcourse.metrics import accuracy, f1_score

@functools.cache
def _data():
    """The chapter's posts: its fast-mode subsets in fast mode, every post in full mode."""
    limit = pick(fast={"train": 1500, "val": 300, "test": 700}, full={"train": None, "val": None, "test": None})
    return {s: posts(s, limit=n) for s, n in limit.items()}


@functools.cache
def _tfidf(c: float = 3.0) -> dict[str, torch.Tensor]:
    """The chapter's TF-IDF + logistic regression (inverse regularisation ``c``): probabilities ``[N, 3]`` per split."""
    d = _data()
    tfidf = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    x = tfidf.fit_transform(d["train"].texts)
    lr = LogisticRegression(C=c, max_iter=3000).fit(x, d["train"].labels.numpy())
    return {s: torch.tensor(lr.predict_proba(tfidf.transform(p.texts))) for s, p in d.items()}


def _macro_f1(y, pred) -> float:
    return float(f1_score(y, pred, average="macro"))


def _bayes_gain(likelihood: torch.Tensor) -> float:
    """Macro-F1 gain of Bayes text+emoji over TF-IDF alone, on test posts whose emoji is drawn from ``likelihood``."""
    te, p = _data()["test"], _tfidf()["test"]
    emoji = draw_emoji(te.keys, te.labels, Recipe(), likelihood=likelihood)  # same hashes, other distribution
    has = emoji >= 0
    post = bayes_posterior(p, emoji, likelihood=likelihood)
    return _macro_f1(te.labels[has], post[has].argmax(1)) - _macro_f1(te.labels[has], p[has].argmax(1))


def exercise_1() -> dict[str, float]:
    """A sharper picture: P(emoji | s)^2, renormalised, carries more information, so the ceiling grows."""
    lik = emoji_ranking().likelihood
    sharp = lik**2 / (lik**2).sum(1, keepdim=True)
    gains = {"ranking": _bayes_gain(lik), "squared": _bayes_gain(sharp)}
    print({k: f"{100 * v:+.1f} points" for k, v in gains.items()})
    assert gains["ranking"] > 0
    assert gains["squared"] > gains["ranking"] + 0.01, gains
    return gains


def exercise_2() -> dict[str, float]:
    """The emoji alone: well above the majority class in accuracy, much lower in macro-F1 (it never says
    "positive" often enough: positive is the rarest class, and most emojis are likelier neutral)."""
    d = _data()
    prior = torch.bincount(d["train"].labels, minlength=3).double() / len(d["train"])
    va = d["val"]
    has = va.has_image
    y = va.labels[has]
    pred = (prior[:, None] * emoji_ranking().likelihood).argmax(0)[va.emoji[has]]  # [N_pic]
    out = {"bayes_acc": accuracy(y, pred), "bayes_macro_f1": _macro_f1(y, pred),
           "majority_acc": float((y == prior.argmax()).float().mean()),
           "positive_share_predicted": float((pred == 2).float().mean()), "positive_share_true": float((y == 2).float().mean())}
    print({k: round(v, 3) for k, v in out.items()})
    assert out["bayes_acc"] > out["majority_acc"] + 0.05
    assert out["bayes_macro_f1"] < out["bayes_acc"] - 0.05
    assert out["positive_share_predicted"] < out["positive_share_true"]  # positive is under-predicted
    return out


def _ece(p: torch.Tensor, y: torch.Tensor, bins: int = 10) -> float:
    conf, hit = p.max(1).values.numpy(), (p.argmax(1) == y).float().numpy()
    which = np.minimum((conf * bins).astype(int), bins - 1)
    n = np.bincount(which, minlength=bins)
    gap = np.abs(np.bincount(which, hit, bins) - np.bincount(which, conf, bins))  # per bin: |sum hit - sum conf|
    return float(gap.sum() / n.sum())


def exercise_3() -> dict[str, float]:
    """Temperature scaling of an over-confident model (TF-IDF with little regularisation, C = 30): one
    T > 1 fitted on validation lowers the test NLL and ECE; the Bayes gain changes little."""
    d, p = _data(), _tfidf(30.0)
    logp = {s: v.clamp_min(1e-12).log() for s, v in p.items()}

    def nll(s: str, t: float) -> float:
        return float(torch.nn.functional.cross_entropy(logp[s] / t, d[s].labels))

    grid = np.linspace(0.3, 3.0, 55)
    t_best = float(grid[np.argmin([nll("val", t) for t in grid])])
    p_cal = torch.softmax(logp["test"] / t_best, -1)
    te = d["test"]
    out = {"T": t_best, "nll_before": nll("test", 1.0), "nll_after": nll("test", t_best),
           "ece_before": _ece(p["test"], te.labels), "ece_after": _ece(p_cal, te.labels)}
    has = te.has_image
    for name, q in (("gain_before", p["test"]), ("gain_after", p_cal)):
        b = bayes_posterior(q, te.emoji)
        out[name] = _macro_f1(te.labels[has], b[has].argmax(1)) - _macro_f1(te.labels[has], q[has].argmax(1))
    print({k: round(v, 4) for k, v in out.items()})
    assert t_best > 1.2  # over-confident: the probabilities must be softened
    assert out["nll_after"] < out["nll_before"] and out["ece_after"] < out["ece_before"]
    return out
