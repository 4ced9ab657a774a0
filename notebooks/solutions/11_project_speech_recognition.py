"""Solutions to the exercises of chapter 11 (speech recognition). Each function asserts its answer.

Run one with ``python notebooks/solutions/11_project_speech_recognition.py`` (all) or import it.
None of them trains a model: they need seconds, in either mode.
"""

from __future__ import annotations

import math

import torch

from mmcourse.data.digit_strings import digit_strings
from mmcourse.speech import ctc
from mmcourse.speech.lm import NGramLM


def exercise_1() -> dict:
    """Paths of T frames collapsing to L labels with r adjacent repeats.

    A path is ``blank* x1+ blank* x2+ ... xL+ blank*`` with a blank run of length >= 1 between each
    repeated pair. Take out the compulsory frames (L labels + r blanks): the remaining
    ``T - L - r`` frames are spread over ``2L + 1`` runs (L label runs, L + 1 blank runs), i.e.
    ``C(T - L - r + 2L, 2L)`` ways (stars and bars). The fewest frames are ``L + r``.
    """
    cases = [([1, 2], 5), ([1, 1], 5), ([1, 2, 2], 6), ([2, 2, 2], 7), ([1], 4), ([1, 1, 2, 2], 7)]
    out = {}
    for labels, T in cases:
        L, r = len(labels), sum(a == b for a, b in zip(labels, labels[1:], strict=False))
        formula = math.comb(T - L - r + 2 * L, 2 * L) if T >= L + r else 0
        counted = len(ctc.paths_to(labels, T, 3))
        assert formula == counted, (labels, T, formula, counted)
        out[f"{labels} in {T} frames"] = counted
    # 1 1 2 2: 4 labels + 2 compulsory blanks between the repeats
    assert not ctc.paths_to([1, 1, 2, 2], 5, 3) and ctc.paths_to([1, 1, 2, 2], 6, 3) == [(1, 0, 1, 2, 0, 2)]
    out["fewest frames for 1 1 2 2"] = 6
    return out


def exercise_2() -> dict:
    """Perplexity of fresh strings against the n-gram order: it falls up to order 4 and then
    flattens (the area codes need 3 digits of context, "555" after them 4-6; orders beyond the data
    only add sparsity)."""
    train, fresh = digit_strings(20_000, seed=11), digit_strings(2_000, seed=12)
    ppl = {n: NGramLM(n).fit(train).perplexity(fresh) for n in range(1, 7)}
    assert ppl[1] > ppl[2] > ppl[3] > ppl[4], ppl  # each step captures more of the area code / 19-20
    assert ppl[1] < 11.0  # even the unigram knows the end token is common and 0-2 start many strings
    best = min(ppl, key=ppl.get)
    assert best >= 4 and ppl[6] > ppl[best] - 0.05, ppl
    return {"perplexity": {n: round(v, 3) for n, v in ppl.items()}, "best_order": best}


def exercise_3() -> dict:
    """Three frames over (-, a) with P(a) = p per frame: greedy reads '' when p < 0.5, but
    P('a') sums every path with at least one a except 'a - a' (which reads 'a a'):
    1 - (1-p)^3 - p^2 (1-p). It beats P('') = (1-p)^3 once p is above about 0.216."""
    def probs(p: float) -> dict:
        lp = torch.tensor([[1 - p, p]] * 3).log()
        exact = {k: math.exp(v) for k, v in ctc.brute_force(lp).items()}
        return {"greedy": ctc.greedy(lp), "exact": exact, "beam": ctc.beam_decode(lp, beam=4, prune=None)}

    r = probs(0.4)
    assert r["greedy"] == [] and max(r["exact"], key=r["exact"].get) == (1,) and r["beam"] == [1]
    assert math.isclose(r["exact"][(1,)], 1 - 0.6**3 - 0.4**2 * 0.6, rel_tol=1e-6)
    lo, hi = 0.01, 0.5  # bisection: the smallest p where 'a' wins
    for _ in range(40):
        mid = (lo + hi) / 2
        e = probs(mid)["exact"]
        lo, hi = (lo, mid) if e[(1,)] > e[()] else (mid, hi)
    assert 0.2 < hi < 0.3, hi
    return {"p_a_at_0.4": round(r["exact"][(1,)], 4), "p_empty_at_0.4": round(r["exact"][()], 4),
            "smallest_p": round(hi, 4)}


if __name__ == "__main__":
    for name in ("exercise_1", "exercise_2", "exercise_3"):
        print(name, globals()[name]())
