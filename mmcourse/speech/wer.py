"""Word error rate, character error rate and sentence accuracy (Levenshtein distance).

Corpus-level, as jiwer computes them: ``WER = (S + D + I) / N`` summed over all utterances, with
``N`` the number of reference words. ``tests/test_speech_wer.py`` compares with jiwer.
"""

from __future__ import annotations

from collections.abc import Sequence


def edit_distance(ref: Sequence, hyp: Sequence) -> int:
    """Minimum substitutions + deletions + insertions turning ``ref`` into ``hyp``."""
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def _pairs(refs: Sequence[str], hyps: Sequence[str]) -> None:
    if len(refs) != len(hyps):
        raise ValueError(f"refs and hyps must have the same length, got {len(refs)} and {len(hyps)}")
    if not refs:
        raise ValueError("refs is empty: there is nothing to score")


def wer(refs: Sequence[str], hyps: Sequence[str]) -> float:
    """Word error rate over space-separated word strings (``"three one four"``)."""
    _pairs(refs, hyps)
    n = sum(len(r.split()) for r in refs)
    if n == 0:
        raise ValueError("the references have no words")
    return sum(edit_distance(r.split(), h.split()) for r, h in zip(refs, hyps, strict=True)) / n


def cer(refs: Sequence[str], hyps: Sequence[str]) -> float:
    """Character error rate over the strings as given (spaces count as characters)."""
    _pairs(refs, hyps)
    n = sum(len(r) for r in refs)
    if n == 0:
        raise ValueError("the references are empty strings")
    return sum(edit_distance(r, h) for r, h in zip(refs, hyps, strict=True)) / n


def sentence_accuracy(refs: Sequence[str], hyps: Sequence[str]) -> float:
    """Share of utterances recognised exactly (word for word)."""
    _pairs(refs, hyps)
    return sum(r.split() == h.split() for r, h in zip(refs, hyps, strict=True)) / len(refs)
