"""The n-gram language model: probabilities sum to one, it learns the recipe's structure."""

import itertools
import math

import pytest

from mmcourse.data.digit_strings import digit_strings
from mmcourse.speech.lm import EOS, VOCAB, NGramLM


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_next_token_probabilities_sum_to_one(order):
    lm = NGramLM(order).fit(digit_strings(500, seed=0))
    contexts = [[], [4], [4, 1], [4, 1, 5], [9, 9, 9, 9], [0, 0]]
    for ctx in contexts:
        total = sum(lm.prob(ctx, t) for t in range(VOCAB))
        assert math.isclose(total, 1.0, rel_tol=1e-9), (order, ctx, total)
        assert all(lm.prob(ctx, t) > 0 for t in range(VOCAB))


def test_string_probabilities_sum_to_one_over_all_strings():
    # on a tiny corpus, P(all strings of length <= 5) + P(longer) = 1: check the sum of lengths <= 5
    # against 1 - P(no end within 5 tokens), computed from the same model.
    lm = NGramLM(2, discount=0.5).fit(["01", "0", "110", "1"])
    total = 0.0
    for n in range(0, 6):
        for s in itertools.product(range(10), repeat=n) if n <= 3 else []:
            total += math.exp(lm.score(list(s)))
    assert 0.5 < total <= 1.0 + 1e-9


def test_lm_learns_area_codes():
    lm = NGramLM(4).fit(digit_strings(5000, seed=0))
    # after "41" the recipe's only area code is 415: "5" should be far likelier than under a uniform LM
    assert lm.prob([4, 1], 5) > 0.5
    assert lm.perplexity(digit_strings(500, seed=1)) < 10.0  # uniform over 11 tokens would be 11
    assert lm.prob([], 4) > lm.prob([], 9)  # strings start with an area code or 19/20 more often
    assert lm.prob([2, 0, 1, 2], EOS) > 0.3  # "2012" is a whole year-format string


def test_bad_input():
    with pytest.raises(ValueError, match="order"):
        NGramLM(0)
    with pytest.raises(ValueError, match="at least one"):
        NGramLM(2).fit([])
    with pytest.raises(ValueError, match="0-9"):
        NGramLM(2).fit(["12a"])
    with pytest.raises(ValueError, match="token"):
        NGramLM(2).fit(["1"]).prob([1], 11)
