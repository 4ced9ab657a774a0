"""CTC decoding: the collapse rule, greedy decoding and prefix beam search against brute force."""

import math
import random

import pytest
import torch

from mmcourse.speech import ctc
from mmcourse.speech.lm import NGramLM


@pytest.mark.parametrize("path, labels", [
    ([0, 0, 0], []),
    ([1, 1, 1], [1]),
    ([1, 0, 1], [1, 1]),
    ([1, 1, 2, 2, 0, 2], [1, 2, 2]),
    ([0, 3, 0, 0, 3, 3, 1], [3, 3, 1]),
    ([2, 0, 2, 2, 0, 0, 2], [2, 2, 2]),
])  # fmt: skip
def test_collapse_merges_repeats_then_drops_blanks(path, labels):
    assert ctc.collapse(path) == labels
    assert ctc.collapse(torch.tensor(path)) == labels


def test_collapse_other_blank_index():
    assert ctc.collapse([2, 2, 0, 1, 1, 2, 0], blank=2) == [0, 1, 0]


def _random_lp(T, C, seed, sharp=1.0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(T, C, generator=g) * sharp).log_softmax(-1)


def test_greedy_is_collapsed_argmax():
    lp = _random_lp(30, 5, 0, 3.0)
    assert ctc.greedy(lp) == ctc.collapse(lp.argmax(-1).tolist())


def test_brute_force_probabilities_sum_to_one():
    lp = _random_lp(5, 3, 1)
    probs = ctc.brute_force(lp)
    assert math.isclose(sum(math.exp(v) for v in probs.values()), 1.0, rel_tol=1e-5)
    # paths of 4 frames collapsing to [1, 2]: blank* 1+ blank* 2+ blank*, i.e. 2 extra frames spread
    # over 5 runs: C(6, 4) = 15
    assert len(ctc.paths_to([1, 2], 4, 3)) == 15


@pytest.mark.parametrize("seed", range(8))
def test_prefix_beam_search_is_exact_with_a_wide_beam(seed):
    T, C = random.Random(seed).choice([(4, 3), (5, 3), (6, 3), (4, 4), (3, 5)])
    lp = _random_lp(T, C, seed, sharp=2.0)
    exact = ctc.brute_force(lp)
    found = ctc.prefix_beam_search(lp, beam=10_000, prune=None)
    assert len(found) == len(exact)
    for labels, score in found:
        assert math.isclose(score, exact[tuple(labels)], abs_tol=1e-4), (labels, score, exact[tuple(labels)])
    assert tuple(found[0][0]) == max(exact, key=exact.get)


@pytest.mark.parametrize("seed", range(6))
def test_lm_fusion_matches_brute_force_rescoring(seed):
    lp = _random_lp(5, 4, 100 + seed, sharp=1.5)
    lm = NGramLM(2).fit(["0120", "1", "2210", "12", "000"])
    fn = lambda prefix, lab: lm.logprob([p - 1 for p in prefix], None if lab is None else lab - 1)  # noqa: E731
    alpha, beta = 0.8, 0.5
    exact = {k: v + alpha * lm.score([x - 1 for x in k]) + beta * len(k) for k, v in ctc.brute_force(lp).items()}
    found = ctc.prefix_beam_search(lp, beam=10_000, prune=None, lm=fn, alpha=alpha, beta=beta)
    for labels, score in found:
        assert math.isclose(score, exact[tuple(labels)], abs_tol=1e-4)
    assert tuple(found[0][0]) == max(exact, key=exact.get)


def test_narrow_beam_finds_best_on_peaky_emissions():
    # the kind of emissions a trained model gives: beam 1 is then greedy, beam 4 is exact here
    lp = _random_lp(6, 3, 7, sharp=6.0)
    exact = ctc.brute_force(lp)
    assert ctc.beam_decode(lp, beam=4) == list(max(exact, key=exact.get))


def test_beam_search_rejects_bad_input():
    with pytest.raises(ValueError, match=r"\[T, C\]"):
        ctc.prefix_beam_search(torch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match="beam"):
        ctc.prefix_beam_search(torch.zeros(3, 4), beam=0)
    with pytest.raises(ValueError, match="too many"):
        ctc.brute_force(torch.zeros(40, 11))
