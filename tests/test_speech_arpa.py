"""The word n-gram model and its ARPA file: distributions sum to one, and the back-off form read back from
the file gives the interpolated model's probabilities."""

from __future__ import annotations

import math

import pytest

from mmcourse.speech.arpa import BOS, EOS, WordNGram, backoff_prob, read_arpa

SENTENCES = [s.split() for s in ("where is my bag", "my bag is lost", "my flight was cancelled",
                                 "where is my flight", "i want a refund", "my flight is late")]


@pytest.mark.parametrize("order", [1, 2, 3])
def test_every_distribution_sums_to_one(order):
    lm = WordNGram(order).fit(SENTENCES)
    for context in ([], ["my"], ["where", "is"], ["never", "seen"], [BOS]):
        assert math.isclose(sum(lm.prob(context, w) for w in lm.vocab), 1.0, abs_tol=1e-12)


def test_the_arpa_file_reproduces_the_interpolated_probabilities():
    lm = WordNGram(3).fit(SENTENCES)
    text = lm.arpa()
    model = read_arpa(text)
    assert text.startswith("\\data\\\nngram 1=") and text.rstrip().endswith("\\end\\")
    assert model[(BOS,)][0] == -99.0 and (EOS,) in model and ("<s>", "where", "is") in model
    for context in ([BOS], [BOS, "where"], ["my"], ["is", "my"], ["flight", "bag"], ["want"]):
        for w in lm.vocab:
            assert math.isclose(backoff_prob(model, context, w), lm.prob(context, w), rel_tol=1e-4), (context, w)
    # a seen trigram: max(c - D, 0) / c(h) + D N(h) / c(h) P(w | h'), by hand
    p_bigram = lm.prob(["my"], "bag")  # "my bag": 2 of the 6 words after "my"
    assert math.isclose(lm.prob(["is", "my"], "bag"), (1 - 0.75) / 2 + 0.75 * 2 / 2 * p_bigram)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="order"):
        WordNGram(0)
    with pytest.raises(ValueError, match="at least one"):
        WordNGram().fit([[], []])
    with pytest.raises(ValueError, match="may not contain"):
        WordNGram().fit([["<s>", "hi"]])
    with pytest.raises(ValueError, match="not in the vocabulary"):
        WordNGram().fit(SENTENCES).prob(["my"], "suitcase")


def test_pocketsphinx_decodes_with_the_written_model_and_only_its_words(tmp_path):
    pytest.importorskip("pocketsphinx")
    from mmcourse.speech.baseline import PocketSphinx, espeak

    path = tmp_path / "tiny.arpa"
    lm = WordNGram(3).fit(SENTENCES)
    path.write_text(lm.arpa())
    heard = PocketSphinx(lm=path).transcribe(espeak("my flight was cancelled", voice="en-us+f3", sample_rate=16000), 16000)
    assert heard and set(heard.split()) <= lm.vocab  # a closed vocabulary: nothing outside the model
    with pytest.raises(FileNotFoundError, match="mmcourse.speech.arpa"):
        PocketSphinx(lm=tmp_path / "missing.arpa")
    with pytest.raises(ValueError, match="not both"):
        PocketSphinx(grammar=True, lm=path)
