"""WER, CER and sentence accuracy against jiwer on random digit strings."""

import random

import jiwer
import pytest

from mmcourse.data.digit_strings import to_words
from mmcourse.speech.wer import cer, edit_distance, sentence_accuracy, wer


def _pairs(seed, n=50):
    rng = random.Random(seed)
    refs, hyps = [], []
    for _ in range(n):
        ref = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 10)))
        hyp = list(ref)
        for _ in range(rng.randint(0, 3)):  # substitutions, deletions and insertions
            op, i = rng.choice("sdi"), rng.randrange(len(hyp) + 1)
            if op == "i":
                hyp.insert(i, rng.choice("0123456789"))
            elif hyp and i < len(hyp):
                hyp[i:i + 1] = [] if op == "d" else [rng.choice("0123456789")]
        refs.append(to_words(ref))
        hyps.append(to_words("".join(hyp)) if hyp else "")
    return refs, hyps


@pytest.mark.parametrize("seed", range(5))
def test_wer_cer_match_jiwer(seed):
    refs, hyps = _pairs(seed)
    assert wer(refs, hyps) == pytest.approx(jiwer.wer(refs, hyps), abs=1e-12)
    assert cer(refs, hyps) == pytest.approx(jiwer.cer(refs, hyps), abs=1e-12)
    exact = sum(r == h for r, h in zip(refs, hyps, strict=True)) / len(refs)
    assert sentence_accuracy(refs, hyps) == exact


def test_edit_distance_small_cases():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance([], [1, 2]) == 2 and edit_distance([1, 2], []) == 2
    assert wer(["one two three"], ["one three four five"]) == pytest.approx(1.0)  # 1 sub... jiwer agrees
    assert wer(["one two three"], ["one three four five"]) == jiwer.wer("one two three", "one three four five")


def test_bad_input():
    with pytest.raises(ValueError, match="same length"):
        wer(["one"], [])
    with pytest.raises(ValueError, match="empty"):
        wer([], [])
    with pytest.raises(ValueError, match="no words"):
        wer([""], ["one"])
